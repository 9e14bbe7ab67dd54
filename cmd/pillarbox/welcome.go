package main

import (
	"fmt"
	"net"
	"strings"
	"text/tabwriter"

	"pillarbox/internal/config"
)

// firstPort returns the port of the first address in addrs, or "".
func firstPort(addrs []string) string {
	if len(addrs) == 0 {
		return ""
	}
	_, p, err := net.SplitHostPort(addrs[0])
	if err != nil {
		return ""
	}
	return p
}

// printWelcome prints what quickstart set up: the password (once), the
// client settings and the DNS records of the account's domain.
func (c *cli) printWelcome(cfg *config.Config, cfgPath string, created bool, email, pw string, explicitCfg bool) {
	if created {
		c.out("Created %s (data directory %s).\n", cfgPath, cfg.DataDir)
	} else {
		c.out("Using the existing config %s (data directory %s);\n--local and --hostname apply only when a config is created.\n", cfgPath, cfg.DataDir)
	}
	if pw != "" {
		c.out("\nAccount %s created.\n  Password: %s\n  (shown only this once; change it with `pillarbox account passwd %s --password-stdin`)\n", email, pw, email)
	} else {
		c.out("\nAccount %s already exists; its password was not changed\n(set a new one with `pillarbox account passwd %s --password-stdin`).\n", email, email)
	}

	l := cfg.Listen
	c.out("\nClient settings\n  Server name: %s (self-signed certificate unless you installed your own)\n  User name:   %s\n", cfg.Hostname, email)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tPORT\tTLS\tNOTE")
	for _, s := range []struct {
		name  string
		addrs []string
		tls   string
		note  string
	}{
		{"SMTP (MX, from other servers)", l.SMTP, "STARTTLS offered", ""},
		{"Submission", l.Submission, "STARTTLS, required", "send mail; AUTH PLAIN/LOGIN/SCRAM-SHA-256"},
		{"Submissions", l.Submissions, "implicit TLS", "send mail; AUTH PLAIN/LOGIN/SCRAM-SHA-256"},
		{"IMAP", l.IMAP, "STARTTLS, required", "read mail; IMAP4rev2/rev1, IDLE"},
		{"IMAPS", l.IMAPS, "implicit TLS", "read mail; IMAP4rev2/rev1, IDLE"},
		{"POP3", l.POP3, "STLS, required", "download mail; USER/PASS, AUTH PLAIN/LOGIN/SCRAM-SHA-256"},
		{"POP3S", l.POP3S, "implicit TLS", "download mail; USER/PASS, AUTH PLAIN/LOGIN/SCRAM-SHA-256"},
	} {
		if p := firstPort(s.addrs); p != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.name, p, s.tls, s.note)
		}
	}
	tw.Flush()
	c.printDNS(cfg, domainOf(email))
	serve := "pillarbox serve"
	if explicitCfg || cfgPath != DefaultConfigPath {
		serve = "pillarbox --config " + cfgPath + " serve"
	}
	c.out("\nNext time, start the server with: %s\n", serve)
}

// printDNS prints the records domain needs to receive mail at cfg.Hostname
// and to let clients find the server.
func (c *cli) printDNS(cfg *config.Config, domain string) {
	if domain == "localhost" || strings.HasSuffix(domain, ".localhost") {
		c.out("\nThe domain %s needs no DNS: it only works on this machine. For a real domain,\nrun `pillarbox quickstart you@your.domain --hostname mail.your.domain`.\n", domain)
		return
	}
	h := cfg.Hostname + "."
	d := domain + "."
	c.out("\nDNS records for %s (replace the addresses with this server's public ones)\n", domain)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	rows := [][]string{
		{d, "MX", "10 " + h},
		{d, "TXT", `"v=spf1 mx -all"`},
		{"_dmarc." + d, "TXT", `"v=DMARC1; p=quarantine; rua=mailto:postmaster@` + domain + `"`},
		{h, "A", "<IPv4 address of this server>"},
		{h, "AAAA", "<IPv6 address of this server, if it has one>"},
	}
	// RFC 6186 / RFC 8314 5.1: let mail clients find the services.
	l := cfg.Listen
	for _, s := range []struct {
		srv   string
		prio  string
		addrs []string
	}{
		{"_submissions._tcp.", "0", l.Submissions}, {"_submission._tcp.", "10", l.Submission},
		{"_imaps._tcp.", "0", l.IMAPS}, {"_imap._tcp.", "10", l.IMAP},
		{"_pop3s._tcp.", "20", l.POP3S}, {"_pop3._tcp.", "30", l.POP3},
	} {
		if p := firstPort(s.addrs); p != "" {
			rows = append(rows, []string{s.srv + d, "SRV", s.prio + " 1 " + p + " " + h})
		}
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\tIN\t%s\n", r[0], strings.Join(r[1:], "\t"))
	}
	tw.Flush()
	c.out("  Also ask your hosting provider for a PTR (reverse DNS) record: <server address> -> %s\n", h)
}
