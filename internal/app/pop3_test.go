package app

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"pillarbox/internal/config"
)

// pop3Login dials pop3s and logs alice in; it returns the reply to PASS.
func pop3Login(t *testing.T, a *App) (string, *imapConn) {
	t.Helper()
	tc, err := tls.Dial("tcp", a.addr(t, ListenPOP3S), tlsConfig(t, a))
	if err != nil {
		t.Fatal(err)
	}
	p := newIMAPConn(t, tc)
	if g := p.line(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	p.send("USER alice@example.test")
	p.line()
	p.send("PASS alice-secret")
	return p.line(), p
}

// Mail received over SMTP downloads over POP3 (pop3s, and pop3 after
// STLS); DELE + QUIT expunges it for IMAP too.
func TestPOP3DownloadsSMTPDelivery(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	send(t, c, "someone@remote.test", []string{"alice@example.test"}, body)

	pc, err := net.Dial("tcp", a.addr(t, ListenPOP3))
	if err != nil {
		t.Fatal(err)
	}
	plain := newIMAPConn(t, pc)
	plain.line()
	plain.send("USER alice@example.test")
	if l := plain.line(); !strings.HasPrefix(l, "-ERR [AUTH]") {
		t.Fatalf("USER before STLS: %q", l)
	}
	plain.send("STLS")
	if l := plain.line(); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	plain = newIMAPConn(t, tls.Client(pc, tlsConfig(t, a)))
	plain.send("USER alice@example.test")
	plain.line()
	plain.send("PASS alice-secret")
	if l := plain.line(); !strings.HasPrefix(l, "+OK Maildrop has 1 messages") {
		t.Fatalf("PASS after STLS: %q", l)
	}
	plain.send("QUIT")
	plain.line()

	var p *imapConn
	for {
		var l string
		if l, p = pop3Login(t, a); !strings.HasPrefix(l, "-ERR [IN-USE]") {
			if !strings.HasPrefix(l, "+OK Maildrop has 1 messages") {
				t.Fatalf("PASS: %q", l)
			}
			break
		}
	}
	p.send("RETR 1")
	if l := p.line(); !strings.HasPrefix(l, "+OK ") {
		t.Fatalf("RETR: %q", l)
	}
	var got []string
	for l := p.line(); l != "."; l = p.line() {
		got = append(got, l)
	}
	if msg := strings.Join(got, "\n"); !strings.Contains(msg, "Delivered-To: alice@example.test") || !strings.Contains(msg, "Subject: test") {
		t.Fatalf("RETR body:\n%s", msg)
	}
	p.send("DELE 1")
	p.line()
	p.send("QUIT")
	if l := p.line(); l != "+OK Bye (1 messages deleted)" {
		t.Fatalf("QUIT: %q", l)
	}
	if msgs := inbox(t, a.Store(), "alice@example.test", "INBOX"); len(msgs) != 0 {
		t.Fatalf("INBOX still holds %d messages", len(msgs))
	}
}

// Reload applies [pop3] to new sessions.
func TestReloadPOP3(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	cfg := *a.config()
	cfg.POP3.LoginDelay = config.Duration(3600e9)
	if err := config.Write(cfg.Path, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	l, p := pop3Login(t, a)
	if !strings.HasPrefix(l, "+OK") {
		t.Fatalf("first login: %q", l)
	}
	p.send("CAPA")
	var caps []string
	for l := p.line(); l != "."; l = p.line() {
		caps = append(caps, l)
	}
	if !hasLine(caps, "LOGIN-DELAY 3600") {
		t.Fatalf("CAPA after reload: %q", caps)
	}
	p.send("QUIT")
	p.line()
	for {
		l, _ := pop3Login(t, a)
		if strings.HasPrefix(l, "-ERR [IN-USE]") {
			continue
		}
		if !strings.HasPrefix(l, "-ERR [LOGIN-DELAY]") {
			t.Fatalf("second login: %q", l)
		}
		break
	}
}
