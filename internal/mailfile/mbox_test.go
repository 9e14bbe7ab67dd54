package mailfile

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestCRLFReader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"a\rb\r", "a\rb\r"},
		{"a\r\r\nb", "a\r\r\nb"},
		{"no newline", "no newline"},
	}
	for _, tt := range tests {
		for _, one := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if one {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(CRLFReader(r))
			if err != nil || string(got) != tt.want {
				t.Errorf("CRLFReader(%q) one=%v = %q, %v; want %q", tt.in, one, got, err, tt.want)
			}
		}
	}
	if err := iotest.TestReader(CRLFReader(strings.NewReader("x\ny\r\nz\n")), []byte("x\r\ny\r\nz\r\n")); err != nil {
		t.Error(err)
	}
}

type readMsg struct {
	From  string
	Date  time.Time
	Flags []string
	Body  string
}

func readAllMbox(t testing.TB, data string) []readMsg {
	t.Helper()
	r := NewMboxReader(strings.NewReader(data))
	var out []readMsg
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		b, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatalf("Body: %v", err)
		}
		out = append(out, readMsg{m.From, m.Date, m.Flags, string(b)})
	}
}

func TestMboxRead(t *testing.T) {
	data := "\n" +
		"From alice@example.com Mon Jan  2 15:04:05 2006\n" +
		"Status: RO\n" +
		"X-Status: AF\n" +
		"Subject: one\n" +
		"\n" +
		">From here, quoted\n" +
		">>From twice\n" +
		"From: not a separator? no: it is not at 'From ' (colon)\n" +
		"\n" +
		"\n" +
		"From MAILER-DAEMON Tue Feb 3 04:05:06 2009 +0100\n" +
		"Subject: two\r\n" +
		"\r\n" +
		"crlf body\r\n" +
		"\n" +
		"From bob@example.com Wed, 4 Mar 2015 10:00:00 +0000\n" +
		"Subject: three\n" +
		"\n" +
		"last, no final newline"
	got := readAllMbox(t, data)
	want := []readMsg{
		{"alice@example.com", time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), []string{FlagAnswered, FlagFlagged, FlagSeen},
			"Status: RO\r\nX-Status: AF\r\nSubject: one\r\n\r\nFrom here, quoted\r\n>From twice\r\n" +
				"From: not a separator? no: it is not at 'From ' (colon)\r\n\r\n"},
		{"", time.Date(2009, 2, 3, 4, 5, 6, 0, time.FixedZone("", 3600)), nil, "Subject: two\r\n\r\ncrlf body\r\n"},
		{"bob@example.com", time.Date(2015, 3, 4, 10, 0, 0, 0, time.UTC), nil, "Subject: three\r\n\r\nlast, no final newline"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.From != w.From || !g.Date.Equal(w.Date) || !reflect.DeepEqual(g.Flags, w.Flags) || g.Body != w.Body {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestMboxNotMbox(t *testing.T) {
	for _, in := range []string{"Subject: x\n\nbody\n", "\n\nhello\n"} {
		if _, err := NewMboxReader(strings.NewReader(in)).Next(); !errors.Is(err, ErrNotMbox) {
			t.Errorf("%q: err = %v, want ErrNotMbox", in, err)
		}
	}
	if _, err := NewMboxReader(strings.NewReader("\n\n")).Next(); err != io.EOF {
		t.Errorf("empty mbox: err = %v, want io.EOF", err)
	}
}

func TestMboxSkipsUnreadBodies(t *testing.T) {
	data := "From a Mon Jan 2 15:04:05 2006\nS: 1\n\nbody1\n\nFrom b Mon Jan 2 15:04:05 2006\nS: 2\n\nbody2\n"
	r := NewMboxReader(strings.NewReader(data))
	m1, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	io.ReadFull(m1.Body, buf) // read a little only
	m2, err := r.Next()
	if err != nil || m2.From != "b" {
		t.Fatalf("second message: %v %+v", err, m2)
	}
	if n, err := m1.Body.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("stale body read: %d, %v", n, err)
	}
	b, _ := io.ReadAll(m2.Body)
	if string(b) != "S: 2\r\n\r\nbody2\r\n" {
		t.Errorf("body2 = %q", b)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last: %v", err)
	}
}

func TestMboxRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 70000) + "\r\n" + strings.Repeat("y", 64<<10-1) + "\r\n" // CRLF split across buffers
	bodies := []string{
		"Subject: a\r\n\r\nFrom the start\r\n>From quoted\r\n>>From twice\r\nFromage\r\n",
		"Subject: b\r\n\r\nends with empty lines\r\n\r\n\r\n",
		"",
		"Subject: c\r\n\r\n" + long,
		"Subject: d\r\n\r\nbare\rCR\r\n",
		"From x@y Mon Jan 2 15:04:05 2006\r\nSubject: e\r\n\r\nbody starting with From line\r\n",
	}
	var buf bytes.Buffer
	w := NewMboxWriter(&buf)
	date := time.Date(2024, 10, 5, 7, 8, 9, 0, time.UTC)
	for i, b := range bodies {
		from := "sender@example.com"
		if i == 2 {
			from = ""
		}
		if err := w.Write(&Message{Body: strings.NewReader(b), From: from, Date: date}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("\r\n")) {
		t.Error("CRLF left in mbox output")
	}
	if !strings.HasPrefix(buf.String(), "From sender@example.com Sat Oct  5 07:08:09 2024\nSubject: a\n\n>From the start\n>>From quoted\n>>>From twice\nFromage\n\n") {
		t.Errorf("unexpected mbox text:\n%.200s", buf.String())
	}
	got := readAllMbox(t, buf.String())
	if len(got) != len(bodies) {
		t.Fatalf("read %d messages, want %d", len(got), len(bodies))
	}
	for i, b := range bodies {
		if got[i].Body != b {
			t.Errorf("message %d: body %.80q, want %.80q", i, got[i].Body, b)
		}
		if !got[i].Date.Equal(date) {
			t.Errorf("message %d: date %v", i, got[i].Date)
		}
	}
	if got[2].From != "" || got[0].From != "sender@example.com" {
		t.Errorf("senders %q %q", got[0].From, got[2].From)
	}
}

func TestMboxWriterNormalises(t *testing.T) {
	var buf bytes.Buffer
	w := NewMboxWriter(&buf)
	w.Write(&Message{Body: strings.NewReader("no final newline"), From: "a b"})
	w.Flush()
	want := "From a_b Thu Jan  1 00:00:00 1970\nno final newline\n\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

// mboxGen generates an mbox with one message of n body lines.
type mboxGen struct {
	head  string
	line  string
	lines int
	pos   int
}

func (g *mboxGen) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if g.pos < len(g.head) {
			k := copy(p[n:], g.head[g.pos:])
			n, g.pos = n+k, g.pos+k
			continue
		}
		if g.lines == 0 {
			break
		}
		off := (g.pos - len(g.head)) % len(g.line)
		k := copy(p[n:], g.line[off:])
		n, g.pos = n+k, g.pos+k
		if off+k == len(g.line) {
			g.lines--
		}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func TestMboxBoundedMemory(t *testing.T) {
	for _, line := range []string{"a line of body text\n", strings.Repeat("z", 1<<20) + "\n"} {
		g := &mboxGen{head: "From a Mon Jan 2 15:04:05 2006\nSubject: big\n\n", line: line, lines: (20 << 20) / len(line)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewMboxReader(g)
		m, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, m.Body)
		runtime.ReadMemStats(&after)
		if err != nil || n < 19<<20 {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
			t.Errorf("reading a 20 MB message allocated %d bytes", alloc)
		}
	}
}

func FuzzMboxReader(f *testing.F) {
	f.Add([]byte("From a Mon Jan 2 15:04:05 2006\nStatus: R\n\n>From x\nFrom b\n\n"), []byte("From x\r\n>From\r\n\r\n"))
	f.Add([]byte("\n\nFrom \r\n\r\nFrom \n"), []byte(""))
	f.Add([]byte("junk"), []byte("a\rb\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data, body []byte) {
		// Reading arbitrary data never panics and always terminates.
		r := NewMboxReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			m, err := r.Next()
			if err != nil {
				break
			}
			if i%2 == 0 {
				io.Copy(io.Discard, m.Body)
			}
		}
		// A CRLF-clean body round-trips through the writer and the reader.
		clean := strings.ReplaceAll(strings.ReplaceAll(string(body), "\r", ""), "\n", "\r\n")
		if clean != "" && !strings.HasSuffix(clean, "\r\n") {
			clean += "\r\n"
		}
		var buf bytes.Buffer
		w := NewMboxWriter(&buf)
		w.Write(&Message{Body: strings.NewReader(clean), From: "x"})
		w.Write(&Message{Body: strings.NewReader(clean), From: "y"})
		w.Flush()
		got := readAllMbox(t, buf.String())
		if len(got) != 2 || got[0].Body != clean || got[1].Body != clean {
			t.Fatalf("round trip of %q gave %+v", clean, got)
		}
	})
}
