package smtpserver

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Transcript tests: testdata/*.txt are SMTP dialogs replayed over a real
// socket against a server with the fake backend. Format, one item a line:
//
//	# comment (blank lines are ignored too)
//	@mode mx|submission|submissions   server mode (default mx); before any C/S line
//	@tls                              give the server a certificate (MX STARTTLS)
//	@opt Name=N                       MaxRecipients, MaxErrors, MaxMessageBytes, MaxLineLength
//	C: text                           send text and CRLF
//	R: text                           send raw bytes: Go string escapes (\r \n \x00), nothing added
//	S: prefix                         read one reply line; it must start with prefix
//	S~ regexp                         read one reply line; it must match regexp entirely
//	S* prefix                         read a whole reply; its last line must start with prefix
//	S: <closed>                       the server has closed the connection
//	@handshake                        client side TLS handshake (after "S: 220")
//	@delivered N                      the backend holds N messages
//	@env key=value ...                last delivered envelope: from rcpts body ret envid
//	                                  smtputf8 requiretls notify orcpt (rcpts/notify/orcpt "|"-joined)
//	@contains text / @lacks text      the last delivered message has / has not text (Go escapes)
//
// C and S lines are processed in file order, so several C lines before
// their S lines are a pipelined group.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, f)
		})
	}
}

type scriptLine struct {
	no         int
	kind, text string
}

func readScript(t *testing.T, path string) (Options, []scriptLine) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var opts Options
	var lines []scriptLine
	sc := bufio.NewScanner(fh)
	for no := 1; sc.Scan(); no++ {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, text, _ := strings.Cut(l, " ")
		switch kind {
		case "@mode":
			opts.Mode = map[string]Mode{"mx": ModeMX, "submission": ModeSubmission, "submissions": ModeSubmissions}[text]
		case "@tls":
			opts.TLSConfig = &tls.Config{} // replaced by startServer
		case "@opt":
			name, val, _ := strings.Cut(text, "=")
			n, err := strconv.Atoi(val)
			if err != nil {
				t.Fatalf("line %d: %v", no, err)
			}
			setOpt(t, &opts, name, n)
		default:
			lines = append(lines, scriptLine{no, kind, text})
		}
	}
	return opts, lines
}

func setOpt(t *testing.T, o *Options, name string, n int) {
	switch name {
	case "MaxRecipients":
		o.MaxRecipients = n
	case "MaxErrors":
		o.MaxErrors = n
	case "MaxMessageBytes":
		o.MaxMessageBytes = int64(n)
	case "MaxLineLength":
		o.MaxLineLength = n
	default:
		t.Fatalf("unknown option %s", name)
	}
}

func unescape(t *testing.T, no int, s string) string {
	u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`)
	if err != nil {
		t.Fatalf("line %d: bad escapes in %q: %v", no, s, err)
	}
	return u
}

func runTranscript(t *testing.T, path string) {
	opts, script := readScript(t, path)
	env := startServer(t, opts)
	c := dial(t, env.addr)
	for _, l := range script {
		where := fmt.Sprintf("%s:%d", filepath.Base(path), l.no)
		switch l.kind {
		case "C:":
			c.cmd(l.text)
		case "R:":
			c.send(unescape(t, l.no, l.text))
		case "S:", "S~":
			got, err := c.line()
			switch {
			case l.text == "<closed>":
				if !isClosed(err) {
					t.Fatalf("%s: got %q, %v; want the connection closed", where, got, err)
				}
			case err != nil:
				t.Fatalf("%s: want %q, read failed: %v", where, l.text, err)
			case l.kind == "S:" && !strings.HasPrefix(got, l.text):
				t.Fatalf("%s: got %q, want prefix %q", where, got, l.text)
			case l.kind == "S~" && !regexp.MustCompile("^(?:"+l.text+")$").MatchString(got):
				t.Fatalf("%s: got %q, want match for %q", where, got, l.text)
			}
		case "S*":
			r := c.reply()
			if !strings.HasPrefix(r[len(r)-1], l.text) {
				t.Fatalf("%s: got %q, want last line prefix %q", where, r, l.text)
			}
		case "@handshake":
			tc := tls.Client(c.conn, env.clientTLS())
			if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: handshake: %v", where, err)
			}
			c.conn, c.br = tc, bufio.NewReader(tc)
		case "@delivered":
			if got := len(env.be.deliveries()); strconv.Itoa(got) != l.text {
				t.Fatalf("%s: %d messages delivered, want %s", where, got, l.text)
			}
		case "@env":
			checkEnv(t, where, env.be, l.text)
		case "@contains", "@lacks":
			d := env.be.deliveries()
			if len(d) == 0 {
				t.Fatalf("%s: nothing delivered", where)
			}
			want := unescape(t, l.no, l.text)
			if strings.Contains(d[len(d)-1].Msg, want) != (l.kind == "@contains") {
				t.Fatalf("%s: %s %q failed; message:\n%s", where, l.kind, want, d[len(d)-1].Msg)
			}
		default:
			t.Fatalf("%s: unknown line kind %q", where, l.kind)
		}
	}
}

func checkEnv(t *testing.T, where string, be *fakeBackend, spec string) {
	d := be.deliveries()
	if len(d) == 0 {
		t.Fatalf("%s: nothing delivered", where)
	}
	e := d[len(d)-1].Env
	var rcpts, notify, orcpt []string
	for _, r := range e.Recipients {
		rcpts, notify, orcpt = append(rcpts, r.Address), append(notify, r.Notify), append(orcpt, r.ORcpt)
	}
	got := map[string]string{
		"from": e.From, "body": e.Body, "ret": e.Ret, "envid": e.EnvID,
		"smtputf8": strconv.FormatBool(e.SMTPUTF8), "requiretls": strconv.FormatBool(e.RequireTLS),
		"rcpts": strings.Join(rcpts, "|"), "notify": strings.Join(notify, "|"), "orcpt": strings.Join(orcpt, "|"),
	}
	for _, kv := range strings.Fields(spec) {
		k, v, _ := strings.Cut(kv, "=")
		g, ok := got[k]
		if !ok {
			t.Fatalf("%s: unknown envelope field %q", where, k)
		}
		if g != v {
			t.Errorf("%s: envelope %s = %q, want %q", where, k, g, v)
		}
	}
}
