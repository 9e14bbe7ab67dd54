package imapserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"pillarbox/internal/endpoint"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = endpoint.ErrClosed

// Server is one IMAP endpoint (143 with STARTTLS or 993 with implicit
// TLS). One Server may Serve several listeners; all share its limits.
// Accepting, per-IP and shared session counting, refusals and the drain
// on Shutdown are internal/endpoint's; sessions per account are counted
// here.
type Server struct {
	opts   Options
	log    *slog.Logger
	lim    atomic.Pointer[Limits] // limits for new connections, defaults applied
	ep     *endpoint.Endpoint
	cmds   map[string]command // commandTable(), per Server so tests may add to it
	search *searchCache       // SEARCH's per-message data, shared by all sessions
	fetch  *fetchCache        // FETCH's fixed per-message data, shared by all sessions
	views  *viewSnaps         // message lists shared by views of a mailbox in the same state

	mu         sync.Mutex
	perAccount map[int64]int // authenticated sessions per account (guarded by mu)
}

// New returns a server; it does not listen until Serve.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	mode := "imap"
	if opts.ImplicitTLS {
		mode = "imaps"
	}
	s := &Server{
		opts:       opts,
		log:        opts.Logger.With("service", mode),
		cmds:       commandTable(),
		search:     newSearchCache(searchCacheBytes),
		fetch:      newFetchCache(fetchCacheBytes),
		views:      newViewSnaps(),
		perAccount: make(map[int64]int),
	}
	s.ep = endpoint.New(s.log, opts.Sessions)
	l := opts.limits().withDefaults()
	s.lim.Store(&l)
	return s
}

// SetLimits replaces the limits for connections accepted from now on;
// open connections keep theirs. Safe to call from any goroutine.
func (s *Server) SetLimits(l Limits) {
	l = l.withDefaults()
	s.lim.Store(&l)
	s.log.Info("limits set", "line", l.MaxLine, "literal", l.MaxLiteral, "conns_per_ip", l.MaxConnsPerIP,
		"conns_per_account", l.MaxConnsPerAccount, "errors", l.MaxErrors,
		"autologout", l.AutoLogout.String(), "command_timeout", l.CommandTimeout.String())
}

// Limits returns the limits new connections get (defaults filled in).
func (s *Server) Limits() Limits { return *s.lim.Load() }

// Serve accepts connections on l until Shutdown (then it returns
// ErrServerClosed) or until l fails. With ImplicitTLS every accepted
// connection is wrapped in TLS (a *tls.Conn from a tls.NewListener is
// used as it is).
func (s *Server) Serve(l net.Listener) error {
	switch {
	case s.opts.Store == nil:
		return errors.New("imapserver: Options.Store is nil")
	case s.opts.Auth == nil:
		return errors.New("imapserver: Options.Auth is nil")
	case s.opts.ImplicitTLS && s.opts.TLSConfig == nil:
		return errors.New("imapserver: ImplicitTLS needs Options.TLSConfig")
	}
	s.log.Info("listening", "addr", l.Addr().String(), "host", s.opts.Hostname)
	return s.ep.Serve(l, s.handle)
}

// handle admits an accepted connection and starts its session, or
// refuses it.
func (s *Server) handle(nc net.Conn) {
	lim := *s.lim.Load()
	remote := endpoint.RemoteAddrPort(nc)
	var c *session
	_, reason := s.ep.AdmitFunc(remote.Addr(), lim.MaxConnsPerIP, func() endpoint.Conn {
		c = newSession(s, nc, remote, endpoint.NewID(s.opts.Rand), lim)
		return c
	})
	if reason != "" {
		s.ep.Refuse(nc, reason, s.reject)
		return
	}
	c.log.Info("connected", "local", nc.LocalAddr().String())
	go c.serve()
}

// Shutdown stops accepting and ends every session: one waiting for a
// command or in IDLE gets "* BYE" at once, one running a command gets it
// when the command is done. When ctx ends first every connection is closed
// and Shutdown returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	return s.ep.Shutdown(ctx)
}

// release forgets a closed connection and its account's session.
func (s *Server) release(c *session) {
	if c.account != nil {
		s.mu.Lock()
		if s.perAccount[c.account.ID]--; s.perAccount[c.account.ID] <= 0 {
			delete(s.perAccount, c.account.ID)
		}
		s.mu.Unlock()
	}
	s.ep.Release(c)
}

// acquireAccount counts an authenticated session of account id; false
// when the account has max sessions already (max <= 0: unlimited).
func (s *Server) acquireAccount(id int64, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.perAccount[id] >= max {
		return false
	}
	s.perAccount[id]++
	return true
}

// reject answers a connection over a limit with "* BYE" (endpoint.Refuse
// closes it). On implicit TLS the reply is sent after the handshake.
func (s *Server) reject(nc net.Conn, reason string) {
	msg := "* BYE [LIMIT] Too many connections, try again later\r\n"
	if reason == endpoint.ReasonShutdown {
		msg = "* BYE [UNAVAILABLE] Server shutting down\r\n"
	}
	if err := endpoint.WriteRefusal(nc, s.opts.ImplicitTLS, s.opts.TLSConfig, msg); err != nil {
		s.log.Debug("reject write", "err", err)
	}
}
