package pop3server

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
	hostname = "pop.example.test"
)

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
	opts  Options
	noTLS bool // no certificate: no STLS, and no implicit TLS
	// auth, when set, wraps the real authenticator before the server starts.
	auth func(*auth.Authenticator, store.Store) Authenticator
}

// newEnv builds and starts a server on 127.0.0.1:0. Unless cfg says
// otherwise it has a certificate (STLS) and allows plaintext login from
// loopback.
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
	env.auth = auth.New(st, auth.Options{Logger: logger.With("component", "auth"), FailureDelay: -1, MaxFailures: 3})
	opts := cfg.opts
	opts.Store, opts.Auth = st, env.auth
	if cfg.auth != nil {
		opts.Auth = cfg.auth(env.auth, st)
	}
	if opts.Logger == nil {
		opts.Logger = logger
	}
	opts.Hostname = hostname
	if !cfg.noTLS {
		opts.TLSConfig, env.ca = testTLS(t)
	}
	env.srv = New(opts)
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
	if logs := env.logs.String(); strings.Contains(logs, "msg=panic") {
		t.Errorf("a session panicked:\n%s", logs)
	}
}

// testMessage is the message deliver stores: CRLF lines, one of them
// starting with '.', so sizes and dot-stuffing are both exercised.
func testMessage(subject string) string {
	return "From: sender@example.org\r\nTo: alice@example.test\r\nSubject: " + subject + "\r\n\r\n" +
		"first line\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n"
}

// deliver stores testMessage(subject) in a mailbox of acct.
func (env *testEnv) deliver(acct store.Account, mailbox, subject string) store.LocalResult {
	env.t.Helper()
	res, err := env.st.Deliver(context.Background(), &store.Delivery{
		Blob:         strings.NewReader(testMessage(subject)),
		InternalDate: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC),
		Local:        []store.LocalRecipient{{AccountID: acct.ID, Mailbox: mailbox}},
	})
	if err != nil {
		env.t.Fatal(err)
	}
	return res.Local[0]
}

func (env *testEnv) mailbox(acct store.Account, name string) store.Mailbox {
	env.t.Helper()
	mb, err := env.st.Mailbox(context.Background(), acct.ID, name)
	if err != nil {
		env.t.Fatal(err)
	}
	return mb
}

// uids lists the UIDs of a mailbox.
func (env *testEnv) uids(acct store.Account, name string) []uint32 {
	env.t.Helper()
	msgs, err := env.st.Messages(context.Background(), env.mailbox(acct, name).ID, 1, false)
	if err != nil {
		env.t.Fatal(err)
	}
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

type logBuffer = testkit.LogBuffer

// testTLS returns a server config with a self-signed certificate for
// hostname (made by package certs, as the server makes its own) and a
// pool trusting it.
func testTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	cfg, roots, _ := testkit.TLS(t, hostname)
	return cfg, roots
}

func (env *testEnv) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: env.ca, ServerName: hostname}
}

// client is a raw line-level POP3 client for tests.
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

// dialTLS connects with implicit TLS.
func (env *testEnv) dialTLS() *client {
	env.t.Helper()
	c := env.dial()
	tc := tls.Client(c.conn, env.clientTLS())
	if err := tc.Handshake(); err != nil {
		env.t.Fatal(err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
	return c
}

// upgrade starts TLS after the server's "+OK" to STLS.
func (c *client) upgrade(cfg *tls.Config) {
	c.t.Helper()
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.br = tc, bufio.NewReader(tc)
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

// multi reads a multi-line body up to the terminating "." and returns
// it raw (still dot-stuffed), with CRLF line ends.
func (c *client) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l, err := c.line()
		if err != nil {
			c.t.Fatalf("reading multi-line reply: %v (got %q)", err, b.String())
		}
		if l == "." {
			return b.String()
		}
		b.WriteString(l + "\r\n")
	}
}

// login greets and logs in as user with USER/PASS.
func (c *client) login(user string) string {
	c.t.Helper()
	c.expect("+OK")
	c.send("USER " + user + "\r\nPASS " + password + "\r\n")
	c.expect("+OK")
	return c.expect("+OK")
}

// closed waits for the server to close the connection.
func (c *client) closed() {
	c.t.Helper()
	for {
		l, err := c.line()
		if err != nil {
			if !isClosed(err) {
				c.t.Fatalf("want close, got %v", err)
			}
			return
		}
		c.t.Fatalf("want close, got line %q", l)
	}
}

func isClosed(err error) bool { return testkit.IsClosed(err) }
