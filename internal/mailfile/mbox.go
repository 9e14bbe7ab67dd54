package mailfile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
)

// ErrNotMbox is returned by MboxReader.Next when the input does not start
// with a "From " separator line (after optional empty lines).
var ErrNotMbox = errors.New("mailfile: not an mbox file (no From line)")

// maxStatusScan bounds how much of a message header the mbox reader looks
// through for Status/X-Status fields.
const maxStatusScan = 64 << 10

// MboxReader reads an mboxrd file one message at a time.
type MboxReader struct {
	br      *bufio.Reader
	sep     []byte // the separator line of the next message, once read
	started bool
	inBody  bool // the current message's body has not been read to its end
	err     error

	out       []byte // converted bytes of the current message not yet read
	outPos    int
	lineStart bool // the next chunk starts a line
	prevCR    bool // the last chunk ended with '\r'
	blank     bool // an empty line is held back: it may be the separator's
	body      *mboxBody
}

// NewMboxReader returns a reader of the mbox data in r.
func NewMboxReader(r io.Reader) *MboxReader {
	return &MboxReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next message, or io.EOF after the last one. The previous
// message's Body is read to its end (and becomes invalid) first.
func (m *MboxReader) Next() (*Message, error) {
	if m.err != nil {
		return nil, m.err
	}
	for m.inBody { // skip the rest of the previous message
		m.out, m.outPos = m.out[:0], 0
		if err := m.fill(); err != nil {
			return nil, err
		}
	}
	m.out, m.outPos = m.out[:0], 0
	if m.sep == nil {
		if m.started {
			return nil, io.EOF
		}
		if err := m.findFirst(); err != nil {
			m.err = err
			return nil, err
		}
	}
	from, date := parseFromLine(string(m.sep))
	m.sep, m.started, m.inBody = nil, true, true
	m.lineStart, m.prevCR, m.blank = true, false, false
	flags, err := m.scanStatus()
	if err != nil {
		return nil, err
	}
	m.body = &mboxBody{m: m}
	return &Message{Body: m.body, Flags: flags, Date: date, From: from}, nil
}

// findFirst skips empty lines up to the first separator line.
func (m *MboxReader) findFirst() error {
	for {
		line, err := m.br.ReadSlice('\n')
		switch {
		case bytes.HasPrefix(line, []byte("From ")):
			m.sep = bytes.Clone(line)
			return nil
		case len(line) == 0 && errors.Is(err, io.EOF):
			return io.EOF
		case !isBlank(line) || errors.Is(err, bufio.ErrBufferFull):
			return ErrNotMbox
		case err != nil && !errors.Is(err, io.EOF):
			return err
		}
	}
}

func isBlank(line []byte) bool {
	return string(line) == "\n" || string(line) == "\r\n"
}

// isQuotedFrom reports whether line matches ^>+From (mboxrd quoting).
func isQuotedFrom(line []byte) bool {
	rest := bytes.TrimLeft(line, ">")
	return len(rest) < len(line) && bytes.HasPrefix(rest, []byte("From "))
}

// fill reads one more chunk of the current message and appends its
// converted bytes to m.out. It clears m.inBody at the message's end.
func (m *MboxReader) fill() error {
	if m.outPos == len(m.out) {
		m.out, m.outPos = m.out[:0], 0
	}
	chunk, err := m.br.ReadSlice('\n')
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		m.err = err
		return err
	}
	if len(chunk) == 0 { // EOF: a held-back empty line was the separator's
		m.inBody, m.blank = false, false
		return nil
	}
	atStart := m.lineStart
	m.lineStart = chunk[len(chunk)-1] == '\n'
	if atStart {
		switch {
		case bytes.HasPrefix(chunk, []byte("From ")):
			m.sep = bytes.Clone(chunk)
			m.inBody, m.blank = false, false
			return nil
		case isBlank(chunk):
			if m.blank {
				m.out = append(m.out, '\r', '\n')
			}
			m.blank = true
			return nil
		case isQuotedFrom(chunk):
			chunk = chunk[1:]
		}
	}
	if m.blank {
		m.out = append(m.out, '\r', '\n')
		m.blank = false
	}
	m.out = appendCRLF(m.out, chunk, m.prevCR)
	m.prevCR = chunk[len(chunk)-1] == '\r'
	return nil
}

// appendCRLF appends chunk (which ends at its only LF, if any) with a bare
// LF turned into CRLF. prevCR says the previous chunk ended with '\r'.
func appendCRLF(dst, chunk []byte, prevCR bool) []byte {
	n := len(chunk)
	if chunk[n-1] != '\n' || (n >= 2 && chunk[n-2] == '\r') || (n == 1 && prevCR) {
		return append(dst, chunk...)
	}
	dst = append(dst, chunk[:n-1]...)
	return append(dst, '\r', '\n')
}

// scanStatus reads ahead through the header (at most maxStatusScan bytes,
// kept in m.out for the body reader) and returns the flags of its Status
// and X-Status fields.
func (m *MboxReader) scanStatus() ([]string, error) {
	for from := 0; m.inBody && len(m.out) < maxStatusScan; {
		if bytes.HasPrefix(m.out, []byte("\r\n")) || bytes.Contains(m.out[from:], []byte("\r\n\r\n")) {
			break // end of header
		}
		from = max(0, len(m.out)-3)
		if err := m.fill(); err != nil {
			return nil, err
		}
	}
	var flags []string
	for _, line := range strings.Split(string(m.out), "\r\n") {
		if line == "" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "status":
			if strings.ContainsRune(val, 'R') {
				flags = append(flags, FlagSeen)
			}
		case "x-status":
			for _, f := range []struct {
				c    rune
				flag string
			}{{'A', FlagAnswered}, {'F', FlagFlagged}, {'T', FlagDraft}, {'D', FlagDeleted}} {
				if strings.ContainsRune(val, f.c) {
					flags = append(flags, f.flag)
				}
			}
		}
	}
	slices.Sort(flags)
	return slices.Compact(flags), nil
}

// mboxBody is the Body of one mbox message.
type mboxBody struct{ m *MboxReader }

func (b *mboxBody) Read(p []byte) (int, error) {
	m := b.m
	if m.body != b {
		return 0, io.EOF // a later message was started
	}
	for m.outPos == len(m.out) {
		if !m.inBody {
			return 0, io.EOF
		}
		if err := m.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, m.out[m.outPos:])
	m.outPos += n
	return n, nil
}

// fromLayouts are the date formats found in From lines, asctime first.
var fromLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04 2006",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 -0700",
}

// parseFromLine splits a separator line "From sender date" into the
// sender ("" for MAILER-DAEMON) and the date (zero when unparsable).
func parseFromLine(line string) (sender string, date time.Time) {
	fields := strings.Fields(strings.TrimPrefix(line, "From "))
	if len(fields) == 0 {
		return "", time.Time{}
	}
	sender = fields[0]
	if sender == "MAILER-DAEMON" || sender == "<>" {
		sender = ""
	}
	ds := strings.Join(fields[1:], " ")
	for _, layout := range fromLayouts {
		if t, err := time.Parse(layout, ds); err == nil {
			return sender, t
		}
	}
	return sender, time.Time{}
}

// MboxWriter writes messages in mboxrd format. Call Flush at the end.
type MboxWriter struct {
	w   *bufio.Writer
	br  *bufio.Reader // reused for every message body
	err error
}

// NewMboxWriter returns a writer of mbox data to w.
func NewMboxWriter(w io.Writer) *MboxWriter {
	return &MboxWriter{w: bufio.NewWriterSize(w, 64<<10), br: bufio.NewReaderSize(nil, 64<<10)}
}

// asctime is the From-line date format (ANSI C asctime, in UTC).
const asctime = "Mon Jan _2 15:04:05 2006"

// Write appends one message: a From line made of m.From (MAILER-DAEMON
// when empty; white space replaced by '_') and m.Date in UTC (the Unix
// epoch when zero), then m.Body with CRLF turned into LF and ^>*From lines
// quoted, a final LF if missing, and an empty line. m.Flags are not written.
func (w *MboxWriter) Write(m *Message) error {
	if w.err != nil {
		return w.err
	}
	from := m.From
	if from == "" {
		from = "MAILER-DAEMON"
	}
	from = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return '_'
		}
		return r
	}, from)
	date := m.Date
	if date.IsZero() {
		date = time.Unix(0, 0)
	}
	w.w.WriteString("From " + from + " " + date.UTC().Format(asctime) + "\n")
	if err := w.body(m.Body); err != nil {
		w.err = err
		return err
	}
	if err := w.w.WriteByte('\n'); err != nil { // bufio errors are sticky
		w.err = err
		return err
	}
	return nil
}

// body copies r line by line, quoting and converting line endings.
func (w *MboxWriter) body(r io.Reader) error {
	br := w.br
	br.Reset(r)
	defer br.Reset(nil)
	lineStart, pendingCR, last := true, false, byte('\n')
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if pendingCR && chunk[0] != '\n' {
				w.w.WriteByte('\r')
			}
			pendingCR = false
			if lineStart && (bytes.HasPrefix(chunk, []byte("From ")) || isQuotedFrom(chunk)) {
				w.w.WriteByte('>')
			}
			lineStart = chunk[len(chunk)-1] == '\n'
			switch {
			case bytes.HasSuffix(chunk, []byte("\r\n")):
				w.w.Write(chunk[:len(chunk)-2])
				w.w.WriteByte('\n')
			case chunk[len(chunk)-1] == '\r':
				w.w.Write(chunk[:len(chunk)-1])
				pendingCR = true // CRLF may be split across chunks
			default:
				w.w.Write(chunk)
			}
			last = chunk[len(chunk)-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
	if pendingCR {
		w.w.WriteByte('\r')
	}
	if last != '\n' {
		w.w.WriteByte('\n')
	}
	return nil
}

// Flush writes buffered data to the underlying writer.
func (w *MboxWriter) Flush() error {
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}
