package message

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func parseBytes(t testing.TB, b []byte) *Part {
	t.Helper()
	p, err := Parse(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

// describe renders what the golden files hold.
func describe(t *testing.T, p *Part, raw []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "BODYSTRUCTURE %s\n", p.BodyStructure(true))
	fmt.Fprintf(&b, "BODY %s\n", p.BodyStructure(false))
	fmt.Fprintf(&b, "ENVELOPE %s\n", p.Envelope().IMAP())
	fmt.Fprintf(&b, "SUBJECT %q\n", DecodeHeader(p.Envelope().Subject))
	b.WriteString("PARTS\n")
	walk(t, &b, p, p, nil, raw)
	return b.String()
}

func walk(t *testing.T, b *strings.Builder, root, p *Part, sec []int, raw []byte) {
	name := "TEXT"
	if len(sec) > 0 {
		parts := make([]string, len(sec))
		for i, n := range sec {
			parts[i] = strconv.Itoa(n)
		}
		name = strings.Join(parts, ".")
		if got := root.Find(sec); got != p {
			t.Errorf("Find(%v) = %p, want %p", sec, got, p)
		}
	}
	line := func(label string, q *Part) {
		body := raw[q.BodyStart:q.End]
		if len(body) > 32 {
			body = body[:32]
		}
		fmt.Fprintf(b, "  %-8s %s/%s hdr=%d body=%d end=%d size=%d lines=%d", label, q.Type, q.Subtype,
			q.HeaderStart, q.BodyStart, q.End, q.Size(), q.Lines)
		if fn := q.FileName(); fn != "" {
			fmt.Fprintf(b, " file=%q", fn)
		}
		fmt.Fprintf(b, " %q\n", body)
	}
	line(name, p)
	node := p
	if p.IsMessage() {
		node = p.Parts[0]
		line(name+"/msg", node)
	}
	if node.IsMultipart() {
		for i, c := range node.Parts {
			walk(t, b, root, c, append(append([]int(nil), sec...), i+1), raw)
		}
	}
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := parseBytes(t, raw)
			checkInvariants(t, p, int64(len(raw)))
			got := describe(t, p, raw)
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("mismatch with %s (run go test -update and review the diff)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			roundTrip(t, p)
		})
	}
}

// checkInvariants checks the offsets of every part.
func checkInvariants(t testing.TB, p *Part, size int64) {
	t.Helper()
	var check func(p *Part, lo, hi int64, depth int)
	check = func(p *Part, lo, hi int64, depth int) {
		if depth > MaxDepth {
			t.Fatalf("depth %d > MaxDepth", depth)
		}
		if !(lo <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= hi) {
			t.Fatalf("bad offsets %d %d %d outside [%d,%d]", p.HeaderStart, p.BodyStart, p.End, lo, hi)
		}
		if p.Lines < 0 || p.Lines > p.Size() {
			t.Fatalf("bad lines %d for size %d", p.Lines, p.Size())
		}
		if p.IsMultipart() && len(p.Parts) == 0 {
			t.Fatalf("multipart without parts")
		}
		prev := p.BodyStart
		for _, c := range p.Parts {
			if c.HeaderStart < prev {
				t.Fatalf("child at %d before %d", c.HeaderStart, prev)
			}
			check(c, p.BodyStart, p.End, depth+1)
			prev = c.End
		}
	}
	check(p, 0, size, 0)
	if p.HeaderStart != 0 || p.End != size {
		t.Fatalf("root spans [%d,%d), want [0,%d)", p.HeaderStart, p.End, size)
	}
	if p.Env == nil {
		t.Fatal("root without envelope")
	}
}

func roundTrip(t testing.TB, p *Part) {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != formatVersion {
		t.Fatalf("version byte %d", b[0])
	}
	q, err := UnmarshalPart(b)
	if err != nil {
		t.Fatalf("UnmarshalPart: %v", err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip differs:\n%#v\n%#v", p, q)
	}
}

func TestSectionBytes(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\n\r\none\r\n" + // no header
		"--b\r\nContent-Type: text/plain\r\n\r\ntwo\r\n\r\n" + // body ends with an empty line
		"--b\r\nContent-Type: text/plain\r\n\r\n" + // empty body
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ninner body\r\n" +
		"--b--\r\nepilogue\r\n"
	p := parseBytes(t, []byte(raw))
	checkInvariants(t, p, int64(len(raw)))
	tests := []struct {
		sec        []int
		mime, body string
		lines      int64
	}{
		{[]int{1}, "\r\n", "one", 1},
		{[]int{2}, "Content-Type: text/plain\r\n\r\n", "two\r\n", 1},
		{[]int{3}, "Content-Type: text/plain\r\n\r\n", "", 0},
		{[]int{4}, "Content-Type: message/rfc822\r\n\r\n", "Subject: in\r\n\r\ninner body", 3},
		{[]int{4, 1}, "Subject: in\r\n\r\n", "inner body", 1},
	}
	for _, tt := range tests {
		q := p.Find(tt.sec)
		if q == nil {
			t.Fatalf("Find(%v) = nil", tt.sec)
		}
		if tt.sec[0] == 4 && len(tt.sec) == 2 {
			q = p.Find([]int{4}).Parts[0] // the encapsulated message's header
		}
		if got := raw[q.HeaderStart:q.BodyStart]; got != tt.mime {
			t.Errorf("%v header %q, want %q", tt.sec, got, tt.mime)
		}
		if got := raw[q.BodyStart:q.End]; got != tt.body {
			t.Errorf("%v body %q, want %q", tt.sec, got, tt.body)
		}
		if q.Lines != tt.lines {
			t.Errorf("%v lines %d, want %d", tt.sec, q.Lines, tt.lines)
		}
	}
	if env := p.Find([]int{4}).Envelope(); env == nil || env.Subject != "in" {
		t.Errorf("encapsulated envelope %+v", env)
	}
	if p.Find([]int{5}) != nil || p.Find([]int{1, 2}) != nil || p.Find([]int{0}) != nil {
		t.Error("Find of a missing part is not nil")
	}
	if p.Find(nil) != p {
		t.Error("Find(nil) is not the root")
	}
}

func TestFindSinglePart(t *testing.T) {
	p := parseBytes(t, []byte("Subject: x\r\n\r\nbody\r\n"))
	if p.Find([]int{1}) != p || p.Find([]int{2}) != nil || p.Find([]int{1, 1}) != p {
		t.Error("single-part numbering wrong")
	}
}

func TestDecodeHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"=?UTF-8?B?SsO2cmc=?=", "Jörg"},
		{"=?utf-8?q?a_b?= =?utf-8?q?_c?=", "a b c"},
		{"x =?ISO-8859-1?Q?Andr=E9?= y", "x André y"},
		{"=?windows-1252?Q?=80?=", "€"},
		{"=?koi8-r?B?8NLJ18XU?=", "Привет"},
		{"=?unknown-cs?Q?abc?= z", "=?unknown-cs?Q?abc?= z"},
		{"=?utf-8?X?abc?=", "=?utf-8?X?abc?="},
		{"=?utf-8?B?!!!?=", "=?utf-8?B?!!!?="},
		{"=?utf-8*en?Q?hi?=", "hi"},
		{`"=?utf-8?Q?Caf=C3=A9?=" <a@b>`, `"Café" <a@b>`},
		{"=?utf-8?B?SsO2cmc?=", "Jörg"}, // missing padding
		{"=?utf-8?Q?=FF?=", "\uFFFD"},
		{"=?", "=?"},
		{"a =?utf-8?q?x?=\r\n =?utf-8?q?y?= b", "a xy b"},
	}
	for _, tt := range tests {
		if got := DecodeHeader(tt.in); got != tt.want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeParam(t *testing.T) {
	tests := []struct {
		params []Param
		want   string
	}{
		{[]Param{{"filename", "a.txt"}}, "a.txt"},
		{[]Param{{"filename*", "utf-8''%E2%82%AC%20rates.txt"}}, "€ rates.txt"},
		{[]Param{{"filename*", "iso-8859-1'en'caf%E9"}}, "café"},
		{[]Param{{"filename*1", "b.txt"}, {"filename*0*", "utf-8''%C3%A9"}}, "éb.txt"},
		{[]Param{{"filename*0", "100%"}, {"filename*1", " sure"}}, "100% sure"},
		{[]Param{{"filename", "=?utf-8?Q?B=C3=BCcher?="}}, "Bücher"},
		{[]Param{{"name", "x"}}, ""},
	}
	for _, tt := range tests {
		if got := DecodeParam(tt.params, "filename"); got != tt.want {
			t.Errorf("DecodeParam(%v) = %q, want %q", tt.params, got, tt.want)
		}
	}
}

func TestParseValue(t *testing.T) {
	v, ps := parseValue(`text/plain (comment); charset="utf\"-8" ; junk; format=flowed;;x=`)
	want := []Param{{"charset", `utf"-8`}, {"format", "flowed"}, {"x", ""}}
	if v != "text/plain" || !reflect.DeepEqual(ps, want) {
		t.Errorf("parseValue = %q %v", v, ps)
	}
}

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{"a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{`"Doe, J." <j@x.example>, k@y`, []Address{{Name: "Doe, J.", Mailbox: "j", Host: "x.example"}, {Mailbox: "k", Host: "y"}}},
		{"John Q. Public <jqp@x>", []Address{{Name: "John Q. Public", Mailbox: "jqp", Host: "x"}}},
		{"root@host (Cron Daemon)", []Address{{Name: "Cron Daemon", Mailbox: "root", Host: "host"}}},
		{"G: a@b, c@d;", []Address{{Mailbox: "G"}, {Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}, {}}},
		{"G: a@b", []Address{{Mailbox: "G"}, {Mailbox: "a", Host: "b"}, {}}},
		{"<@r1,@r2:u@h>", []Address{{ADL: "@r1,@r2", Mailbox: "u", Host: "h"}}},
		{`"a b"@c`, []Address{{Mailbox: "a b", Host: "c"}}},
		{"first.last@sub.example.com", []Address{{Mailbox: "first.last", Host: "sub.example.com"}}},
		{"nobody", []Address{{Mailbox: "nobody", Host: MissingDomain}}},
		{"<@x>", []Address{{Mailbox: MissingMailbox, Host: "x"}}},
		{"Nobody <>", nil},
		{"a@[1.2.3.4]", []Address{{Mailbox: "a", Host: "[1.2.3.4]"}}},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>", []Address{{Name: "=?utf-8?q?J=C3=B6rg?=", Mailbox: "j", Host: "x"}}},
		{"<a@b", []Address{{Mailbox: "a", Host: "b"}}},
		{",,;<>)(", nil},
	}
	for _, tt := range tests {
		if got := ParseAddressList(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q) =\n %+v\nwant\n %+v", tt.in, got, tt.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{`a "b" \c`, `"a \"b\" \\c"`},
		{"café", "{5}\r\ncafé"},
		{"a\r\nb", "{4}\r\na\r\nb"},
		{"a\x00b", `"ab"`},
	}
	for _, tt := range tests {
		if got := string(appendString(nil, tt.in)); got != tt.want {
			t.Errorf("appendString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEnvelopeDefaults(t *testing.T) {
	p := parseBytes(t, []byte("From: a@b\r\nSender:\r\nSubject: s\r\n\r\n"))
	e := p.Envelope()
	want := []Address{{Mailbox: "a", Host: "b"}}
	if !reflect.DeepEqual(e.Sender, want) || !reflect.DeepEqual(e.ReplyTo, want) {
		t.Errorf("sender/reply-to not defaulted to from: %+v", e)
	}
	if got := string((*Envelope)(nil).IMAP()); got != "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" {
		t.Errorf("nil envelope = %s", got)
	}
}

func TestUnmarshalCorrupt(t *testing.T) {
	p := parseBytes(t, mustRead(t, "testdata/rfc822.eml"))
	b, _ := p.MarshalBinary()
	if _, err := UnmarshalPart(nil); err == nil {
		t.Error("empty input accepted")
	}
	if _, err := UnmarshalPart(append([]byte{9}, b[1:]...)); err == nil {
		t.Error("unknown version accepted")
	}
	for i := 1; i < len(b); i++ {
		if _, err := UnmarshalPart(b[:i]); err == nil {
			t.Fatalf("truncated input (%d of %d bytes) accepted", i, len(b))
		}
	}
	if _, err := UnmarshalPart(append(b, 0)); err == nil {
		t.Error("trailing bytes accepted")
	}
}

func mustRead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genReader is an io.ReaderAt over a header followed by n filler bytes,
// without holding the message in memory.
type genReader struct {
	head   string
	filler byte
	nl     int // a '\n' every nl bytes of filler (0: never)
	size   int64
}

func (g *genReader) ReadAt(b []byte, off int64) (int, error) {
	if off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && off < g.size {
		switch {
		case off < int64(len(g.head)):
			b[n] = g.head[off]
		case g.nl > 0 && (off-int64(len(g.head)))%int64(g.nl) == int64(g.nl-1):
			b[n] = '\n'
		default:
			b[n] = g.filler
		}
		n++
		off++
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func TestLargeMessageBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB scan")
	}
	for _, nl := range []int{0, 77} {
		g := &genReader{head: "Subject: big\r\nContent-Type: text/plain\r\n\r\n", filler: 'a', nl: nl, size: 50 << 20}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p, err := Parse(g, g.size)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		if p.End != g.size || p.Size() != g.size-int64(len(g.head)) {
			t.Errorf("nl=%d: end %d size %d", nl, p.End, p.Size())
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("nl=%d: Parse allocated %d bytes for a 50 MB message", nl, alloc)
		}
	}
}

func TestDepthAndPartLimits(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("\r\ndeep\r\n")
	p := parseBytes(t, []byte(b.String()))
	checkInvariants(t, p, int64(b.Len()))
	roundTrip(t, p)

	b.Reset()
	b.WriteString("Content-Type: multipart/mixed; boundary=x\r\n\r\n")
	for i := 0; i < MaxParts+100; i++ {
		b.WriteString("--x\r\n\r\np\r\n")
	}
	b.WriteString("--x--\r\n")
	p = parseBytes(t, []byte(b.String()))
	checkInvariants(t, p, int64(b.Len()))
	if n := len(p.Parts); n != MaxParts-1 {
		t.Errorf("%d parts, want %d", n, MaxParts-1)
	}
}

type errReader struct{}

func (errReader) ReadAt([]byte, int64) (int, error) { return 0, errors.New("disk on fire") }

func TestParseIOError(t *testing.T) {
	if _, err := Parse(errReader{}, 100); err == nil {
		t.Fatal("I/O error not reported")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\n--a--"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, p, int64(len(b)))
		roundTrip(t, p)
		_ = p.BodyStructure(true)
		_ = p.BodyStructure(false)
		_ = p.Envelope().IMAP()
		_ = DecodeHeader(string(b))
		_ = ParseAddressList(string(b))
	})
}

func BenchmarkParse(b *testing.B) {
	raw := mustRead(b, "testdata/mixed-nested.eml")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		p, err := Parse(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalBodyStructure(b *testing.B) {
	raw := mustRead(b, "testdata/mixed-nested.eml")
	p := parseBytes(b, raw)
	enc, _ := p.MarshalBinary()
	b.ReportMetric(float64(len(enc)), "structure-bytes")
	for b.Loop() {
		q, err := UnmarshalPart(enc)
		if err != nil {
			b.Fatal(err)
		}
		_ = q.BodyStructure(true)
	}
}
