package smtpserver

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"pillarbox/internal/limit"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("smtpserver: server closed")

// Server is one SMTP endpoint (MX, submission or submissions). One Server
// may Serve several listeners; all share its limits.
type Server struct {
	opts     Options
	log      *slog.Logger
	gen      atomic.Pointer[generation] // limits and go-smtp server for new connections
	sessions *limit.Counter             // concurrent sessions, maybe shared with other endpoints

	// rejecting bounds the connections being answered "421" at once:
	// beyond it, connections over a limit are closed without a reply, so a
	// flood costs no goroutine, TLS handshake or log line each.
	rejecting chan struct{}

	closing atomic.Bool // Shutdown called: no new sessions, idle ones get 421
	forced  atomic.Bool // Shutdown's context is done: everyone gets 421

	mu        sync.Mutex
	listeners map[*listener]struct{}
	conns     map[*conn]struct{}
	perIP     map[netip.Addr]int
	drained   chan struct{} // closed when closing and no connection is left
}

// maxRejecting is how many refused connections are answered at once.
const maxRejecting = 64

// New returns a server; it does not listen until Serve.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts:      opts,
		log:       opts.Logger.With("service", "smtp", "mode", opts.Mode.String()),
		sessions:  opts.Sessions,
		listeners: make(map[*listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[netip.Addr]int),
		drained:   make(chan struct{}),
		rejecting: make(chan struct{}, maxRejecting),
	}
	s.gen.Store(s.newGeneration(opts.limits().withDefaults()))
	return s
}

// Serve accepts connections on l until Shutdown (then it returns
// ErrServerClosed) or until l fails. In ModeSubmissions l is a plain
// listener and every accepted connection is wrapped in TLS with
// Options.TLSConfig; connections that already are *tls.Conn (from a
// tls.NewListener) are used as they are.
func (s *Server) Serve(l net.Listener) error {
	if s.opts.Backend == nil {
		return errors.New("smtpserver: Options.Backend is nil")
	}
	if s.opts.Mode == ModeSubmissions && s.opts.TLSConfig == nil {
		return errors.New("smtpserver: ModeSubmissions needs Options.TLSConfig")
	}
	ll := &listener{Listener: l, s: s, gen: s.gen.Load()}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ll] = struct{}{}
	s.mu.Unlock()
	s.log.Info("listening", "addr", l.Addr().String())

	// go-smtp's Serve returns errNewLimits when SetLimits made a new
	// generation: serve on with the new go-smtp server (the connection
	// that noticed is carried over); sessions already open keep the
	// go-smtp server they were started by.
	var err error
	for {
		err = ll.gen.gs.Serve(ll)
		if !errors.Is(err, errNewLimits) {
			break
		}
	}

	s.mu.Lock()
	delete(s.listeners, ll)
	s.mu.Unlock()
	if s.closing.Load() {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting, answers every session waiting for a command
// "421 4.3.2" and closes it (in a transaction or not: nothing of it was
// acknowledged), and lets a DATA/BDAT transfer in progress finish and be
// acknowledged (the 421 comes at its next command). When ctx is done first, every remaining
// session gets 421 4.3.2 at its next read (a transfer in progress is
// abandoned, never acknowledged), backend calls see a cancelled context,
// and Shutdown returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing.Swap(true)
	for l := range s.listeners {
		if err := l.Close(); err != nil {
			s.log.Warn("close listener", "err", err)
		}
	}
	for c := range s.conns {
		c.pokeIdle()
	}
	if first && len(s.conns) == 0 {
		close(s.drained)
	}
	s.mu.Unlock()
	if first {
		s.log.Info("shutting down")
	}

	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
	}
	s.forced.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.force()
	}
	s.mu.Unlock()
	return ctx.Err()
}

// errNewLimits ends one go-smtp Serve call so that Server.Serve goes on
// with the go-smtp server of the current generation.
var errNewLimits = errors.New("smtpserver: limits changed")

// listener applies the connection limits at accept time. Accept is only
// called from the goroutine running Server.Serve (inside go-smtp's
// Serve), so gen and carry need no lock.
type listener struct {
	net.Listener
	s     *Server
	gen   *generation // whose go-smtp server calls Accept
	carry *conn       // admitted under a newer generation, not yet handed out
}

func (l *listener) Accept() (net.Conn, error) {
	if c := l.carry; c != nil {
		l.carry = nil
		return c, nil
	}
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, reason := l.s.admit(nc)
		if c == nil {
			select {
			case l.s.rejecting <- struct{}{}:
				go func() {
					defer func() { <-l.s.rejecting }()
					l.s.reject(nc, reason)
				}()
			default:
				nc.Close()
			}
			continue
		}
		if c.gen != l.gen {
			// Limits changed: hand c to the go-smtp server of its own
			// generation, the one whose limits it took.
			l.gen, l.carry = c.gen, c
			return nil, errNewLimits
		}
		return c, nil
	}
}

func remoteAddrPort(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// admit registers a new connection, or says why it is refused.
func (s *Server) admit(nc net.Conn) (*conn, string) {
	remote := remoteAddrPort(nc)
	gen := s.gen.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return nil, "shutting down"
	case gen.lim.MaxConnsPerIP > 0 && s.perIP[remote.Addr()] >= gen.lim.MaxConnsPerIP:
		return nil, "too many connections from this address"
	case !s.sessions.TryAcquire(): // released in release
		return nil, "too many sessions"
	}
	c := newConn(s, nc, remote, s.newID(), gen)
	s.conns[c] = struct{}{}
	s.perIP[remote.Addr()]++
	c.log.Info("connected", "local", nc.LocalAddr().String())
	return c, ""
}

// release forgets a closed connection.
func (s *Server) release(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.sessions.Release()
	ip := c.info.Remote.Addr()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	if s.closing.Load() && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
}

// reject answers a connection over a limit with 421 4.7.0 and closes it.
// On implicit TLS the reply is sent after the handshake.
func (s *Server) reject(nc net.Conn, reason string) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic rejecting connection", "panic", r, "stack", string(debug.Stack()))
		}
		nc.Close()
	}()
	s.log.Warn("connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
	var w net.Conn = nc
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return
	}
	if _, isTLS := nc.(*tls.Conn); !isTLS && s.opts.Mode == ModeSubmissions {
		tc := tls.Server(nc, s.opts.TLSConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		w = tc
	}
	code := "421 4.7.0 " + s.opts.Hostname + " Too many connections, try again later\r\n"
	if reason == "shutting down" {
		code = "421 4.3.2 " + s.opts.Hostname + " Service shutting down\r\n"
	}
	if _, err := w.Write([]byte(code)); err != nil {
		s.log.Debug("reject write", "err", err)
	}
}

func (s *Server) newID() string {
	var b [6]byte
	r := s.opts.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := r.Read(b[:]); err != nil {
		// Extremely unlikely; fall back to time so IDs stay distinct.
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return fmt.Sprintf("%x", b[:])
}

// errorLog adapts go-smtp's Logger to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...interface{}) {
	e.log.Warn("go-smtp", "msg", fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...interface{}) {
	e.log.Warn("go-smtp", "msg", fmt.Sprint(v...))
}
