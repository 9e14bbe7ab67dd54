package message

import (
	"bufio"
	"errors"
	"io"
)

// line is one line of the message as seen by the scanner. Only its first
// bytes are kept (up to the limit the caller asked for).
type line struct {
	b      []byte  // first bytes of the line, terminator included when it fits
	start  int64   // offset of the first byte
	end    int64   // offset just past the terminator
	lf     int64   // LF count before start
	before [3]byte // the three bytes before start (zero at the message start)
	full   bool    // b holds the whole line
}

// blank reports whether the line is an empty line ("\r\n" or "\n").
func (l *line) blank() bool {
	return l.full && (string(l.b) == "\n" || string(l.b) == "\r\n")
}

// scanner reads lines with bounded memory and tracks offsets, the LF count
// and the last bytes read. One line can be pushed back.
type scanner struct {
	br   *bufio.Reader
	off  int64   // offset of the next unread byte
	lf   int64   // LFs read
	tail [3]byte // last three bytes read
	cur  line
	back bool
}

// newScanner returns a scanner of the size bytes in r, with a read buffer
// sized for small messages (most are) and capped for large ones.
func newScanner(r io.Reader, size int64) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, int(min(max(size, 256), 32<<10)))}
}

// next returns the next line keeping at most keep bytes of it, or io.EOF.
// The returned line is valid until the next call.
func (s *scanner) next(keep int) (*line, error) {
	if s.back {
		s.back = false
		return &s.cur, nil
	}
	c := &s.cur
	c.start, c.lf, c.before = s.off, s.lf, s.tail
	c.b = c.b[:0]
	c.full = true
	for {
		chunk, err := s.br.ReadSlice('\n')
		if n := len(chunk); n > 0 {
			if room := keep - len(c.b); room >= n {
				c.b = append(c.b, chunk...)
			} else {
				c.b = append(c.b, chunk[:max(room, 0)]...)
				c.full = false
			}
			s.off += int64(n)
			s.pushTail(chunk)
		}
		switch {
		case err == nil:
			s.lf++
			c.end = s.off
			return c, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if s.off == c.start {
				return nil, io.EOF
			}
			c.end = s.off
			return c, nil
		default:
			return nil, err
		}
	}
}

// unread pushes the line last returned by next back.
func (s *scanner) unread() { s.back = true }

func (s *scanner) pushTail(b []byte) {
	if len(b) >= 3 {
		copy(s.tail[:], b[len(b)-3:])
		return
	}
	for _, c := range b {
		s.tail[0], s.tail[1], s.tail[2] = s.tail[1], s.tail[2], c
	}
}
