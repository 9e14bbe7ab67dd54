package smtpserver

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// msgWriter copies a message into the spool. It checks CRLF framing (for
// BDAT content; DATA content was checked on the wire already) and, on
// submission, drops Bcc header fields with their folded continuation lines
// (RFC 5322 3.6.3; RFC 6409 8.1 allows the MSA to fix up messages). Memory
// use is bounded: only the first bytes of a header line are held back
// until the field name is known.
type msgWriter struct {
	w         io.Writer
	checkCRLF bool
	stripBcc  bool
	inHeader  bool // still in the header section
	prevCR    bool
	decided   bool // keep/drop is known for the current header line
	dropping  bool // the current header field is Bcc
	head      []byte
	written   int64
}

// maxFieldName bounds how much of a header line is held back to find the
// field name; a line without a colon that soon is kept as it is.
const maxFieldName = 256

func (m *msgWriter) Write(p []byte) (int, error) {
	if m.checkCRLF {
		for _, b := range p {
			if m.prevCR != (b == '\n') {
				return 0, errBareNewline
			}
			m.prevCR = b == '\r'
		}
	}
	n := len(p)
	for len(p) > 0 {
		if !m.stripBcc || !m.inHeader {
			return n, m.emit(p)
		}
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		p = p[len(seg):]
		if err := m.headerSeg(seg, i >= 0); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Close finishes the message: a CR at the very end is a bare CR, and a
// header line still held back is written.
func (m *msgWriter) Close() error {
	if m.checkCRLF && m.prevCR {
		return errBareNewline
	}
	if m.stripBcc && m.inHeader && !m.decided && len(m.head) > 0 {
		m.decide()
		if !m.dropping {
			return m.emit(m.head)
		}
	}
	return nil
}

func (m *msgWriter) emit(b []byte) error {
	n, err := m.w.Write(b)
	m.written += int64(n)
	return err
}

// headerSeg handles a piece of a header line; eol says it ends the line.
func (m *msgWriter) headerSeg(seg []byte, eol bool) error {
	if !m.decided {
		m.head = append(m.head, seg...)
		if !eol && len(m.head) < maxFieldName && bytes.IndexByte(m.head, ':') < 0 {
			return nil
		}
		m.decide()
		seg = m.head // emitted below, before head is appended to again
		m.head = m.head[:0]
	}
	if eol {
		m.decided = false
	}
	if m.dropping {
		return nil
	}
	return m.emit(seg)
}

// decide classifies the held-back start of a header line.
func (m *msgWriter) decide() {
	m.decided = true
	h := m.head
	switch {
	case len(h) == 0:
	case h[0] == '\r' || h[0] == '\n':
		m.inHeader, m.dropping = false, false // the empty line ends the header
	case h[0] == ' ' || h[0] == '\t':
		// continuation line: same fate as its field
	default:
		name, _, ok := bytes.Cut(h, []byte(":"))
		field := strings.TrimRight(string(name), " \t")
		// RFC 5322 3.6.3, 3.6.6: blind copies stay blind, also when resent.
		m.dropping = ok && (strings.EqualFold(field, "bcc") || strings.EqualFold(field, "resent-bcc"))
	}
}

// received builds our trace header (RFC 5321 4.4, RFC 5322 3.6.7) with
// the protocol keyword of RFC 3848. Reverse DNS is not looked up: the
// "from" clause carries the HELO name and the IP literal only.
func (c *conn) received(tx *transaction) string {
	r := receivedFields{
		Helo:     tx.info.Helo,
		Remote:   tx.info.Remote.Addr(),
		Hostname: c.s.opts.Hostname,
		Proto:    protocol(tx.esmtp, tx.info.TLS, tx.info.Account != nil),
		ID:       tx.id,
		Date:     c.s.opts.Now(),
		TLS:      tx.tlsState,
	}
	if len(tx.env.Recipients) == 1 {
		r.For = tx.env.Recipients[0].Address
	}
	return r.String()
}

// protocol is the RFC 3848 "with" keyword.
func protocol(esmtp, tls, auth bool) string {
	if !esmtp {
		return "SMTP"
	}
	p := "ESMTP"
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

type receivedFields struct {
	Helo     string
	Remote   netip.Addr
	Hostname string
	Proto    string
	ID       string
	For      string // only when the message has a single recipient
	Date     time.Time
	TLS      *tls.ConnectionState
}

func (r receivedFields) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n", cleanToken(r.Helo), addrLiteral(r.Remote))
	if r.TLS != nil {
		fmt.Fprintf(&b, "\t(using %s with cipher %s)\r\n",
			strings.ReplaceAll(tls.VersionName(r.TLS.Version), " ", ""), tls.CipherSuiteName(r.TLS.CipherSuite))
	}
	fmt.Fprintf(&b, "\tby %s (Pillarbox) with %s id %s", r.Hostname, r.Proto, r.ID)
	if r.For != "" && safeFor(r.For) {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", r.For)
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", r.Date.Format(time.RFC1123Z))
	return b.String()
}

// addrLiteral is RFC 5321 4.1.3: [192.0.2.1] or [IPv6:2001:db8::1].
func addrLiteral(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4() || a.Is4In6():
		return "[" + a.Unmap().String() + "]"
	}
	return "[IPv6:" + a.WithZone("").String() + "]"
}

// cleanToken makes a client-supplied name safe inside a header: printable
// ASCII without comment or quoting characters, at most 255 bytes.
func cleanToken(s string) string {
	if s == "" {
		return "unknown"
	}
	b := []byte(s)
	if len(b) > 255 {
		b = b[:255]
	}
	for i, ch := range b {
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("()\\\";", ch) >= 0 {
			b[i] = '_'
		}
	}
	return string(b)
}

// safeFor reports whether an address can go into the "for" clause as is.
func safeFor(a string) bool {
	for i := 0; i < len(a); i++ {
		if ch := a[i]; ch <= ' ' || ch == 0x7f || strings.IndexByte("()<>\\\";", ch) >= 0 {
			return false
		}
	}
	return true
}
