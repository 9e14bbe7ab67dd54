package smtpserver

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// errShutdown stops a read when the server is shutting down.
var errShutdown = errors.New("smtpserver: shutting down")

// Read gives go-smtp the next validated unit of input: one command line,
// one SASL line, one DATA line or a piece of a BDAT chunk. A new unit is
// read from the client only when go-smtp has taken the previous one, so
// go-smtp's replies always come before our own for later input, and the
// mode (command/DATA/chunk) is known before the bytes are looked at.
func (c *conn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *conn) fill() (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.logPanic("read", r)
			c.dead = true
			_ = c.rw.Close()
			err = c.deadErr()
		}
	}()
	for len(c.pending) == 0 {
		if c.dead {
			return c.deadErr()
		}
		switch c.mode {
		case modeData:
			err = c.readData()
		case modeChunk:
			err = c.readChunk()
		default:
			err = c.readCommand()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deadErr is what a read returns once the connection is finished: EOF for
// a command (go-smtp then ends the session quietly), errConnLost inside a
// message transfer.
func (c *conn) deadErr() error {
	if c.mode == modeData || c.mode == modeChunk {
		return errConnLost
	}
	return io.EOF
}

// beforeRead flushes replies when no input is waiting (this batches the
// replies to a pipelined group, RFC 2920), checks for shutdown and sets
// the read deadline.
func (c *conn) beforeRead(timeout time.Duration, idle bool) error {
	if c.br.Buffered() == 0 || c.handshake {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.awaitCmd = idle
	// A session waiting for a command (in a transaction or not) stops at
	// shutdown: nothing of its is acknowledged yet, so a 421 loses
	// nothing. Only DATA/BDAT transfers in progress may finish.
	if c.s.ep.Forced() || (idle && c.s.ep.Closing()) {
		return errShutdown
	}
	return c.tcp.SetReadDeadline(time.Now().Add(timeout))
}

// lineBuffered reports whether the next ReadSlice('\n') is served without
// reading the socket: a whole line (or a full buffer) is already buffered.
func (c *conn) lineBuffered() bool {
	n := c.br.Buffered()
	if n == 0 || c.handshake {
		return false
	}
	if n == c.br.Size() {
		return true
	}
	b, _ := c.br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// readFailed turns a failed read into the right ending.
func (c *conn) readFailed(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown) || (c.s.ep.Closing() && errors.As(err, &ne) && ne.Timeout()):
		c.log.Info("closing for shutdown")
		c.kill(421, [3]int{4, 3, 2}, c.s.opts.Hostname+" Service shutting down, try again later")
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Info("timeout", "mode", int(c.mode))
		c.kill(421, [3]int{4, 4, 2}, c.s.opts.Hostname+" Timeout, closing connection")
	case errors.Is(err, io.EOF):
		if c.mode != modeCommand || c.inTx {
			c.log.Info("client closed the connection mid-transaction")
		}
		c.kill(0, [3]int{}, "")
	default:
		c.log.Info("read failed", "err", err)
		c.kill(0, [3]int{}, "")
	}
	return c.deadErr()
}

// readLine reads one line (through LF) of at most max bytes. A longer
// line is consumed to its end and reported as tooLong.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		frag, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, false, err
		}
		if !tooLong {
			if len(line)+len(frag) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, frag...)
			}
		}
		if err == nil {
			return line, tooLong, nil
		}
	}
}

// lineProblem checks a command line (ending in LF) for strict CRLF
// framing. RFC 5321 2.3.8: CR and LF only as the CRLF pair.
func lineProblem(line []byte) string {
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return "Bare LF not allowed, use CRLF"
	}
	body := line[:n-2]
	if bytes.IndexByte(body, '\r') >= 0 || bytes.IndexByte(body, '\n') >= 0 {
		return "Bare CR or LF not allowed"
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return "NUL not allowed in commands"
	}
	return ""
}

// readCommand reads a command line (or a SASL response line), checks its
// framing and verb, and handles STARTTLS itself.
func (c *conn) readCommand() error {
	if err := c.beforeRead(c.lim.CommandTimeout, c.mode == modeCommand); err != nil {
		return c.readFailed(err)
	}
	line, tooLong, err := readLine(c.br, c.lim.MaxLineLength)
	if err != nil {
		return c.readFailed(err)
	}
	problem := lineProblem(line)
	if tooLong {
		problem = "Line too long" // RFC 5321 4.5.3.1.4
	}
	if c.mode == modeSASL {
		c.mode = modeCommand
		if problem != "" {
			// go-smtp waits for a SASL line: cancel the exchange; its
			// "501 Negotiation cancelled" is the one reply to this line.
			c.log.Info("sasl line refused", "reason", problem)
			c.pending = []byte("*\r\n")
			return nil
		}
		c.pending = line
		return nil
	}
	if problem != "" {
		c.protoError(500, [3]int{5, 5, 2}, problem)
		return nil
	}
	return c.command(line)
}

// knownVerbs are the commands go-smtp handles for us. Anything else gets
// 500 5.5.1 here (so go-smtp's own error counter never closes a session).
var knownVerbs = map[string]bool{
	"HELO": true, "EHLO": true, "MAIL": true, "RCPT": true, "DATA": true,
	"BDAT": true, "RSET": true, "NOOP": true, "QUIT": true, "VRFY": true,
	"AUTH": true, "EXPN": true, "HELP": true,
}

// splitVerb splits a command line the way go-smtp does: a four-letter verb,
// then a space and the argument. STARTTLS is the only longer verb.
func splitVerb(text string) (verb, arg string) {
	if len(text) >= 8 && strings.EqualFold(text[:8], "STARTTLS") {
		if len(text) == 8 {
			return "STARTTLS", ""
		}
		if text[8] == ' ' {
			return "STARTTLS", strings.TrimSpace(text[9:])
		}
		return "", ""
	}
	if len(text) == 4 || (len(text) > 4 && text[4] == ' ') {
		return strings.ToUpper(text[:4]), strings.TrimSpace(text[min(len(text), 5):])
	}
	return "", ""
}

func (c *conn) command(line []byte) error {
	text := string(line[:len(line)-2])
	verb, arg := splitVerb(text)
	switch {
	case verb == "STARTTLS":
		c.startTLS(arg)
		return nil
	case !knownVerbs[verb]:
		c.protoError(500, [3]int{5, 5, 1}, "Command unrecognized")
		return nil
	case verb == "HELO" || verb == "EHLO":
		c.heloArg, _, _ = strings.Cut(arg, " ")
	case verb == "BDAT":
		// go-smtp reads the chunk whenever the arguments parse; mirror it.
		if n, ok := bdatSize(arg); ok && n > 0 {
			c.mode, c.chunkLeft = modeChunk, n
		}
	}
	c.verb, c.lastLine, c.respFirst = verb, text, true
	if verb != "AUTH" {
		c.log.Debug("command", "verb", verb)
	}
	c.pending = line
	switch {
	case arg == "" && len(text) > len(verb):
		// "DATA " (trailing blanks): go-smtp would call it malformed and
		// count it against its own fixed error limit. Same command.
		c.pending = []byte(verb + "\r\n")
	case verb == "RCPT":
		c.pending = postmasterForGoSMTP(line)
	}
	return nil
}

// postmasterPlaceholder stands in for "<Postmaster>" (RFC 5321 4.1.1.3,
// no domain) in the line given to go-smtp, whose parser requires a
// domain. Our session parses the original line (lastLine), so the backend
// still sees "Postmaster".
const postmasterPlaceholder = "<postmaster@postmaster.invalid>"

func postmasterForGoSMTP(line []byte) []byte {
	const p = "<postmaster>"
	i := bytes.IndexByte(line, '<')
	if i < 0 || len(line) < i+len(p) || !strings.EqualFold(string(line[i:i+len(p)]), p) {
		return line
	}
	out := append([]byte(nil), line[:i]...)
	out = append(out, postmasterPlaceholder...)
	return append(out, line[i+len(p):]...)
}

// bdatSize parses "BDAT size [LAST]" exactly as go-smtp v0.25.1 does.
func bdatSize(arg string) (int64, bool) {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		return 0, false
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil {
		return 0, false
	}
	return int64(n), true
}

// startTLS is RFC 3207, done here because go-smtp would wrap the
// connection below our framing layer.
func (c *conn) startTLS(arg string) {
	c.verb = "STARTTLS"
	switch {
	case arg != "":
		c.protoError(501, [3]int{5, 5, 4}, "Syntax: STARTTLS")
		return
	case c.s.opts.TLSConfig == nil:
		c.protoError(502, [3]int{5, 5, 1}, "STARTTLS not available")
		return
	case c.info.TLS:
		c.protoError(503, [3]int{5, 5, 1}, "TLS already active")
		return
	case c.inTx:
		c.protoError(503, [3]int{5, 5, 1}, "STARTTLS not allowed during a mail transaction")
		return
	case c.br.Buffered() > 0:
		// RFC 3207 6 / RFC 2920 3.1: nothing may follow STARTTLS in a
		// pipelined group. Refusing keeps injected plaintext out of TLS.
		c.protoError(503, [3]int{5, 5, 1}, "No pipelining after STARTTLS")
		return
	}
	c.writeReply(220, [3]int{2, 0, 0}, "Ready to start TLS")
	if err := c.flush(); err != nil {
		return
	}
	tc := tls.Server(c.tcp, c.s.opts.TLSConfig)
	_ = c.tcp.SetDeadline(time.Now().Add(c.lim.CommandTimeout))
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.log.Info("starttls handshake failed", "err", err)
		c.kill(0, [3]int{}, "")
		return
	}
	_ = c.tcp.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.rw, c.tlsState = tc, &st
	c.br.Reset(tc)
	c.bw.Reset(tc)
	// RFC 3207 4.2: forget what the client told us; it must EHLO again.
	c.info.TLS, c.info.Helo, c.esmtp = true, "", false
	c.log.Info("starttls", "version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite))
}

// readData passes DATA content one line at a time, refusing bare CR and
// bare LF (SMTP smuggling), and switches back to commands after ".\r\n".
func (c *conn) readData() error {
	if c.lineBuffered() {
		// Served from the buffer: no socket read, so no flush and no new
		// deadline (setting one per line was a tenth of the CPU of a
		// small message); a forced shutdown still stops the transfer.
		if c.s.ep.Forced() {
			return c.readFailed(errShutdown)
		}
	} else if err := c.beforeRead(c.lim.DataTimeout, false); err != nil {
		return c.readFailed(err)
	}
	frag, err := c.br.ReadSlice('\n')
	complete := err == nil
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return c.readFailed(err)
	}
	if !c.dataFragOK(frag) {
		c.log.Warn("bare CR or LF in DATA, closing")
		// RFC 5321 2.3.8 and 4.1.1.4: only CRLF ends a line. With a bare
		// CR/LF we and the next hop could disagree on where the message
		// ends (SMTP smuggling), so the whole connection is dropped.
		c.kill(554, [3]int{5, 6, 0}, "Bare CR or LF in message data not allowed, closing connection")
		return errConnLost
	}
	end := c.lineStart && complete && len(frag) == 3 && frag[0] == '.'
	if end {
		c.mode = modeCommand // end of data (".\r\n", CRLF checked above)
	} else if c.sink != nil {
		c.toSink(frag, complete)
		return nil // consumed here: fill reads on
	}
	c.lineStart = complete
	// frag aliases the bufio buffer; it stays valid until the next read,
	// which happens only after go-smtp has taken all of it.
	c.pending = frag
	return nil
}

// toSink writes one DATA fragment, dot-unstuffed (RFC 5321 4.5.2), to the
// receiving transaction's sink, up to the message size limit.
func (c *conn) toSink(frag []byte, complete bool) {
	if c.lineStart && frag[0] == '.' {
		frag = frag[1:]
	}
	c.lineStart = complete
	c.sinkN += int64(len(frag))
	if c.sinkErr != nil || (c.lim.MaxMessageBytes > 0 && c.sinkN > c.lim.MaxMessageBytes) {
		return // too large or failed: read on to the end, answer then
	}
	if _, err := c.sink.Write(frag); err != nil {
		c.sinkErr = err
	}
}

// dataFragOK checks that every CR in frag is followed by LF and every LF
// preceded by CR, carrying a trailing CR over to the next fragment.
func (c *conn) dataFragOK(frag []byte) bool {
	prevCR := c.dataCR
	for _, b := range frag {
		if prevCR != (b == '\n') {
			return false
		}
		prevCR = b == '\r'
	}
	c.dataCR = prevCR
	return true
}

// readChunk passes up to chunkLeft raw bytes of a BDAT chunk (RFC 3030).
func (c *conn) readChunk() error {
	if c.br.Buffered() == 0 {
		if err := c.beforeRead(c.lim.DataTimeout, false); err != nil {
			return c.readFailed(err)
		}
		if _, err := c.br.Peek(1); err != nil {
			return c.readFailed(err)
		}
	}
	n := int(min(int64(c.br.Buffered()), c.chunkLeft))
	b, err := c.br.Peek(n)
	if err != nil {
		return c.readFailed(err)
	}
	_, _ = c.br.Discard(n)
	c.chunkLeft -= int64(n)
	if c.chunkLeft == 0 {
		c.mode = modeCommand
	}
	c.pending = b
	return nil
}
