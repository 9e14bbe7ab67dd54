package message

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// applyFields fills p's MIME fields (and its envelope for a message header)
// from the kept header values.
func applyFields(p *Part, f *fields, digest, isMsg bool) {
	p.Type, p.Subtype = "text", "plain"
	p.Params = []Param{{"charset", "us-ascii"}} // RFC 2045 5.2 default
	if digest {
		p.Type, p.Subtype, p.Params = "message", "rfc822", nil // RFC 2046 5.1.5
	}
	if f.seen[fContentType] {
		v, params := parseValue(f.val[fContentType])
		if t, s, ok := strings.Cut(v, "/"); ok && isToken(t) && isToken(s) {
			p.Type, p.Subtype, p.Params = strings.ToLower(t), strings.ToLower(s), params
		} else {
			// RFC 2045 5.2: a syntactically invalid Content-Type means text/plain.
			p.Type, p.Subtype = "text", "plain"
			p.Params = []Param{{"charset", "us-ascii"}}
		}
	}
	p.Encoding = "7bit" // RFC 2045 6.1
	if v, _ := parseValue(f.val[fEncoding]); v != "" {
		p.Encoding = strings.ToLower(v)
	}
	p.ID = f.val[fID]
	p.Description = f.val[fDescription]
	p.MD5 = f.val[fMD5]
	p.Location = f.val[fLocation]
	if f.seen[fDisposition] {
		v, params := parseValue(f.val[fDisposition])
		if v != "" {
			p.Disposition, p.DispParams = strings.ToLower(v), params
		}
	}
	for _, tag := range strings.Split(stripComments(f.val[fLanguage]), ",") {
		if tag = strings.TrimSpace(tag); tag != "" {
			p.Language = append(p.Language, tag)
		}
	}
	if isMsg {
		p.Env = newEnvelope(f)
	}
}

// isToken reports whether s is a non-empty RFC 2045 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// stripComments removes RFC 5322 comments outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && (quoted || depth > 0) && i+1 < len(s):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
		case depth == 0 && c == '"':
			quoted = !quoted
			b.WriteByte(c)
		case !quoted && c == '(':
			depth++
		case !quoted && c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// parseValue parses a MIME structured field: a value followed by
// ";"-separated name=value parameters (RFC 2045 5.1), leniently: comments
// are removed, junk parameters skipped, quoted values unquoted.
func parseValue(s string) (value string, params []Param) {
	s = stripComments(s)
	v, rest, _ := strings.Cut(s, ";")
	value = strings.TrimSpace(v)
	for rest != "" {
		var name string
		var found bool
		name, rest, found = strings.Cut(rest, "=")
		if !found {
			break
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if strings.Contains(name, ";") { // "a; b=c": skip the junk before the last ';'
			name = strings.TrimSpace(name[strings.LastIndexByte(name, ';')+1:])
		}
		rest = strings.TrimLeft(rest, " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			val, rest = unquote(rest)
			_, rest, _ = strings.Cut(rest, ";")
		} else {
			val, rest, _ = strings.Cut(rest, ";")
			val = strings.TrimSpace(val)
		}
		if isToken(name) {
			params = append(params, Param{name, val})
		}
	}
	return value, params
}

// unquote reads a quoted string at the start of s (which begins with '"')
// and returns its content and the rest after the closing quote. An
// unterminated string runs to the end.
func unquote(s string) (val, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		case '\r', '\n':
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// DecodeParam returns the value of parameter name (lower case) from params,
// decoded: RFC 2231 continuations (name*0, name*1*, ...) and charset/
// language forms (name*=utf-8'en'%E2%82%AC) are joined and converted to
// UTF-8, and RFC 2047 encoded words (used by many mailers in file names)
// are decoded. It returns "" when the parameter is absent.
func DecodeParam(params []Param, name string) string {
	for _, p := range params {
		if p.Name == name {
			return DecodeHeader(p.Value)
		}
	}
	for _, p := range params {
		if p.Name == name+"*" {
			return decode2231(p.Value, true)
		}
	}
	type seg struct {
		n   int
		ext bool
		v   string
	}
	var segs []seg
	for _, p := range params {
		rest, ok := strings.CutPrefix(p.Name, name+"*")
		if !ok {
			continue
		}
		ext := strings.HasSuffix(rest, "*")
		n, err := strconv.Atoi(strings.TrimSuffix(rest, "*"))
		if err != nil || n < 0 || n > 999 {
			continue
		}
		segs = append(segs, seg{n, ext, p.Value})
	}
	if len(segs) == 0 {
		return ""
	}
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
	var raw strings.Builder // percent-encoded bytes in the charset of segment 0
	charset := ""
	for i, s := range segs {
		v := s.v
		if i == 0 && s.ext {
			charset, v = split2231(v)
		}
		if s.ext {
			raw.WriteString(v)
		} else {
			raw.WriteString(url.PathEscape(v))
		}
	}
	v, _ := decodeCharset(charset, pctDecode(raw.String()))
	return v
}

// decode2231 decodes an RFC 2231 extended value charset'lang'%XX...
func decode2231(v string, withCharset bool) string {
	charset := ""
	if withCharset {
		charset, v = split2231(v)
	}
	s, _ := decodeCharset(charset, pctDecode(v))
	return s
}

func split2231(v string) (charset, rest string) {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return "", v
	}
	return parts[0], parts[2]
}

// pctDecode decodes %XX escapes leniently (invalid escapes stay as is).
func pctDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return b
}
