package imapserver

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"strings"

	"pillarbox/internal/imap"
	"pillarbox/internal/message"
)

// Body sections (RFC 9051 6.4.5) and BINARY (RFC 3516) are served from
// the byte offsets the store computed at delivery (message.Part) and the
// message bytes (store.OpenMessage, an io.ReaderAt): a section is a byte
// range of the message, streamed as a literal; only HEADER.FIELDS(.NOT)
// builds its answer in memory, and BINARY decodes the range twice (once
// to learn the size, once to send), so memory stays bounded whatever
// the message size.

// errUnknownCTE: BINARY of a part whose Content-Transfer-Encoding we
// cannot decode (RFC 3516 4.3).
var errUnknownCTE = no("UNKNOWN-CTE", "Cannot decode the part's content transfer encoding")

// payload is the value of one section item for one message.
type payload struct {
	isNIL  bool
	r      io.ReaderAt // source of the raw range
	off, n int64       // raw range in r
	data   []byte      // in-memory value (HEADER.FIELDS) instead of a range
	enc    string      // BINARY: the encoding to remove ("" none)
	skip   int64       // BINARY partial: decoded bytes to skip
	size   int64       // bytes sent
	nul    bool        // BINARY: send as literal8 (the data holds NUL)
}

// msgSource is what the section items of one message read.
type msgSource struct {
	root *message.Part // nil when the items need no structure
	r    io.ReaderAt
	size int64
}

// sectionPayload resolves a BODY[...] / RFC822* item.
func (src *msgSource) sectionPayload(it *fetchItem) (payload, error) {
	sec := it.sec
	var p payload
	switch {
	case len(sec.part) == 0 && sec.spec == specNone:
		p = src.rangeOf(0, src.size)
	case sec.spec == specNone || sec.spec == specMIME:
		part := src.root.Find(sec.part)
		switch {
		case part == nil:
			return payload{isNIL: true}, nil
		case sec.spec == specMIME:
			p = src.rangeOf(part.HeaderStart, part.BodyStart)
		default:
			p = src.rangeOf(part.BodyStart, part.End)
		}
	default:
		msg := src.root
		if len(sec.part) > 0 { // RFC 9051 6.4.5: HEADER/TEXT of a message/rfc822 part
			part := src.root.Find(sec.part)
			if part == nil || !part.IsMessage() {
				return payload{isNIL: true}, nil
			}
			msg = part.Parts[0]
		}
		switch sec.spec {
		case specHeader:
			p = src.rangeOf(msg.HeaderStart, msg.BodyStart)
		case specText:
			p = src.rangeOf(msg.BodyStart, msg.End)
		default:
			data, err := src.headerFields(msg, sec.fields, sec.spec == specFieldsNot)
			if err != nil {
				return p, err
			}
			p = payload{data: data, size: int64(len(data))}
		}
	}
	if it.partial {
		p.clip(it.origin, it.count)
	}
	return p, nil
}

// rangeOf is the raw range [from, to) of the message, clamped to it.
func (src *msgSource) rangeOf(from, to int64) payload {
	from = min(max(from, 0), src.size)
	to = min(max(to, from), src.size)
	return payload{r: src.r, off: from, n: to - from, size: to - from}
}

// clip applies <origin.count> to an undecoded payload.
func (p *payload) clip(origin, count int64) {
	if origin >= p.size {
		origin = p.size
	}
	n := min(count, p.size-origin)
	if p.data != nil {
		p.data = p.data[origin : origin+n]
	} else {
		p.off += origin
		p.n = n
	}
	p.size = n
}

// binaryPayload resolves a BINARY[...] or BINARY.SIZE[...] item. A part
// that does not exist is NIL (its BINARY.SIZE 0).
func (src *msgSource) binaryPayload(it *fetchItem) (payload, error) {
	p := src.rangeOf(0, src.size)
	if len(it.sec.part) > 0 {
		part := src.root.Find(it.sec.part)
		if part == nil {
			return payload{isNIL: true}, nil
		}
		p = src.rangeOf(part.BodyStart, part.End)
		if !identityCTE(part.Encoding) {
			p.enc = part.Encoding
		}
	}
	dec, ok := newCTEDecoder(p.enc, io.NewSectionReader(p.r, p.off, p.n))
	if !ok {
		return p, errUnknownCTE
	}
	n, nul, err := scanDecoded(dec)
	if err != nil {
		return p, err
	}
	p.size, p.nul = n, nul
	if it.partial {
		origin := min(it.origin, n)
		p.skip, p.size = origin, min(it.count, n-origin)
	}
	return p, nil
}

// write sends the payload as NIL, "" or a literal (literal8 for BINARY
// data holding NUL).
func (p *payload) write(w *imap.Writer) {
	switch {
	case p.isNIL:
		w.Raw("NIL")
	case p.size == 0:
		w.Raw(`""`)
	case p.data != nil:
		w.Literal(p.data)
	case p.enc == "" && p.skip == 0:
		w.LiteralFrom(io.NewSectionReader(p.r, p.off, p.size), p.size, p.nul)
	default:
		dec, _ := newCTEDecoder(p.enc, io.NewSectionReader(p.r, p.off, p.n))
		if p.skip > 0 {
			if _, err := io.CopyN(io.Discard, dec, p.skip); err != nil {
				dec = errReader{err}
			}
		}
		w.LiteralFrom(dec, p.size, p.nul)
	}
}

// literalBufMax: raw payloads up to this size are read into a buffer
// of the fetcher and written with one Literal call, which fills the
// connection's buffer before writing; LiteralFrom's copy goes around the
// buffer (an extra write per message, and a 32 KiB copy buffer each
// time, on a TCP connection).
const literalBufMax = 256 << 10

// writeBuf is write, reading a small raw payload through *buf (grown as
// needed and kept for the next payload).
func (p *payload) writeBuf(w *imap.Writer, buf *[]byte) {
	if p.isNIL || p.size == 0 || p.data != nil || p.enc != "" || p.skip > 0 || p.size > literalBufMax {
		p.write(w)
		return
	}
	b := slices.Grow((*buf)[:0], int(p.size))[:p.size]
	*buf = b
	if n, err := p.r.ReadAt(b, p.off); n < len(b) {
		// Streaming reports the failure (a broken response).
		_ = err
		p.write(w)
		return
	}
	w.Literal(b)
}

// errReader fails every read (LiteralFrom then reports a broken response).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// headerFields returns the fields of msg's header named (or, with not,
// not named) in names, in message order with their continuation lines,
// followed by the blank line (RFC 9051 6.4.5 HEADER.FIELDS, .NOT).
func (src *msgSource) headerFields(msg *message.Part, names []string, not bool) ([]byte, error) {
	hr := src.rangeOf(msg.HeaderStart, msg.BodyStart)
	br := bufio.NewReaderSize(io.NewSectionReader(src.r, hr.off, hr.n), 4096)
	var out bytes.Buffer
	keep, lineStart := false, true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if lineStart {
				if isBlankLine(chunk) && err != bufio.ErrBufferFull {
					break // the end of the header
				}
				if chunk[0] != ' ' && chunk[0] != '\t' { // a new field; else a continuation
					keep = fieldListed(chunk, names) != not
				}
			}
			if keep {
				out.Write(chunk)
			}
		}
		lineStart = err != bufio.ErrBufferFull
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return nil, err
		}
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteString("\r\n") // a header cut off without a line end
	}
	out.WriteString("\r\n")
	return out.Bytes(), nil
}

func isBlankLine(b []byte) bool {
	return len(b) == 1 && b[0] == '\n' || len(b) == 2 && b[0] == '\r' && b[1] == '\n'
}

// fieldListed reports whether the field line starts with one of names
// (case-insensitive). A line without a colon names no field.
func fieldListed(line []byte, names []string) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := strings.TrimRight(string(line[:i]), " \t")
	for _, n := range names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}
