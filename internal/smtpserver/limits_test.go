package smtpserver

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/limit"
)

// ehlo greets and returns the EHLO reply lines.
func ehlo(c *client) []string {
	c.t.Helper()
	c.cmd("EHLO client.example")
	return c.expect("250 ")
}

func checkEHLO(t *testing.T, who string, lines []string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range lines {
		have[l[4:]] = true // without "250-" / "250 "
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("%s: EHLO reply %q lacks %q", who, lines, w)
		}
	}
}

// oversize is a message of n bytes (CRLF lines, no dot-stuffing needed).
func oversize(n int) string {
	line := "Subject: x\r\n\r\n"
	for len(line) < n {
		line += strings.Repeat("y", 70) + "\r\n"
	}
	return line
}

// The limits a connection is admitted with stay with it: after SetLimits a
// new connection sees the new SIZE, SIZE= refusal, DATA/BDAT size limit,
// recipient limit and line length; a connection opened before keeps the
// old ones for all of them.
func TestSetLimitsNewConnections(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxMessageBytes: 10000, MaxRecipients: 3, MaxLineLength: 200})
	old := dial(t, env.addr)
	old.expect("220 ")
	checkEHLO(t, "old", ehlo(old), "SIZE 10000", "LIMITS RCPTMAX=3")

	env.srv.SetLimits(Limits{MaxMessageBytes: 1000, MaxRecipients: 1, MaxLineLength: 100})
	if got := env.srv.Limits(); got.MaxMessageBytes != 1000 || got.MaxErrors != DefaultMaxErrors {
		t.Errorf("Limits() = %+v, want the new values with defaults", got)
	}

	nc := dial(t, env.addr)
	nc.expect("220 ")
	checkEHLO(t, "new", ehlo(nc), "SIZE 1000", "LIMITS RCPTMAX=1")
	long := "NOOP " + strings.Repeat("x", 150) // 157 bytes with CRLF
	nc.cmd(long)
	nc.expect("500 5.5.2 Line too long")
	nc.cmd("MAIL FROM:<a@remote.test> SIZE=1001")
	nc.expect("552 5.3.4 ")
	nc.cmd("MAIL FROM:<a@remote.test> SIZE=900")
	nc.expect("250 ")
	nc.cmd("RCPT TO:<alice@example.test>")
	nc.expect("250 ")
	nc.cmd("RCPT TO:<bob@example.test>")
	nc.expect("452 4.5.3 ")
	nc.cmd("DATA")
	nc.expect("354 ")
	nc.send(oversize(2000) + ".\r\n")
	nc.expect("552 5.3.4 ")
	nc.cmd("MAIL FROM:<a@remote.test>")
	nc.expect("250 ")
	nc.cmd("RCPT TO:<alice@example.test>")
	nc.expect("250 ")
	msg := oversize(1500)
	nc.cmd("BDAT " + strconv.Itoa(len(msg)) + " LAST")
	nc.send(msg)
	nc.expect("552 5.3.4 ")

	// The old connection still has 10000 bytes, 3 recipients, 200 octets.
	old.cmd(long)
	old.expect("250 ")
	checkEHLO(t, "old again", ehlo(old), "SIZE 10000", "LIMITS RCPTMAX=3")
	old.cmd("MAIL FROM:<a@remote.test> SIZE=5000")
	old.expect("250 ")
	for _, r := range []string{"alice", "bob", "alice"} {
		old.cmd("RCPT TO:<" + r + "@example.test>")
		old.expect("250 ")
	}
	old.cmd("DATA")
	old.expect("354 ")
	old.send(oversize(2000) + ".\r\n")
	old.expect("250 2.0.0 Ok: queued as ")
	if n := len(env.be.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1 (only the old connection's)", n)
	}
}

// Error limit and connections per IP follow SetLimits too.
func TestSetLimitsErrorsAndConnsPerIP(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxErrors: 5, MaxConnsPerIP: 10})
	old := dial(t, env.addr)
	old.expect("220 ")
	env.srv.SetLimits(Limits{MaxErrors: 1, MaxConnsPerIP: 2})
	nc := dial(t, env.addr)
	nc.expect("220 ")
	// Two connections from 127.0.0.1 now: a third is refused.
	third := dial(t, env.addr)
	third.expect("421 4.7.0 ")
	third.expectClosed()
	nc.cmd("XYZZY")
	nc.expect("500 5.5.1 ")
	nc.expect("421 4.7.0 ")
	nc.expectClosed()
	// The old connection may still make four errors.
	for i := 0; i < 4; i++ {
		old.cmd("XYZZY")
		old.expect("500 5.5.1 ")
	}
	old.cmd("NOOP")
	old.expect("250 ")
}

// Many SetLimits calls racing with connections: every connection is served
// by a go-smtp server whose SIZE matches its own snapshot (run with -race).
func TestSetLimitsConcurrent(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxConnsPerIP: -1})
	env.srv.SetLimits(Limits{MaxMessageBytes: 1000}) // before the first connection
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			env.srv.SetLimits(Limits{MaxMessageBytes: 1000 + i%7})
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 20; i++ {
		c := dial(t, env.addr)
		c.expect("220 ")
		lines := ehlo(c)
		size := 0
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "250-SIZE "); ok {
				size, _ = strconv.Atoi(v)
			}
		}
		if size < 1000 || size > 1006 {
			t.Fatalf("connection %d: SIZE %d, want one of the values set", i, size)
		}
		// go-smtp's limit and the advertised one agree.
		c.cmd("MAIL FROM:<a@remote.test> SIZE=" + strconv.Itoa(size))
		c.expect("250 ")
		c.cmd("RSET")
		c.expect("250 ")
		c.cmd("MAIL FROM:<a@remote.test> SIZE=" + strconv.Itoa(size+1))
		c.expect("552 5.3.4 ")
		c.cmd("QUIT")
		c.expect("221 ")
	}
	close(stop)
	<-done
}

// Two Servers sharing one Counter: the session limit is over both.
func TestSharedSessionLimit(t *testing.T) {
	t.Parallel()
	sessions := limit.NewCounter(2)
	mx := startServer(t, Options{Sessions: sessions, MaxSessions: 100})
	sub := startServer(t, Options{Mode: ModeSubmission, Sessions: sessions, MaxSessions: 100})
	a := dial(t, mx.addr)
	a.expect("220 ")
	b := dial(t, sub.addr)
	b.expect("220 ")
	for _, addr := range []string{mx.addr, sub.addr} {
		c := dial(t, addr)
		c.expect("421 4.7.0 ")
		c.expectClosed()
	}
	if n := sessions.InUse(); n != 2 {
		t.Errorf("InUse = %d, want 2", n)
	}
	// Raising the shared maximum admits one more at once.
	sessions.SetMax(3)
	c := dial(t, sub.addr)
	c.expect("220 ")
	// Ending a session frees its slot on the other server.
	sessions.SetMax(2)
	b.cmd("QUIT")
	b.expect("221 ")
	c.cmd("QUIT")
	c.expect("221 ")
	eventually(t, "the slots are released", func() bool { return sessions.InUse() == 1 })
	d := dial(t, mx.addr)
	d.expect("220 ")
	a.cmd("NOOP")
	a.expect("250 ")
}

// Shutdown closes sessions of every generation; startServer's cleanup
// checks that Serve (now looping on the newest generation's go-smtp
// server) still returns ErrServerClosed.
func TestSetLimitsShutdown(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	first := dial(t, env.addr)
	first.expect("220 ")
	env.srv.SetLimits(Limits{MaxRecipients: 5})
	second := dial(t, env.addr)
	second.expect("220 ")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range []*client{first, second} {
		c.expect("421 4.3.2 ")
		c.expectClosed()
	}
}
