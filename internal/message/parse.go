package message

import (
	"bytes"
	"io"
	"strings"
)

// Header fields Parse keeps, by index.
const (
	fContentType = iota
	fEncoding
	fID
	fDescription
	fMD5
	fDisposition
	fLanguage
	fLocation
	fDate // first envelope field: kept for message headers only
	fSubject
	fFrom
	fSender
	fReplyTo
	fTo
	fCc
	fBcc
	fInReplyTo
	fMessageID
	nFields
)

func fieldIndex(name string) int {
	switch strings.ToLower(name) {
	case "content-type":
		return fContentType
	case "content-transfer-encoding":
		return fEncoding
	case "content-id":
		return fID
	case "content-description":
		return fDescription
	case "content-md5":
		return fMD5
	case "content-disposition":
		return fDisposition
	case "content-language":
		return fLanguage
	case "content-location":
		return fLocation
	case "date":
		return fDate
	case "subject":
		return fSubject
	case "from":
		return fFrom
	case "sender":
		return fSender
	case "reply-to":
		return fReplyTo
	case "to":
		return fTo
	case "cc":
		return fCc
	case "bcc":
		return fBcc
	case "in-reply-to":
		return fInReplyTo
	case "message-id":
		return fMessageID
	}
	return -1
}

// fields holds the kept header values of one part (first occurrence of each
// field, unfolded and trimmed).
type fields struct {
	val  [nFields]string
	seen [nFields]bool
}

type parser struct {
	sc     *scanner
	budget int      // header bytes that may still be kept
	parts  int      // parts created
	bounds []string // active boundaries, outermost first
}

// keepBody is how much of a body line is kept: enough to recognise a
// boundary delimiter line.
const keepBody = maxBoundaryLen + 8

// parsePart parses one part (header and body) starting at the scanner's
// position. It returns at EOF or with the delimiter line that ended the part
// pushed back. digest selects the multipart/digest default type; isMsg says
// the header is a message header (ENVELOPE fields kept).
func (ps *parser) parsePart(depth int, digest, isMsg bool) (*Part, error) {
	ps.parts++
	p := &Part{}
	p.HeaderStart, _ = ps.sc.mark()
	var f fields
	if err := ps.readHeader(p, &f, isMsg); err != nil {
		return nil, err
	}
	applyFields(p, &f, digest, isMsg)
	_, bodyLF := ps.sc.mark()
	var err error
	switch {
	case p.IsMultipart():
		err = ps.parseMultipart(p, depth)
	case p.Type == "message" && (p.Subtype == "rfc822" || p.Subtype == "global") &&
		depth+1 < MaxDepth && ps.parts < MaxParts && identityEncoding(p.Encoding):
		var child *Part
		child, err = ps.parsePart(depth+1, false, true)
		if child != nil {
			p.Parts = []*Part{child}
		}
	default:
		err = ps.skipBody()
	}
	if err != nil {
		return nil, err
	}
	ps.closeBody(p, bodyLF)
	if p.IsMultipart() && len(p.Parts) == 0 {
		p.Parts = []*Part{placeholder(p)}
	}
	return p, nil
}

func identityEncoding(enc string) bool {
	switch enc {
	case "7bit", "8bit", "binary":
		return true
	}
	return false
}

// placeholder is the text/plain child given to a multipart without parts:
// it spans the multipart's whole body.
func placeholder(p *Part) *Part {
	return &Part{
		HeaderStart: p.BodyStart, BodyStart: p.BodyStart, End: p.End, Lines: p.Lines,
		Type: "text", Subtype: "plain", Params: []Param{{"charset", "us-ascii"}}, Encoding: "7bit",
	}
}

// readHeader reads header lines up to and including the blank line, or up
// to a boundary delimiter line (pushed back) or EOF, and sets p.BodyStart.
func (ps *parser) readHeader(p *Part, f *fields, isMsg bool) error {
	cur := -1
	var val []byte
	flush := func() {
		if cur < 0 {
			return
		}
		v := strings.TrimSpace(string(val))
		if len(v) > ps.budget {
			v = v[:ps.budget]
		}
		ps.budget -= len(v)
		f.val[cur], f.seen[cur] = v, true
		cur = -1
	}
	defer flush()
	for {
		l, err := ps.sc.next(maxFieldBytes + 2)
		if err == io.EOF {
			p.BodyStart = ps.sc.off
			return nil
		}
		if err != nil {
			return err
		}
		if l.blank() {
			p.BodyStart = l.end
			return nil
		}
		if _, _, ok := ps.delimiter(l); ok {
			ps.sc.unread()
			p.BodyStart = l.start
			return nil
		}
		if c := l.b[0]; c == ' ' || c == '\t' {
			if cur >= 0 {
				val = appendCapped(val, trimEOL(l.b))
			}
			continue
		}
		flush()
		name, rest, ok := splitField(l.b)
		if !ok {
			continue // not a field: ignored, the header goes on (as Dovecot does)
		}
		i := fieldIndex(name)
		if i < 0 || f.seen[i] || (i >= fDate && !isMsg) || ps.budget <= 0 {
			continue
		}
		cur = i
		val = appendCapped(val[:0], trimEOL(rest))
	}
}

func appendCapped(dst, b []byte) []byte {
	if room := maxFieldBytes - len(dst); len(b) > room {
		b = b[:max(room, 0)]
	}
	return append(dst, b...)
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// splitField splits a header line at its colon. The name must be printable
// ASCII without spaces (trailing white space before the colon is allowed,
// RFC 5322 4.5.8 obs-optional).
func splitField(b []byte) (name string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ':')
	if i <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(b[:i], " \t")
	if len(n) == 0 {
		return "", nil, false
	}
	for _, c := range n {
		if c < 33 || c > 126 {
			return "", nil, false
		}
	}
	return string(n), b[i+1:], true
}

// delimiter reports whether l is a boundary delimiter line for one of the
// active boundaries (innermost first): "--" boundary ["--"] *LWSP
// (RFC 2046 5.1.1). i indexes ps.bounds; closing is set for "--boundary--".
func (ps *parser) delimiter(l *line) (i int, closing, ok bool) {
	if len(ps.bounds) == 0 || len(l.b) < 3 || l.b[0] != '-' || l.b[1] != '-' {
		return 0, false, false
	}
	rest := l.b[2:]
	for i := len(ps.bounds) - 1; i >= 0; i-- {
		b := ps.bounds[i]
		if !bytes.HasPrefix(rest, []byte(b)) {
			continue
		}
		r := rest[len(b):]
		c := bytes.HasPrefix(r, []byte("--"))
		if c {
			r = r[2:]
		}
		if len(bytes.TrimLeft(r, " \t\r\n")) == 0 {
			return i, c, true
		}
	}
	return 0, false, false
}

// skipBody reads lines up to a delimiter line of an active boundary (pushed
// back) or EOF.
func (ps *parser) skipBody() error {
	for {
		l, err := ps.sc.next(keepBody)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, _, ok := ps.delimiter(l); ok {
			ps.sc.unread()
			return nil
		}
	}
}

// parseMultipart parses a multipart body: preamble, body parts, epilogue
// (RFC 2046 5.1.1). A missing close delimiter ends the multipart at the
// next outer delimiter or EOF.
func (ps *parser) parseMultipart(p *Part, depth int) error {
	boundary := ""
	for _, prm := range p.Params {
		if prm.Name == "boundary" {
			boundary = prm.Value
			break
		}
	}
	usable := boundary != "" && len(boundary) <= maxBoundaryLen && depth+1 < MaxDepth
	for _, b := range ps.bounds {
		usable = usable && b != boundary
	}
	if !usable {
		return ps.skipBody()
	}
	ps.bounds = append(ps.bounds, boundary)
	closed, err := ps.bodyParts(p, depth)
	ps.bounds = ps.bounds[:len(ps.bounds)-1]
	if err != nil || !closed {
		return err
	}
	return ps.skipBody() // epilogue
}

// bodyParts reads the preamble and the body parts of a multipart whose
// boundary is the innermost active one. closed reports a close delimiter.
func (ps *parser) bodyParts(p *Part, depth int) (closed bool, err error) {
	own := len(ps.bounds) - 1
	digest := p.Subtype == "digest"
	// Preamble: up to the first delimiter.
	for {
		l, err := ps.sc.next(keepBody)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		i, c, ok := ps.delimiter(l)
		if !ok {
			continue
		}
		if i != own {
			ps.sc.unread()
			return false, nil
		}
		if c {
			return true, nil
		}
		break
	}
	for {
		if ps.parts < MaxParts {
			child, err := ps.parsePart(depth+1, digest, false)
			if err != nil {
				return false, err
			}
			p.Parts = append(p.Parts, child)
		} else if err := ps.skipBody(); err != nil {
			return false, err
		}
		l, err := ps.sc.next(keepBody)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		i, c, ok := ps.delimiter(l)
		switch {
		case !ok:
			// Cannot happen: parts end at a delimiter or EOF. Be safe.
			continue
		case i != own:
			ps.sc.unread()
			return false, nil
		case c:
			return true, nil
		}
	}
}

// closeBody sets p.End and p.Lines from the scanner's state: at EOF, or
// with the delimiter line that ends the body pushed back, in which case the
// line break before it belongs to the delimiter (RFC 2046 5.1.1) unless
// that would end p before its body or its last child.
func (ps *parser) closeBody(p *Part, bodyLF int64) {
	s := ps.sc
	var end, lfs int64
	var last byte
	if s.back {
		at := &s.cur
		floor := p.BodyStart
		if len(p.Parts) > 0 {
			floor = max(floor, p.Parts[len(p.Parts)-1].End)
		}
		var t int64
		switch n := at.start - floor; {
		case n >= 2 && at.before[1] == '\r' && at.before[2] == '\n':
			t = 2
		case n >= 1 && at.before[2] == '\n':
			t = 1
		}
		end, lfs = at.start-t, at.lf-bodyLF
		if t > 0 {
			lfs--
		}
		last = at.before[2-t]
	} else {
		end, lfs, last = s.off, s.lf-bodyLF, s.tail[2]
	}
	if end <= p.BodyStart {
		p.End, p.Lines = p.BodyStart, 0
		return
	}
	if last != '\n' {
		lfs++
	}
	p.End, p.Lines = end, lfs
}

// mark returns the offset and LF count at the start of the next line.
func (s *scanner) mark() (off, lf int64) {
	if s.back {
		return s.cur.start, s.cur.lf
	}
	return s.off, s.lf
}
