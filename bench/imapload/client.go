package main

import (
	"bytes"
	"fmt"
	"io"
	"pillarbox/bench/internal/loadutil"
	"strconv"
	"strings"
)

// client is a minimal IMAP4 client over one TCP connection: it writes
// tagged commands and reads responses until the tagged completion,
// skipping literal contents (counted in In, not kept) so that the load
// client costs little next to the server it measures. No pipelining:
// one command at a time, as an interactive client does.
type client struct {
	*loadutil.Conn
	seq  int
	caps map[string]bool
}

// errNo is a tagged NO or BAD: the connection is still usable.
type errNo struct{ cmd, resp string }

func (e *errNo) Error() string { return fmt.Sprintf("%s -> %s", e.cmd, e.resp) }

// dial connects, reads the greeting and, for -tls starttls, upgrades the
// connection with STARTTLS (RFC 9051 6.2.1).
func dial(o loadutil.DialOpts) (*client, error) {
	c := &client{}
	lc, err := loadutil.Dial(o, "* OK", "starttls", func(lc *loadutil.Conn) error {
		c.Conn = lc
		return c.run("STARTTLS", nil)
	})
	if err != nil {
		return nil, err
	}
	c.Conn = lc
	return c, nil
}

// login authenticates with LOGIN and reads the capabilities.
func (c *client) login(user, pass string) error {
	if err := c.run("LOGIN "+quote(user)+" "+quote(pass), nil); err != nil {
		return err
	}
	c.caps = map[string]bool{}
	return c.run("CAPABILITY", func(line []byte, _ int64) {
		if f := strings.Fields(string(line)); len(f) > 2 && strings.EqualFold(f[1], "CAPABILITY") {
			for _, cp := range f[2:] {
				c.caps[strings.ToUpper(cp)] = true
			}
		}
	})
}

// logout sends LOGOUT and closes the connection.
func (c *client) logout() error {
	err := c.run("LOGOUT", nil)
	c.Close()
	return err
}

// run sends one command and reads responses until its tagged completion;
// fn (if set) sees every untagged response: the text of all its lines
// with the literals left out, and the literal bytes it carried. A tagged
// NO/BAD is an *errNo.
func (c *client) run(cmd string, fn func(line []byte, lit int64)) error {
	tag := c.next()
	c.W.WriteString(tag)
	c.W.WriteByte(' ')
	c.W.WriteString(cmd)
	c.W.WriteString("\r\n")
	return c.finish(tag, cmd, fn)
}

func (c *client) next() string {
	c.seq++
	c.Deadline()
	return "A" + strconv.Itoa(c.seq)
}

// finish flushes the command and reads up to its tagged response.
func (c *client) finish(tag, cmd string, fn func([]byte, int64)) error {
	if err := c.W.Flush(); err != nil {
		return err
	}
	for {
		line, lit, err := c.readResp(nil)
		if err != nil {
			return fmt.Errorf("%s: %w", short(cmd), err)
		}
		if len(line) > len(tag) && string(line[:len(tag)]) == tag && line[len(tag)] == ' ' {
			rest := line[len(tag)+1:]
			if bytes.HasPrefix(rest, []byte("OK")) {
				return nil
			}
			return &errNo{short(cmd), string(rest)}
		}
		if fn != nil && len(line) > 0 && line[0] == '*' {
			fn(line, lit)
		}
	}
}

// appendMsg APPENDs msg (CRLF line endings) with a synchronizing literal,
// or a non-synchronizing one when the server has LITERAL+.
func (c *client) appendMsg(mailbox, flags string, msg []byte) error {
	tag := c.next()
	plus := ""
	if c.caps["LITERAL+"] {
		plus = "+"
	}
	fmt.Fprintf(c.W, "%s APPEND %s (%s) {%d%s}\r\n", tag, quote(mailbox), flags, len(msg), plus)
	if plus == "" {
		if err := c.W.Flush(); err != nil {
			return err
		}
		line, _, err := c.readResp(nil)
		if err != nil {
			return err
		}
		if len(line) == 0 || line[0] != '+' {
			return fmt.Errorf("APPEND: no continuation: %q", line)
		}
	}
	c.W.Write(msg)
	c.W.WriteString("\r\n")
	return c.finish(tag, "APPEND", nil)
}

// readResp reads one response: a line and, while it ends in a literal
// announcement {n} / {n+} / ~{n}, the n octets and the line continuing
// after them. keep (if set) receives the literal octets, else they are
// discarded. The returned text has no CRLF.
func (c *client) readResp(keep io.Writer) (text []byte, lit int64, err error) {
	for {
		line, err := c.ReadLine()
		if err != nil {
			return nil, 0, err
		}
		text = append(text, line...)
		n, ok := literalLen(line)
		if !ok {
			return text, lit, nil
		}
		dst := keep
		if dst == nil {
			dst = io.Discard
		}
		got, err := io.CopyN(dst, c.R, n)
		c.In += got
		lit += got
		if err != nil {
			return nil, 0, err
		}
	}
}

// literalLen parses a trailing "{n}", "{n+}" or "~{n}".
func literalLen(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	num := bytes.TrimSuffix(line[open+1:len(line)-1], []byte("+"))
	n, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// quote renders s as an IMAP quoted string.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func short(cmd string) string {
	if len(cmd) > 60 {
		return cmd[:60] + "..."
	}
	return cmd
}

// fetchSeq returns the sequence number of an untagged FETCH response
// ("* 12 FETCH (...)"), or 0.
func fetchSeq(line []byte) int {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 || string(f[0]) != "*" || !bytes.EqualFold(f[2], []byte("FETCH")) {
		return 0
	}
	n, _ := strconv.Atoi(string(f[1]))
	return n
}

// fetchUID finds "UID n" in a FETCH response's text (literals are not
// part of the text, and the generated subjects never say "UID").
func fetchUID(line []byte) uint32 {
	for _, pre := range []string{"(UID ", " UID "} {
		i := bytes.Index(line, []byte(pre))
		if i < 0 {
			continue
		}
		rest := line[i+len(pre):]
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		n, _ := strconv.ParseUint(string(rest[:end]), 10, 32)
		return uint32(n)
	}
	return 0
}

// searchCount counts the numbers of an untagged "* SEARCH" response (or
// of ESEARCH ALL / COUNT, should a server send it); ok is false for any
// other response.
func searchCount(line []byte) (n int, ok bool) {
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "*" {
		return 0, false
	}
	switch strings.ToUpper(f[1]) {
	case "SEARCH":
		for _, x := range f[2:] {
			if x[0] == '(' { // RFC 7162 (MODSEQ n)
				break
			}
			n++
		}
		return n, true
	case "ESEARCH":
		for k := 2; k+1 < len(f); k++ {
			switch strings.ToUpper(f[k]) {
			case "COUNT":
				c, _ := strconv.Atoi(f[k+1])
				return c, true
			case "ALL":
				return countSet(f[k+1]), true
			}
		}
		return 0, true
	}
	return 0, false
}

// countSet counts the numbers in a sequence set like "1:3,7".
func countSet(s string) int {
	n := 0
	for _, r := range strings.Split(s, ",") {
		a, b, found := strings.Cut(r, ":")
		x, _ := strconv.Atoi(a)
		if !found {
			n++
			continue
		}
		y, _ := strconv.Atoi(b)
		if y < x {
			x, y = y, x
		}
		n += y - x + 1
	}
	return n
}

// exists parses "* n EXISTS".
func exists(line []byte) (int, bool) {
	f := strings.Fields(string(line))
	if len(f) == 3 && f[0] == "*" && strings.EqualFold(f[2], "EXISTS") {
		n, err := strconv.Atoi(f[1])
		return n, err == nil
	}
	return 0, false
}

// crlf converts LF line endings to CRLF.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}
