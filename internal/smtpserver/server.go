package smtpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"

	"pillarbox/internal/endpoint"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = endpoint.ErrClosed

// Server is one SMTP endpoint (MX, submission or submissions). One Server
// may Serve several listeners; all share its limits. Accepting, per-IP
// and shared session counting, refusals (answered from a bounded number
// of goroutines, so a flood costs no goroutine, TLS handshake or log line
// each beyond it) and the drain on Shutdown are internal/endpoint's.
type Server struct {
	opts Options
	log  *slog.Logger
	gen  atomic.Pointer[generation] // limits and go-smtp server for new connections
	ep   *endpoint.Endpoint
}

// New returns a server; it does not listen until Serve.
func New(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{
		opts: opts,
		log:  opts.Logger.With("service", "smtp", "mode", opts.Mode.String()),
	}
	s.ep = endpoint.New(s.log, opts.Sessions)
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
	remove, err := s.ep.AddListener(l)
	if err != nil {
		return ErrServerClosed
	}
	defer remove()
	s.log.Info("listening", "addr", l.Addr().String())

	// go-smtp's Serve returns errNewLimits when SetLimits made a new
	// generation: serve on with the new go-smtp server (the connection
	// that noticed is carried over); sessions already open keep the
	// go-smtp server they were started by.
	ll := &listener{Listener: l, s: s, gen: s.gen.Load()}
	for {
		err = ll.gen.gs.Serve(ll)
		if !errors.Is(err, errNewLimits) {
			break
		}
	}
	if s.ep.Closing() {
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
	return s.ep.Shutdown(ctx)
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
		nc, err := l.s.ep.Accept(l.Listener)
		if err != nil {
			return nil, err
		}
		c, reason := l.s.admit(nc)
		if c == nil {
			l.s.ep.Refuse(nc, reason, l.s.reject)
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

// admit registers a new connection, or says why it is refused.
func (s *Server) admit(nc net.Conn) (*conn, string) {
	remote := endpoint.RemoteAddrPort(nc)
	gen := s.gen.Load()
	var c *conn
	_, reason := s.ep.AdmitFunc(remote.Addr(), gen.lim.MaxConnsPerIP, func() endpoint.Conn {
		c = newConn(s, nc, remote, endpoint.NewID(s.opts.Rand), gen)
		return c
	})
	if reason != "" {
		return nil, reason
	}
	c.log.Info("connected", "local", nc.LocalAddr().String())
	return c, ""
}

// reject answers a connection over a limit with 421 4.7.0 (endpoint.Refuse
// closes it). On implicit TLS the reply is sent after the handshake.
func (s *Server) reject(nc net.Conn, reason string) {
	code := "421 4.7.0 " + s.opts.Hostname + " Too many connections, try again later\r\n"
	if reason == endpoint.ReasonShutdown {
		code = "421 4.3.2 " + s.opts.Hostname + " Service shutting down\r\n"
	}
	if err := endpoint.WriteRefusal(nc, s.opts.Mode == ModeSubmissions, s.opts.TLSConfig, code); err != nil {
		s.log.Debug("reject write", "err", err)
	}
}

// errorLog adapts go-smtp's Logger to slog.
type errorLog struct{ log *slog.Logger }

func (e errorLog) Printf(format string, v ...interface{}) {
	e.log.Warn("go-smtp", "msg", fmt.Sprintf(format, v...))
}

func (e errorLog) Println(v ...interface{}) {
	e.log.Warn("go-smtp", "msg", fmt.Sprint(v...))
}
