// Package endpoint holds what Pillarbox's protocol servers share around
// their sessions: the accept loop (with back-off on temporary errors),
// counting connections per remote address and in total, answering
// connections over a limit from a bounded number of goroutines, and the
// graceful drain on Shutdown.
//
// A protocol server owns one Endpoint and gives it each accepted
// connection's session as a Conn. Invariants: every Conn admitted is
// released exactly once (Release of an unknown Conn is a no-op); the
// shared session counter is given back on Release; once Shutdown has been
// called no connection is admitted, and the drained signal fires when the
// last admitted Conn is released. Nothing is kept on disk.
package endpoint

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"pillarbox/internal/limit"
)

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("endpoint: server closed")

// Conn is an admitted session as Shutdown sees it.
type Conn interface {
	// Poke asks the session to end at its next safe point (between
	// commands); it must not block.
	Poke()
	// Force closes the session's connection now; it must not block.
	Force()
}

// MaxRejecting bounds the connections being answered a refusal at once;
// beyond it, refused connections are closed without a reply.
const MaxRejecting = 64

// Endpoint tracks the listeners and connections of one protocol server.
type Endpoint struct {
	log       *slog.Logger
	sessions  *limit.Counter
	rejecting chan struct{}

	closing atomic.Bool // Shutdown called
	forced  atomic.Bool // Shutdown's context ended

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[Conn]netip.Addr
	perIP     map[netip.Addr]int
	drained   chan struct{} // closed when closing and no connection is left
}

// New returns an Endpoint counting its sessions in sessions (shared with
// other endpoints; nil: unlimited).
func New(log *slog.Logger, sessions *limit.Counter) *Endpoint {
	if sessions == nil {
		sessions = limit.NewCounter(0)
	}
	return &Endpoint{
		log:       log,
		sessions:  sessions,
		rejecting: make(chan struct{}, MaxRejecting),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[Conn]netip.Addr),
		perIP:     make(map[netip.Addr]int),
		drained:   make(chan struct{}),
	}
}

// Closing reports whether Shutdown has been called.
func (e *Endpoint) Closing() bool { return e.closing.Load() }

// Forced reports whether Shutdown's context ended before the drain.
func (e *Endpoint) Forced() bool { return e.forced.Load() }

// Serve accepts connections on l until Shutdown (then it returns
// ErrClosed) or until l fails, calling handle for each in the accepting
// goroutine: handle must not block (it admits the connection and starts
// its goroutine, or refuses it).
func (e *Endpoint) Serve(l net.Listener, handle func(net.Conn)) error {
	remove, err := e.AddListener(l)
	if err != nil {
		return err
	}
	defer remove()
	for {
		nc, err := e.Accept(l)
		if err != nil {
			return err
		}
		handle(nc)
	}
}

// AddListener registers l so that Shutdown closes it, for a server that
// runs its own accept loop around Accept (Serve does both); remove
// forgets l again. After Shutdown it returns ErrClosed and does not
// register l.
func (e *Endpoint) AddListener(l net.Listener) (remove func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing.Load() {
		return nil, ErrClosed
	}
	e.listeners[l] = struct{}{}
	return func() {
		e.mu.Lock()
		delete(e.listeners, l)
		e.mu.Unlock()
	}, nil
}

// Accept returns the next connection from l. On a passing error (see
// retryable: timeouts, out of file descriptors) it retries with a growing
// pause (5 ms doubling to 1 s); after Shutdown it returns ErrClosed; other
// errors are returned as they are.
func (e *Endpoint) Accept(l net.Listener) (net.Conn, error) {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err == nil {
			return nc, nil
		}
		if e.closing.Load() {
			return nil, ErrClosed
		}
		if !retryable(err) {
			return nil, err
		}
		e.log.Warn("accept failed, retrying", "err", err)
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		time.Sleep(delay)
	}
}

// retryable reports whether an Accept error is passing: a timeout, a
// connection aborted before it was accepted, or running out of file
// descriptors or memory (the listener must survive a connection flood).
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// Admit registers c, connected from remote, unless the endpoint is
// shutting down, remote has maxPerIP connections already (maxPerIP <= 0:
// unlimited) or the shared session limit is reached; then it returns the
// reason ("shutting down", "too many connections from this address",
// "too many sessions") and c is not registered.
func (e *Endpoint) Admit(c Conn, remote netip.Addr, maxPerIP int) (reason string) {
	_, reason = e.AdmitFunc(remote, maxPerIP, func() Conn { return c })
	return reason
}

// AdmitFunc is Admit for a session that costs something to build (buffers,
// a connection ID): newConn is called, with the endpoint's lock held, only
// once the connection is admitted, and its Conn is registered and
// returned. Refused connections (reason != "") cost no session.
func (e *Endpoint) AdmitFunc(remote netip.Addr, maxPerIP int, newConn func() Conn) (c Conn, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closing.Load():
		return nil, ReasonShutdown
	case maxPerIP > 0 && e.perIP[remote] >= maxPerIP:
		return nil, "too many connections from this address"
	case !e.sessions.TryAcquire(): // released in Release
		return nil, "too many sessions"
	}
	c = newConn()
	e.conns[c] = remote
	e.perIP[remote]++
	return c, ""
}

// ReasonShutdown is Admit's reason while shutting down.
const ReasonShutdown = "shutting down"

// Release forgets an admitted connection.
func (e *Endpoint) Release(c Conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ip, ok := e.conns[c]
	if !ok {
		return
	}
	delete(e.conns, c)
	e.sessions.Release()
	if e.perIP[ip]--; e.perIP[ip] <= 0 {
		delete(e.perIP, ip)
	}
	if e.closing.Load() && len(e.conns) == 0 {
		e.closeDrained()
	}
}

func (e *Endpoint) closeDrained() {
	select {
	case <-e.drained:
	default:
		close(e.drained)
	}
}

// Refuse answers a connection that was not admitted: reply runs in its
// own goroutine (at most MaxRejecting at once, else the connection is
// closed silently) under a 10-second deadline, with panics recovered; the
// connection is closed afterwards.
func (e *Endpoint) Refuse(nc net.Conn, reason string, reply func(nc net.Conn, reason string)) {
	select {
	case e.rejecting <- struct{}{}:
	default:
		nc.Close()
		return
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				e.log.Error("panic refusing connection", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			}
			nc.Close()
			<-e.rejecting
		}()
		e.log.Warn("connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
		if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return
		}
		reply(nc, reason)
	}()
}

// WriteRefusal writes a refusal reply to nc, for a Refuse reply func.
// On an implicit-TLS port (implicitTLS, and nc not a *tls.Conn already)
// the TLS handshake with cfg comes first, so that the client can read it.
func WriteRefusal(nc net.Conn, implicitTLS bool, cfg *tls.Config, msg string) error {
	var w io.Writer = nc
	if _, isTLS := nc.(*tls.Conn); !isTLS && implicitTLS {
		tc := tls.Server(nc, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		w = tc
	}
	_, err := io.WriteString(w, msg)
	return err
}

// Shutdown stops accepting and pokes every connection; it returns when
// the last one is released, or, when ctx ends first, forces every
// connection closed and returns ctx.Err().
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	first := !e.closing.Swap(true)
	for l := range e.listeners {
		if err := l.Close(); err != nil {
			e.log.Warn("close listener", "err", err)
		}
	}
	for c := range e.conns {
		c.Poke()
	}
	if len(e.conns) == 0 {
		e.closeDrained()
	}
	e.mu.Unlock()
	if first {
		e.log.Info("shutting down")
	}
	select {
	case <-e.drained:
		return nil
	case <-ctx.Done():
	}
	e.forced.Store(true)
	e.mu.Lock()
	for c := range e.conns {
		c.Force()
	}
	e.mu.Unlock()
	return ctx.Err()
}

// RemoteAddrPort returns the remote address of a TCP connection with
// IPv4-mapped IPv6 addresses unmapped (zero for other connections).
func RemoteAddrPort(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// NewID returns a random connection ID for logs, read from r (nil:
// crypto/rand).
func NewID(r io.Reader) string {
	var b [6]byte
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return fmt.Sprintf("%x", b[:])
}
