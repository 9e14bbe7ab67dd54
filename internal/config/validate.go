package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Ranges accepted by Validate.
const (
	minLineLength = 1000 // RFC 5321 4.5.3.1.6: a text line is up to 1000 octets with CRLF
	maxLineLength = 1 << 20
	minMessage    = 64 << 10 // RFC 5321 4.5.3.1.7: at least 64K octets of message content
	maxMessage    = 4 << 30
)

// Validate checks every field and reports all problems at once, each
// naming its key. The error wraps ErrInvalid.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if err := checkHostname(c.Hostname); err != nil {
		bad("hostname", "%v", err)
	}
	c.validateListen(bad)
	if c.TLS.Cert == "" {
		bad("tls.cert", "must not be empty")
	}
	if c.TLS.Key == "" {
		bad("tls.key", "must not be empty")
	}
	c.Limits.validate(bad)
	c.IMAP.validate(bad)
	c.POP3.validate(bad)
	c.Delivery.validate(bad)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
}

func (c *Config) validateListen(bad func(string, string, ...any)) {
	seen := map[string]string{}
	for _, l := range []struct {
		key   string
		addrs []string
	}{
		{"listen.smtp", c.Listen.SMTP}, {"listen.submission", c.Listen.Submission},
		{"listen.submissions", c.Listen.Submissions}, {"listen.imap", c.Listen.IMAP},
		{"listen.imaps", c.Listen.IMAPS}, {"listen.pop3", c.Listen.POP3}, {"listen.pop3s", c.Listen.POP3S},
	} {
		for _, a := range l.addrs {
			if err := checkListenAddr(a); err != nil {
				bad(l.key, "%v", err)
				continue
			}
			if !strings.HasSuffix(a, ":0") {
				if other, dup := seen[a]; dup {
					bad(l.key, "%q is also in %s", a, other)
				}
				seen[a] = l.key
			}
		}
	}
}

// checkListenAddr accepts "host:port" where host is empty, an IP address
// or a host name, and port is a number 0-65535.
func checkListenAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":25\", \"127.0.0.1:1025\", \"[::1]:1025\")", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number 0-65535", a, port)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if checkHostname(host) != nil {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", a, host)
	}
	return nil
}

// checkHostname accepts an ASCII DNS name (RFC 1123 2.1): labels of
// letters, digits and hyphens, 1-63 octets, not starting or ending with a
// hyphen, 253 octets in all, no trailing dot. IDNs must be given as
// A-labels ("xn--...").
func checkHostname(h string) error {
	if h == "" {
		return errors.New("must not be empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
				return fmt.Errorf("%q is not a valid host name (letters, digits, '-' and '.'; IDNs as xn-- A-labels)", h)
			}
		}
	}
	return nil
}

func (l *Limits) validate(bad func(string, string, ...any)) {
	intRange := func(key string, v, lo, hi int, why string) {
		if v < lo || v > hi {
			bad(key, "%d is out of range %d-%d%s", v, lo, hi, why)
		}
	}
	if l.MessageSize < minMessage || l.MessageSize > maxMessage {
		bad("limits.message_size", "%s is out of range %s-%s", l.MessageSize, Size(minMessage), Size(maxMessage))
	}
	intRange("limits.recipients_per_message", l.RecipientsPerMessage, 1, 100000,
		" (RFC 5321 4.5.3.1.8 asks for at least 100)")
	intRange("limits.line_length", l.LineLength, minLineLength, maxLineLength,
		" (RFC 5321 4.5.3.1.6: lines of 1000 octets must be accepted)")
	intRange("limits.connections_per_ip", l.ConnectionsPerIP, 1, 1000000, "")
	intRange("limits.sessions", l.Sessions, 1, 1000000, "")
	intRange("limits.errors_per_session", l.ErrorsPerSession, 1, 1000, "")
	intRange("limits.auth_failures", l.AuthFailures, 1, 1000, "")
	durRange := func(key string, d Duration, lo, hi time.Duration) {
		if d.D() < lo || d.D() > hi {
			bad(key, "%s is out of range %s-%s", d, Duration(lo), Duration(hi))
		}
	}
	durRange("limits.auth_lockout", l.AuthLockout, time.Second, 30*24*time.Hour)
	durRange("limits.command_timeout", l.CommandTimeout, time.Second, 24*time.Hour)
	durRange("limits.data_timeout", l.DataTimeout, time.Second, 24*time.Hour)
}

func (m *IMAP) validate(bad func(string, string, ...any)) {
	if m.LineLength < 1024 || m.LineLength > 16<<20 {
		bad("imap.line_length", "%d is outside 1024-16777216", m.LineLength)
	}
	if m.ConnectionsPerAccount < 1 {
		bad("imap.connections_per_account", "must be at least 1")
	}
	if time.Duration(m.Autologout) < 30*time.Minute {
		bad("imap.autologout", "%s is less than 30m (RFC 9051 5.4)", m.Autologout)
	}
}

func (p *POP3) validate(bad func(string, string, ...any)) {
	if len(p.Maildrop) == 0 {
		bad("pop3.maildrop", "must name at least one mailbox")
	}
	for _, name := range p.Maildrop {
		if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.ContainsAny(name, "\x00\r\n") {
			bad("pop3.maildrop", "%q is not a mailbox name", name)
		}
	}
	if p.Delete != POP3DeleteExpunge && p.Delete != POP3DeleteHide {
		bad("pop3.delete", "%q is neither %q nor %q", p.Delete, POP3DeleteExpunge, POP3DeleteHide)
	}
	if time.Duration(p.IdleTimeout) < 10*time.Minute {
		bad("pop3.idle_timeout", "%s is less than 10m (RFC 1939 3)", p.IdleTimeout)
	}
	if p.CommandsPerSession < 100 {
		bad("pop3.commands_per_session", "%d is less than 100", p.CommandsPerSession)
	}
	if p.LoginDelay < 0 || time.Duration(p.LoginDelay) > 24*time.Hour {
		bad("pop3.login_delay", "%s is out of range 0s-24h", p.LoginDelay)
	}
}
