package message

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadHeaderRemoveBcc(t *testing.T) {
	in := "From: a@example.com\r\n" +
		"To: b@example.com\r\n" +
		"Bcc: secret@example.com,\r\n\tother@example.com\r\n" +
		"bcc : third@example.com\r\n" +
		"Subject: hi\r\n" +
		"\r\n" +
		"Bcc: this is body text\r\n"
	r := bufio.NewReader(strings.NewReader(in))
	h, err := ReadHeader(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.Values("BCC"); !reflect.DeepEqual(got, []string{"secret@example.com,\tother@example.com", "third@example.com"}) {
		t.Errorf("Values(Bcc) = %q", got)
	}
	if h.Get("subject") != "hi" || h.Get("X-None") != "" {
		t.Errorf("Get: %q %q", h.Get("subject"), h.Get("X-None"))
	}
	var all bytes.Buffer
	if _, err := h.WriteTo(&all); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if all.String()+string(rest) != in {
		t.Fatalf("header+rest does not reproduce the input:\n%q", all.String()+string(rest))
	}
	if n := h.Del("Bcc"); n != 2 {
		t.Errorf("Del removed %d, want 2", n)
	}
	var out bytes.Buffer
	h.WriteTo(&out)
	want := "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\n"
	if out.String() != want || h.Len() != len(want) {
		t.Errorf("after Del: %q (Len %d)", out.String(), h.Len())
	}
}

func TestReadHeaderOddInput(t *testing.T) {
	tests := []struct {
		name, in string
		fields   []string // names
		sep      string
	}{
		{"lf", "A: 1\nB: 2\n\nbody", []string{"A", "B"}, "\n"},
		{"eof", "A: 1\r\nB: 2", []string{"A", "B"}, ""},
		{"empty", "", nil, ""},
		{"no header", "\r\nbody", nil, "\r\n"},
		{"junk line", "From x@y Mon\r\nA: 1\r\n\r\n", []string{"", "A"}, "\r\n"},
		{"leading continuation", " x\r\nA: 1\r\n\r\n", []string{"", "A"}, "\r\n"},
	}
	for _, tt := range tests {
		r := bufio.NewReader(strings.NewReader(tt.in))
		h, err := ReadHeader(r, 1000)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var names []string
		for _, f := range h.Fields {
			names = append(names, f.Name)
		}
		if !reflect.DeepEqual(names, tt.fields) || string(h.Sep) != tt.sep {
			t.Errorf("%s: fields %q sep %q", tt.name, names, h.Sep)
		}
		var buf bytes.Buffer
		h.WriteTo(&buf)
		rest, _ := io.ReadAll(r)
		if buf.String()+string(rest) != tt.in {
			t.Errorf("%s: not reproduced", tt.name)
		}
	}
}

func TestReadHeaderTooLong(t *testing.T) {
	in := "A: " + strings.Repeat("x", 5000) + "\r\nB: 2\r\n\r\nbody"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	h, err := ReadHeader(r, 100)
	if !errors.Is(err, ErrHeaderTooLong) {
		t.Fatalf("err = %v", err)
	}
	var buf bytes.Buffer
	h.WriteTo(&buf)
	if buf.Len() > 100+16 {
		t.Errorf("read %d bytes past a limit of 100", buf.Len())
	}
	rest, _ := io.ReadAll(r)
	if buf.String()+string(rest) != in {
		t.Error("bytes lost on ErrHeaderTooLong")
	}
}
