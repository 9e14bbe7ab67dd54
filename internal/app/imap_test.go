package app

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"

	"pillarbox/internal/config"
	"strings"
	"testing"
	"time"
)

// imapConn is a minimal line-oriented IMAP client for wiring tests.
type imapConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newIMAPConn(t *testing.T, c net.Conn) *imapConn {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &imapConn{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *imapConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *imapConn) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the tagged one.
func (c *imapConn) cmd(tag, format string, args ...any) (untagged []string, tagged string) {
	c.t.Helper()
	c.send(tag+" "+format, args...)
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

func hasLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

// Mail received over SMTP shows in IMAP over both IMAP listeners of the
// App: imaps (implicit TLS) and imap (STARTTLS, no login before TLS), and
// a session in IDLE sees a new delivery at once.
func TestIMAPSeesSMTPDelivery(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	send(t, c, "someone@remote.test", []string{"alice@example.test"}, body)

	tc, err := tls.Dial("tcp", a.addr(t, ListenIMAPS), tlsConfig(t, a))
	if err != nil {
		t.Fatal(err)
	}
	s := newIMAPConn(t, tc)
	if g := s.line(); !strings.HasPrefix(g, "* OK ") {
		t.Fatalf("greeting %q", g)
	}
	if _, tagged := s.cmd("a1", `LOGIN alice@example.test alice-secret`); !strings.HasPrefix(tagged, "a1 OK") {
		t.Fatalf("LOGIN: %q", tagged)
	}
	untagged, tagged := s.cmd("a2", "SELECT INBOX")
	if !strings.HasPrefix(tagged, "a2 OK [READ-WRITE]") || !hasLine(untagged, "* 1 EXISTS") {
		t.Fatalf("SELECT: %q %q", untagged, tagged)
	}
	s.send("a3 IDLE")
	if l := s.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	send(t, c, "someone@remote.test", []string{"alice@example.test"}, body)
	if l := s.line(); l != "* 2 EXISTS" {
		t.Fatalf("during IDLE after a delivery: %q, want * 2 EXISTS", l)
	}
	s.send("DONE")
	if l := s.line(); !strings.HasPrefix(l, "a3 OK") {
		t.Fatalf("DONE: %q", l)
	}

	pc, err := net.Dial("tcp", a.addr(t, ListenIMAP))
	if err != nil {
		t.Fatal(err)
	}
	p := newIMAPConn(t, pc)
	if g := p.line(); !strings.Contains(g, "STARTTLS") || !strings.Contains(g, "LOGINDISABLED") {
		t.Fatalf("plain greeting %q: want STARTTLS and LOGINDISABLED", g)
	}
	if _, tagged := p.cmd("b1", `LOGIN alice@example.test alice-secret`); !strings.HasPrefix(tagged, "b1 NO") {
		t.Fatalf("LOGIN before TLS: %q, want NO", tagged)
	}
	if _, tagged := p.cmd("b2", "STARTTLS"); !strings.HasPrefix(tagged, "b2 OK") {
		t.Fatalf("STARTTLS: %q", tagged)
	}
	tc2 := tls.Client(pc, tlsConfig(t, a))
	p = newIMAPConn(t, tc2)
	if _, tagged := p.cmd("b3", `LOGIN alice@example.test alice-secret`); !strings.HasPrefix(tagged, "b3 OK") {
		t.Fatalf("LOGIN after STARTTLS: %q", tagged)
	}
	untagged, tagged = p.cmd("b4", "STATUS INBOX (MESSAGES UNSEEN)")
	if !strings.HasPrefix(tagged, "b4 OK") || !hasLine(untagged, "* STATUS INBOX (MESSAGES 2 UNSEEN 2)") {
		t.Fatalf("STATUS: %q %q", untagged, tagged)
	}
}

// Reload applies [limits] and [imap] to new IMAP sessions: APPENDLIMIT
// follows message_size, and imap.connections_per_account is enforced.
func TestReloadIMAP(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	a := testAppLog(t, logs)
	login := func(tag string) (string, *imapConn) {
		tc, err := tls.Dial("tcp", a.addr(t, ListenIMAPS), tlsConfig(t, a))
		if err != nil {
			t.Fatal(err)
		}
		s := newIMAPConn(t, tc)
		s.line()
		_, tagged := s.cmd(tag, `LOGIN alice@example.test alice-secret`)
		return tagged, s
	}
	if tagged, _ := login("a1"); !strings.Contains(tagged, "APPENDLIMIT=52428800") {
		t.Fatalf("before reload: %q", tagged)
	}
	cfg := *a.config()
	cfg.Limits.MessageSize = 100000
	cfg.IMAP.ConnectionsPerAccount = 2 // the session above is one
	if err := config.Write(cfg.Path, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	tagged, _ := login("b1")
	if !strings.HasPrefix(tagged, "b1 OK") || !strings.Contains(tagged, "APPENDLIMIT=100000") {
		t.Fatalf("after reload: %q, want APPENDLIMIT=100000", tagged)
	}
	if tagged, _ := login("c1"); !strings.HasPrefix(tagged, "c1 NO [LIMIT]") {
		t.Errorf("third session with connections_per_account 2: %q, want NO [LIMIT]", tagged)
	}
	if l := logs.String(); !strings.Contains(l, "imap.connections_per_account") {
		t.Errorf("reload log does not name imap.connections_per_account:\n%s", l)
	}
}
