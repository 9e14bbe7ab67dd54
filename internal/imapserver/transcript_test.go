package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"pillarbox/internal/imap"
	"pillarbox/internal/store"
)

// Transcript tests: testdata/*.txt are IMAP dialogs replayed over real
// sockets against a server on a real sqlstore (accounts alice and bob,
// password "correct horse"). Format, one item a line:
//
//	# comment (blank lines are ignored too)
//	@tls                    the server has a certificate (STARTTLS; no auth before it)
//	@implicit               implicit TLS (993); the client handshakes at connect
//	@plaintext              authentication is offered without TLS
//	@opt Name=N             MaxErrors, MaxLine, MaxLiteral, MaxConnsPerAccount, MaxConnsPerIP
//	@fakefetch              FETCH and UID FETCH answer OK doing nothing (tests the
//	                        expunge rules before the real FETCH exists)
//	@conn N                 following C/S lines use connection N (dialled when first used; 1 at start)
//	C: text                 send text and CRLF
//	R: text                 send raw bytes: Go escapes (\r \n \x00), nothing added
//	S: prefix               read one line; it must start with prefix
//	S= text                 read one line; it must be exactly text
//	S~ regexp               read one line; it must match regexp entirely; named groups
//	                        (?P<uv>[0-9]+) set variables that later C lines use as ${uv}
//	S: <closed>             the server has closed the connection
//	@handshake              client side TLS handshake (after STARTTLS's OK)
//	@deliver MAILBOX [FLAG...]   store a message for alice (as SMTP would)
//	@deliverfile MAILBOX FILE [FLAG...]  the same with testdata/FILE as the message
//	                        (line ends made CRLF)
//	@store MAILBOX UID +|-|= FLAG...  change flags of alice's message (as another session would)
//	@expunge MAILBOX UID... expunge alice's messages (as another session would)
//	@flags MAILBOX UID FLAG...  alice's message has exactly these flags (none: no flags)
//	@count MAILBOX N        alice's mailbox has N messages
//	@nombox NAME            alice has no mailbox NAME
//
// Lines are processed in order, so several C lines before their S lines
// are a pipelined group.
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

func readScript(t *testing.T, path string) (envConfig, []scriptLine) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var cfg envConfig
	var lines []scriptLine
	sc := bufio.NewScanner(fh)
	for no := 1; sc.Scan(); no++ {
		l := sc.Text()
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		kind, text, _ := strings.Cut(l, " ")
		switch kind {
		case "@tls":
			cfg.tls = true
		case "@implicit":
			cfg.opts.ImplicitTLS = true
		case "@plaintext":
			cfg.plaintext = true
		case "@fakefetch":
			cfg.setup = func(s *Server) {
				nop := func(*session, *imap.Command) error { return nil }
				s.cmds["FETCH"] = command{states: inSelected, holdExpunge: true, run: nop}
				s.cmds["UID FETCH"] = command{states: inSelected, run: nop}
			}
		case "@opt":
			name, val, _ := strings.Cut(text, "=")
			n, err := strconv.Atoi(val)
			if err != nil {
				t.Fatalf("line %d: %v", no, err)
			}
			setOpt(t, &cfg.opts, name, n)
		default:
			lines = append(lines, scriptLine{no, kind, text})
		}
	}
	return cfg, lines
}

func setOpt(t *testing.T, o *Options, name string, n int) {
	switch name {
	case "MaxErrors":
		o.MaxErrors = n
	case "MaxLine":
		o.MaxLine = n
	case "MaxLiteral":
		o.MaxLiteral = int64(n)
	case "MaxConnsPerAccount":
		o.MaxConnsPerAccount = n
	case "MaxConnsPerIP":
		o.MaxConnsPerIP = n
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

// transcript is the state of one replay.
type transcript struct {
	t     *testing.T
	env   *testEnv
	conns map[string]*client
	cur   *client
	path  string
	vars  map[string]string
}

func runTranscript(t *testing.T, path string) {
	cfg, script := readScript(t, path)
	tr := &transcript{t: t, env: newEnv(t, cfg), conns: map[string]*client{}, path: path, vars: map[string]string{}}
	tr.use("1")
	for _, l := range script {
		tr.step(l)
	}
}

// use switches to connection name, dialling it when new.
func (tr *transcript) use(name string) {
	c, ok := tr.conns[name]
	if !ok {
		c = tr.env.dial()
		if tr.env.srv.opts.ImplicitTLS {
			tc := tls.Client(c.conn, tr.env.clientTLS())
			if err := tc.Handshake(); err != nil {
				tr.t.Fatalf("implicit TLS handshake: %v", err)
			}
			c.conn, c.br = tc, bufio.NewReader(tc)
		}
		tr.conns[name] = c
	}
	tr.cur = c
}

func (tr *transcript) step(l scriptLine) {
	t, c := tr.t, tr.cur
	where := fmt.Sprintf("%s:%d", filepath.Base(tr.path), l.no)
	switch l.kind {
	case "@conn":
		tr.use(l.text)
	case "C:":
		c.send(os.Expand(l.text, func(k string) string { return tr.vars[k] }) + "\r\n")
	case "R:":
		c.send(unescape(t, l.no, l.text))
	case "S:", "S=", "S~":
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
		case l.kind == "S=" && got != l.text:
			t.Fatalf("%s: got %q, want %q", where, got, l.text)
		case l.kind == "S~":
			re := regexp.MustCompile("^(?:" + l.text + ")$")
			m := re.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("%s: got %q, want match for %q", where, got, l.text)
			}
			for i, name := range re.SubexpNames() {
				if name != "" {
					tr.vars[name] = m[i]
				}
			}
		}
	case "@handshake":
		tc := tls.Client(c.conn, tr.env.clientTLS())
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: handshake: %v", where, err)
		}
		c.conn, c.br = tc, bufio.NewReader(tc)
	default:
		tr.storeStep(where, l)
	}
}

// storeStep runs the @ lines that act on or check the store directly.
func (tr *transcript) storeStep(where string, l scriptLine) {
	t, env, ctx := tr.t, tr.env, context.Background()
	f := strings.Fields(l.text)
	uid := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatalf("%s: bad UID %q", where, s)
		}
		return uint32(n)
	}
	need := func(n int) {
		if len(f) < n {
			t.Fatalf("%s: %s needs %d fields", where, l.kind, n)
		}
	}
	switch l.kind {
	case "@deliver":
		need(1)
		env.deliver(env.alice, f[0], f[1:], "")
	case "@deliverfile":
		need(2)
		b, err := os.ReadFile(filepath.Join("testdata", f[1]))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		body := strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")
		env.deliver(env.alice, f[0], f[2:], body)
	case "@store":
		need(3)
		op := map[string]store.FlagOp{"+": store.FlagAdd, "-": store.FlagRemove, "=": store.FlagReplace}[f[2]]
		if _, _, err := env.st.StoreFlags(ctx, env.mailbox(env.alice, f[0]).ID, []uint32{uid(f[1])}, op, f[3:], 0); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	case "@expunge":
		need(2)
		var uids []uint32
		for _, s := range f[1:] {
			uids = append(uids, uid(s))
		}
		if _, err := env.st.Expunge(ctx, env.mailbox(env.alice, f[0]).ID, uids); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	case "@flags":
		need(2)
		m, err := env.st.Message(ctx, env.mailbox(env.alice, f[0]).ID, uid(f[1]))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if got, want := strings.Join(m.Flags, " "), strings.Join(f[2:], " "); got != want {
			t.Fatalf("%s: flags %q, want %q", where, got, want)
		}
	case "@count":
		need(2)
		if got := strconv.Itoa(env.mailbox(env.alice, f[0]).Messages); got != f[1] {
			t.Fatalf("%s: %s has %s messages, want %s", where, f[0], got, f[1])
		}
	case "@nombox":
		need(1)
		if _, err := env.st.Mailbox(ctx, env.alice.ID, f[0]); err == nil {
			t.Fatalf("%s: mailbox %s exists", where, f[0])
		}
	default:
		t.Fatalf("%s: unknown line kind %q", where, l.kind)
	}
}
