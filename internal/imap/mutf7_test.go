package imap

import (
	"errors"
	"testing"
)

func TestMUTF7(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"日本語", "&ZeVnLIqe-"}, // RFC 3501 5.1.3
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, // RFC 3501 5.1.3
		{"&", "&-"},
		{"A&B&&", "A&-B&-&-"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"é&", "&AOk-&-"},
		{"&é", "&-&AOk-"},
		{"é-", "&AOk--"},
		{"a\tb", "a&AAk-b"},
		{"\x7f", "&AH8-"},
		{"😀", "&2D3eAA-"}, // surrogate pair
		{"Ελληνικά", "&A5UDuwO7A7cDvQO5A7oDrA-"},
	}
	for _, tc := range tests {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		got, err := DecodeMUTF7(tc.mutf7)
		if err != nil || got != tc.utf8 {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", tc.mutf7, got, err, tc.utf8)
		}
	}
}

func TestMUTF7Invalid(t *testing.T) {
	for _, bad := range []string{
		"&",            // unterminated
		"&ZeVn",        // unterminated
		"a&AOk",        // unterminated
		"&&-",          // '&' inside a shift
		"&ZeV&-nLIqe-", // "&-" inside a shift
		"&AGE-",        // 'a' (printable ASCII) encoded
		"&ACY-",        // '&' encoded
		"&AOk-&AOk-",   // adjacent shifts (canonical: &AOkA6Q-)
		"&AOl-",        // non-zero padding bits
		"&AOkA-",       // excess: 30 bits, 14 left over
		"&AO-",         // 12 bits: not a whole UTF-16 unit
		"&A-",          // 6 bits
		"&AOkA6QA-",    // 7 chars: 42 bits = 5 bytes, odd
		"&2D0-",        // lone high surrogate
		"&3gA-",        // lone low surrogate
		"&2D3YPQ-",     // high surrogate followed by high surrogate
		"&U/BTFw-",     // '/' instead of ','
		"&U=-",         // padding char
		"&AO\nk-",      // newline in shift (base64 decoders skip it)
		"Entwürfe",     // 8-bit
		"a\tb",         // control character
	} {
		if got, err := DecodeMUTF7(bad); err == nil || !errors.Is(err, ErrMUTF7) {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want an error", bad, got, err)
		}
	}
}

func TestMUTF7InvalidUTF8Input(t *testing.T) {
	if got := EncodeMUTF7("a\xffb"); got != "a&,,0-b" {
		t.Errorf("EncodeMUTF7 invalid UTF-8 = %q", got)
	}
}
