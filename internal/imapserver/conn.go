package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// state is the IMAP connection state (RFC 9051 3).
type state int

const (
	stateNotAuth state = iota
	stateAuth
	stateSelected
	stateLogout
)

// errShutdown is what a read returns once the server is shutting down.
var errShutdown = errors.New("imapserver: shutting down")

// session is one client connection. Everything but the mu-guarded
// fields is used by the connection's own goroutine only (during IDLE a
// second goroutine reads the DONE line, and nothing else).
type session struct {
	srv    *Server
	lim    Limits // snapshot taken at admit
	id     string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time
	remote netip.AddrPort

	tcp   net.Conn // the accepted connection
	rw    net.Conn // tcp or a *tls.Conn over it
	br    *bufio.Reader
	dec   *imap.Decoder
	w     *imap.Writer
	isTLS bool

	state   state
	account *store.Account
	// Extensions the client turned on (ENABLE, or implicitly).
	condstore, qresync, utf8, rev2 bool
	sel                            *view // the selected mailbox (stateSelected only)
	errors                         int   // BAD replies and failed logins
	lockedOut                      bool  // auth.ErrLocked: close after the reply

	// Set by handlers for the tagged OK of the current command.
	okCode, okText string

	closeOnce sync.Once

	mu       sync.Mutex
	idleRead bool          // a read would wait for the client to begin something (guarded by mu)
	stop     chan struct{} // closed by Poke: the server is shutting down
	stopped  bool          // stop is closed (guarded by mu)
	readStop bool          // reads fail at once: IDLE's reader is abandoned (guarded by mu)
}

func newSession(srv *Server, nc net.Conn, remote netip.AddrPort, id string, lim Limits) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		srv:    srv,
		lim:    lim,
		id:     id,
		log:    srv.log.With("conn", id, "remote", remote.String()),
		ctx:    ctx,
		cancel: cancel,
		start:  srv.opts.Now(),
		remote: remote,
		tcp:    nc,
		rw:     nc,
		stop:   make(chan struct{}),
	}
	if tc, ok := nc.(*tls.Conn); ok {
		s.rw = tc
		s.isTLS = true
	} else if srv.opts.ImplicitTLS {
		s.rw = tls.Server(nc, srv.opts.TLSConfig)
		s.isTLS = true
	}
	s.setTransport()
	return s
}

// setTransport (re)builds the reader, decoder and writer over s.rw.
func (s *session) setTransport() {
	s.br = bufio.NewReaderSize(&timedReader{s: s, r: s.rw}, 4<<10)
	s.dec = imap.NewDecoder(s.br, s.decoderLimits(), s.continueLiteral, s.spill)
	s.w = imap.NewWriter(s.rw)
	s.w.SetUTF8(s.utf8)
}

// preAuthMaxLiteral bounds literals before login: nobody unauthenticated
// may make the server spool megabytes (RFC 7888 4 notes the risk).
const preAuthMaxLiteral = 16 << 10

// decoderLimits are the decoder's limits in the current state; loggedIn
// raises them to the configured ones.
func (s *session) decoderLimits() imap.Limits {
	l := imap.Limits{MaxLine: s.lim.MaxLine, MaxLiteral: s.lim.MaxLiteral}
	if s.state == stateNotAuth {
		l.MaxLiteral = min(l.MaxLiteral, preAuthMaxLiteral)
		l.MaxLine = min(l.MaxLine, preAuthMaxLiteral)
	}
	return l
}

// continueLiteral answers a synchronizing literal (RFC 9051 7.5).
func (s *session) continueLiteral() error {
	s.w.Raw("+ Ready for literal data").CRLF()
	return s.flush()
}

// spill creates the file for a literal too large to hold in memory.
func (s *session) spill() (*os.File, error) {
	if dir := s.srv.opts.SpillDir; dir != "" {
		return os.CreateTemp(dir, "imap-literal-*")
	}
	if sp, ok := s.srv.opts.Store.(store.Spooler); ok {
		return sp.CreateSpool()
	}
	return os.CreateTemp("", "imap-literal-*")
}

// timedReader sets the read deadline before every read: AutoLogout while
// the session waits for the client to begin a command (or DONE), else
// CommandTimeout. Once the server shuts down, a read that would wait for
// a new command fails at once with errShutdown.
type timedReader struct {
	s *session
	r io.Reader
}

func (t *timedReader) Read(p []byte) (int, error) {
	s := t.s
	s.mu.Lock()
	if s.srv.ep.Forced() || s.readStop || (s.idleRead && s.stopped) {
		s.mu.Unlock()
		return 0, errShutdown
	}
	d := s.lim.CommandTimeout
	if s.idleRead {
		d = s.lim.AutoLogout
	}
	_ = s.tcp.SetReadDeadline(time.Now().Add(d))
	s.mu.Unlock()
	n, err := t.r.Read(p)
	if n > 0 {
		s.mu.Lock()
		s.idleRead = false
		s.mu.Unlock()
	}
	return n, err
}

// setIdleRead says whether the next read waits for the client to begin
// something new (autologout applies) or is inside a command.
func (s *session) setIdleRead(on bool) {
	s.mu.Lock()
	s.idleRead = on
	s.mu.Unlock()
}

// Poke implements endpoint.Conn: the server is shutting down, a session
// waiting for a command or in IDLE ends at once. Called with the
// endpoint's lock held.
func (s *session) Poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	if s.idleRead {
		_ = s.tcp.SetReadDeadline(time.Now())
	}
}

// Force implements endpoint.Conn: it ends the session whatever it is
// doing. Called with the endpoint's lock held.
func (s *session) Force() {
	_ = s.tcp.SetDeadline(time.Now())
	s.cancel()
}

// serve runs the session to its end. A panic is logged and ends only
// this connection, after "* BYE Internal error".
func (s *session) serve() {
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			s.bye("", "Internal error")
		}
	}()
	if s.isTLS {
		if err := s.handshake(); err != nil {
			return
		}
	}
	s.w.Raw("* OK [CAPABILITY ").Raw(s.capabilityString()).Raw("] Pillarbox ready").CRLF()
	for s.state != stateLogout {
		if !s.next() {
			return
		}
	}
	_ = s.flush()
}

// handshake completes the implicit TLS handshake, within CommandTimeout.
func (s *session) handshake() error {
	tc := s.rw.(*tls.Conn)
	_ = s.tcp.SetDeadline(time.Now().Add(s.lim.CommandTimeout))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		return err
	}
	_ = s.tcp.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	s.log.Info("tls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return nil
}

// next reads and runs one command; false ends the session.
func (s *session) next() bool {
	waiting := s.br.Buffered() == 0
	if waiting {
		// Nothing pipelined: send what is buffered before blocking.
		if s.flush() != nil {
			return false
		}
	}
	s.setIdleRead(waiting)
	if s.srv.ep.Closing() {
		s.bye("", "Server shutting down")
		return false
	}
	cmd, err := s.dec.ReadCommand()
	if err != nil {
		return s.readError(err)
	}
	defer func() {
		if err := cmd.Close(); err != nil {
			s.log.Warn("removing literal spill file", "err", err)
		}
	}()
	s.dispatch(cmd)
	if s.lockedOut {
		s.bye("", "Too many authentication failures")
		return false
	}
	return s.w.Err() == nil && !s.tooManyErrors()
}

// readError handles a failed ReadCommand; false ends the session.
func (s *session) readError(err error) bool {
	var pe *imap.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		if pe.Fatal {
			s.log.Info("protocol error, closing", "reason", pe.Msg)
			s.bye(pe.Code, pe.Msg)
			return false
		}
		tag := pe.Tag
		if tag == "" {
			tag = "*"
		}
		s.log.Info("command refused", "reason", pe.Msg)
		if pe.Code == "TOOBIG" {
			// RFC 7889 4: a literal over APPENDLIMIT gets NO [TOOBIG];
			// the synchronizing literal was not read, nothing to resync.
			s.writeStatus(tag, &respError{typ: "NO", code: pe.Code, text: pe.Msg})
			return true
		}
		s.writeStatus(tag, &respError{typ: "BAD", code: pe.Code, text: pe.Msg})
		return !s.tooManyErrors()
	case errors.Is(err, errShutdown) || s.srv.ep.Forced():
		s.bye("", "Server shutting down")
	case errors.As(err, &ne) && ne.Timeout():
		s.mu.Lock()
		idle, stopped := s.idleRead, s.stopped
		s.mu.Unlock()
		switch {
		case stopped && idle:
			s.bye("", "Server shutting down")
		case idle:
			s.log.Info("autologout")
			s.bye("", "Autologout; idle for too long")
		default:
			s.log.Info("command timed out")
			s.bye("", "Command timed out")
		}
	default:
		if !errors.Is(err, io.EOF) {
			s.log.Debug("read failed", "err", err)
		}
	}
	return false
}

// tooManyErrors ends the session after MaxErrors bad commands.
func (s *session) tooManyErrors() bool {
	if s.lim.MaxErrors > 0 && s.errors >= s.lim.MaxErrors {
		s.log.Warn("too many errors", "errors", s.errors)
		s.bye("", "Too many errors")
		return true
	}
	return false
}

// bye sends "* BYE [code] text" and flushes; the caller then ends the session.
func (s *session) bye(code, text string) {
	s.w.Raw("* BYE ")
	if code != "" {
		s.w.Raw("[").Raw(code).Raw("] ")
	}
	s.w.Raw(text).CRLF()
	_ = s.flush()
	s.state = stateLogout
}

// flush writes buffered responses out, within CommandTimeout.
func (s *session) flush() error {
	_ = s.tcp.SetWriteDeadline(time.Now().Add(s.lim.CommandTimeout))
	if err := s.w.Flush(); err != nil {
		s.log.Debug("write failed", "err", err)
		return err
	}
	return nil
}

// close ends the connection and releases everything the session holds.
func (s *session) close() {
	s.closeOnce.Do(func() {
		if s.sel != nil {
			s.sel.close()
			s.sel = nil
		}
		_ = s.tcp.SetDeadline(time.Now().Add(time.Second))
		_ = s.rw.Close()
		s.cancel()
		s.srv.release(s)
		acct := ""
		if s.account != nil {
			acct = s.account.Email
		}
		s.log.Info("disconnected", "duration", s.srv.opts.Now().Sub(s.start).Round(time.Millisecond).String(),
			"errors", s.errors, "account", acct)
	})
}
