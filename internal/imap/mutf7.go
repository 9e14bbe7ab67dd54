package imap

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// RFC 3501 5.1.3: modified BASE64 of RFC 2045 with ',' for '/', no padding.
const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var mutf7Enc = base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding).Strict()

// ErrMUTF7 is returned (wrapped) by DecodeMUTF7 for text that is not
// canonical modified UTF-7.
var ErrMUTF7 = errors.New("imap: invalid modified UTF-7")

func mutf7Err(msg string) error { return errors.Join(ErrMUTF7, errors.New(msg)) }

func isPrintable(c rune) bool { return c >= 0x20 && c <= 0x7e }

// EncodeMUTF7 encodes a UTF-8 mailbox name in modified UTF-7 (RFC 3501
// 5.1.3): printable ASCII as itself except '&' as "&-", every maximal run
// of other characters as "&" modified-BASE64(UTF-16BE) "-". Invalid UTF-8
// bytes are encoded as U+FFFD.
func EncodeMUTF7(s string) string {
	var b strings.Builder
	var units []uint16
	for i := 0; i < len(s); {
		if c := s[i]; isPrintable(rune(c)) {
			if c == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		units = units[:0]
		for i < len(s) && !isPrintable(rune(s[i])) {
			r, size := utf8.DecodeRuneInString(s[i:])
			units = utf16.AppendRune(units, r)
			i += size
		}
		raw := make([]byte, 0, 2*len(units))
		for _, u := range units {
			raw = append(raw, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7Enc.EncodeToString(raw))
		b.WriteByte('-')
	}
	return b.String()
}

// DecodeMUTF7 decodes a modified UTF-7 mailbox name (RFC 3501 5.1.3) to
// UTF-8. It accepts only the canonical form EncodeMUTF7 produces, so that
// EncodeMUTF7(DecodeMUTF7(x)) == x: refused are bytes outside printable
// ASCII, an unterminated shift, characters outside the modified BASE64
// alphabet, printable ASCII inside a shift, two adjacent shifts, non-zero
// or excess padding bits, an odd number of bytes and unpaired surrogates.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	afterShift := false
	for i := 0; i < len(s); {
		c := s[i]
		if !isPrintable(rune(c)) {
			return "", mutf7Err("byte outside printable ASCII")
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			afterShift = false
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", mutf7Err("unterminated shift")
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			afterShift = false
			continue
		}
		if afterShift {
			return "", mutf7Err("adjacent shifted sequences")
		}
		if err := decodeShift(&b, enc); err != nil {
			return "", err
		}
		afterShift = true
	}
	return b.String(), nil
}

// decodeShift decodes the modified BASE64 between '&' and '-'.
func decodeShift(b *strings.Builder, enc string) error {
	for i := 0; i < len(enc); i++ {
		if strings.IndexByte(mutf7Alphabet, enc[i]) < 0 {
			return mutf7Err("character outside modified BASE64")
		}
	}
	raw, err := mutf7Enc.DecodeString(enc)
	if err != nil || len(raw)%2 != 0 || len(raw) == 0 {
		return mutf7Err("bad modified BASE64 length or padding")
	}
	for j := 0; j < len(raw); j += 2 {
		u := rune(raw[j])<<8 | rune(raw[j+1])
		r := u
		switch {
		case u >= 0xd800 && u < 0xdc00:
			if j+3 >= len(raw) {
				return mutf7Err("unpaired surrogate")
			}
			u2 := rune(raw[j+2])<<8 | rune(raw[j+3])
			if r = utf16.DecodeRune(u, u2); r == utf8.RuneError {
				return mutf7Err("unpaired surrogate")
			}
			j += 2
		case u >= 0xdc00 && u < 0xe000:
			return mutf7Err("unpaired surrogate")
		case isPrintable(u):
			return mutf7Err("printable ASCII inside a shift")
		}
		b.WriteRune(r)
	}
	return nil
}
