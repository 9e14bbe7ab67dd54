package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Example returns a complete pillarbox.toml with every key documented and
// set to its default. Load parses it back to exactly Default().
func Example() string { return render(Default(), false) }

// Write writes c as a commented config file (the Example layout with c's
// values) to path with mode 0640, atomically: a temporary file in the same
// directory is synced and renamed over path. Missing parent directories
// are created (0750). data_dir is written only when it differs from the
// file's directory.
func Write(path string, c *Config) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	writeDataDir := c.DataDir != "" && filepath.Clean(c.DataDir) != absDir
	f, err := os.CreateTemp(dir, ".pillarbox.toml-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o640); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(render(c, writeDataDir)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// render writes c in the documented layout.
func render(c *Config, withDataDir bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`# Pillarbox configuration (TOML). Every key is optional: a key left out
# takes the default shown here. Relative paths are relative to data_dir.
# Sizes are bytes or strings with a unit ("50MiB", "10MB", "512KiB");
# durations are strings ("90s", "5m", "1h").

# Name used in the SMTP greeting and EHLO, in Received headers, and in the
# self-signed certificate. ASCII; IDNs as xn-- A-labels.
hostname = %s

# Directory holding the database, message blobs and TLS material.
# Default: the directory of this file. A relative path is relative to it.
`, quote(c.Hostname))
	if withDataDir {
		w("data_dir = %s\n", quote(c.DataDir))
	} else {
		w("# data_dir = \"/var/lib/pillarbox\"\n")
	}
	l := c.Listen
	w(`
# Addresses to listen on, each a list of "host:port" (":25" = all
# interfaces; "127.0.0.1:1025"; "[::1]:1025"). An empty list disables it.
[listen]
# SMTP MX: receives mail for local domains from other servers (STARTTLS offered).
smtp = %s
# Message submission for users (RFC 6409): STARTTLS, AUTH required.
submission = %s
# Message submission over implicit TLS (RFC 8314): AUTH required.
submissions = %s
# IMAP with STARTTLS.
imap = %s
# IMAP over implicit TLS.
imaps = %s
# POP3 with STLS.
pop3 = %s
# POP3 over implicit TLS.
pop3s = %s
`, list(l.SMTP), list(l.Submission), list(l.Submissions), list(l.IMAP), list(l.IMAPS), list(l.POP3), list(l.POP3S))
	w(`
# Certificate chain and private key, PEM, relative to data_dir. When both
# files are missing, a self-signed certificate for hostname is generated.
# Reloaded on SIGHUP.
[tls]
cert = %s
key = %s
`, quote(c.TLS.Cert), quote(c.TLS.Key))
	renderLimits(&b, &c.Limits)
	w(`
[log]
# One of debug, info, warn, error.
level = %s
# text (human-readable) or json (one object per line).
format = %s

[submission]
# Default for new accounts: save a copy of submitted mail to the Sent
# mailbox (for clients that do not append it themselves).
save_sent = %t
`, quote(c.Log.Level), quote(c.Log.Format), c.Submission.SaveSent)
	w(`
# The IMAP server (listen.imap, listen.imaps). [limits] applies too:
# message_size is the largest APPEND (advertised as APPENDLIMIT),
# connections_per_ip, sessions, errors_per_session and auth_* as for SMTP,
# command_timeout bounds the silence inside a half-sent command.
[imap]
# Longest command line in octets, literals excluded. 1024-16777216.
line_length = %d
# Concurrent IMAP sessions of one account; more get NO [LIMIT] at login.
connections_per_account = %d
# Idle time before the server logs a session out (RFC 9051 5.4: at least
# 30 minutes; IDLE re-arms it).
autologout = %s
`, c.IMAP.LineLength, c.IMAP.ConnectionsPerAccount, quote(c.IMAP.Autologout.String()))
	w(`
# The POP3 server (listen.pop3, listen.pop3s). [limits] applies too:
# line_length, connections_per_ip, sessions, errors_per_session, auth_*.
[pop3]
# Mailboxes a POP3 session serves, in this order, for accounts without a
# maildrop of their own (pillarbox account set EMAIL --pop3-maildrop ...).
maildrop = %s
# What DELE + QUIT does: "expunge" removes the messages (IMAP sessions see
# the expunge at once); "hide" adds the keyword $POP3Deleted, which hides
# them from POP3 and keeps them for IMAP.
delete = %s
# Allow USER/PASS and AUTH before STLS on listen.pop3 for clients on a
# loopback address (127.0.0.0/8, ::1). Elsewhere TLS is always required.
plaintext_loopback = %t
# Inactivity time before the server closes a session (RFC 1939 3: at least
# 10 minutes).
idle_timeout = %s
# Commands one session may send before it is closed.
commands_per_session = %d
# Least time between two logins of one account; a login sooner gets
# -ERR [LOGIN-DELAY] (RFC 2449). "0s" turns it off.
login_delay = %s
`, list(c.POP3.Maildrop), quote(c.POP3.Delete), c.POP3.PlaintextLoopback, quote(c.POP3.IdleTimeout.String()),
		c.POP3.CommandsPerSession, quote(c.POP3.LoginDelay.String()))
	renderDelivery(&b, &c.Delivery)
	return b.String()
}

func renderLimits(b *strings.Builder, l *Limits) {
	fmt.Fprintf(b, `
# Limits, applied by every endpoint (SMTP, IMAP, POP3).
[limits]
# Largest message accepted (advertised as SMTP SIZE). 64KiB-4GiB.
message_size = %s
# Recipients per SMTP transaction; more get 452 4.5.3. 1-100000.
recipients_per_message = %d
# Longest command or text line in octets including CRLF; longer gets
# 500 5.5.2. At least 1000 (RFC 5321 4.5.3.1.6).
line_length = %d
# Concurrent connections from one remote address.
connections_per_ip = %d
# Concurrent sessions over all endpoints.
sessions = %d
# Protocol errors after which a session is closed.
errors_per_session = %d
# Authentication failures (per account name and per remote address) within
# auth_lockout after which that name or address is locked out.
auth_failures = %d
# Lockout time, and the window in which failures are counted.
auth_lockout = %s
# Idle time allowed while waiting for a command (RFC 5321 4.5.3.2.7).
command_timeout = %s
# Time allowed while waiting for message data (RFC 5321 4.5.3.2.5-6).
data_timeout = %s
`, sizeValue(l.MessageSize), l.RecipientsPerMessage, l.LineLength, l.ConnectionsPerIP, l.Sessions,
		l.ErrorsPerSession, l.AuthFailures, quote(l.AuthLockout.String()),
		quote(l.CommandTimeout.String()), quote(l.DataTimeout.String()))
}

func sizeValue(s Size) string {
	if str := s.String(); !strings.HasSuffix(str, "iB") {
		return strconv.FormatInt(int64(s), 10)
	}
	return quote(s.String())
}

func list(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quote writes a TOML basic string (TOML 1.0 "Basic strings").
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
