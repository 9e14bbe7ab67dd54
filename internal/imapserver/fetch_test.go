package imapserver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"math/rand"
	"mime/quotedprintable"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	imapwire "pillarbox/internal/imap"
	"pillarbox/internal/message"
)

// readEML reads a testdata message with CRLF line ends.
func readEML(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")
}

// TestClientFetch: go-imap v2's parser (an independent implementation)
// accepts our ENVELOPE, BODYSTRUCTURE, BODY[...], BINARY[...] and
// BINARY.SIZE output and finds what the message holds.
func TestClientFetch(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	nested := readEML(t, "fetch_nested.eml")
	env.deliver(env.alice, "INBOX", nil, readEML(t, "fetch_simple.eml"))
	env.deliver(env.alice, "INBOX", []string{"$Work"}, nested)
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(alice, password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	whole := &imap.FetchItemBodySection{Peek: true}
	fields := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	fwdText := &imap.FetchItemBodySection{Part: []int{3}, Specifier: imap.PartSpecifierText, Peek: true}
	bin := &imap.FetchItemBinarySection{Part: []int{3, 2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true,
		BodyStructure:     &imap.FetchItemBodyStructure{Extended: true},
		BodySection:       []*imap.FetchItemBodySection{whole, fields, fwdText},
		BinarySection:     []*imap.FetchItemBinarySection{bin},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[1]
	if m.UID != 2 || len(m.Flags) != 1 || m.Flags[0] != "$Work" || m.RFC822Size != int64(len(nested)) || !m.InternalDate.Equal(fixedNow) {
		t.Errorf("UID %d flags %v size %d date %v", m.UID, m.Flags, m.RFC822Size, m.InternalDate)
	}
	e := m.Envelope
	if e == nil || e.Subject != "Café nested" || len(e.From) != 1 || e.From[0].Name != "Nested, Sender" ||
		e.From[0].Addr() != "sender@example.test" || len(e.Cc) != 1 || e.MessageID != "nested@example.test" {
		t.Errorf("envelope %+v", e)
	}
	checkStructure(t, m.BodyStructure)
	if got := m.FindBodySection(whole); string(got) != nested {
		t.Errorf("BODY[] is %d bytes, want the message (%d)", len(got), len(nested))
	}
	if got := string(m.FindBodySection(fields)); got != "Subject: =?UTF-8?Q?Caf=C3=A9?= nested\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject)] = %q", got)
	}
	if got := string(m.FindBodySection(fwdText)); !strings.HasPrefix(got, "--fwd\r\n") || !strings.HasSuffix(got, "--fwd--") {
		t.Errorf("BODY[3.TEXT] = %q", got)
	}
	if got := m.FindBinarySection(bin); string(got) != "bin\x00ary\x01data" {
		t.Errorf("BINARY[3.2] = %q", got)
	}
	if n, ok := m.FindBinarySectionSize([]int{1}); !ok || n != 49 {
		t.Errorf("BINARY.SIZE[1] = %d, %v", n, ok)
	}
}

// checkStructure checks the parsed BODYSTRUCTURE of fetch_nested.eml.
func checkStructure(t *testing.T, bs imap.BodyStructure) {
	t.Helper()
	mp, ok := bs.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 4 || mp.Extended == nil || mp.Extended.Params["boundary"] != "outer" {
		t.Fatalf("root structure %#v", bs)
	}
	if p, ok := mp.Children[0].(*imap.BodyStructureSinglePart); !ok || p.Encoding != "quoted-printable" || p.Text == nil || p.Text.NumLines != 3 {
		t.Errorf("part 1 %#v", mp.Children[0])
	}
	if alt, ok := mp.Children[1].(*imap.BodyStructureMultiPart); !ok || alt.Subtype != "alternative" || len(alt.Children) != 2 {
		t.Errorf("part 2 %#v", mp.Children[1])
	}
	fwd, ok := mp.Children[2].(*imap.BodyStructureSinglePart)
	if !ok || fwd.MessageRFC822 == nil || fwd.MessageRFC822.Envelope.Subject != "Forwarded" {
		t.Fatalf("part 3 %#v", mp.Children[2])
	}
	if d := fwd.Disposition(); d == nil || d.Value != "attachment" || d.Params["filename"] != "fwd.eml" {
		t.Errorf("part 3 disposition %#v", d)
	}
	inner, ok := fwd.MessageRFC822.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(inner.Children) != 2 {
		t.Errorf("part 3 body %#v", fwd.MessageRFC822.BodyStructure)
	}
}

// TestCTEDecoders: the BINARY decoders give what encoding/base64 and
// mime/quotedprintable encoded, whatever the read sizes, and are lenient
// with bad input.
func TestCTEDecoders(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		data := make([]byte, rng.Intn(5000))
		rng.Read(data)
		if i%2 == 0 { // text-like data too
			for j := range data {
				data[j] = " \r\nabcdefgh=\t\x00\xe9"[int(data[j])%14]
			}
		}
		var qp bytes.Buffer
		qw := quotedprintable.NewWriter(&qp)
		qw.Binary = i%4 < 2 // CR and LF encoded as =0D =0A
		if !qw.Binary {     // line breaks written as they are: CRLF only
			data = bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\r"), nil), []byte("\n"), []byte("\r\n"))
		}
		qw.Write(data)
		qw.Close()
		b64 := base64.StdEncoding.EncodeToString(data)
		var lines strings.Builder
		for len(b64) > 76 {
			lines.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		lines.WriteString(b64)
		for enc, encoded := range map[string]string{"base64": lines.String(), "quoted-printable": qp.String()} {
			r, _ := newCTEDecoder(enc, iotest.OneByteReader(strings.NewReader(encoded)))
			got, err := io.ReadAll(iotest.HalfReader(r))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s round trip %d: err %v, got %d bytes, want %d", enc, i, err, len(got), len(data))
			}
		}
	}
	for _, c := range []struct{ enc, in, want string }{
		{"base64", "aGVs\r\nbG8=\r\n", "hello"},
		{"base64", "aGVsbG8=IQ==", "hello!"}, // concatenated blocks
		{"base64", "a*G!V-s", "hel"},         // junk skipped
		{"base64", "aGVsbA", "hell"},         // missing padding
		{"quoted-printable", "a=3Db=\r\nc  \r\nd=ZZ=4", "a=bc\r\nd=ZZ=4"},
		{"quoted-printable", "soft = \r\nbreak\n", "soft break\n"},
		{"7BIT", "as is=3D", "as is=3D"},
	} {
		r, ok := newCTEDecoder(c.enc, strings.NewReader(c.in))
		got, err := io.ReadAll(r)
		if !ok || err != nil || string(got) != c.want {
			t.Errorf("%s %q: got %q, %v, %v; want %q", c.enc, c.in, got, ok, err, c.want)
		}
	}
	if _, ok := newCTEDecoder("x-uuencode", strings.NewReader("")); ok {
		t.Errorf("x-uuencode accepted")
	}
}

// FuzzCTEDecoders: the decoders never fail or panic, and base64 decodes
// what encoding/base64 encoded.
func FuzzCTEDecoders(f *testing.F) {
	f.Add([]byte("a=3D=\r\nb"), []byte("hello\x00"))
	f.Add([]byte("=\n=4=\r"), []byte{})
	f.Fuzz(func(t *testing.T, junk, data []byte) {
		for _, enc := range []string{"base64", "quoted-printable"} {
			r, _ := newCTEDecoder(enc, bytes.NewReader(junk))
			if _, err := io.ReadAll(r); err != nil {
				t.Fatal(err)
			}
		}
		r, _ := newCTEDecoder("base64", strings.NewReader(base64.StdEncoding.EncodeToString(data)))
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("base64 round trip: %q, %v", got, err)
		}
	})
}

// FuzzFetchItems: any FETCH item list is parsed without panicking, and
// every section it names resolves against a nested message to data of
// the announced size.
func FuzzFetchItems(f *testing.F) {
	for _, s := range []string{
		"(FLAGS BODY.PEEK[3.HEADER.FIELDS (From \"To\")]<2.10> BINARY[3.2]<1.3>)",
		"BODY[1.2.3.MIME]", "(BINARY.SIZE[2.2] RFC822.TEXT BODY[3.TEXT]<300.5>)", "FULL",
		"(BODY[HEADER.FIELDS.NOT (A B)] BODY[]<0.4294967295> BINARY.PEEK[]<7.1>)",
	} {
		f.Add(s)
	}
	msg := []byte(readEML(f, "fetch_nested.eml"))
	root, err := message.Parse(bytes.NewReader(msg), int64(len(msg)))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, items string) {
		dec := imapwire.NewDecoder(bufio.NewReader(strings.NewReader("a FETCH 1 "+items+"\r\n")), imapwire.Limits{}, func() error { return nil }, nil)
		c, err := dec.ReadCommand()
		if err != nil {
			return
		}
		req, err := parseFetch(c)
		if err != nil {
			return
		}
		src := &msgSource{root: root, r: bytes.NewReader(msg), size: int64(len(msg))}
		for i := range req.items {
			it := &req.items[i]
			var p payload
			switch it.kind {
			case fSection:
				p, err = src.sectionPayload(it)
			case fBinary, fBinarySize:
				p, err = src.binaryPayload(it)
			default:
				continue
			}
			if err != nil {
				continue
			}
			var out bytes.Buffer
			w := imapwire.NewWriter(&out)
			p.write(w)
			if err := w.Flush(); err != nil {
				t.Fatalf("%s: %v", it.name, err)
			}
			if !p.isNIL && p.size > 0 && !strings.HasSuffix(strings.SplitN(out.String(), "\r\n", 2)[0], "{"+strconv.FormatInt(p.size, 10)+"}") {
				t.Fatalf("%s: %q for size %d", it.name, out.String(), p.size)
			}
			if n := int64(out.Len()); !p.isNIL && p.size > 0 && n < p.size {
				t.Fatalf("%s: %d bytes written for size %d", it.name, n, p.size)
			}
		}
	})
}
