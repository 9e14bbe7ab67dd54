package message

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func extract(t testing.TB, msg string, limit int) Text {
	t.Helper()
	tx, err := ExtractText(strings.NewReader(msg), int64(len(msg)), limit)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestExtractText(t *testing.T) {
	const mixed = "From: =?ISO-8859-1?Q?J=F6rg?= <j@example.org>\r\n" +
		"Subject: =?UTF-8?B?w4RyZ2VyIG1pdCBkZW0gQsO8cm8=?=\r\n" +
		"X-Folded: one\r\n two\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"preamble is not text\r\n" +
		"--b1\r\n" +
		"Content-Type: multipart/alternative; boundary=b2\r\n\r\n" +
		"--b2\r\n" +
		"Content-Type: text/plain; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Gr=FC=DFe aus K=F6ln, soft=\r\nbreak, =3D sign, bad =ZZ escape\r\n" +
		"--b2\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		"PGh0bWw+PGhlYWQ+PHN0eWxlPnAge2NvbG9yOnJlZH08L3N0eWxlPjwvaGVhZD48Ym9keT48cD5I\r\n" +
		"dG1sICZhbXA7ICAgPGI+Ym9sZDwvYj50ZXh0PC9wPjxzY3JpcHQ+YWxlcnQoMSk8L3NjcmlwdD48\r\n" +
		"IS0tIGhpZGRlbiAtLT48L2JvZHk+PC9odG1sPg==\r\n" +
		"--b2--\r\n" +
		"--b1\r\n" +
		"Content-Type: image/png; name=\"pic.png\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" +
		"c2VjcmV0IGltYWdlIGJ5dGVz\r\n" +
		"--b1\r\n" +
		"Content-Type: message/rfc822\r\n\r\n" +
		"Subject: inner subject\r\n\r\n" +
		"inner body text\r\n" +
		"--b1--\r\n"
	tx := extract(t, mixed, 1<<20)
	for _, want := range []string{"From: Jörg <j@example.org>\n", "Subject: Ärger mit dem Büro\n",
		"X-Folded: one two\n", "Content-Type: image/png; name=\"pic.png\"\n", "Subject: inner subject\n"} {
		if !strings.Contains(tx.Header, want) {
			t.Errorf("header text lacks %q:\n%s", want, tx.Header)
		}
	}
	for _, want := range []string{"Grüße aus Köln, softbreak, = sign, bad =ZZ escape\n",
		"Html & boldtext", "inner body text"} {
		if !strings.Contains(tx.Body, want) {
			t.Errorf("body text lacks %q:\n%q", want, tx.Body)
		}
	}
	for _, unwanted := range []string{"preamble", "secret image", "color:red", "alert", "hidden", "<p>", "\r"} {
		if strings.Contains(tx.Body, unwanted) {
			t.Errorf("body text has %q:\n%q", unwanted, tx.Body)
		}
	}
	if strings.Contains(tx.Body, "inner subject") {
		t.Error("a header is in the body text")
	}
}

func TestExtractTextCharsets(t *testing.T) {
	for _, tc := range []struct{ charset, body, want string }{
		{"", "caf\xe9 and caf\xc3\xa9", "café and café"},          // lenient: UTF-8 where valid, Latin-1 else
		{"x-unknown", "na\xefve", "naïve"},                        // unknown charset: lenient
		{"us-ascii", "r\xc3\xa9sum\xc3\xa9", "résumé"},            // 8-bit UTF-8 mislabelled as ASCII
		{"windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", "Привет"},    // a known charset
		{"utf-8", "ctl\x00\x07chars\r\nline", "ctl  chars\nline"}, // controls and CRLF
		{"ISO-8859-15", "\xa4 5", "€ 5"},                          // known, upper case name
		{"utf-16le", "h\x00i\x00", "hi"},                          // multi-byte charset
		{"iso-2022-jp", "\x1b$B$3$s$K$A$O\x1b(B", "こんにちは"},        // stateful charset
	} {
		msg := "Content-Type: text/plain; charset=\"" + tc.charset + "\"\r\n\r\n" + tc.body
		if got := extract(t, msg, 1<<20).Body; got != tc.want {
			t.Errorf("charset %q: body %q, want %q", tc.charset, got, tc.want)
		}
	}
}

func TestExtractTextLimit(t *testing.T) {
	msg := "Subject: hello\r\n\r\n" + strings.Repeat("ä", 1000)
	tx := extract(t, msg, 100)
	if n := len(tx.Header) + len(tx.Body); n > 100 || !utf8.ValidString(tx.Body) || tx.Header != "Subject: hello\n" {
		t.Errorf("limited text: %d bytes, header %q, body %q", n, tx.Header, tx.Body)
	}
	// A huge body is not read whole.
	big := "Content-Transfer-Encoding: base64\r\n\r\n" + strings.Repeat("QUJD", 1<<18)
	if tx := extract(t, big, 1000); len(tx.Body) > 1000-len(tx.Header) || !strings.HasPrefix(tx.Body, "ABCABC") {
		t.Errorf("big body: %d bytes", len(tx.Body))
	}
}

func TestDecodeBase64Lenient(t *testing.T) {
	for in, want := range map[string]string{
		"aGVsbG8=":             "hello",
		"aGVs\r\nbG8":          "hello",
		"aGVs*bG8=":            "hello",
		"aGk=aGk=":             "hihi",
		"aGVsbG8gd29ybGQ=====": "hello world",
		"":                     "",
	} {
		if got := string(decodeBase64([]byte(in))); got != want {
			t.Errorf("decodeBase64(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeQPLenient(t *testing.T) {
	for in, want := range map[string]string{
		"a=3Db":         "a=b",
		"a=3db":         "a=b",
		"soft=\r\nwrap": "softwrap",
		"soft=  \nwrap": "softwrap",
		"end=":          "end",
		"bad=G1":        "bad=G1",
		"short=4":       "short=4",
	} {
		if got := string(decodeQP([]byte(in))); got != want {
			t.Errorf("decodeQP(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderText(t *testing.T) {
	got := HeaderText([]byte("Return-Path: <a@example.org>\r\nDelivered-To: b@example.com\r\nnot a field\r\n"))
	if got != "Return-Path: <a@example.org>\nDelivered-To: b@example.com\n" {
		t.Errorf("HeaderText = %q", got)
	}
}

func TestFold(t *testing.T) {
	for _, tc := range []struct{ text, sub string }{
		{"Hello World", "hello WORLD"},
		{"GRÜSSE", "grüsse"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"},
		{"Kelvin \u212a", "kelvin k"},
		{"long \u017f", "LONG S"},
		{"ǅ digraph", "ǆ DIGRAPH"},
	} {
		if !strings.Contains(Fold(tc.text), Fold(tc.sub)) {
			t.Errorf("Fold: %q does not contain %q (%q, %q)", tc.text, tc.sub, Fold(tc.text), Fold(tc.sub))
		}
		if !strings.EqualFold(tc.text, tc.sub) && len([]rune(tc.text)) == len([]rune(tc.sub)) {
			t.Errorf("test case %q/%q is not an EqualFold pair", tc.text, tc.sub)
		}
	}
	// Simple folding only (as strings.EqualFold): no multi-rune mappings.
	if strings.Contains(Fold("STRASSE"), Fold("straße")) {
		t.Error("ß folded to ss")
	}
	if Fold("a\xffb") != "a\uFFFDb" {
		t.Errorf("Fold of invalid UTF-8 = %q", Fold("a\xffb"))
	}
}

// Fold agrees with strings.EqualFold rune by rune over the BMP.
func TestFoldMatchesEqualFold(t *testing.T) {
	for r := rune(0); r < 0x10000; r++ {
		if r >= 0xd800 && r < 0xe000 {
			continue
		}
		f := foldRune(r)
		if !strings.EqualFold(string(r), string(f)) {
			t.Fatalf("foldRune(%U) = %U, not EqualFold", r, f)
		}
		if u := foldRune(f); u != f {
			t.Fatalf("foldRune not idempotent at %U", r)
		}
	}
}

func FuzzExtractText(f *testing.F) {
	f.Add([]byte("Subject: =?utf-8?q?x?=\r\nContent-Type: text/html\r\n\r\n<p>a&amp;b</p>"))
	f.Add([]byte("Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--x--\r\n"))
	f.Add([]byte("Content-Type: text/plain; charset=utf-16be\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=00a=\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := ExtractText(bytes.NewReader(b), int64(len(b)), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(tx.Header)+len(tx.Body) > 4096 || !utf8.ValidString(tx.Header) || !utf8.ValidString(tx.Body) {
			t.Fatalf("bad text: %d+%d bytes", len(tx.Header), len(tx.Body))
		}
	})
}
