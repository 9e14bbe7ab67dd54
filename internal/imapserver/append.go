package imapserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// appendMsg is one message of an APPEND command.
type appendMsg struct {
	flags []string
	date  time.Time  // zero: now
	data  imap.Value // the literal (or literal8)
}

// cmdAppend: APPEND, RFC 9051 6.3.12, with MULTIAPPEND (RFC 3502),
// APPENDUID (RFC 4315 3), BINARY literal8 (RFC 3516 4.4), the UTF8 data
// form of UTF8=ACCEPT (RFC 6855 4) and APPENDLIMIT (RFC 7889).
//
// Every message of the command is stored with one store.DeliverBatch:
// all or none (RFC 3502 6), and the tagged OK carries
// [APPENDUID uidvalidity uid-set]. The mailbox must exist (NO [TRYCREATE]);
// the quota is checked for all messages together (NO [OVERQUOTA]). A
// literal over APPENDLIMIT never gets here: the decoder refuses it
// before the continuation request ("BAD [TOOBIG]", or "* BYE" for a
// non-synchronizing one). Text literals with bare LFs are stored with
// CRLF line ends (RFC 5322 wants CRLF; like Dovecot); literal8 bytes are
// stored as sent. A NUL in a text literal was refused by the decoder. An
// empty message is refused. Spilled literals are handed to the store as
// files (the store adopts a spool file without copying it) and removed
// by the session when the command ends. APPEND to the selected mailbox
// is announced by EXISTS before the tagged OK (the view's update).
func cmdAppend(s *session, c *imap.Command) error {
	if err := wantArgs(c, 2, -1); err != nil {
		return err
	}
	name, err := s.mailboxArg(c.Args[0])
	if err != nil {
		return err
	}
	msgs, err := parseAppend(c.Args[1:])
	if err != nil {
		return err
	}
	now := s.srv.opts.Now()
	ds := make([]*store.Delivery, len(msgs))
	for i, m := range msgs {
		if m.data.Size == 0 {
			return no("CANNOT", "Cannot store an empty message")
		}
		blob, err := appendBlob(m.data)
		if err != nil {
			return err
		}
		date := m.date
		if date.IsZero() {
			date = now
		}
		ds[i] = &store.Delivery{Blob: blob, InternalDate: date, Local: []store.LocalRecipient{{
			AccountID: s.account.ID, Mailbox: name, Flags: m.flags, CheckQuota: true, NoCreate: true,
		}}}
	}
	res, err := s.srv.opts.Store.DeliverBatch(s.ctx, ds)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return no("TRYCREATE", "Mailbox does not exist")
	case errors.Is(err, store.ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded")
	case err != nil:
		return storeErr(err)
	}
	uids := make([]uint32, len(res))
	for i, r := range res {
		uids[i] = r.Local[0].UID
	}
	s.okCode = fmt.Sprintf("APPENDUID %d %s", res[0].Local[0].UIDValidity, imap.FormatUIDs(uids))
	return nil
}

// parseAppend parses one or more "[flag-list] [date-time] message" groups
// (RFC 3502 append-message). A message is a literal, a literal8, or
// "UTF8 (literal8)" (RFC 6855 4).
func parseAppend(args []imap.Value) ([]appendMsg, error) {
	var out []appendMsg
	var cur appendMsg
	haveFlags, haveDate := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a.Kind == imap.KindList && !haveFlags && !haveDate:
			flags, err := parseFlags(a.List, true)
			if err != nil {
				return nil, err
			}
			cur.flags, haveFlags = flags, true
		case a.Kind == imap.KindString && !a.Literal && !haveDate:
			t, err := imap.ParseDateTime(string(a.Str))
			if err != nil {
				return nil, bad("", "Invalid date-time")
			}
			cur.date, haveDate = t, true
		case a.Kind == imap.KindString && a.Literal:
			cur.data = a
		case a.Kind == imap.KindAtom && strings.EqualFold(a.Atom, "UTF8") && i+1 < len(args) &&
			isUTF8Data(args[i+1]):
			i++
			cur.data = args[i].List[0]
		default:
			return nil, bad("", "Invalid APPEND arguments")
		}
		if cur.data.Kind != 0 {
			out = append(out, cur)
			cur, haveFlags, haveDate = appendMsg{}, false, false
		}
	}
	if haveFlags || haveDate || len(out) == 0 {
		return nil, bad("", "APPEND needs a message literal")
	}
	return out, nil
}

// isUTF8Data reports whether v is "(literal8)" (RFC 6855 4 append-data-ext).
func isUTF8Data(v imap.Value) bool {
	return v.Kind == imap.KindList && len(v.List) == 1 && v.List[0].Kind == imap.KindString &&
		v.List[0].Literal && v.List[0].Binary
}

// appendBlob returns the bytes to store for a literal: as they are, or
// with bare LFs turned into CRLF for a text literal that has any. A
// spilled literal without bare LFs is passed as its file, rewound (the
// store adopts a spool file whole, else reads it from the offset).
func appendBlob(v imap.Value) (io.Reader, error) {
	if v.File == nil {
		if v.Binary {
			return bytes.NewReader(v.Str), nil
		}
		return bytes.NewReader(toCRLF(v.Str)), nil
	}
	if !v.Binary {
		bare, err := fileHasBareLF(v.File, v.Size)
		if err != nil {
			return nil, err
		}
		if bare {
			return &crlfReader{r: io.NewSectionReader(v.File, 0, v.Size)}, nil
		}
	}
	if _, err := v.File.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return v.File, nil
}

// toCRLF returns b with every LF not preceded by CR preceded by one; b
// itself when there is none.
func toCRLF(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// fileHasBareLF reports whether the first size bytes of f hold an LF not
// preceded by CR.
func fileHasBareLF(f *os.File, size int64) (bool, error) {
	buf := make([]byte, 64<<10)
	prev := byte(0)
	for off := int64(0); off < size; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for i := 0; i < n; i++ {
			if buf[i] == '\n' && prev != '\r' {
				return true, nil
			}
			prev = buf[i]
		}
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == size) {
			return false, err
		}
	}
	return false, nil
}

// crlfReader turns bare LFs of r into CRLF.
type crlfReader struct {
	r    io.Reader
	prev byte   // last byte read from r
	buf  []byte // read buffer
	conv []byte // conversion buffer
	out  []byte // converted bytes not yet returned (in conv)
	err  error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.buf == nil {
			c.buf = make([]byte, 32<<10)
		}
		n, err := c.r.Read(c.buf)
		c.err = err
		conv := c.conv[:0]
		for _, b := range c.buf[:n] {
			if b == '\n' && c.prev != '\r' {
				conv = append(conv, '\r')
			}
			conv = append(conv, b)
			c.prev = b
		}
		c.conv, c.out = conv, conv
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}
