package pop3server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"pillarbox/internal/endpoint"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = endpoint.ErrClosed

// Server is one POP3 endpoint (110 with STLS or 995 with implicit TLS).
// One Server may Serve several listeners; all share its limits.
type Server struct {
	opts Options
	log  *slog.Logger
	lim  atomic.Pointer[Limits] // for new connections, defaults applied
	ep   *endpoint.Endpoint
	bufs sync.Pool // *[]byte of copyBuffer bytes for RETR
}

// New returns a server; it does not listen until Serve.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	mode := "pop3"
	if opts.ImplicitTLS {
		mode = "pop3s"
	}
	s := &Server{opts: opts, log: opts.Logger.With("service", mode)}
	s.ep = endpoint.New(s.log, opts.Sessions)
	s.bufs.New = func() any { b := make([]byte, copyBuffer); return &b }
	l := opts.Limits.withDefaults()
	s.lim.Store(&l)
	return s
}

// SetLimits replaces the limits for connections accepted from now on;
// open connections keep theirs. Safe to call from any goroutine.
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.lim.Store(&l)
	s.log.Info("limits set", "line", l.MaxLine, "conns_per_ip", l.MaxConnsPerIP, "errors", l.MaxErrors,
		"commands", l.MaxCommands, "idle_timeout", l.IdleTimeout.String(), "maildrop", l.Maildrop,
		"delete", l.Delete, "plaintext_loopback", l.PlaintextLoopback, "login_delay", l.LoginDelay.String())
}

// Limits returns the limits new connections get (defaults filled in).
func (s *Server) Limits() Limits { return *s.lim.Load() }

// Serve accepts connections on l until Shutdown (then it returns
// ErrServerClosed) or until l fails. With ImplicitTLS every accepted
// connection is wrapped in TLS.
func (s *Server) Serve(l net.Listener) error {
	switch {
	case s.opts.Store == nil:
		return errors.New("pop3server: Options.Store is nil")
	case s.opts.Auth == nil:
		return errors.New("pop3server: Options.Auth is nil")
	case s.opts.ImplicitTLS && s.opts.TLSConfig == nil:
		return errors.New("pop3server: ImplicitTLS needs Options.TLSConfig")
	}
	s.log.Info("listening", "addr", l.Addr().String(), "host", s.opts.Hostname)
	return s.ep.Serve(l, s.handle)
}

// handle admits an accepted connection and starts its session, or
// refuses it.
func (s *Server) handle(nc net.Conn) {
	lim := *s.lim.Load()
	remote := endpoint.RemoteAddrPort(nc)
	ec, reason := s.ep.AdmitFunc(remote.Addr(), lim.MaxConnsPerIP, func() endpoint.Conn {
		return newSession(s, nc, remote, endpoint.NewID(s.opts.Rand), lim)
	})
	if reason != "" {
		s.ep.Refuse(nc, reason, s.reject)
		return
	}
	c := ec.(*session)
	c.log.Info("connected", "local", nc.LocalAddr().String())
	go c.serve()
}

// reject answers a connection over a limit with -ERR [SYS/TEMP] (RFC
// 3206 4); on implicit TLS after the handshake.
func (s *Server) reject(nc net.Conn, reason string) {
	msg := "-ERR [SYS/TEMP] Too many connections, try again later\r\n"
	if reason == endpoint.ReasonShutdown {
		msg = "-ERR [SYS/TEMP] Server shutting down\r\n"
	}
	if err := endpoint.WriteRefusal(nc, s.opts.ImplicitTLS, s.opts.TLSConfig, msg); err != nil {
		s.log.Debug("reject write", "err", err)
	}
}

// Shutdown stops accepting and ends every session: one waiting for a
// command gets "-ERR [SYS/TEMP] Server shutting down" at once (nothing
// marked is deleted: the session does not enter UPDATE), one running a
// command gets it when the command is done. When ctx ends first every
// connection is closed and Shutdown returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	return s.ep.Shutdown(ctx)
}

// Maildrops is the state the POP3 servers of a process share: which
// accounts' maildrops a session holds (RFC 1939 8: one session per
// maildrop) and when each account last logged in (LOGIN-DELAY).
type Maildrops struct {
	mu        sync.Mutex
	held      map[int64]bool
	lastLogin map[int64]time.Time // only while a login delay is set
	sweepAt   int                 // sweep lastLogin when it grows past this
}

// NewMaildrops returns an empty table.
func NewMaildrops() *Maildrops {
	return &Maildrops{held: make(map[int64]bool), lastLogin: make(map[int64]time.Time), sweepAt: minSweep}
}

// acquire locks account id's maildrop. It fails with errInUse when a
// session holds it, and with a *loginDelayError when the account logged
// in less than delay ago. With a delay set, the login time is recorded;
// records older than the delay are dropped once the table has doubled
// since the last sweep, so a login costs O(1) amortised.
func (m *Maildrops) acquire(id int64, now time.Time, delay time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.held[id] {
		return errInUse
	}
	if delay <= 0 {
		m.held[id] = true
		return nil
	}
	if last, ok := m.lastLogin[id]; ok && now.Sub(last) < delay {
		return &loginDelayError{wait: delay - now.Sub(last)}
	}
	m.held[id] = true
	m.lastLogin[id] = now
	if len(m.lastLogin) > m.sweepAt {
		for k, t := range m.lastLogin {
			if now.Sub(t) >= delay {
				delete(m.lastLogin, k)
			}
		}
		m.sweepAt = max(minSweep, 2*len(m.lastLogin))
	}
	return nil
}

// minSweep is the login-time table size below which it is never swept.
const minSweep = 4096

// release unlocks account id's maildrop.
func (m *Maildrops) release(id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.held, id)
}

var errInUse = errors.New("maildrop in use")

type loginDelayError struct{ wait time.Duration }

func (e *loginDelayError) Error() string { return "login delay" }
