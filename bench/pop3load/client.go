package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"pillarbox/bench/internal/loadutil"
	"strconv"
	"strings"
)

// client is a minimal POP3 client (RFC 1939) over one TCP connection.
// Message bodies are un-dot-stuffed, counted and checksummed as they
// stream through the read buffer, never kept, so that the load client
// costs little next to the server it measures. In counts every byte
// read (status lines, stuffing, terminators included).
type client struct {
	*loadutil.Conn
}

// errERR is a -ERR answer: the connection is still usable.
type errERR struct{ cmd, resp string }

func (e *errERR) Error() string { return fmt.Sprintf("%s -> %s", e.cmd, e.resp) }

// dial connects, reads the greeting and, for -tls stls, upgrades the
// connection with STLS (RFC 2595 4).
func dial(o loadutil.DialOpts) (*client, error) {
	o.WriteBuf = 4 << 10
	lc, err := loadutil.Dial(o, "+OK", "stls", func(lc *loadutil.Conn) error {
		_, err := (&client{lc}).cmd("STLS")
		return err
	})
	if err != nil {
		return nil, err
	}
	return &client{lc}, nil
}

// login authenticates with USER and PASS (RFC 1939 7).
func (c *client) login(user, pass string) error {
	if _, err := c.cmd("USER " + user); err != nil {
		return err
	}
	_, err := c.cmd("PASS " + pass)
	return err
}

// quit sends QUIT and closes the connection.
func (c *client) quit() error {
	_, err := c.cmd("QUIT")
	c.Close()
	return err
}

// cmd sends one command and reads its status line; it returns the text
// after "+OK ". A -ERR is an *errERR.
func (c *client) cmd(line string) (string, error) {
	c.send(line)
	if err := c.W.Flush(); err != nil {
		return "", err
	}
	return c.status(line)
}

func (c *client) send(line string) {
	c.W.WriteString(line)
	c.W.WriteString("\r\n")
}

// status reads one status line for cmd.
func (c *client) status(cmd string) (string, error) {
	c.Deadline()
	l, err := c.readLine()
	if err != nil {
		return "", fmt.Errorf("%s: %w", short(cmd), err)
	}
	s := string(l)
	switch {
	case s == "+OK" || strings.HasPrefix(s, "+OK "):
		return strings.TrimPrefix(strings.TrimPrefix(s, "+OK"), " "), nil
	case strings.HasPrefix(s, "-ERR"):
		return "", &errERR{short(cmd), s}
	}
	return "", fmt.Errorf("%s: unexpected answer %q", short(cmd), s)
}

// short hides the password of a PASS command in errors.
func short(cmd string) string {
	if strings.HasPrefix(strings.ToUpper(cmd), "PASS ") {
		return "PASS ..."
	}
	return cmd
}

// readLine reads one line without its CRLF (or LF).
func (c *client) readLine() ([]byte, error) {
	l, err := c.R.ReadSlice('\n')
	c.In += int64(len(l))
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errors.New("line longer than 64 KiB")
	}
	if err != nil {
		return nil, err
	}
	l = bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
	return l, nil
}

// multi runs a command with a multi-line answer (RFC 1939 3) and hands fn
// every line of it, un-dot-stuffed, without CRLF.
func (c *client) multi(cmd string, fn func(line []byte) error) error {
	if _, err := c.cmd(cmd); err != nil {
		return err
	}
	for {
		l, err := c.readLine()
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if len(l) > 0 && l[0] == '.' {
			if len(l) == 1 {
				return nil
			}
			l = l[1:]
		}
		if err := fn(l); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
	}
}

// capa returns the capabilities (RFC 2449 5), upper-cased first words.
func (c *client) capa() (map[string]bool, error) {
	caps := map[string]bool{}
	err := c.multi("CAPA", func(l []byte) error {
		if f := strings.Fields(string(l)); len(f) > 0 {
			caps[strings.ToUpper(f[0])] = true
		}
		return nil
	})
	return caps, err
}

// stat returns the message count and maildrop size.
func (c *client) stat() (int, int64, error) {
	s, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	var n int
	var size int64
	if _, err := fmt.Sscanf(s, "%d %d", &n, &size); err != nil {
		return 0, 0, fmt.Errorf("STAT: bad answer %q", s)
	}
	return n, size, nil
}

// scanList reads "msg value" lines of LIST or UIDL into a slice indexed
// by message number - 1; n is the count from STAT.
func (c *client) scanList(cmd string, n int, set func(k int, v string)) error {
	next := 1
	return c.multi(cmd, func(l []byte) error {
		num, val, ok := strings.Cut(string(l), " ")
		k, err := strconv.Atoi(num)
		if !ok || err != nil || k != next || k > n {
			return fmt.Errorf("line %q: want message %d of %d", l, next, n)
		}
		set(k-1, val)
		next++
		return nil
	})
}

// list returns every message's size (LIST, RFC 1939 5).
func (c *client) list(n int) ([]int64, error) {
	sizes := make([]int64, n)
	err := c.scanList("LIST", n, func(k int, v string) {
		sizes[k], _ = strconv.ParseInt(strings.Fields(v + " x")[0], 10, 64)
	})
	return sizes, err
}

// uidl returns every message's unique-id (UIDL, RFC 1939 7).
func (c *client) uidl(n int) ([]string, error) {
	ids := make([]string, n)
	err := c.scanList("UIDL", n, func(k int, v string) { ids[k] = v })
	return ids, err
}

// body reads a multi-line message body after its +OK line: it strips the
// dot-stuffing and returns the octet count and CRC-32C of the message as
// stored (CRLFs included, terminator excluded).
func (c *client) body() (int64, uint32, error) {
	var n int64
	var crc uint32
	atStart := true
	for {
		chunk, err := c.R.ReadSlice('\n')
		c.In += int64(len(chunk))
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, crc, err
		}
		if atStart && len(chunk) > 0 && chunk[0] == '.' {
			if string(chunk) == ".\r\n" {
				return n, crc, nil
			}
			chunk = chunk[1:]
		}
		n += int64(len(chunk))
		crc = crc32.Update(crc, castagnoli, chunk)
		atStart = err == nil
	}
}

// retr fetches message k (1-based) and returns its octets and CRC.
func (c *client) retr(k int) (int64, uint32, error) {
	cmd := "RETR " + strconv.Itoa(k)
	if _, err := c.cmd(cmd); err != nil {
		return 0, 0, err
	}
	n, crc, err := c.body()
	if err != nil {
		return n, crc, fmt.Errorf("%s: %w", cmd, err)
	}
	return n, crc, nil
}

// retrPipelined fetches messages 1..count with up to window RETR commands
// in flight (RFC 2449 6.6 PIPELINING), calling got for each in order.
// Commands are flushed only when the client would otherwise wait for the
// server, so they leave in batches.
func (c *client) retrPipelined(count, window int, got func(k int, n int64, crc uint32)) error {
	sent := 0
	for ; sent < min(window, count); sent++ {
		c.send("RETR " + strconv.Itoa(sent+1))
	}
	for k := 1; k <= count; k++ {
		if c.R.Buffered() == 0 {
			if err := c.W.Flush(); err != nil {
				return err
			}
		}
		cmd := "RETR " + strconv.Itoa(k)
		if _, err := c.status(cmd); err != nil {
			return err // a -ERR mid-pipeline: the rest of the answers are not read
		}
		n, crc, err := c.body()
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		got(k, n, crc)
		if sent < count {
			sent++
			c.send("RETR " + strconv.Itoa(sent))
		}
	}
	return c.W.Flush()
}
