package smtpserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// pipeListener hands net.Pipe server ends to Serve.
type pipeListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// pipeSession runs one whole session over net.Pipe against a fresh server:
// it writes input, reads replies until stop says so (or EOF), closes, and
// waits until the server has finished the session. It returns the server
// log, the replies and the backend.
func pipeSession(t *testing.T, opts Options, input []byte, stop func(replies int) bool, closeAfterWrite bool) (string, []string, *fakeBackend) {
	logs := &logBuffer{}
	be := &fakeBackend{dir: t.TempDir()}
	opts.Backend, opts.Hostname, opts.Now = be, "mx.example.test", func() time.Time { return fixedNow }
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if opts.CommandTimeout == 0 {
		opts.CommandTimeout = time.Second
	}
	opts.DataTimeout = opts.CommandTimeout
	srv := New(opts)
	pl := newPipeListener()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(pl) }()
	cli, srvEnd := net.Pipe()
	pl.ch <- srvEnd
	go func() {
		_, _ = cli.Write(input)
		if closeAfterWrite {
			cli.Close()
		}
	}()

	var replies []string
	br := bufio.NewReader(cli)
	n := 0
	for !stop(n) {
		_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("server hung; replies so far %q", replies)
			}
			break
		}
		replies = append(replies, l)
		if len(l) < 4 || l[3] != '-' {
			n++
		}
	}
	cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("session did not end: %v\n%s", err, logs.String())
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	log := logs.String()
	if strings.Contains(log, "panic") {
		t.Fatalf("panic:\n%s", log)
	}
	return log, replies, be
}

// transcriptSeeds are the client sides of testdata/*.txt.
func transcriptSeeds(f *testing.F) [][]byte {
	files, _ := filepath.Glob("testdata/*.txt")
	var seeds [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var b bytes.Buffer
		for _, l := range strings.Split(string(data), "\n") {
			switch {
			case strings.HasPrefix(l, "C: "), l == "C:":
				b.WriteString(strings.TrimPrefix(strings.TrimPrefix(l, "C:"), " ") + "\r\n")
			case strings.HasPrefix(l, "R: "):
				if u, err := strconv.Unquote(`"` + strings.ReplaceAll(l[3:], `"`, `\"`) + `"`); err == nil {
					b.WriteString(u)
				}
			}
		}
		seeds = append(seeds, b.Bytes())
	}
	return seeds
}

// FuzzCommandLine is a whole-session fuzz target: arbitrary client bytes
// (commands, DATA, BDAT, AUTH lines) must never panic or hang the server,
// and every reply line must be well formed.
func FuzzCommandLine(f *testing.F) {
	for _, s := range transcriptSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 4294967295 LAST\r\nxx"))
	f.Add([]byte("\r\n\r\n\n\r\x00STARTTLS\r\nAUTH PLAIN\r\n\n"))
	f.Fuzz(func(t *testing.T, input []byte) {
		_, replies, _ := pipeSession(t, Options{MaxLineLength: 200, MaxErrors: 50, CommandTimeout: 200 * time.Millisecond},
			input, func(int) bool { return false }, true)
		for _, r := range replies {
			if len(r) < 6 || !strings.HasSuffix(r, "\r\n") || strings.ContainsAny(r[:len(r)-2], "\r\n") {
				t.Fatalf("malformed reply %q", r)
			}
			if _, err := strconv.Atoi(r[:3]); err != nil || (r[3] != ' ' && r[3] != '-') {
				t.Fatalf("malformed reply %q", r)
			}
		}
	})
}

// refData is the reference reading of DATA content (RFC 5321 4.1.1.4 and
// 4.5.2): lines end in CRLF only, the line "." ends it, one leading dot is
// removed. ok is false when a bare CR or LF comes before the end.
func refData(s []byte) (msg []byte, ok bool) {
	var out bytes.Buffer
	for {
		i := bytes.Index(s, []byte("\r\n"))
		if i < 0 {
			return nil, false
		}
		line := s[:i]
		if bytes.ContainsAny(line, "\r\n") {
			return nil, false
		}
		s = s[i+2:]
		if string(line) == "." {
			return out.Bytes(), true
		}
		out.Write(bytes.TrimPrefix(line, []byte(".")))
		out.WriteString("\r\n")
	}
}

// FuzzDataReader checks DATA framing end to end against refData: the
// stored message is exactly the unstuffed content, and content with a
// bare CR or LF before its end is never stored.
func FuzzDataReader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n", "..dot\r\n.\r\n", "a\nb\r\n", "a\r\n.\nb", "a\r\n\r.\r\n",
		"\r\n.\r\nMAIL FROM:<b@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n", ".", "\r", "\xff\x00\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		input := append([]byte("EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"), data...)
		input = append(input, "\r\n.\r\nQUIT\r\n"...)
		// Replies: greeting, EHLO, MAIL, RCPT, 354, then the DATA result.
		_, replies, be := pipeSession(t, Options{MaxMessageBytes: 1 << 20}, input, func(n int) bool { return n >= 6 }, false)
		want, ok := refData(append(append([]byte{}, data...), "\r\n.\r\n"...))
		d := be.deliveries()
		if !ok {
			if len(d) != 0 {
				t.Fatalf("content with bare CR/LF stored: %q", d[0].Msg)
			}
			return
		}
		if len(d) == 0 {
			t.Fatalf("valid content not stored; replies %q", replies)
		}
		_, got, found := strings.Cut(d[0].Msg, "+0000\r\n")
		if !found || got != string(want) {
			t.Fatalf("stored %q, want %q", got, want)
		}
		if !strings.HasPrefix(replies[len(replies)-1], "250 2.0.0 Ok: queued as ") {
			t.Fatalf("reply %q", replies[len(replies)-1])
		}
	})
}

// FuzzPath checks the MAIL/RCPT path parser: no panics, and what it
// accepts is a mailbox that parses again to itself.
func FuzzPath(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@b.c>", "MAIL FROM:<>", "RCPT TO:<@x.y,@z:a@b>", `RCPT TO:<"a b\"@c"@d>`, "RCPT TO:<a@[1.2.3.4]>",
		"MAIL FROM: <ü@ü.de> SMTPUTF8", "RCPT TO:a@b", "RCPT TO:<a@b.>", "RCPT TO:<a..b@c>", "MAIL FROM:<a@b@c>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, p := range []string{"FROM:", "TO:"} {
			got, err := pathArg(line, p, p == "FROM:")
			if err != nil {
				continue
			}
			if got == "" {
				if p != "FROM:" {
					t.Fatalf("empty mailbox from %q", line)
				}
				continue
			}
			if !utf8.ValidString(got) || !strings.Contains(got, "@") || len(got) > maxPath-2 {
				t.Fatalf("%q -> bad mailbox %q", line, got)
			}
			again, err := pathArg("XXXX "+p+"<"+got+">", p, false)
			if err != nil || again != got {
				t.Fatalf("%q -> %q, which reparses to %q, %v", line, got, again, err)
			}
		}
	})
}
