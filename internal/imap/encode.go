package imap

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQuoted is the longest text String writes as a quoted string; longer
// text goes as a literal (clients handle both; long quoted strings are
// where naive clients break).
const maxQuoted = 1000

// Writer encodes responses. All methods buffer and return w for chaining;
// after the first write error they do nothing and Err returns it. Flush
// writes the buffer out.
type Writer struct {
	bw   *bufio.Writer
	utf8 bool
	err  error
	num  [20]byte
}

// NewWriter returns a Writer on w with a 4 KiB buffer.
func NewWriter(w io.Writer) *Writer { return &Writer{bw: bufio.NewWriter(w)} }

// Flush writes the buffered bytes to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.err = w.bw.Flush()
	return w.err
}

// Err returns the first write error.
func (w *Writer) Err() error { return w.err }

// SetUTF8 records that UTF8=ACCEPT is enabled (RFC 6855 3): UTF-8 is then
// allowed in quoted strings and mailbox names are sent as UTF-8.
func (w *Writer) SetUTF8(on bool) { w.utf8 = on }

// UTF8 reports whether SetUTF8(true) is in force.
func (w *Writer) UTF8() bool { return w.utf8 }

// Raw writes s as it is.
func (w *Writer) Raw(s string) *Writer {
	if w.err == nil {
		_, w.err = w.bw.WriteString(s)
	}
	return w
}

func (w *Writer) byte(c byte) *Writer {
	if w.err == nil {
		w.err = w.bw.WriteByte(c)
	}
	return w
}

// SP writes a space.
func (w *Writer) SP() *Writer { return w.byte(' ') }

// CRLF ends a line.
func (w *Writer) CRLF() *Writer { return w.Raw("\r\n") }

// Open writes "(".
func (w *Writer) Open() *Writer { return w.byte('(') }

// Close writes ")".
func (w *Writer) Close() *Writer { return w.byte(')') }

// Atom writes s as it is (the caller knows it is an atom: a flag, a
// keyword, a response name).
func (w *Writer) Atom(s string) *Writer { return w.Raw(s) }

// Number writes n in decimal.
func (w *Writer) Number(n uint64) *Writer {
	if w.err == nil {
		_, w.err = w.bw.Write(strconv.AppendUint(w.num[:0], n, 10))
	}
	return w
}

// String writes s as a quoted string when it can be one (RFC 9051 9
// quoted: no CR, LF or NUL, ASCII unless UTF8=ACCEPT is on and s is valid
// UTF-8, at most 1000 bytes), else as a literal {n}. A NUL can only be
// sent in a literal8 (LiteralFrom); String never sends one quoted.
func (w *Writer) String(s string) *Writer {
	if !w.quotable(s) {
		return w.literalString(s)
	}
	w.byte('"')
	for {
		i := strings.IndexAny(s, `"\`)
		if i < 0 {
			break
		}
		w.Raw(s[:i]).byte('\\').byte(s[i])
		s = s[i+1:]
	}
	return w.Raw(s).byte('"')
}

func (w *Writer) quotable(s string) bool {
	if len(s) > maxQuoted {
		return false
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\r' || c == '\n' || c == 0:
			return false
		case c >= 0x80:
			ascii = false
		}
	}
	return ascii || (w.utf8 && utf8.ValidString(s))
}

func (w *Writer) literalString(s string) *Writer {
	return w.byte('{').Number(uint64(len(s))).Raw("}\r\n").Raw(s)
}

// NString writes NIL for nil, else String(*s).
func (w *Writer) NString(s *string) *Writer {
	if s == nil {
		return w.Raw("NIL")
	}
	return w.String(*s)
}

// AString writes s as an atom when IsAtom(s) and s is not "NIL" in any
// case; else as String.
func (w *Writer) AString(s string) *Writer {
	if IsAtom(s) && !strings.EqualFold(s, "NIL") {
		return w.Raw(s)
	}
	return w.String(s)
}

// IsAtom reports whether s is non-empty and consists of RFC 9051 9
// ATOM-CHARs only (no SP, CTL, 8-bit, ( ) { % * " \ ]), and no '['
// either, which many clients (and our Decoder) read as a section.
func IsAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

// Mailbox writes a mailbox name given in UTF-8: INBOX (any case) as
// INBOX, others as AString of the modified UTF-7 form (RFC 3501 5.1.3),
// or of the UTF-8 name itself once UTF8=ACCEPT is on (RFC 6855 3).
func (w *Writer) Mailbox(name string) *Writer {
	if strings.EqualFold(name, "INBOX") {
		return w.Raw("INBOX")
	}
	if !w.utf8 {
		name = EncodeMUTF7(name)
	}
	return w.AString(name)
}

// Literal writes b as a literal {n}.
func (w *Writer) Literal(b []byte) *Writer {
	w.byte('{').Number(uint64(len(b))).Raw("}\r\n")
	if w.err == nil {
		_, w.err = w.bw.Write(b)
	}
	return w
}

// LiteralFrom writes a literal of n bytes read from r ({n}, or ~{n} when
// binary, RFC 3516), streaming through the buffer. If r ends early the
// response is broken: Err reports io.ErrUnexpectedEOF and the connection
// must be closed.
func (w *Writer) LiteralFrom(r io.Reader, n int64, binary bool) *Writer {
	if binary {
		w.byte('~')
	}
	w.byte('{').Number(uint64(n)).Raw("}\r\n")
	if w.err != nil {
		return w
	}
	m, err := io.CopyN(w.bw, r, n)
	if m < n && err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	w.err = err
	return w
}
