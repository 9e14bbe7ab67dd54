package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"pillarbox/bench/internal/loadutil"
	"strings"
	"testing"
)

func TestLiteralLen(t *testing.T) {
	for _, c := range []struct {
		in    string
		n     int64
		isLit bool
	}{
		{"* 1 FETCH (BODY[] {123}", 123, true},
		{"A1 APPEND x {5+}", 5, true},
		{"* 1 FETCH (BINARY[] ~{7}", 7, true},
		{"* OK done", 0, false},
		{"* 1 FETCH (X {abc}", 0, false},
		{"}", 0, false},
	} {
		n, ok := literalLen([]byte(c.in))
		if n != c.n || ok != c.isLit {
			t.Errorf("literalLen(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.isLit)
		}
	}
}

func TestResponseParsers(t *testing.T) {
	if n, ok := searchCount([]byte("* SEARCH 1 5 9")); n != 3 || !ok {
		t.Errorf("SEARCH: %d %v", n, ok)
	}
	if n, ok := searchCount([]byte("* SEARCH")); n != 0 || !ok {
		t.Errorf("empty SEARCH: %d %v", n, ok)
	}
	if n, ok := searchCount([]byte("* ESEARCH (TAG \"A1\") UID ALL 1:3,7,10:9")); n != 6 || !ok {
		t.Errorf("ESEARCH ALL: %d %v", n, ok)
	}
	if _, ok := searchCount([]byte("* 3 EXISTS")); ok {
		t.Error("EXISTS taken for SEARCH")
	}
	if got := fetchUID([]byte(`* 7 FETCH (FLAGS (\Seen) UID 42 ENVELOPE (NIL))`)); got != 42 {
		t.Errorf("fetchUID = %d", got)
	}
	if got := fetchUID([]byte(`* 7 FETCH (UID 9)`)); got != 9 {
		t.Errorf("fetchUID first item = %d", got)
	}
	if fetchSeq([]byte("* 12 FETCH (UID 1)")) != 12 || fetchSeq([]byte("* 12 EXISTS")) != 0 {
		t.Error("fetchSeq")
	}
}

// TestReadResp: a response with two literals is one response whose
// literal octets are counted and skipped.
func TestReadResp(t *testing.T) {
	in := "* 1 FETCH (BODY[] {5}\r\nab\r\nc ENVELOPE ({3}\r\nxyz NIL))\r\nA1 OK done\r\n"
	c := &client{Conn: &loadutil.Conn{R: bufio.NewReader(strings.NewReader(in))}}
	line, lit, err := c.readResp(nil)
	if err != nil || lit != 8 || string(line) != "* 1 FETCH (BODY[] {5} ENVELOPE ({3} NIL))" {
		t.Fatalf("readResp = %q, %d, %v", line, lit, err)
	}
	line, _, err = c.readResp(nil)
	if err != nil || string(line) != "A1 OK done" {
		t.Fatalf("second readResp = %q, %v", line, err)
	}
}

// TestGenerator: messages are deterministic, parse as MIME, and the body
// needles are in exactly the messages the queries expect once the parts
// are decoded (what a server's SEARCH BODY sees).
func TestGenerator(t *testing.T) {
	a, da, fa := genMessage(1, 17)
	b, db, fb := genMessage(1, 17)
	if !bytes.Equal(a, b) || !da.Equal(db) || fa != fb {
		t.Fatal("genMessage is not deterministic")
	}
	for i := 0; i < 120; i++ {
		raw, _, _ := genMessage(1, i)
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		text := strings.ToLower(decodedText(t, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body))
		for _, q := range bodyQueries {
			if got := strings.Contains(text, q.Text); got != q.hit(i) {
				t.Errorf("message %d: %s found=%v, want %v", i, q, got, q.hit(i))
			}
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("message %d subject: %v", i, err)
		}
		for _, q := range headerQueries {
			if q.Key == "SUBJECT" && strings.Contains(strings.ToLower(subj), q.Text) != q.hit(i) {
				t.Errorf("message %d: %s in %q: want %v", i, q, subj, q.hit(i))
			}
		}
	}
}

// decodedText returns the decoded text/* parts of a body.
func decodedText(t *testing.T, ctype, cte string, body io.Reader) string {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		var out strings.Builder
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return out.String()
			}
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(decodedText(t, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p))
		}
	}
	if !strings.HasPrefix(mt, "text/") {
		return ""
	}
	var r io.Reader = body
	switch strings.ToLower(cte) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
