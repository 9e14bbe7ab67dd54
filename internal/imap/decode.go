package imap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Limits bound what the Decoder accepts. Zero (or negative) fields take
// the defaults shown.
type Limits struct {
	MaxLine         int   // bytes of one command line, literals excluded (default 64 KiB)
	MaxLiteral      int64 // largest single literal (= APPENDLIMIT; default 50 MiB)
	MaxCommandBytes int64 // all literals of one command together (MULTIAPPEND; default 4*MaxLiteral)
	MaxDepth        int   // parenthesis/bracket nesting (default 16)
	MaxValues       int   // values in one command, all lists counted (default 10000)
	SpillOver       int   // literals larger than this go to a spill file (default 64 KiB)
}

// Defaults of Limits.
const (
	DefaultMaxLine    = 64 << 10
	DefaultMaxLiteral = 50 << 20
	DefaultMaxDepth   = 16
	DefaultMaxValues  = 10000
	DefaultSpillOver  = 64 << 10
)

// WithDefaults returns l with every zero or negative field set to its
// default.
func (l Limits) WithDefaults() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultMaxLine
	}
	if l.MaxLiteral <= 0 {
		l.MaxLiteral = DefaultMaxLiteral
	}
	if l.MaxCommandBytes <= 0 {
		l.MaxCommandBytes = 4 * l.MaxLiteral
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultMaxValues
	}
	if l.SpillOver <= 0 {
		l.SpillOver = DefaultSpillOver
	}
	return l
}

const (
	// discardFactor: a line longer than MaxLine is discarded up to its end
	// as long as it stays under discardFactor*MaxLine bytes.
	discardFactor = 16
	// memFactor: a command's literals stay in memory until they total
	// memFactor*SpillOver bytes; later ones are spilled even when small.
	memFactor = 16
	// tailMax bytes of a line's end are kept to spot a literal
	// announcement ("~{" 20 digits "+}" fits) in a discarded line.
	tailMax = 32
	// keepBuf: a line buffer that grew past this is dropped after use so
	// that idle connections stay small.
	keepBuf = 4 << 10
)

// Decoder reads commands from a client. It is not safe for concurrent use.
type Decoder struct {
	r     *bufio.Reader
	lim   Limits
	cont  func() error
	spill func() (*os.File, error)
	buf   []byte // line buffer, reused
	tail  []byte // last bytes of the line last read (see tailMax)
}

// NewDecoder reads commands from r. cont is called before the decoder
// reads a synchronizing literal {n} (after checking n against the limits);
// the server writes "+ <text>\r\n" and flushes. spill creates a file for a
// big literal (e.g. os.CreateTemp in the data dir); it is called only when
// needed; nil means os.CreateTemp("", "imap-literal-*").
func NewDecoder(r *bufio.Reader, lim Limits, cont func() error, spill func() (*os.File, error)) *Decoder {
	if cont == nil {
		cont = func() error { return nil }
	}
	if spill == nil {
		spill = func() (*os.File, error) { return os.CreateTemp("", "imap-literal-*") }
	}
	return &Decoder{r: r, lim: lim.WithDefaults(), cont: cont, spill: spill}
}

// SetLimits replaces the limits (zero fields take the defaults) from the
// next command on.
func (d *Decoder) SetLimits(lim Limits) { d.lim = lim.WithDefaults() }

// Limits returns the limits in force, defaults filled in.
func (d *Decoder) Limits() Limits { return d.lim }

// errLineTooLong is returned by readLine when the discard budget ran out.
var errLineTooLong = errors.New("line too long")

// readLine reads one line into d.buf and returns it without its line end.
// A line longer than budget is discarded up to its end: the result holds
// its first budget bytes and long is true. d.tail holds the last bytes of
// the whole line either way. Errors: io.EOF before any byte, otherwise
// io.ErrUnexpectedEOF or the reader's error; errLineTooLong past the
// discard budget.
func (d *Decoder) readLine(budget int) (line []byte, long bool, err error) {
	if cap(d.buf) > keepBuf {
		d.buf = nil
	}
	d.buf = d.buf[:0]
	d.tail = d.tail[:0]
	limit := int64(discardFactor) * int64(d.lim.MaxLine)
	var total int64
	for {
		chunk, rerr := d.r.ReadSlice('\n')
		total += int64(len(chunk))
		end := rerr == nil
		switch room := budget + 2 - len(d.buf); {
		case long:
			d.keepTail(chunk)
		case len(chunk) <= room:
			d.buf = append(d.buf, chunk...)
		default:
			d.keepTail(d.buf)
			d.keepTail(chunk)
			d.buf = append(d.buf, chunk[:max(room, 0)]...)
			long = true
		}
		if end {
			break
		}
		if rerr != bufio.ErrBufferFull {
			if rerr == io.EOF && total > 0 {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, false, rerr
		}
		if long && total > limit {
			return d.buf, true, errLineTooLong
		}
	}
	if long {
		d.tail = trimEOL(d.tail)
		if len(d.buf) > budget {
			d.buf = d.buf[:budget]
		}
		return d.buf, true, nil
	}
	line = trimEOL(d.buf)
	if len(line) > budget {
		// Over by at most the 2 bytes kept for a line end.
		d.keepTail(line)
		return line[:budget], true, nil
	}
	d.keepTail(line)
	return line, false, nil
}

func (d *Decoder) keepTail(b []byte) {
	if len(b) >= tailMax {
		d.tail = append(d.tail[:0], b[len(b)-tailMax:]...)
		return
	}
	if over := len(d.tail) + len(b) - tailMax; over > 0 {
		d.tail = append(d.tail[:0], d.tail[over:]...)
	}
	d.tail = append(d.tail, b...)
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// ReadLine reads one raw line (IDLE's DONE, AUTHENTICATE responses),
// bounded by MaxLine, and returns it without its line end. A longer line is
// discarded (non-fatal *ProtocolError with Code "LIMIT"; Fatal past
// 16*MaxLine).
func (d *Decoder) ReadLine() (string, error) {
	line, long, err := d.readLine(d.lim.MaxLine)
	if err == errLineTooLong {
		return "", &ProtocolError{Code: "LIMIT", Msg: "line too long", Fatal: true}
	}
	if err != nil {
		return "", err
	}
	if long {
		return "", &ProtocolError{Code: "LIMIT", Msg: fmt.Sprintf("line longer than %d bytes", d.lim.MaxLine)}
	}
	return string(line), nil
}

// ReadCommand reads one whole command (line, all literals and the lines
// after them). Errors: io.EOF / net errors as they are; *ProtocolError for
// bad input (see the package comment for what was consumed).
func (d *Decoder) ReadCommand() (*Command, error) {
	p := &parser{d: d, lim: d.lim}
	cmd, err := p.command()
	if err == nil {
		return cmd, nil
	}
	p.cleanup()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		return nil, err
	}
	if pe.Tag == "" {
		pe.Tag = p.tag
	}
	if pe.Fatal {
		return nil, pe
	}
	if rerr := p.recover(); rerr != nil {
		var fe *ProtocolError
		if errors.As(rerr, &fe) && fe.Tag == "" {
			fe.Tag = p.tag
		}
		return nil, rerr
	}
	return nil, pe
}

// stream passes the next n bytes of the input to fn in chunks of the
// reader's buffer, without copying them.
func (d *Decoder) stream(n int64, fn func([]byte)) error {
	for n > 0 {
		if d.r.Buffered() == 0 {
			if _, err := d.r.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		k := d.r.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		b, _ := d.r.Peek(k)
		fn(b)
		_, _ = d.r.Discard(k)
		n -= int64(k)
	}
	return nil
}

// announcement reports whether tail ends in a literal announcement "{n}",
// "{n+}" (or "~{...}"). huge is set when n does not fit (or too many
// digits to see the '{').
func announcement(tail []byte) (n int64, sync, ok, huge bool) {
	i := len(tail) - 1
	if i < 0 || tail[i] != '}' {
		return 0, false, false, false
	}
	i--
	sync = true
	if i >= 0 && tail[i] == '+' {
		sync = false
		i--
	}
	end := i + 1
	for i >= 0 && isDigit(tail[i]) {
		i--
	}
	digits := tail[i+1 : end]
	if len(digits) > 19 {
		return 0, sync, true, true
	}
	if len(digits) == 0 || i < 0 || tail[i] != '{' {
		return 0, false, false, false
	}
	n, huge = parseCount(digits)
	return n, sync, true, huge
}

// parseCount parses a literal's byte count; huge when over 2^63-1.
func parseCount(digits []byte) (n int64, huge bool) {
	for _, c := range digits {
		if n > (1<<63-1-int64(c-'0'))/10 {
			return 0, true
		}
		n = n*10 + int64(c-'0')
	}
	return n, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
