package smtpserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// client is a minimal SMTP client for tests: it writes exactly the bytes
// it is given and reads replies line by line.
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, conn: nc, br: bufio.NewReader(nc)}
}

func dialTLS(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	nc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, conn: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *client) cmd(line string) { c.t.Helper(); c.send(line + "\r\n") }

// line reads one reply line without CRLF. The deadline only keeps a
// broken test from hanging; nothing is asserted about timing.
func (c *client) line() (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.br.ReadString('\n')
	if err != nil {
		return s, err
	}
	if !strings.HasSuffix(s, "\r\n") {
		return s, errors.New("reply line without CRLF: " + s)
	}
	return strings.TrimSuffix(s, "\r\n"), nil
}

// reply reads one complete (possibly multi-line) reply.
func (c *client) reply() []string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.line()
		if err != nil {
			c.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return lines
		}
	}
}

// expect reads a reply and checks that its last line starts with prefix.
func (c *client) expect(prefix string) []string {
	c.t.Helper()
	r := c.reply()
	if !strings.HasPrefix(r[len(r)-1], prefix) {
		c.t.Fatalf("got reply %q, want %q...", r, prefix)
	}
	return r
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if l, err := c.line(); !isClosed(err) {
		c.t.Fatalf("got %q, %v; want the connection closed", l, err)
	}
}

// isClosed tells a connection closed by the server from a read timeout.
func isClosed(err error) bool {
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STARTTLS")
	c.expect("220 ")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
}
