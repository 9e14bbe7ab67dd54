// Package mailfile reads and writes the two common mail file formats, for
// import and export: mbox (the mboxrd variant) and Maildir.
//
// Readers yield one message at a time (Next returns a Message whose Body
// streams from the file), so importing 100,000 messages needs memory for
// one line (mbox) or one directory listing of names (Maildir), never for a
// whole message. Bodies are returned with CRLF line endings, as the store
// keeps them: a bare LF is turned into CRLF, existing CRLFs and bare CRs
// are left alone.
//
// mbox (mboxrd, as described by qmail's mbox(5)): a message starts with a
// separator line "From <sender> <asctime date>" and ends with an empty line
// before the next separator or at the end of the file. Body lines matching
// ^>*From are written with one more '>' and read back with one less, so any
// content round-trips. Writing converts CRLF to LF. Status/X-Status header
// fields (as written by mutt and others) give the flags on read; the writer
// does not write flags (mbox has no standard place for them).
//
// Maildir (https://cr.yp.to/proto/maildir.html): messages are files in
// cur/ and new/; the info suffix ":2,<letters>" carries the flags (D Draft,
// F Flagged, R Answered, S Seen, T Deleted; lower-case letters are keywords
// named in Dovecot's dovecot-keywords file), the file's mtime the internal
// date. The writer creates files in tmp/, fsyncs them and links them into
// cur/ under unique names, bytes unchanged; Close fsyncs the directories.
//
// Flags are IMAP flag strings (\Seen, \Answered, \Flagged, \Deleted,
// \Draft, or keywords), matching the store's Flag constants.
package mailfile

import (
	"bytes"
	"io"
	"time"
)

// IMAP system flags (RFC 9051 2.3.2); the same strings as store.FlagSeen etc.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// Message is one message read from or to be written to a mail file.
type Message struct {
	// Body is the whole message (header and body). From a reader it has
	// CRLF line endings and is valid until the reader's next Next or Close.
	Body io.Reader
	// Flags are IMAP flags (system flags and keywords), sorted.
	Flags []string
	// Date is the internal date: the mbox From-line date (UTC) or the
	// Maildir file's mtime; the zero time when unknown.
	Date time.Time
	// From is the envelope sender of the mbox From line ("" when absent or
	// MAILER-DAEMON). Maildir ignores it.
	From string
	// Name is the Maildir file name (for messages); empty for mbox.
	Name string
}

// CRLFReader returns a reader that turns every bare LF of r into CRLF.
func CRLFReader(r io.Reader) io.Reader {
	return &crlfReader{r: r, buf: make([]byte, 32<<10)}
}

type crlfReader struct {
	r      io.Reader
	buf    []byte
	data   []byte // unread part of buf
	prevCR bool   // the last byte handed out was '\r'
	needLF bool   // a '\r' was inserted; the '\n' is still owed
	err    error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if c.needLF {
			p[n] = '\n'
			n++
			c.needLF, c.prevCR = false, false
			continue
		}
		if len(c.data) == 0 {
			if n > 0 || c.err != nil {
				break
			}
			m, err := c.r.Read(c.buf)
			c.data, c.err = c.buf[:m], err
			continue
		}
		if c.data[0] == '\n' && !c.prevCR {
			p[n] = '\r'
			n++
			c.needLF = true
			c.data = c.data[1:]
			continue
		}
		// Copy up to the next LF (exclusive) in one go.
		chunk := c.data
		if i := bytes.IndexByte(chunk[1:], '\n'); i >= 0 {
			chunk = chunk[:i+1]
		}
		k := copy(p[n:], chunk)
		c.prevCR = p[n+k-1] == '\r'
		n += k
		c.data = c.data[k:]
	}
	if n == 0 && c.err != nil {
		return 0, c.err
	}
	return n, nil
}
