package imapserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
	"pillarbox/internal/testkit"
)

var _ Authenticator = (*auth.Authenticator)(nil)

const (
	alice    = "alice@example.test"
	bob      = "bob@example.test"
	password = "correct horse"
)

var fixedNow = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)

// testEnv is a server over a real sqlstore in a temp dir with a real
// authenticator; accounts alice and bob have the password "correct horse".
type testEnv struct {
	t     testing.TB
	srv   *Server
	st    *sqlstore.Store
	auth  *auth.Authenticator
	alice store.Account
	bob   store.Account
	addr  string
	ca    *x509.CertPool
	logs  *logBuffer
	done  chan error
}

// envConfig says how to build a testEnv.
type envConfig struct {
	opts      Options
	tls       bool // give the server a certificate (STARTTLS, or implicit with opts.ImplicitTLS)
	plaintext bool // offer authentication without TLS (auth.Options.AllowPlaintext)
	setup     func(*Server)
}

// newEnv builds and starts a server on 127.0.0.1:0.
func newEnv(t testing.TB, cfg envConfig) *testEnv {
	t.Helper()
	env := &testEnv{t: t, logs: &logBuffer{}, done: make(chan error, 1)}
	logger := slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := sqlstore.Open(t.TempDir(), sqlstore.Options{NoSync: true, Logger: logger.With("component", "store")})
	if err != nil {
		t.Fatal(err)
	}
	env.st = st
	ctx := context.Background()
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	cred, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if env.alice, err = st.CreateAccount(ctx, alice, cred, 0); err != nil {
		t.Fatal(err)
	}
	if env.bob, err = st.CreateAccount(ctx, bob, cred, 0); err != nil {
		t.Fatal(err)
	}
	env.auth = auth.New(st, auth.Options{Logger: logger.With("component", "auth"), FailureDelay: -1,
		AllowPlaintext: cfg.plaintext, MaxFailures: 3})
	opts := cfg.opts
	opts.Store, opts.Auth = st, env.auth
	if opts.Logger == nil {
		opts.Logger = logger
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	if cfg.tls || opts.ImplicitTLS {
		opts.TLSConfig, env.ca = testTLS(t)
	}
	env.srv = New(opts)
	if cfg.setup != nil {
		cfg.setup(env.srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr = l.Addr().String()
	go func() { env.done <- env.srv.Serve(l) }()
	t.Cleanup(func() { env.stop(t) })
	return env
}

func (env *testEnv) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-env.done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve returned %v, want ErrServerClosed", err)
	}
	if err := env.st.Close(); err != nil {
		t.Errorf("store close: %v", err)
	}
	logs := env.logs.String()
	if strings.Contains(logs, password) || strings.Contains(logs, "Y29ycmVjdCBob3Jz") {
		t.Errorf("a password reached the log")
	}
	if strings.Contains(logs, "level=ERROR") && !t.Failed() {
		t.Errorf("errors logged:\n%s", logs)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs)
	}
}

// deliver stores a message for acct in mailbox (INBOX when "").
func (env *testEnv) deliver(acct store.Account, mailbox string, flags []string, body string) store.LocalResult {
	env.t.Helper()
	if body == "" {
		body = "From: a@example.test\r\nSubject: test\r\n\r\nhello\r\n"
	}
	res, err := env.st.Deliver(context.Background(), &store.Delivery{
		Blob: strings.NewReader(body), InternalDate: fixedNow,
		Local: []store.LocalRecipient{{AccountID: acct.ID, Mailbox: mailbox, Flags: flags}},
	})
	if err != nil {
		env.t.Fatal(err)
	}
	return res.Local[0]
}

// mailbox returns a mailbox of acct.
func (env *testEnv) mailbox(acct store.Account, name string) store.Mailbox {
	env.t.Helper()
	mb, err := env.st.Mailbox(context.Background(), acct.ID, name)
	if err != nil {
		env.t.Fatal(err)
	}
	return mb
}

// logBuffer collects the server log.
type logBuffer = testkit.LogBuffer

// testTLS makes a self-signed certificate for imap.example.test, localhost,
// 127.0.0.1 and ::1.
func testTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cfg, roots, _ := testkit.TLS(t, "imap.example.test")
	return cfg, roots
}

func (env *testEnv) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: env.ca, ServerName: "imap.example.test"}
}

// client is a raw line-level IMAP client for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

func (env *testEnv) dial() *client {
	env.t.Helper()
	nc, err := net.Dial("tcp", env.addr)
	if err != nil {
		env.t.Fatal(err)
	}
	env.t.Cleanup(func() { nc.Close() })
	// A generous deadline: a hung server fails the test instead of hanging it.
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: env.t, conn: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) line() (string, error) {
	l, err := c.br.ReadString('\n')
	if err != nil {
		return l, err
	}
	if !strings.HasSuffix(l, "\r\n") {
		return l, fmt.Errorf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// expect reads one line and checks its prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	l, err := c.line()
	if err != nil {
		c.t.Fatalf("want %q: %v", prefix, err)
	}
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

// until reads lines up to the one starting with prefix and returns all.
func (c *client) until(prefix string) []string {
	c.t.Helper()
	var out []string
	for {
		l, err := c.line()
		if err != nil {
			c.t.Fatalf("want %q: %v (got %q)", prefix, err, out)
		}
		out = append(out, l)
		if strings.HasPrefix(l, prefix) {
			return out
		}
	}
}

// login greets and logs in as user over the plain connection.
func (c *client) login(user string) {
	c.t.Helper()
	c.expect("* OK")
	c.send("L1 LOGIN " + user + " \"" + password + "\"\r\n")
	c.expect("L1 OK")
}

func isClosed(err error) bool { return testkit.IsClosed(err) }
