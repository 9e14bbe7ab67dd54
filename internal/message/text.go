package message

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/text/encoding/htmlindex"
)

// Searchable text (IMAP SEARCH BODY and TEXT, RFC 9051 6.4.4).
//
// ExtractText reduces a message to the text a person reads in it:
//   - Header: every header field of the message, of each MIME part and of
//     each encapsulated message, one "Name: value\n" line per field, the
//     value unfolded and its RFC 2047 encoded words decoded;
//   - Body: the text/* parts, in order, separated by "\n": the
//     Content-Transfer-Encoding (base64, quoted-printable) undone, the
//     charset converted to UTF-8, text/html reduced to its text (tags,
//     comments, script and style dropped, entities decoded, white space
//     collapsed). Other parts (attachments) are skipped. Parts of a
//     message/rfc822 part are included (Parse recurses into it when its
//     encoding is an identity one).
//
// Charsets: a known charset (WHATWG Encoding Standard names) is decoded;
// a missing, unknown, US-ASCII or UTF-8 one is read leniently: valid
// UTF-8 sequences as UTF-8, every other byte as Latin-1. Line breaks
// become "\n", other control characters a space. The text is always valid
// UTF-8 and at most limit bytes (headers first).

// Text is the searchable text of a message (see ExtractText).
type Text struct {
	Header string
	Body   string
}

// maxHeaderText bounds the header part of a Text (and the bytes of one
// part's header section read for it).
const maxHeaderText = 256 << 10

// ExtractText parses the message of size bytes in r and returns its
// searchable text, at most limit bytes of it. It fails only on I/O errors.
func ExtractText(r io.ReaderAt, size int64, limit int) (Text, error) {
	root, err := Parse(r, size)
	if err != nil {
		return Text{}, err
	}
	x := &extractor{r: r, hdrLeft: min(limit, maxHeaderText)}
	if err := x.headers(root); err != nil {
		return Text{}, err
	}
	x.bodyLeft = limit - x.hdr.Len()
	if err := x.bodies(root); err != nil {
		return Text{}, err
	}
	return Text{Header: x.hdr.String(), Body: x.body.String()}, nil
}

type extractor struct {
	r                 io.ReaderAt
	hdr, body         strings.Builder
	hdrLeft, bodyLeft int
}

// headers appends the header fields of p and every part below it.
func (x *extractor) headers(p *Part) error {
	if x.hdrLeft <= 0 {
		return nil
	}
	if n := min(p.BodyStart-p.HeaderStart, maxHeaderText); n > 0 {
		b := make([]byte, n)
		if _, err := x.r.ReadAt(b, p.HeaderStart); err != nil && err != io.EOF {
			return err
		}
		x.hdrLeft = appendBounded(&x.hdr, HeaderText(b), x.hdrLeft)
	}
	for _, c := range p.Parts {
		if err := x.headers(c); err != nil {
			return err
		}
	}
	return nil
}

// bodies appends the decoded text of the text/* leaves at or below p.
func (x *extractor) bodies(p *Part) error {
	if x.bodyLeft <= 0 {
		return nil
	}
	if len(p.Parts) > 0 {
		for _, c := range p.Parts {
			if err := x.bodies(c); err != nil {
				return err
			}
		}
		return nil
	}
	if p.Type != "text" || p.Size() == 0 {
		return nil
	}
	// Encoded text is at most about 3 times longer than decoded text
	// (quoted-printable); read no more than that.
	n := min(p.Size(), 3*int64(x.bodyLeft)+1024)
	raw := make([]byte, n)
	if _, err := x.r.ReadAt(raw, p.BodyStart); err != nil && err != io.EOF {
		return err
	}
	switch p.Encoding {
	case "base64":
		raw = decodeBase64(raw)
	case "quoted-printable":
		raw = decodeQP(raw)
	}
	s := decodeText(p.Param("charset"), raw)
	if p.Subtype == "html" {
		s = htmlText(s)
	}
	s = cleanText(s)
	if s == "" {
		return nil
	}
	if x.body.Len() > 0 {
		x.bodyLeft = appendBounded(&x.body, "\n", x.bodyLeft)
	}
	x.bodyLeft = appendBounded(&x.body, s, x.bodyLeft)
	return nil
}

// appendBounded appends at most left bytes of s (cut at a rune boundary)
// and returns what is left.
func appendBounded(b *strings.Builder, s string, left int) int {
	if len(s) > left {
		cut := left
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
		left = 0
	} else {
		left -= len(s)
	}
	b.WriteString(s)
	return left
}

// HeaderText returns the header fields in b (a header section, or header
// lines such as a delivery prefix) as Text.Header has them: one
// "Name: value\n" line per field, unfolded, RFC 2047 decoded, lenient
// UTF-8, control characters replaced by spaces. Lines that are not fields
// are dropped.
func HeaderText(b []byte) string {
	h, _ := ReadHeader(bufio.NewReaderSize(bytes.NewReader(b), min(len(b), 4096)), len(b)+1)
	var out strings.Builder
	for _, f := range h.Fields {
		if f.Name == "" {
			continue
		}
		v := DecodeHeader(LenientUTF8(f.Value()))
		out.WriteString(cleanLine(f.Name))
		out.WriteString(": ")
		out.WriteString(cleanLine(v))
		out.WriteByte('\n')
	}
	return out.String()
}

// decodeText converts b from charset to UTF-8 (see the comment above Text
// for the lenient cases).
func decodeText(charset string, b []byte) string {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return LenientUTF8(string(b))
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return LenientUTF8(string(b))
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return LenientUTF8(string(b))
	}
	return LenientUTF8(string(out))
}

// LenientUTF8 keeps valid UTF-8 sequences and reads every other byte as
// Latin-1 (8-bit text of unknown charset, as mail clients send it).
func LenientUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			r = rune(s[i])
		}
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

// cleanText turns CRLF and CR into "\n" and other control characters
// (except tab) into spaces.
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return -1 // "\r\n" -> "\n"; a lone CR is dropped
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
}

// cleanLine is cleanText for one header line: no line breaks at all.
func cleanLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// decodeBase64 decodes base64 leniently: characters outside the alphabet
// are skipped, '=' ends a group early (concatenated encodings decode too).
func decodeBase64(b []byte) []byte {
	out := make([]byte, 0, len(b)*3/4)
	var q [4]byte
	n := 0
	flush := func() {
		switch n {
		case 2:
			out = append(out, q[0]<<2|q[1]>>4)
		case 3:
			out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2)
		}
		n = 0
	}
	for _, c := range b {
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '+':
			v = 62
		case c == '/':
			v = 63
		case c == '=':
			flush()
			continue
		default:
			continue
		}
		q[n] = v
		if n++; n == 4 {
			out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
			n = 0
		}
	}
	flush()
	return out
}

// decodeQP decodes quoted-printable (RFC 2045 6.7) leniently: soft line
// breaks are removed, "=XX" (either case) is decoded, any other '=' stays.
func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		j := i + 1
		for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
			j++
		}
		switch {
		case j == len(b):
			i = j // "=" at the very end
			continue
		case b[j] == '\n':
			i = j
			continue
		case b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n':
			i = j + 1
			continue
		}
		if i+2 < len(b) && isHex(b[i+1]) && isHex(b[i+2]) {
			out = append(out, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
			continue
		}
		out = append(out, c)
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// htmlText returns the text of an HTML document: text nodes with entities
// decoded and white space collapsed, a line break for block elements and
// <br>, nothing from comments, <script> and <style>.
func htmlText(s string) string {
	z := html.NewTokenizer(strings.NewReader(s))
	var b strings.Builder
	skip := false // inside <script> or <style>
	space := false
	newline := func() {
		if b.Len() > 0 {
			space = false
			if !strings.HasSuffix(b.String(), "\n") {
				b.WriteByte('\n')
			}
		}
	}
	for {
		switch z.Next() {
		case html.ErrorToken:
			return b.String()
		case html.TextToken:
			if skip {
				continue
			}
			for _, r := range string(z.Text()) {
				if unicode.IsSpace(r) {
					space = true
					continue
				}
				if space && b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
					b.WriteByte(' ')
				}
				space = false
				b.WriteRune(r)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				skip = true
			}
			if blockTag(string(name)) {
				newline()
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style":
				skip = false
			}
			if blockTag(string(name)) {
				newline()
			}
		}
	}
}

func blockTag(name string) bool {
	switch name {
	case "br", "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
		"blockquote", "pre", "hr", "title", "section", "article", "header", "footer", "td", "th", "dd", "dt":
		return true
	}
	return false
}

// Fold returns s case-folded for case-insensitive substring search:
// every rune is replaced by a fixed representative of its Unicode simple
// case folding orbit (the equivalence strings.EqualFold uses; ASCII
// letters map to lower case). So strings.Contains(Fold(a), Fold(b)) holds
// exactly when a has a substring that strings.EqualFold considers equal
// to b. Folding never changes the number of runes; invalid UTF-8 becomes
// U+FFFD.
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	return strings.Map(foldRune, s)
}

// foldRune maps r to the smallest rune of its simple folding orbit, an
// ASCII upper-case letter to its lower case.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	if 'A' <= m && m <= 'Z' {
		m += 'a' - 'A'
	}
	return m
}
