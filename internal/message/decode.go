package message

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// DecodeHeader decodes RFC 2047 encoded words in a header value to UTF-8,
// leniently: words are also decoded inside quoted strings and next to other
// text, white space between adjacent encoded words is dropped (RFC 2047 6.2),
// an RFC 2231 language suffix (=?utf-8*en?...) is ignored, and a word with
// an unknown charset or bad encoding is left as it is. Charsets are those of
// the WHATWG Encoding Standard (golang.org/x/text/encoding/htmlindex).
// Invalid UTF-8 in decoded words is replaced by U+FFFD; text outside
// encoded words is returned unchanged.
func DecodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var b strings.Builder
	afterWord := false
	for {
		i := strings.Index(s, "=?")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		text, n, ok := decodeWord(s[i:])
		if !ok {
			b.WriteString(s[:i+2])
			s, afterWord = s[i+2:], false
			continue
		}
		if gap := s[:i]; !afterWord || strings.Trim(gap, " \t\r\n") != "" {
			b.WriteString(gap)
		}
		b.WriteString(text)
		s, afterWord = s[i+n:], true
	}
}

// maxWordLen bounds an encoded word (RFC 2047 2 says 75; mailers exceed it).
const maxWordLen = 4096

// decodeWord decodes the encoded word at the start of s ("=?cs?E?text?=")
// and returns its text and length.
func decodeWord(s string) (text string, n int, ok bool) {
	// A word has no white space (RFC 2047 2) and is short; bounding the
	// search keeps DecodeHeader linear on hostile input.
	w := s[:min(len(s), maxWordLen)]
	if i := strings.IndexAny(w, " \t\r\n"); i >= 0 {
		w = w[:i]
	}
	parts := strings.SplitN(w[2:], "?", 4)
	if len(parts) < 4 || !strings.HasPrefix(parts[3], "=") {
		return "", 0, false
	}
	charset, enc, data := parts[0], parts[1], parts[2]
	if charset == "" || len(enc) != 1 || strings.ContainsAny(data, " \t\r\n") {
		return "", 0, false
	}
	charset, _, _ = strings.Cut(charset, "*") // RFC 2231 5
	var raw []byte
	switch enc {
	case "B", "b":
		var err error
		raw, err = base64.StdEncoding.DecodeString(data)
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "="))
		}
		if err != nil {
			return "", 0, false
		}
	case "Q", "q":
		raw = qDecode(data)
	default:
		return "", 0, false
	}
	text, ok = decodeCharset(charset, raw)
	if !ok {
		return "", 0, false
	}
	return text, 2 + len(parts[0]) + 1 + len(enc) + 1 + len(data) + 2, true
}

// qDecode decodes RFC 2047 4.2 "Q" text; bad escapes stay as they are.
func qDecode(s string) []byte {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '_':
			b = append(b, ' ')
		case c == '=' && i+2 < len(s):
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b = append(b, byte(v))
				i += 2
				continue
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// decodeCharset converts b from charset to UTF-8. ok is false for an
// unknown charset; the text then has invalid UTF-8 replaced.
func decodeCharset(charset string, b []byte) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return strings.ToValidUTF8(string(b), string(utf8.RuneError)), true
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return strings.ToValidUTF8(string(b), string(utf8.RuneError)), false
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), string(utf8.RuneError)), false
	}
	return strings.ToValidUTF8(string(out), string(utf8.RuneError)), true
}
