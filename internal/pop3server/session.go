package pop3server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"pillarbox/internal/store"
)

// state is the RFC 1939 session state.
type state int

const (
	stateAuthorization state = iota
	stateTransaction
	stateDone // QUIT answered or the session is ending
)

// session is one POP3 connection. Only its own goroutine touches it,
// except poke and force (Shutdown).
type session struct {
	srv    *Server
	tcp    net.Conn // the accepted connection
	rw     net.Conn // tcp, or the TLS connection over it
	br     *bufio.Reader
	bw     *bufio.Writer
	remote netip.AddrPort
	id     string
	log    *slog.Logger
	lim    Limits
	ctx    context.Context
	cancel context.CancelFunc
	isTLS  bool

	state    state
	user     string // from USER, waiting for PASS
	account  *store.Account
	drop     *maildrop // TRANSACTION state: the locked maildrop
	errors   int
	commands int
	poked    atomic.Bool // Shutdown asked to end
	closed   bool

	feed    store.Subscription // the account's changes, from login (prefetch.go)
	removed map[msgKey]bool    // maildrop messages expunged during the session
	pre     *prefetch          // the message being read ahead, if any
}

// Buffer sizes: replies are gathered in a writer of writeBuffer bytes;
// RETR copies through a copyBuffer taken from the server's pool for the
// command only, so idle sessions hold little memory.
const (
	writeBuffer = 32 << 10
	copyBuffer  = 64 << 10
)

func newSession(srv *Server, nc net.Conn, remote netip.AddrPort, id string, lim Limits) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{srv: srv, tcp: nc, rw: nc, remote: remote, id: id, lim: lim, ctx: ctx, cancel: cancel,
		log: srv.log.With("conn", id, "remote", remote.String())}
	if tc, ok := nc.(*tls.Conn); ok {
		s.isTLS = true
		s.rw = tc
	}
	s.br = bufio.NewReaderSize(s.rw, 4096)
	s.bw = bufio.NewWriterSize(deadlineWriter{s}, writeBuffer)
	return s
}

// deadlineWriter extends the write deadline before each write, so a slow
// reader of a long RETR is only cut off after IdleTimeout of no progress.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.s.tcp.SetWriteDeadline(time.Now().Add(w.s.lim.IdleTimeout))
	return w.s.rw.Write(p)
}

// Poke implements endpoint.Conn: a session waiting for a command ends at
// once, one running a command after it.
func (s *session) Poke() {
	s.poked.Store(true)
	_ = s.tcp.SetReadDeadline(time.Now())
}

// Force implements endpoint.Conn.
func (s *session) Force() {
	s.cancel()
	s.tcp.Close()
}

func (s *session) serve() {
	defer s.close()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if err := s.handshake(); err != nil {
		s.log.Info("tls handshake failed", "err", err)
		return
	}
	s.reply("+OK " + s.srv.opts.Hostname + " Pillarbox POP3 ready")
	for s.state != stateDone {
		if !s.flushIfIdle() {
			return
		}
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.fail("Line too long")
		case err != nil:
			s.readFailed(err)
			return
		default:
			s.commands++
			if s.commands > s.lim.MaxCommands {
				s.reply("-ERR [SYS/PERM] Too many commands in one session")
				s.log.Warn("too many commands")
				s.state = stateDone
				continue
			}
			s.dispatch(line)
		}
		if s.errors >= s.lim.MaxErrors && s.state != stateDone {
			s.reply("-ERR Too many errors, closing connection")
			s.log.Warn("too many errors")
			break
		}
	}
	_ = s.bw.Flush()
}

// handshake runs the TLS handshake of an implicit-TLS connection.
func (s *session) handshake() error {
	if s.isTLS || !s.srv.opts.ImplicitTLS {
		return nil
	}
	return s.startTLS()
}

func (s *session) startTLS() error {
	tc := tls.Server(s.tcp, s.srv.opts.TLSConfig)
	_ = s.tcp.SetDeadline(time.Now().Add(min(s.lim.IdleTimeout, time.Minute)))
	if err := tc.HandshakeContext(s.ctx); err != nil {
		return err
	}
	_ = s.tcp.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	s.log.Info("tls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	s.rw, s.isTLS = tc, true
	s.br.Reset(tc)
	s.bw.Reset(deadlineWriter{s})
	return nil
}

// flushIfIdle writes buffered replies unless the client has pipelined
// more commands (RFC 2449 6.6: replies to a pipelined batch may go in one
// write). It reports false when the write failed.
func (s *session) flushIfIdle() bool {
	if s.br.Buffered() > 0 && !s.poked.Load() {
		return true
	}
	if err := s.bw.Flush(); err != nil {
		s.log.Info("write failed", "err", err)
		return false
	}
	return true
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next command line without its line end (CRLF, or
// a bare LF, which some clients send). A line longer than MaxLine is
// consumed to its end and reported as errLineTooLong.
func (s *session) readLine() (string, error) {
	if s.poked.Load() {
		return "", errShutdown
	}
	_ = s.tcp.SetReadDeadline(time.Now().Add(s.lim.IdleTimeout))
	var long []byte
	tooLong := false
	for {
		frag, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(long)+len(frag) <= s.lim.MaxLine {
				long = append(long, frag...)
			} else {
				tooLong, long = true, nil
			}
			continue
		default:
			if s.poked.Load() {
				return "", errShutdown
			}
			return "", err
		}
		if tooLong || len(long)+len(frag) > s.lim.MaxLine {
			return "", errLineTooLong
		}
		if long != nil {
			frag = append(long, frag...)
		}
		frag = bytes.TrimSuffix(bytes.TrimSuffix(frag, []byte("\n")), []byte("\r"))
		return string(frag), nil
	}
}

var errShutdown = errors.New("shutting down")

// readFailed ends the session after a failed read: shutdown, idle
// timeout or a closed connection. RFC 1939 3: a timeout closes the
// connection without entering the UPDATE state.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown) || s.poked.Load():
		s.reply("-ERR [SYS/TEMP] Server shutting down")
	case errors.As(err, &ne) && ne.Timeout():
		s.reply("-ERR Idle for too long, closing connection")
		s.log.Info("idle timeout")
	case errors.Is(err, io.EOF):
		s.log.Debug("client closed the connection")
		return
	default:
		s.log.Info("read failed", "err", err)
		return
	}
	_ = s.bw.Flush()
}

// reply writes one response line.
func (s *session) reply(line string) {
	s.bw.WriteString(line)
	s.bw.WriteString("\r\n")
}

// replyf writes one formatted response line.
func (s *session) replyf(format string, args ...any) {
	fmt.Fprintf(s.bw, format, args...)
	s.bw.WriteString("\r\n")
}

// fail writes an -ERR line and counts it as an error.
func (s *session) fail(text string) {
	s.errors++
	s.reply("-ERR " + text)
}

func (s *session) close() {
	if s.closed {
		return
	}
	s.closed = true
	s.stopPrefetch()
	if s.drop != nil {
		s.srv.opts.Maildrops.release(s.account.ID)
		s.drop = nil
	}
	s.cancel()
	if tc, ok := s.rw.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(time.Second))
		_ = tc.CloseWrite()
	}
	s.tcp.Close()
	s.srv.ep.Release(s)
	s.log.Info("disconnected", "commands", s.commands)
}
