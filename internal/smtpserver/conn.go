package smtpserver

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
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// mode is what the framing layer expects next from the client.
type mode int

const (
	modeCommand mode = iota // a command line
	modeSASL                // a SASL response line (after a 334 reply)
	modeData                // DATA content (after a 354 reply) up to ".\r\n"
	modeChunk               // chunkLeft raw bytes of a BDAT chunk
)

// errConnLost is what go-smtp reads inside DATA/BDAT content when the
// connection is gone, so a cut transfer is never taken for a complete one.
var errConnLost = errors.New("smtpserver: connection lost during transfer")

// conn is one client connection. It is the net.Conn that go-smtp talks to
// (the framing layer: wire.go reads, reply.go writes) and it holds the
// session state shared with the go-smtp Session (session.go).
//
// Everything except mu-guarded fields is used by the connection's own
// goroutine only (go-smtp's; the BDAT goroutine touches only the Session).
type conn struct {
	s      *Server
	gen    *generation // limits snapshot taken at admit, and its go-smtp server
	lim    Limits      // gen.lim
	id     string
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time

	info     SessionInfo
	esmtp    bool                 // the last greeting was EHLO
	tlsState *tls.ConnectionState // after TLS is up
	txSeq    int

	// Framing layer.
	tcp       net.Conn // the accepted connection
	rw        net.Conn // current transport: tcp or a *tls.Conn over it
	br        *bufio.Reader
	bw        *bufio.Writer
	handshake bool   // implicit TLS handshake still to do
	pending   []byte // bytes handed to go-smtp on its next Read
	mode      mode
	chunkLeft int64
	lineStart bool // DATA: at the start of a line
	dataCR    bool // DATA: previous fragment ended in CR
	// DATA fast path (receive, readData): the unstuffed content goes
	// straight to sink instead of through go-smtp's byte-at-a-time DATA
	// reader, which then sees only the final "."; sinkN counts it, sinkErr
	// keeps the first write error (the rest is read and dropped).
	sink      io.Writer
	sinkN     int64
	sinkErr   error
	verb      string
	lastLine  string // the last command line given to go-smtp, without CRLF
	heloArg   string
	out       []byte // partial reply line written by go-smtp
	respFirst bool   // the next reply line starts a reply
	errCount  int
	dead      bool        // no more replies, reads return EOF
	killAfter atomic.Bool // close after the current reply (after a panic)

	closeOnce sync.Once

	mu       sync.Mutex
	inTx     bool // a MAIL transaction is open (guarded by mu)
	awaitCmd bool // the next read is a command line, not message data (guarded by mu)
}

func newConn(s *Server, nc net.Conn, remote netip.AddrPort, id string, gen *generation) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s:         s,
		gen:       gen,
		lim:       gen.lim,
		id:        id,
		log:       s.log.With("conn", id, "remote", remote.String()),
		ctx:       ctx,
		cancel:    cancel,
		start:     time.Now(),
		tcp:       nc,
		rw:        nc,
		respFirst: true,
		lineStart: true,
	}
	c.info = SessionInfo{ConnID: id, Remote: remote, Mode: s.opts.Mode}
	if tc, ok := nc.(*tls.Conn); ok {
		c.handshake = true
		c.rw = tc
	} else if s.opts.Mode == ModeSubmissions {
		c.handshake = true
		c.rw = tls.Server(nc, s.opts.TLSConfig)
	}
	c.br = bufio.NewReaderSize(c.rw, 16<<10)
	c.bw = bufio.NewWriterSize(c.rw, 4<<10)
	return c
}

func (c *conn) setInTx(v bool) {
	c.mu.Lock()
	c.inTx = v
	c.mu.Unlock()
}

// Poke implements endpoint.Conn: it wakes a session blocked waiting for a
// command, so it notices the shutdown; a session reading DATA/BDAT is left
// to finish. Called with the endpoint's lock held.
func (c *conn) Poke() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.awaitCmd {
		_ = c.tcp.SetReadDeadline(time.Now())
	}
}

// Force implements endpoint.Conn: it wakes the session whatever it is
// doing. Called with the endpoint's lock held.
func (c *conn) Force() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.tcp.SetReadDeadline(time.Now())
	c.cancel()
}

// logPanic logs a recovered panic with its stack.
func (c *conn) logPanic(where string, r any) {
	c.log.Error("panic", "in", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
}

// writeReply sends one of our own single-line replies.
func (c *conn) writeReply(code int, enh [3]int, text string) {
	if c.dead {
		return
	}
	fmt.Fprintf(c.bw, "%d %d.%d.%d %s\r\n", code, enh[0], enh[1], enh[2], text)
	c.afterReply(code)
}

// protoError replies to a command the framing layer refused.
func (c *conn) protoError(code int, enh [3]int, text string) {
	c.log.Info("command refused", "code", code, "reason", text)
	c.writeReply(code, enh, text)
}

// afterReply runs after the last line of every reply: error counting
// (RFC 5321 4.3.2 leaves the limit to the server) and deferred closes.
func (c *conn) afterReply(code int) {
	if code >= 500 {
		c.errCount++
	}
	switch {
	case c.killAfter.Load() && code == 421:
		c.kill(0, [3]int{}, "") // the reply was our 421 already
	case c.killAfter.Load():
		c.kill(421, [3]int{4, 3, 0}, c.s.opts.Hostname+" Internal error, closing connection")
	case c.lim.MaxErrors > 0 && c.errCount >= c.lim.MaxErrors:
		c.log.Warn("too many errors", "errors", c.errCount)
		c.kill(421, [3]int{4, 7, 0}, c.s.opts.Hostname+" Too many errors, closing connection")
	}
}

// kill sends a last reply (if code != 0), flushes and closes the transport.
// go-smtp then reads EOF and ends the session, calling Close.
func (c *conn) kill(code int, enh [3]int, text string) {
	if c.dead {
		return
	}
	if code != 0 {
		fmt.Fprintf(c.bw, "%d %d.%d.%d %s\r\n", code, enh[0], enh[1], enh[2], text)
	}
	c.dead = true
	_ = c.flush()
	c.pending = nil
	_ = c.tcp.SetDeadline(time.Now().Add(time.Second))
	if err := c.rw.Close(); err != nil {
		c.log.Debug("close", "err", err)
	}
}

// flush writes buffered replies out.
func (c *conn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	if c.handshake {
		if err := c.doHandshake(); err != nil {
			return err
		}
	}
	_ = c.tcp.SetWriteDeadline(time.Now().Add(c.lim.CommandTimeout))
	if err := c.bw.Flush(); err != nil {
		c.log.Debug("write failed", "err", err)
		c.dead = true
		return err
	}
	return nil
}

// doHandshake completes the implicit TLS handshake (ModeSubmissions).
func (c *conn) doHandshake() error {
	c.handshake = false
	tc := c.rw.(*tls.Conn)
	_ = c.tcp.SetDeadline(time.Now().Add(c.lim.CommandTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("tls handshake failed", "err", err)
		c.dead = true
		return err
	}
	_ = c.tcp.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.tlsState = &st
	c.info.TLS = true
	c.log.Info("tls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
	return nil
}

// Close is called by go-smtp when the session ends.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		if !c.dead {
			_ = c.flush()
			c.dead = true
		}
		_ = c.tcp.SetDeadline(time.Now().Add(time.Second))
		_ = c.rw.Close()
		c.cancel()
		c.s.ep.Release(c)
		c.log.Info("disconnected", "duration", time.Since(c.start).Round(time.Millisecond).String(),
			"errors", c.errCount, "transactions", c.txSeq)
	})
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.tcp.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.tcp.RemoteAddr() }

// Deadlines belong to the framing layer; go-smtp's requests are ignored
// (its ReadTimeout/WriteTimeout are left at zero anyway).
func (c *conn) SetDeadline(time.Time) error      { return nil }
func (c *conn) SetReadDeadline(time.Time) error  { return nil }
func (c *conn) SetWriteDeadline(time.Time) error { return nil }
