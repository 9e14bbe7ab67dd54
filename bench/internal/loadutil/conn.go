package loadutil

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// DialOpts say how to reach and authenticate to a server.
type DialOpts struct {
	Addr     string
	TLS      string        // "plain" or the protocol's upgrade mode ("stls", "starttls")
	Timeout  time.Duration // per command
	Password string
	ReadBuf  int // read buffer size; 0: 64 KiB
	WriteBuf int // write buffer size; 0: 64 KiB
}

// Conn is one client connection: buffered both ways, with the count of
// the bytes read from the server. Drivers embed it in their protocol
// client.
type Conn struct {
	NC      net.Conn
	R       *bufio.Reader
	W       *bufio.Writer
	In      int64         // bytes read from the server
	Timeout time.Duration // per command
}

// Dial connects to o.Addr, reads the greeting (which must start with
// ok) and, when o.TLS is upgrade, calls starttls (which asks the server
// to start TLS, e.g. RFC 2595 4 STLS or RFC 9051 6.2.1 STARTTLS) and does
// the TLS handshake; certificates are not checked: a private loopback
// server. "plain" stays in the clear; any other mode is an error. On
// error the connection is closed.
func Dial(o DialOpts, ok, upgrade string, starttls func(*Conn) error) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", o.Addr, o.Timeout)
	if err != nil {
		return nil, err
	}
	c := &Conn{NC: nc, R: bufio.NewReaderSize(nc, orDefault(o.ReadBuf)),
		W: bufio.NewWriterSize(nc, orDefault(o.WriteBuf)), Timeout: o.Timeout}
	if err := c.open(o.TLS, ok, upgrade, starttls); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func orDefault(size int) int {
	if size == 0 {
		return 64 << 10
	}
	return size
}

func (c *Conn) open(mode, ok, upgrade string, starttls func(*Conn) error) error {
	c.Deadline()
	g, err := c.ReadLine()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(g, []byte(ok)) {
		return fmt.Errorf("greeting: %q", g)
	}
	switch mode {
	case "plain":
		return nil
	case upgrade:
	default:
		return fmt.Errorf("unknown -tls mode %q", mode)
	}
	if err := starttls(c); err != nil {
		return err
	}
	tc := tls.Client(c.NC, &tls.Config{InsecureSkipVerify: true, ServerName: "mx.bench.test"}) // #nosec: private loopback bench server
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	c.NC = tc
	c.R.Reset(tc)
	c.W.Reset(tc)
	return nil
}

// Close closes the connection.
func (c *Conn) Close() { c.NC.Close() }

// Deadline gives the next exchange Timeout from now.
func (c *Conn) Deadline() { _ = c.NC.SetDeadline(time.Now().Add(c.Timeout)) }

// ReadLine returns one line without its CRLF (or LF), however long, in
// a fresh slice.
func (c *Conn) ReadLine() ([]byte, error) {
	var acc []byte
	for {
		b, err := c.R.ReadSlice('\n')
		c.In += int64(len(b))
		switch {
		case err == nil:
			if acc != nil {
				b = append(acc, b...)
			} else {
				b = append([]byte(nil), b...)
			}
			return bytes.TrimRight(b, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			acc = append(acc, b...)
		default:
			return nil, err
		}
	}
}
