package endpoint

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"pillarbox/internal/limit"
	"pillarbox/internal/testkit"
)

// testSession is a minimal protocol session: it greets "hello", then
// waits for the client to close, for Poke (it says "bye"; unless busy) or
// for Force (it says nothing).
type testSession struct {
	ep     *Endpoint
	nc     net.Conn
	busy   bool // ignores Poke, as a session in the middle of a command
	poked  chan struct{}
	forced chan struct{}
	done   chan struct{} // closed after Release
	pokeMu sync.Once
	forceM sync.Once
}

func (s *testSession) Poke() {
	if !s.busy {
		s.pokeMu.Do(func() { close(s.poked) })
	}
}

func (s *testSession) Force() {
	s.forceM.Do(func() {
		close(s.forced)
		_ = s.nc.SetDeadline(time.Now())
	})
}

func (s *testSession) serve() {
	defer func() {
		s.nc.Close()
		s.ep.Release(s)
		close(s.done)
	}()
	fmt.Fprintf(s.nc, "hello\n")
	read := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, s.nc)
		close(read)
	}()
	select {
	case <-read:
	case <-s.poked:
		fmt.Fprintf(s.nc, "bye\n")
	case <-s.forced:
	}
}

// testServer serves testSessions on 127.0.0.1 through an Endpoint.
type testServer struct {
	ep       *Endpoint
	addr     string
	maxPerIP int
	busy     bool
	admitted chan *testSession
	served   chan error
	logs     *syncBuffer
}

func startTestServer(t *testing.T, sessions *limit.Counter, maxPerIP int, busy bool) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	ts := &testServer{
		ep:       New(slog.New(slog.NewTextHandler(logs, nil)), sessions),
		maxPerIP: maxPerIP,
		busy:     busy,
		admitted: make(chan *testSession, 16),
		served:   make(chan error, 1),
		logs:     logs,
	}
	l := listen(t)
	ts.addr = l.Addr().String()
	go func() { ts.served <- ts.ep.Serve(l, ts.handle) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.ep.Shutdown(ctx)
		if err := <-ts.served; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return ts
}

func (ts *testServer) handle(nc net.Conn) {
	s := &testSession{ep: ts.ep, nc: nc, busy: ts.busy, poked: make(chan struct{}),
		forced: make(chan struct{}), done: make(chan struct{})}
	if reason := ts.ep.Admit(s, RemoteAddrPort(nc).Addr(), ts.maxPerIP); reason != "" {
		ts.ep.Refuse(nc, reason, func(nc net.Conn, reason string) {
			fmt.Fprintf(nc, "no: %s\n", reason)
		})
		return
	}
	ts.admitted <- s
	go s.serve()
}

// waitDone waits for s to be released (the timer only guards against a
// hang).
func waitDone(t *testing.T, s *testSession) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("session not released")
	}
}

type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	// Only against a hang: no assertion depends on timing.
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) expect(want string) {
	c.t.Helper()
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("want %q, read %q, %v", want, line, err)
	}
	if got := strings.TrimSuffix(line, "\n"); got != want {
		c.t.Fatalf("got %q, want %q", got, want)
	}
}

func (c *client) expectEOF() {
	c.t.Helper()
	rest, err := io.ReadAll(c.br)
	if err != nil || len(rest) != 0 {
		c.t.Fatalf("want EOF, read %q, %v", rest, err)
	}
}

func TestPerIPLimit(t *testing.T) {
	ts := startTestServer(t, nil, 2, false)
	a := dial(t, ts.addr)
	a.expect("hello")
	sa := <-ts.admitted
	b := dial(t, ts.addr)
	b.expect("hello")
	<-ts.admitted
	c := dial(t, ts.addr)
	c.expect("no: too many connections from this address")
	c.expectEOF()
	if !strings.Contains(ts.logs.String(), "connection refused") {
		t.Errorf("refusal not logged:\n%s", ts.logs.String())
	}

	a.nc.Close()
	waitDone(t, sa) // released: the address has room again
	d := dial(t, ts.addr)
	d.expect("hello")
	<-ts.admitted
}

func TestSharedSessionLimit(t *testing.T) {
	sessions := limit.NewCounter(1)
	one := startTestServer(t, sessions, 0, false)
	two := startTestServer(t, sessions, 0, false)
	a := dial(t, one.addr)
	a.expect("hello")
	sa := <-one.admitted
	b := dial(t, two.addr)
	b.expect("no: too many sessions")
	b.expectEOF()

	a.nc.Close()
	waitDone(t, sa)
	if n := sessions.InUse(); n != 0 {
		t.Fatalf("sessions in use after release: %d", n)
	}
	c := dial(t, two.addr)
	c.expect("hello")
	<-two.admitted
	if n := sessions.InUse(); n != 1 {
		t.Fatalf("sessions in use: %d, want 1", n)
	}
}

func TestReleaseUnknownIsNoop(t *testing.T) {
	sessions := limit.NewCounter(0)
	ep := New(quiet, sessions)
	s := &testSession{}
	ip := netip.MustParseAddr("127.0.0.1")
	if r := ep.Admit(s, ip, 1); r != "" {
		t.Fatalf("Admit: %q", r)
	}
	ep.Release(&testSession{})
	if n := sessions.InUse(); n != 1 {
		t.Fatalf("in use %d after releasing an unknown conn, want 1", n)
	}
	ep.Release(s)
	ep.Release(s)
	if n := sessions.InUse(); n != 0 {
		t.Fatalf("in use %d after double release, want 0", n)
	}
	if r := ep.Admit(s, ip, 1); r != "" {
		t.Fatalf("Admit after release: %q", r)
	}
}

func TestAdmitFuncBuildsOnlyAdmitted(t *testing.T) {
	ep := New(quiet, nil)
	ip := netip.MustParseAddr("::1")
	built := 0
	mk := func() Conn { built++; return &testSession{} }
	if c, r := ep.AdmitFunc(ip, 1, mk); r != "" || c == nil {
		t.Fatalf("first: %v, %q", c, r)
	}
	if c, r := ep.AdmitFunc(ip, 1, mk); r == "" || c != nil {
		t.Fatalf("second: %v, %q; want refused", c, r)
	}
	if built != 1 {
		t.Fatalf("built %d sessions, want 1", built)
	}
}

func TestShutdownDrains(t *testing.T) {
	ts := startTestServer(t, nil, 0, false)
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	a.expect("hello")
	b.expect("hello")
	<-ts.admitted
	<-ts.admitted

	// The deadline only guards against a hang: the drain needs no wait.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.ep.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	a.expect("bye")
	a.expectEOF()
	b.expect("bye")
	b.expectEOF()
	if err := <-ts.served; !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve returned %v, want ErrClosed", err)
	}
	ts.served <- ErrClosed // for the cleanup check
	if !ts.ep.Closing() || ts.ep.Forced() {
		t.Fatalf("Closing %v, Forced %v; want true, false", ts.ep.Closing(), ts.ep.Forced())
	}
	if _, err := net.Dial("tcp", ts.addr); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}

	// Nothing is admitted or served any more; Shutdown again is a no-op.
	if r := ts.ep.Admit(&testSession{}, netip.MustParseAddr("127.0.0.1"), 0); r != ReasonShutdown {
		t.Fatalf("Admit after Shutdown: %q, want %q", r, ReasonShutdown)
	}
	l := listen(t)
	if err := ts.ep.Serve(l, ts.handle); !errors.Is(err, ErrClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := ts.ep.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownForces(t *testing.T) {
	ts := startTestServer(t, nil, 0, true) // sessions ignore Poke
	a := dial(t, ts.addr)
	a.expect("hello")
	sa := <-ts.admitted

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain can only end by Force
	if err := ts.ep.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	if !ts.ep.Forced() {
		t.Fatal("Forced() false after a forced Shutdown")
	}
	waitDone(t, sa)
	a.expectEOF() // no "bye": the session was forced, not poked
	// Everything is released now: a later Shutdown drains at once.
	if err := ts.ep.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after force: %v", err)
	}
}

// listen returns a listener on an ephemeral loopback port, closed at
// the end of the test.
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptPair returns both ends of a fresh loopback connection.
func acceptPair(t *testing.T, l net.Listener) (server net.Conn, cl *client) {
	t.Helper()
	cl = dial(t, l.Addr().String())
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return nc, cl
}

func TestRefuseBounded(t *testing.T) {
	logs := &syncBuffer{}
	ep := New(slog.New(slog.NewTextHandler(logs, nil)), nil)
	l := listen(t)
	gate := make(chan struct{})
	waiting := func(nc net.Conn, reason string) {
		<-gate
		fmt.Fprintf(nc, "late: %s\n", reason)
	}
	var held []*client
	for range MaxRejecting {
		nc, cl := acceptPair(t, l)
		ep.Refuse(nc, "too many sessions", waiting)
		held = append(held, cl)
	}
	// Every slot is taken: the next refusal is closed without a reply.
	nc, over := acceptPair(t, l)
	ep.Refuse(nc, "too many sessions", waiting)
	over.expectEOF()

	close(gate)
	for _, cl := range held {
		cl.expect("late: too many sessions")
		cl.expectEOF()
	}

	// A reply that panics is logged; the connection is still closed.
	nc, cl := acceptPair(t, l)
	ep.Refuse(nc, "x", func(net.Conn, string) { panic("boom") })
	cl.expectEOF()
	if !strings.Contains(logs.String(), "panic refusing connection") {
		t.Fatalf("panic not logged:\n%s", logs.String())
	}
}

// flakyListener fails its first Accept calls with err.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	err   error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if f.fails > 0 {
		f.fails--
		f.mu.Unlock()
		return nil, f.err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "accept timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestAcceptRetriesTimeouts(t *testing.T) {
	l := listen(t)
	ep := New(quiet, nil)
	fl := &flakyListener{Listener: l, fails: 3, err: timeoutError{}}
	cl := dial(t, l.Addr().String())
	nc, err := ep.Accept(fl)
	if err != nil {
		t.Fatalf("Accept after timeouts: %v", err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "hi\n")
	cl.expect("hi")

	broken := errors.New("listener broken")
	fl = &flakyListener{Listener: l, fails: 1, err: broken}
	if err := ep.Serve(fl, func(nc net.Conn) { nc.Close() }); !errors.Is(err, broken) {
		t.Fatalf("Serve: %v, want %v", err, broken)
	}
}

func TestAddListener(t *testing.T) {
	l := listen(t)
	ep := New(quiet, nil)
	remove, err := ep.AddListener(l)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	if err := ep.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Accept(l); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Shutdown: %v, want ErrClosed", err)
	}
	if _, err := ep.AddListener(l); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddListener after Shutdown: %v, want ErrClosed", err)
	}
}

func TestRemoteAddrPortAndNewID(t *testing.T) {
	l := listen(t)
	nc, cl := acceptPair(t, l)
	defer nc.Close()
	want := cl.nc.LocalAddr().(*net.TCPAddr).AddrPort()
	if got := RemoteAddrPort(nc); got != want {
		t.Errorf("RemoteAddrPort = %v, want %v", got, want)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if got := RemoteAddrPort(p1); got.IsValid() {
		t.Errorf("RemoteAddrPort(pipe) = %v, want zero", got)
	}

	if id := NewID(bytes.NewReader([]byte{0, 1, 2, 0xab, 0xcd, 0xef})); id != "000102abcdef" {
		t.Errorf("NewID = %q", id)
	}
	if id := NewID(bytes.NewReader(nil)); !strings.HasPrefix(id, "t") {
		t.Errorf("NewID on a failing reader = %q, want the t… fallback", id)
	}
	if id := NewID(nil); len(id) != 12 {
		t.Errorf("NewID(nil) = %q, want 12 hex digits", id)
	}
}

var quiet = slog.New(slog.DiscardHandler)

func TestWriteRefusal(t *testing.T) {
	l := listen(t)
	cfg, roots := testTLS(t)

	// Plain port: the reply as it is, even with a TLS config at hand.
	nc, cl := acceptPair(t, l)
	if err := WriteRefusal(nc, false, cfg, "no\n"); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	cl.expect("no")

	// Implicit TLS: the reply comes after the handshake.
	for _, wrapped := range []bool{false, true} {
		nc, cl := acceptPair(t, l)
		if wrapped { // from a tls.NewListener: no second handshake
			nc = tls.Server(nc, cfg)
		}
		done := make(chan error, 1)
		go func() {
			done <- WriteRefusal(nc, true, cfg, "no\n")
			nc.Close()
		}()
		tc := tls.Client(cl.nc, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil || line != "no\n" {
			t.Fatalf("wrapped %v: read %q, %v", wrapped, line, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("wrapped %v: WriteRefusal: %v", wrapped, err)
		}
	}

	// A failed handshake is reported and nothing is written.
	nc, cl = acceptPair(t, l)
	fmt.Fprintf(cl.nc, "EHLO not tls\r\n")
	err := WriteRefusal(nc, true, cfg, "no\n")
	nc.Close()
	if err == nil {
		t.Fatal("WriteRefusal succeeded without a handshake")
	}
}

// testTLS returns a server config with a fresh self-signed certificate for
// localhost, and a pool trusting it.
func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cfg, roots, _ := testkit.TLS(t, "localhost")
	return cfg, roots
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer = testkit.LogBuffer
