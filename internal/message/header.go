package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
)

// ErrHeaderTooLong is returned by ReadHeader when the header section is
// longer than its limit.
var ErrHeaderTooLong = errors.New("message: header too long")

// Field is one header field exactly as read: Raw holds the name, the
// colon, the value and every folded continuation line, each with its line
// terminator. A line that is not a field (no colon, bad name, or a
// continuation line before any field) is kept as a Field with Name "".
type Field struct {
	Name string // as written, without white space before the colon
	Raw  []byte
}

// Value returns the field's value unfolded (line breaks removed) and trimmed.
func (f Field) Value() string {
	_, rest, ok := splitField(f.Raw)
	if !ok || f.Name == "" {
		return ""
	}
	v := strings.ReplaceAll(string(rest), "\r\n", "")
	v = strings.ReplaceAll(v, "\n", "")
	return strings.TrimSpace(v)
}

// Header is a header section as read by ReadHeader. Writing Fields' Raw
// bytes followed by Sep reproduces the input exactly.
type Header struct {
	Fields []Field
	// Sep is the empty line that ended the header ("\r\n" or "\n"); nil when
	// the input ended first or ReadHeader stopped at its limit.
	Sep []byte
}

// ReadHeader reads a header section from r, up to and including the empty
// line that ends it (the body is left unread in r), keeping every byte so
// the SMTP server can, for example, drop Bcc fields (RFC 5322 3.6.3) and
// write the rest back unchanged with WriteTo. Past max bytes (it may read
// up to one buffer of r more) ReadHeader returns what it read so far and
// ErrHeaderTooLong; no byte taken from r is lost, so a caller may write h
// back and copy the rest of r as is. At EOF the header is all of the input
// (Sep nil, no error). Other errors are r's read errors.
func ReadHeader(r *bufio.Reader, max int) (Header, error) {
	var h Header
	n := 0
	for {
		line, err := readLineMax(r, max-n)
		n += len(line)
		if len(line) > 0 {
			switch {
			case string(line) == "\r\n" || string(line) == "\n":
				h.Sep = line
				return h, nil
			case (line[0] == ' ' || line[0] == '\t') && len(h.Fields) > 0:
				last := &h.Fields[len(h.Fields)-1]
				last.Raw = append(last.Raw, line...)
			default:
				name, _, ok := splitField(line)
				if !ok {
					name = ""
				}
				h.Fields = append(h.Fields, Field{Name: name, Raw: line})
			}
		}
		if err == io.EOF {
			return h, nil
		}
		if err != nil {
			return h, err
		}
	}
}

// readLineMax reads one line. Past limit bytes it returns what it read
// (never losing bytes already taken from r) and ErrHeaderTooLong.
func readLineMax(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return line, ErrHeaderTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
	}
}

// Get returns the unfolded value of the first field called name (case
// insensitive), or "".
func (h Header) Get(name string) string {
	for _, f := range h.Fields {
		if f.Name != "" && strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

// Values returns the unfolded values of every field called name.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h.Fields {
		if f.Name != "" && strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value())
		}
	}
	return vs
}

// Del removes every field called name and returns how many it removed.
func (h *Header) Del(name string) int {
	kept := h.Fields[:0]
	for _, f := range h.Fields {
		if f.Name == "" || !strings.EqualFold(f.Name, name) {
			kept = append(kept, f)
		}
	}
	n := len(h.Fields) - len(kept)
	clear(h.Fields[len(kept):])
	h.Fields = kept
	return n
}

// Len is the number of bytes WriteTo writes.
func (h Header) Len() int {
	n := len(h.Sep)
	for _, f := range h.Fields {
		n += len(f.Raw)
	}
	return n
}

// WriteTo writes the fields and Sep, byte for byte as read.
func (h Header) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	buf.Grow(h.Len())
	for _, f := range h.Fields {
		buf.Write(f.Raw)
	}
	buf.Write(h.Sep)
	return buf.WriteTo(w)
}
