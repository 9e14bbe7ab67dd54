package imapserver

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
	"time"

	"pillarbox/internal/limit"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("imapserver: server closed")

// Server is one IMAP endpoint (143 with STARTTLS or 993 with implicit
// TLS). One Server may Serve several listeners; all share its limits.
type Server struct {
	opts     Options
	log      *slog.Logger
	lim      atomic.Pointer[Limits] // limits for new connections, defaults applied
	sessions *limit.Counter
	cmds     map[string]command // commandTable(), per Server so tests may add to it
	search   *searchCache       // SEARCH's per-message data, shared by all sessions
	fetch    *fetchCache        // FETCH's fixed per-message data, shared by all sessions
	views    *viewSnaps         // message lists shared by views of a mailbox in the same state

	// rejecting bounds the connections being answered "* BYE" at once;
	// beyond it, refused connections are closed without a reply.
	rejecting chan struct{}

	closing atomic.Bool // Shutdown called
	forced  atomic.Bool // Shutdown's context ended

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*session]struct{}
	perIP      map[netip.Addr]int
	perAccount map[int64]int
	drained    chan struct{} // closed when closing and no connection is left
}

const maxRejecting = 64

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
		sessions:   opts.Sessions,
		cmds:       commandTable(),
		search:     newSearchCache(searchCacheBytes),
		fetch:      newFetchCache(fetchCacheBytes),
		views:      newViewSnaps(),
		rejecting:  make(chan struct{}, maxRejecting),
		listeners:  make(map[net.Listener]struct{}),
		conns:      make(map[*session]struct{}),
		perIP:      make(map[netip.Addr]int),
		perAccount: make(map[int64]int),
		drained:    make(chan struct{}),
	}
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
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	s.log.Info("listening", "addr", l.Addr().String(), "host", s.opts.Hostname)
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c, reason := s.admit(nc)
		if c == nil {
			s.refuse(nc, reason)
			continue
		}
		go c.serve()
	}
}

// refuse answers a connection over a limit in its own goroutine, at most
// maxRejecting at once; beyond that it is closed silently.
func (s *Server) refuse(nc net.Conn, reason string) {
	select {
	case s.rejecting <- struct{}{}:
		go func() {
			defer func() { <-s.rejecting }()
			s.reject(nc, reason)
		}()
	default:
		nc.Close()
	}
}

// Shutdown stops accepting and ends every session: one waiting for a
// command or in IDLE gets "* BYE" at once, one running a command gets it
// when the command is done. When ctx ends first every connection is closed
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
		c.poke()
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

func remoteAddrPort(nc net.Conn) netip.AddrPort {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// admit registers a new connection or says why it is refused.
func (s *Server) admit(nc net.Conn) (*session, string) {
	remote := remoteAddrPort(nc)
	lim := *s.lim.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return nil, "shutting down"
	case lim.MaxConnsPerIP > 0 && s.perIP[remote.Addr()] >= lim.MaxConnsPerIP:
		return nil, "too many connections from this address"
	case !s.sessions.TryAcquire(): // released in release
		return nil, "too many sessions"
	}
	c := newSession(s, nc, remote, s.newID(), lim)
	s.conns[c] = struct{}{}
	s.perIP[remote.Addr()]++
	c.log.Info("connected", "local", nc.LocalAddr().String())
	return c, ""
}

// release forgets a closed connection.
func (s *Server) release(c *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.sessions.Release()
	ip := c.remote.Addr()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	if c.account != nil {
		s.releaseAccountLocked(c.account.ID)
	}
	if s.closing.Load() && len(s.conns) == 0 {
		select {
		case <-s.drained:
		default:
			close(s.drained)
		}
	}
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

func (s *Server) releaseAccountLocked(id int64) {
	if s.perAccount[id]--; s.perAccount[id] <= 0 {
		delete(s.perAccount, id)
	}
}

// reject answers a connection over a limit with "* BYE" and closes it.
// On implicit TLS the reply is sent after the handshake.
func (s *Server) reject(nc net.Conn, reason string) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic rejecting connection", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		nc.Close()
	}()
	s.log.Warn("connection refused", "remote", nc.RemoteAddr().String(), "reason", reason)
	var w io.Writer = nc
	if err := nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return
	}
	if _, isTLS := nc.(*tls.Conn); !isTLS && s.opts.ImplicitTLS {
		tc := tls.Server(nc, s.opts.TLSConfig)
		if err := tc.Handshake(); err != nil {
			return
		}
		w = tc
	}
	msg := "* BYE [LIMIT] Too many connections, try again later\r\n"
	if reason == "shutting down" {
		msg = "* BYE [UNAVAILABLE] Server shutting down\r\n"
	}
	if _, err := io.WriteString(w, msg); err != nil {
		s.log.Debug("reject write", "err", err)
	}
}

func (s *Server) newID() string {
	var b [6]byte
	r := s.opts.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return fmt.Sprintf("%x", b[:])
}
