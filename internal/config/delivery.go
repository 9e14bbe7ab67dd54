package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Delivery holds the outbound queue's settings: how mail for remote
// recipients reaches other servers (MX lookup, per-domain routes or a
// smarthost), how often it is retried and when it is bounced.
type Delivery struct {
	// Resolver is the DNS server ("host:port") for MX, A/AAAA and TXT
	// lookups; "" uses the system's (/etc/resolv.conf).
	Resolver string `toml:"resolver"`
	// Port is the port MX hosts are contacted on (25; other values are
	// for tests and unusual networks).
	Port int `toml:"port"`
	// Smarthost ("host:port") receives all outbound mail instead of the
	// recipients' MX hosts.
	Smarthost string `toml:"smarthost"`
	// SmarthostTLS: "starttls" (required, certificate verified), "tls"
	// (implicit TLS, as on port 465), "opportunistic" (STARTTLS when
	// offered, certificate not checked) or "none".
	SmarthostTLS string `toml:"smarthost_tls"`
	// SmarthostUsername and SmarthostPasswordFile authenticate to the
	// smarthost (AUTH PLAIN or LOGIN, only over TLS); the password file
	// holds the password on its first line, relative to data_dir.
	SmarthostUsername     string `toml:"smarthost_username"`
	SmarthostPasswordFile string `toml:"smarthost_password_file"`
	// Route lists per-domain overrides, checked before the smarthost and
	// the MX lookup.
	Route []Route `toml:"route"`
	// FirstRetry is the wait after the first failed attempt; each later
	// wait doubles up to MaxRetryInterval.
	FirstRetry       Duration `toml:"first_retry"`
	MaxRetryInterval Duration `toml:"max_retry_interval"`
	// GiveUpAfter is how long a message is retried before it bounces.
	GiveUpAfter Duration `toml:"give_up_after"`
	// DelayWarning is the age at which the sender gets one "delayed" DSN
	// for recipients still pending; "0s" turns it off.
	DelayWarning Duration `toml:"delay_warning"`
	// Concurrency bounds outbound connections in total;
	// ConcurrencyPerDomain bounds them per destination.
	Concurrency          int `toml:"concurrency"`
	ConcurrencyPerDomain int `toml:"concurrency_per_domain"`
	// ConnectTimeout bounds each TCP connect and greeting; CommandTimeout
	// each reply (the end of DATA gets 10 minutes, RFC 5321 4.5.3.2.6).
	ConnectTimeout Duration `toml:"connect_timeout"`
	CommandTimeout Duration `toml:"command_timeout"`
	// SRSDomain is the domain of envelope senders rewritten by SRS when an
	// alias forwards mail to an external address; "" = hostname. Its MX
	// must point here so that bounces come back.
	SRSDomain string `toml:"srs_domain"`
}

// Route sends the mail of one recipient domain to a fixed host.
type Route struct {
	Domain string `toml:"domain"` // recipient domain, e.g. "example.net"
	Host   string `toml:"host"`   // "host:port"; STARTTLS is used when offered
}

// Smarthost TLS modes.
const (
	SmarthostSTARTTLS      = "starttls"
	SmarthostTLS           = "tls"
	SmarthostOpportunistic = "opportunistic"
	SmarthostNone          = "none"
)

func defaultDelivery() Delivery {
	return Delivery{
		Port:                 25,
		SmarthostTLS:         SmarthostSTARTTLS,
		FirstRetry:           Duration(5 * time.Minute),
		MaxRetryInterval:     Duration(time.Hour),
		GiveUpAfter:          Duration(5 * 24 * time.Hour),
		DelayWarning:         Duration(4 * time.Hour),
		Concurrency:          100,
		ConcurrencyPerDomain: 10,
		ConnectTimeout:       Duration(30 * time.Second),
		CommandTimeout:       Duration(5 * time.Minute),
	}
}

func (d *Delivery) validate(bad func(string, string, ...any)) {
	if d.Resolver != "" {
		if err := checkHostPort(d.Resolver); err != nil {
			bad("delivery.resolver", "%v", err)
		}
	}
	if d.Port < 1 || d.Port > 65535 {
		bad("delivery.port", "%d is not a port", d.Port)
	}
	if d.Smarthost != "" {
		if err := checkHostPort(d.Smarthost); err != nil {
			bad("delivery.smarthost", "%v", err)
		}
	}
	switch d.SmarthostTLS {
	case SmarthostSTARTTLS, SmarthostTLS, SmarthostOpportunistic, SmarthostNone:
	default:
		bad("delivery.smarthost_tls", "%q is not one of starttls, tls, opportunistic, none", d.SmarthostTLS)
	}
	if (d.SmarthostUsername == "") != (d.SmarthostPasswordFile == "") {
		bad("delivery.smarthost_username", "smarthost_username and smarthost_password_file go together")
	}
	seen := map[string]bool{}
	for i, r := range d.Route {
		key := fmt.Sprintf("delivery.route[%d]", i)
		dom := strings.ToLower(strings.TrimSuffix(r.Domain, "."))
		if err := checkHostname(dom); err != nil {
			bad(key+".domain", "%v", err)
		}
		if seen[dom] {
			bad(key+".domain", "%q is routed twice", r.Domain)
		}
		seen[dom] = true
		if err := checkHostPort(r.Host); err != nil {
			bad(key+".host", "%v", err)
		}
	}
	if d.FirstRetry < Duration(time.Second) || d.FirstRetry > d.MaxRetryInterval {
		bad("delivery.first_retry", "%s must be at least 1s and at most max_retry_interval", d.FirstRetry)
	}
	if d.GiveUpAfter < d.FirstRetry {
		bad("delivery.give_up_after", "%s is less than first_retry", d.GiveUpAfter)
	}
	if d.DelayWarning < 0 {
		bad("delivery.delay_warning", "must not be negative")
	}
	if d.Concurrency < 1 || d.ConcurrencyPerDomain < 1 || d.ConcurrencyPerDomain > d.Concurrency {
		bad("delivery.concurrency", "concurrency %d and concurrency_per_domain %d must be at least 1, per domain at most the total",
			d.Concurrency, d.ConcurrencyPerDomain)
	}
	if d.ConnectTimeout < Duration(time.Second) {
		bad("delivery.connect_timeout", "%s is less than 1s", d.ConnectTimeout)
	}
	if d.CommandTimeout < Duration(time.Second) {
		bad("delivery.command_timeout", "%s is less than 1s", d.CommandTimeout)
	}
	if d.SRSDomain != "" {
		if err := checkHostname(d.SRSDomain); err != nil {
			bad("delivery.srs_domain", "%v", err)
		}
	}
}

// checkHostPort accepts "host:port" with a non-empty host and a port.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

func renderDelivery(b *strings.Builder, d *Delivery) {
	fmt.Fprintf(b, `
# Outbound delivery: mail for remote recipients waits in the queue
# (pillarbox queue list) and is delivered to each recipient domain's MX.
[delivery]
# DNS server ("host:port") for MX and A/AAAA lookups; "" = the system's.
resolver = %s
# Port MX hosts are contacted on.
port = %d
# "host:port" to send all outbound mail through (for hosts whose port 25
# is blocked); "" = deliver to each domain's MX.
smarthost = %s
# TLS to the smarthost: "starttls" (required, certificate verified), "tls"
# (implicit TLS, port 465), "opportunistic" or "none".
smarthost_tls = %s
# Credentials for the smarthost (AUTH PLAIN/LOGIN over TLS only). The
# password file (relative to data_dir) holds the password on its first line.
smarthost_username = %s
smarthost_password_file = %s
# Wait after the first failed attempt; each later wait doubles, up to
# max_retry_interval.
first_retry = %s
max_retry_interval = %s
# A message still undelivered after this long bounces to its sender.
give_up_after = %s
# The sender gets one "delayed" notice for recipients still pending after
# this long; "0s" = never.
delay_warning = %s
# Concurrent outbound connections in total and per destination.
concurrency = %d
concurrency_per_domain = %d
# Time allowed to connect (and for the greeting), and for each reply.
connect_timeout = %s
command_timeout = %s
# Domain of envelope senders rewritten by SRS when an alias forwards mail
# to an external address ("" = hostname). Its MX must point here.
srs_domain = %s
`, quote(d.Resolver), d.Port, quote(d.Smarthost), quote(d.SmarthostTLS), quote(d.SmarthostUsername),
		quote(d.SmarthostPasswordFile), quote(d.FirstRetry.String()), quote(d.MaxRetryInterval.String()),
		quote(d.GiveUpAfter.String()), quote(d.DelayWarning.String()), d.Concurrency, d.ConcurrencyPerDomain,
		quote(d.ConnectTimeout.String()), quote(d.CommandTimeout.String()), quote(d.SRSDomain))
	if len(d.Route) == 0 {
		b.WriteString(`
# Per-domain routes, checked before the smarthost and the MX lookup:
# [[delivery.route]]
# domain = "example.net"
# host = "127.0.0.1:2525"
`)
		return
	}
	b.WriteString("\n# Per-domain routes, checked before the smarthost and the MX lookup.\n")
	for _, r := range d.Route {
		fmt.Fprintf(b, "[[delivery.route]]\ndomain = %s\nhost = %s\n", quote(r.Domain), quote(r.Host))
	}
}
