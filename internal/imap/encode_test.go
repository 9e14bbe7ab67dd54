package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func written(t *testing.T, utf8 bool, f func(w *Writer)) string {
	t.Helper()
	var b bytes.Buffer
	w := NewWriter(&b)
	w.SetUTF8(utf8)
	f(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestWriterGolden(t *testing.T) {
	long := strings.Repeat("a", 1001)
	tests := []struct {
		name string
		utf8 bool
		f    func(w *Writer)
		want string
	}{
		{"fetch line", false, func(w *Writer) {
			w.Raw("* ").Number(12).SP().Atom("FETCH").SP().Open().Atom("UID").SP().Number(4294967295).SP().
				Atom("FLAGS").SP().Open().Atom(`\Seen`).SP().Atom("$Junk").Close().Close().CRLF()
		}, "* 12 FETCH (UID 4294967295 FLAGS (\\Seen $Junk))\r\n"},
		{"quoted", false, func(w *Writer) { w.String("hello world") }, `"hello world"`},
		{"quoted empty", false, func(w *Writer) { w.String("") }, `""`},
		{"escapes", false, func(w *Writer) { w.String(`a"b\c`) }, `"a\"b\\c"`},
		{"tab and ctl quoted", false, func(w *Writer) { w.String("a\tb\x01") }, "\"a\tb\x01\""},
		{"CRLF literal", false, func(w *Writer) { w.String("a\r\nb") }, "{4}\r\na\r\nb"},
		{"LF literal", false, func(w *Writer) { w.String("a\nb") }, "{3}\r\na\nb"},
		{"NUL literal", false, func(w *Writer) { w.String("a\x00") }, "{2}\r\na\x00"},
		{"8bit literal", false, func(w *Writer) { w.String("café") }, "{5}\r\ncafé"},
		{"8bit quoted utf8", true, func(w *Writer) { w.String("café") }, `"café"`},
		{"invalid utf8 literal", true, func(w *Writer) { w.String("caf\xe9") }, "{4}\r\ncaf\xe9"},
		{"1000 quoted", false, func(w *Writer) { w.String(long[:1000]) }, `"` + long[:1000] + `"`},
		{"1001 literal", false, func(w *Writer) { w.String(long) }, "{1001}\r\n" + long},
		{"nstring nil", false, func(w *Writer) { w.NString(nil) }, "NIL"},
		{"nstring", false, func(w *Writer) { s := "NIL"; w.NString(&s) }, `"NIL"`},
		{"astring atom", false, func(w *Writer) { w.AString("Sent.2024-01") }, "Sent.2024-01"},
		{"astring nil", false, func(w *Writer) { w.AString("nil") }, `"nil"`},
		{"astring empty", false, func(w *Writer) { w.AString("") }, `""`},
		{"astring space", false, func(w *Writer) { w.AString("a b") }, `"a b"`},
		{"astring wildcard", false, func(w *Writer) { w.AString("a%") }, `"a%"`},
		{"astring bracket", false, func(w *Writer) { w.AString("[Gmail]") }, `"[Gmail]"`},
		{"astring brace", false, func(w *Writer) { w.AString("a{1}") }, `"a{1}"`},
		{"mailbox inbox", false, func(w *Writer) { w.Mailbox("inbox") }, "INBOX"},
		{"mailbox mutf7", false, func(w *Writer) { w.Mailbox("~peter/mail/台北/日本語") }, "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"mailbox amp", false, func(w *Writer) { w.Mailbox("A&B") }, "A&-B"},
		{"mailbox space", false, func(w *Writer) { w.Mailbox("Entwürfe alt") }, `"Entw&APw-rfe alt"`},
		{"mailbox utf8", true, func(w *Writer) { w.Mailbox("Entwürfe") }, `"Entwürfe"`},
		{"mailbox utf8 ascii", true, func(w *Writer) { w.Mailbox("A&B") }, "A&B"},
		{"literal", false, func(w *Writer) { w.Literal([]byte("abc")) }, "{3}\r\nabc"},
		{"literal from", false, func(w *Writer) { w.LiteralFrom(strings.NewReader("abcdef"), 4, false) }, "{4}\r\nabcd"},
		{"literal8 from", false, func(w *Writer) { w.LiteralFrom(strings.NewReader("a\x00b"), 3, true) }, "~{3}\r\na\x00b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := written(t, tc.utf8, tc.f); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The quoted strings the Writer makes decode back to the same text.
func TestWriterDecoderRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", `a"b\c`, "a\r\nb", "café", strings.Repeat("x", 2000), "NIL", "a b (c)"} {
		out := written(t, false, func(w *Writer) { w.Raw("A1 X ").String(s).SP().AString(s).CRLF() })
		d := NewDecoder(bufio.NewReader(strings.NewReader(out)), Limits{}, nil, nil)
		cmd, err := d.ReadCommand()
		if err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		if len(cmd.Args) != 2 || cmd.Args[0].String() != s || cmd.Args[1].String() != s || cmd.Args[1].IsNIL() {
			t.Errorf("%q decoded as %s", s, describeCmd(cmd))
		}
	}
}

type failWriter struct{}

func (f *failWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterErrors(t *testing.T) {
	w := NewWriter(&failWriter{})
	w.Raw(strings.Repeat("x", 5000)).String("after")
	if w.Err() == nil || w.Flush() == nil {
		t.Fatal("write error not kept")
	}
	var b bytes.Buffer
	w = NewWriter(&b)
	w.LiteralFrom(strings.NewReader("ab"), 5, false).Raw("more")
	if !errors.Is(w.Err(), io.ErrUnexpectedEOF) {
		t.Fatalf("short literal source: %v", w.Err())
	}
}

func TestIsAtom(t *testing.T) {
	for s, want := range map[string]bool{"abc": true, `\Seen`: false, "$Junk": true, "a]": false, "a[": false,
		"": false, "a b": false, "ü": false, "1:3": true, "*": false, "a\x7f": false} {
		if IsAtom(s) != want {
			t.Errorf("IsAtom(%q) = %v", s, !want)
		}
	}
}
