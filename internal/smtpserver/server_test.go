package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// eventually retries f until it returns true (for state that changes just
// after a socket is closed); it asserts nothing about time.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if f() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

// greeting connects and returns the first reply line.
func greeting(t *testing.T, addr string) (*client, string) {
	c := dial(t, addr)
	l, err := c.line()
	if err != nil {
		return c, ""
	}
	return c, l
}

func TestMaxConnsPerIP(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxConnsPerIP: 2})
	a := dial(t, env.addr)
	a.expect("220 ")
	b := dial(t, env.addr)
	b.expect("220 ")
	c := dial(t, env.addr)
	c.expect("421 4.7.0 mx.example.test Too many connections")
	c.expectClosed()
	// The first two still work.
	b.cmd("NOOP")
	b.expect("250 ")
	a.cmd("QUIT")
	a.expect("221 ")
	eventually(t, "a slot frees up", func() bool {
		d, l := greeting(t, env.addr)
		d.conn.Close()
		return strings.HasPrefix(l, "220 ")
	})
}

func TestMaxSessions(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxSessions: 1, MaxConnsPerIP: 10})
	a := dial(t, env.addr)
	a.expect("220 ")
	b := dial(t, env.addr)
	b.expect("421 4.7.0 ")
	b.expectClosed()
	a.cmd("NOOP")
	a.expect("250 ")
}

func TestMaxSessionsImplicitTLS(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{Mode: ModeSubmissions, MaxSessions: 1})
	a := dialTLS(t, env.addr, env.clientTLS())
	a.expect("220 ")
	b := dialTLS(t, env.addr, env.clientTLS())
	b.expect("421 4.7.0 ") // sent inside TLS
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{CommandTimeout: 50 * time.Millisecond})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.expect("421 4.4.2 mx.example.test Timeout")
	c.expectClosed()
	// The server is still up.
	d := dial(t, env.addr)
	d.expect("220 ")
}

func TestDataTimeout(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{DataTimeout: 50 * time.Millisecond})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.cmd("MAIL FROM:<a@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<alice@example.test>")
	c.expect("250 ")
	c.cmd("DATA")
	c.expect("354 ")
	c.send("Subject: slow\r\n\r\nhalf a mess")
	c.expect("421 4.4.2 ")
	c.expectClosed()
	if n := len(env.be.deliveries()); n != 0 {
		t.Fatalf("%d delivered", n)
	}
}

func TestBDATConnectionLost(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.cmd("MAIL FROM:<a@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<alice@example.test>")
	c.expect("250 ")
	c.send("BDAT 100 LAST\r\nSubject: cut\r\n\r\n")
	c.conn.Close()
	eventually(t, "session ends", func() bool { return strings.Contains(env.logs.String(), "msg=disconnected") })
	if n := len(env.be.deliveries()); n != 0 {
		t.Fatalf("a cut BDAT message was delivered")
	}
}

// A panic in the backend closes that connection only, with 421.
func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	c := dial(t, env.addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.cmd("MAIL FROM:<a@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<panic@example.test>")
	c.expect("421 4.3.0 ")
	c.expectClosed()
	if !strings.Contains(env.logs.String(), "fake backend panic") {
		t.Error("panic not logged")
	}
	d := dial(t, env.addr)
	d.expect("220 ")
	d.cmd("EHLO c.test")
	d.expect("250 ")
	d.cmd("MAIL FROM:<a@remote.test>")
	d.expect("250 ")
	d.cmd("RCPT TO:<alice@example.test>")
	d.expect("250 ")
}

// panicTB lets client code run on other goroutines: failures panic (and
// are recovered there) instead of calling FailNow off the test goroutine.
type panicTB struct{ testing.TB }

func (p panicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (p panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// startTx opens a connection with a transaction in progress.
func startTx(t testing.TB, addr string) *client {
	c := dial(t, addr)
	c.expect("220 ")
	c.cmd("EHLO c.test")
	c.expect("250 ")
	c.cmd("MAIL FROM:<a@remote.test>")
	c.expect("250 ")
	c.cmd("RCPT TO:<alice@example.test>")
	c.expect("250 ")
	return c
}

// Shutdown: sessions waiting for a command get 421 4.3.2 at once, also
// inside a transaction (nothing of theirs is acknowledged); a DATA
// transfer in progress finishes and is acknowledged, then its session gets
// 421 too; Serve returns ErrServerClosed; no new connections.
func TestShutdownGraceful(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	idle := dial(t, env.addr)
	idle.expect("220 ")
	idle.cmd("EHLO c.test")
	idle.expect("250 ")
	waiting := startTx(t, env.addr)
	busy := startTx(t, env.addr)
	busy.cmd("DATA")
	busy.expect("354 ")
	busy.send("Subject: in flight\r\n\r\n")

	shut := make(chan error, 1)
	go func() { shut <- env.srv.Shutdown(context.Background()) }()
	idle.expect("421 4.3.2 mx.example.test Service shutting down")
	idle.expectClosed()
	waiting.expect("421 4.3.2 ")
	waiting.expectClosed()
	if err := <-env.done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	env.done <- ErrServerClosed // for the cleanup check
	if nc, err := net.Dial("tcp", env.addr); err == nil {
		nc.Close()
		t.Fatal("new connection accepted after Shutdown")
	}

	busy.send("x\r\n.\r\n")
	busy.expect("250 2.0.0 Ok: queued as Q1")
	busy.cmd("NOOP")
	busy.expect("421 4.3.2 ")
	busy.expectClosed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(env.be.deliveries()); n != 1 {
		t.Fatalf("%d delivered, want 1", n)
	}
}

// When Shutdown's context ends, transactions in progress are cut with
// 421 4.3.2 and nothing half-received is delivered.
func TestShutdownForced(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	idle := dial(t, env.addr)
	idle.expect("220 ")
	waiting := startTx(t, env.addr)
	inData := startTx(t, env.addr)
	inData.cmd("DATA")
	inData.expect("354 ")
	inData.send("Subject: half\r\n\r\npart")

	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- env.srv.Shutdown(ctx) }()
	idle.expect("421 4.3.2 ") // Shutdown has begun
	cancel()
	waiting.expect("421 4.3.2 ")
	waiting.expectClosed()
	inData.expect("421 4.3.2 ")
	inData.expectClosed()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := len(env.be.deliveries()); n != 0 {
		t.Fatalf("%d delivered", n)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{})
	if err := env.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := env.srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// Many concurrent sessions deliver every message exactly once.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	env := startServer(t, Options{MaxConnsPerIP: 50})
	const n = 20
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			defer func() {
				if r := recover(); r != nil {
					errs <- fmt.Errorf("client: %v", r)
				}
			}()
			c := startTx(panicTB{t}, env.addr)
			c.cmd("DATA")
			c.expect("354 ")
			c.send("Subject: concurrent\r\n\r\nx\r\n.\r\n")
			c.expect("250 2.0.0 Ok: queued as Q")
			c.cmd("QUIT")
			c.expect("221 ")
			errs <- nil
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(env.be.deliveries()); got != n {
		t.Fatalf("%d delivered, want %d", got, n)
	}
}
