package imapserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestToCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"a\r\nb\r\n":      "a\r\nb\r\n",
		"a\nb\n":          "a\r\nb\r\n",
		"\n":              "\r\n",
		"a\r\nb\nc\r\r\n": "a\r\nb\r\nc\r\r\n",
		"a\rb":            "a\rb",
	} {
		if got := string(toCRLF([]byte(in))); got != want {
			t.Errorf("toCRLF(%q) = %q, want %q", in, got, want)
		}
		// The streaming form agrees, whatever the read sizes.
		got, err := io.ReadAll(&crlfReader{r: iotest.OneByteReader(strings.NewReader(in))})
		if err != nil || string(got) != want {
			t.Errorf("crlfReader(%q) = %q, %v; want %q", in, got, err, want)
		}
		f, err := os.CreateTemp(t.TempDir(), "lf")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(in); err != nil {
			t.Fatal(err)
		}
		bare, err := fileHasBareLF(f, int64(len(in)))
		if err != nil || bare != (in != want) {
			t.Errorf("fileHasBareLF(%q) = %v, %v", in, bare, err)
		}
		f.Close()
	}
}

// A CR at the end of one read and its LF at the start of the next is
// not a bare LF.
func TestCRLFReaderAcrossReads(t *testing.T) {
	in := strings.Repeat("x", 32<<10-1) + "\r\n" + strings.Repeat("y\n", 10)
	got, err := io.ReadAll(&crlfReader{r: strings.NewReader(in)})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("x", 32<<10-1) + "\r\n" + strings.Repeat("y\r\n", 10); string(got) != want {
		t.Errorf("crlfReader across reads: got %d bytes, want %d", len(got), len(want))
	}
}

// appendRaw sends one APPEND with a non-synchronizing literal and
// returns the tagged reply.
func appendRaw(t *testing.T, c *client, tag, args string, data []byte, binary bool) string {
	t.Helper()
	lit := "{"
	if binary {
		lit = "~{"
	}
	c.send(fmt.Sprintf("%s APPEND %s %s%d+}\r\n", tag, args, lit, len(data)))
	c.send(string(data) + "\r\n")
	lines := c.until(tag + " ")
	return lines[len(lines)-1]
}

// APPEND end to end: bare LFs become CRLF in text literals (in memory and
// spilled), literal8 bytes are kept, the date is kept, and no spill file
// is left behind, with literals spilled to the store's spool (adopted by
// the store) or to a directory of their own (copied).
func TestAppendStoredBytes(t *testing.T) {
	t.Parallel()
	t.Run("spool", func(t *testing.T) { t.Parallel(); testAppendStoredBytes(t, "") })
	t.Run("spilldir", func(t *testing.T) { t.Parallel(); testAppendStoredBytes(t, t.TempDir()) })
}

func testAppendStoredBytes(t *testing.T, spillDir string) {
	env := newEnv(t, envConfig{plaintext: true, opts: Options{SpillDir: spillDir}})
	c := env.dial()
	c.login(alice)
	big := strings.Repeat("line of text\n", 10000) // 130 KB: spilled, bare LFs
	bigCRLF := strings.Repeat("line of text\r\n", 10000)
	bin := bytes.Repeat([]byte("\x00\x01\n\xff"), 40000) // 160 KB, binary
	binMsg := append([]byte("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"), bin...)
	cases := []struct {
		args string
		data []byte
		bin  bool
		want []byte
	}{
		{`INBOX (\Seen) "14-Feb-2026 08:30:00 +0100"`, []byte("Subject: a\n\nhello\n"), false, []byte("Subject: a\r\n\r\nhello\r\n")},
		{"INBOX", []byte("Subject: big\n\n" + big), false, []byte("Subject: big\r\n\r\n" + bigCRLF)},
		{"INBOX", []byte("Subject: big\r\n\r\n" + bigCRLF), false, []byte("Subject: big\r\n\r\n" + bigCRLF)},
		{"INBOX", binMsg, true, binMsg},
	}
	for i, tc := range cases {
		tag := fmt.Sprintf("p%d", i)
		if got := appendRaw(t, c, tag, tc.args, tc.data, tc.bin); !strings.HasPrefix(got, tag+" OK [APPENDUID ") {
			t.Fatalf("APPEND %d: %q", i, got)
		}
	}
	ctx := context.Background()
	mb := env.mailbox(env.alice, "INBOX")
	msgs, err := env.st.Messages(ctx, mb.ID, 1, false)
	if err != nil || len(msgs) != len(cases) {
		t.Fatalf("messages %d, %v", len(msgs), err)
	}
	for i, tc := range cases {
		r, err := env.st.OpenMessage(ctx, mb.ID, msgs[i].UID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("message %d: %d bytes stored (%v), want %d", i, len(got), err, len(tc.want))
		}
	}
	if want := time.Date(2026, 2, 14, 7, 30, 0, 0, time.UTC); !msgs[0].InternalDate.Equal(want) || !strings.Contains(strings.Join(msgs[0].Flags, " "), `\Seen`) {
		t.Errorf("message 0: date %v flags %v", msgs[0].InternalDate, msgs[0].Flags)
	}
	if !msgs[1].InternalDate.Equal(fixedNow) {
		t.Errorf("message 1: date %v, want the server's clock %v", msgs[1].InternalDate, fixedNow)
	}
	// No spill file is left behind.
	dir := spillDir
	if dir == "" {
		f, err := env.st.CreateSpool()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Dir(f.Name())
		f.Close()
		os.Remove(f.Name())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("%s holds %d files after APPEND", dir, len(left))
	}
}
