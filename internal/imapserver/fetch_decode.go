package imapserver

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// Streaming, lenient Content-Transfer-Encoding decoders for FETCH BINARY
// (RFC 3516, RFC 2045 6.7 and 6.8). They never fail on bad input: what
// cannot be decoded is skipped (base64) or passed through (quoted-printable),
// as mail readers do. Memory is one fixed buffer each, whatever the part size.

// identityCTE reports whether a transfer encoding needs no decoding.
func identityCTE(enc string) bool {
	switch enc {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// newCTEDecoder returns a reader of the decoded data, or false for an
// encoding we do not know (RFC 3516 4.3: NO [UNKNOWN-CTE]).
func newCTEDecoder(enc string, r io.Reader) (io.Reader, bool) {
	switch strings.ToLower(enc) {
	case "", "7bit", "8bit", "binary":
		return r, true
	case "base64":
		return &b64Reader{r: r}, true
	case "quoted-printable":
		return &qpReader{r: bufio.NewReaderSize(r, 4096)}, true
	}
	return nil, false
}

// b64Values maps a base64 character to its value + 1 (0: not base64).
var b64Values = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i + 1)
	}
	return t
}()

// b64Reader decodes base64, ignoring every byte outside the alphabet
// (line breaks, junk). '=' ends a quantum early, so concatenated encoded
// blocks decode too.
type b64Reader struct {
	r    io.Reader
	in   [3072]byte
	out  [2304 + 3]byte
	pend []byte // decoded, not yet returned
	acc  uint32
	n    int // sextets in acc
	err  error
}

func (d *b64Reader) Read(p []byte) (int, error) {
	for len(d.pend) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		m, err := d.r.Read(d.in[:])
		out := d.out[:0]
		for _, c := range d.in[:m] {
			if c == '=' {
				out = d.flushQuantum(out)
				continue
			}
			v := b64Values[c]
			if v == 0 {
				continue
			}
			d.acc = d.acc<<6 | uint32(v-1)
			if d.n++; d.n == 4 {
				out = append(out, byte(d.acc>>16), byte(d.acc>>8), byte(d.acc))
				d.acc, d.n = 0, 0
			}
		}
		if err != nil {
			out = d.flushQuantum(out)
			d.err = err
		}
		d.pend = out
	}
	n := copy(p, d.pend)
	d.pend = d.pend[n:]
	return n, nil
}

// flushQuantum appends the bytes of an incomplete quantum (2 sextets: 1
// byte, 3 sextets: 2 bytes; 1 sextet carries no whole byte).
func (d *b64Reader) flushQuantum(out []byte) []byte {
	switch d.n {
	case 2:
		out = append(out, byte(d.acc>>4))
	case 3:
		out = append(out, byte(d.acc>>10), byte(d.acc>>2))
	}
	d.acc, d.n = 0, 0
	return out
}

// qpReader decodes quoted-printable line by line: "=XX" is a byte, "="
// at the end of a line (after optional white space) a soft line break,
// trailing white space on a line is dropped (RFC 2045 6.7 (3)); a "="
// not followed by two hex digits is kept as it is.
type qpReader struct {
	r    *bufio.Reader
	out  []byte
	pend []byte
	err  error
}

func (d *qpReader) Read(p []byte) (int, error) {
	for len(d.pend) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		line, err := d.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil // a long line: decode this much; "=X" split across the cut is rare and kept
		}
		d.out = decodeQPLine(d.out[:0], line)
		d.pend = d.out
		d.err = err
	}
	n := copy(p, d.pend)
	d.pend = d.pend[n:]
	return n, nil
}

// decodeQPLine appends the decoded form of one line (with its line end,
// if any) to dst.
func decodeQPLine(dst, line []byte) []byte {
	body, eol := line, []byte(nil)
	if bytes.HasSuffix(body, []byte("\n")) {
		body, eol = body[:len(body)-1], []byte("\n")
		if bytes.HasSuffix(body, []byte("\r")) {
			body, eol = body[:len(body)-1], []byte("\r\n")
		}
	}
	if eol != nil {
		body = bytes.TrimRight(body, " \t")
		if bytes.HasSuffix(body, []byte("=")) { // soft line break
			body, eol = body[:len(body)-1], nil
		}
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '=' && i+2 < len(body) && isHexDigit(body[i+1]) && isHexDigit(body[i+2]) {
			dst = append(dst, unhexDigit(body[i+1])<<4|unhexDigit(body[i+2]))
			i += 2
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, eol...)
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f'
}

func unhexDigit(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// scanDecoded reads r to its end and returns the number of bytes and
// whether any is NUL (RFC 3516: such data must be sent as literal8).
func scanDecoded(r io.Reader) (n int64, nul bool, err error) {
	var buf [8192]byte
	for {
		m, err := r.Read(buf[:])
		n += int64(m)
		if !nul && bytes.IndexByte(buf[:m], 0) >= 0 {
			nul = true
		}
		if err == io.EOF {
			return n, nul, nil
		}
		if err != nil {
			return n, nul, err
		}
	}
}
