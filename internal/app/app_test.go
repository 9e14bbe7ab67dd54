package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/config"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

const testHost = "mail.example.test"

// testApp starts an App on loopback ephemeral ports with a temp data dir,
// one domain, accounts alice and bob, and a few aliases.
func testApp(t testing.TB) *App {
	t.Helper()
	return testAppLog(t, nil)
}

// testAppLog is testApp logging to w too (when not nil).
func testAppLog(t testing.TB, w io.Writer) *App {
	t.Helper()
	return testAppWith(t, w, nil)
}

// testAppWith is testAppLog with a chance to change the config first.
func testAppWith(t testing.TB, w io.Writer, change func(*config.Config)) *App {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "pillarbox.toml")
	cfg.Hostname = testHost
	cfg.DataDir = dir
	cfg.Listen = config.Listen{
		SMTP:        []string{"127.0.0.1:0"},
		Submission:  []string{"127.0.0.1:0"},
		Submissions: []string{"127.0.0.1:0"},
		IMAP:        []string{"127.0.0.1:0"},
		IMAPS:       []string{"127.0.0.1:0"},
		POP3:        []string{"127.0.0.1:0"},
		POP3S:       []string{"127.0.0.1:0"},
	}
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	if w != nil {
		out = io.MultiWriter(out, w)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if change != nil {
		change(cfg)
		logger = slog.New(slog.NewTextHandler(out, nil)) // info, as in production
	}
	a, err := New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := a.Store()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.AddDomain(ctx, "example.test"))
	cred, err := auth.HashPassword("alice-secret")
	must(err)
	_, err = st.CreateAccount(ctx, "alice@example.test", cred, 0)
	must(err)
	_, err = st.CreateAccount(ctx, "bob@example.test", cred, 0)
	must(err)
	must(st.AddAlias(ctx, "team@example.test", []string{"alice@example.test", "bob@example.test"}))
	must(st.AddAlias(ctx, "@example.test", []string{"bob@example.test"}))
	must(a.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a
}

func (a *App) addr(t testing.TB, name string) string {
	t.Helper()
	addrs := a.Addrs()[name]
	if len(addrs) != 1 {
		t.Fatalf("listener %s: addrs %v", name, addrs)
	}
	return addrs[0].String()
}

// inbox returns the bytes of every message in an account's mailbox.
func inbox(t *testing.T, st store.Store, email, mailbox string) []string {
	t.Helper()
	ctx := context.Background()
	acc, err := st.Account(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.Mailbox(ctx, acc.ID, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Messages(ctx, mb.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		r, err := st.OpenMessage(ctx, mb.ID, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// send runs one transaction on c.
func send(t *testing.T, c *smtp.Client, from string, to []string, body string) {
	t.Helper()
	if err := c.Mail(from); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
}

func dialSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.remote.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

const body = "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: test\r\n\r\nHello.\r\n"

func TestMXDeliversToInbox(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	send(t, c, "sender@remote.test", []string{"alice@example.test"}, body)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	got := inbox(t, a.Store(), "alice@example.test", "INBOX")
	if len(got) != 1 {
		t.Fatalf("INBOX has %d messages, want 1", len(got))
	}
	m := got[0]
	if !strings.HasPrefix(m, "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.test\r\n") {
		t.Errorf("message does not start with Return-Path/Delivered-To:\n%s", m)
	}
	if !strings.Contains(m, "Received: ") || !strings.HasSuffix(m, body) {
		t.Errorf("message lacks Received header or body:\n%s", m)
	}
}

func TestMXAliasSubaddressCatchAll(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	// team -> alice, bob; alice+tag -> alice; whoever -> catch-all -> bob.
	send(t, c, "sender@remote.test", []string{"team@example.test", "alice+tag@example.test", "whoever@example.test"}, body)
	if got := inbox(t, a.Store(), "alice@example.test", "INBOX"); len(got) != 1 {
		t.Errorf("alice has %d messages, want 1", len(got))
	}
	if got := inbox(t, a.Store(), "bob@example.test", "INBOX"); len(got) != 1 {
		t.Errorf("bob has %d messages, want 1", len(got))
	}
	// A subaddress alone reaches its account and keeps the tag in Delivered-To.
	send(t, c, "", []string{"Alice+Lists@example.test"}, body)
	got := inbox(t, a.Store(), "alice@example.test", "INBOX")
	if len(got) != 2 || !strings.HasPrefix(got[1], "Return-Path: <>\r\nDelivered-To: alice+lists@example.test\r\n") {
		t.Errorf("alice INBOX = %q", got)
	}
}

func TestMXRelayDenied(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	if err := c.Mail("sender@remote.test"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"victim@remote.test", "victim%remote.test@example.test", "victim@remote.test."} {
		err := c.Rcpt(rcpt)
		var te *textproto.Error
		if !errors.As(err, &te) || te.Code/100 != 5 {
			t.Errorf("RCPT %s: %v, want a 5xx refusal", rcpt, err)
		}
	}
	err := c.Rcpt("victim@remote.test")
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 554 || !strings.HasPrefix(te.Msg, "5.7.1") {
		t.Errorf("RCPT remote: %v, want 554 5.7.1", err)
	}
	// The session still works, and nothing was queued.
	if err := c.Rcpt("alice@example.test"); err != nil {
		t.Fatalf("RCPT local after refusals: %v", err)
	}
	if items, err := a.Store().QueueItems(context.Background()); err != nil || len(items) != 0 {
		t.Errorf("queue = %v, %v; want empty", items, err)
	}
}

func TestMXUnknownUser(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	st := a.Store()
	if err := st.RemoveAlias(context.Background(), "@example.test"); err != nil {
		t.Fatal(err)
	}
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	if err := c.Mail("sender@remote.test"); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("nobody@example.test")
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 550 || !strings.HasPrefix(te.Msg, "5.1.1") {
		t.Errorf("RCPT unknown: %v, want 550 5.1.1", err)
	}
}

// tlsConfig trusts the App's self-signed certificate for testHost.
func tlsConfig(t *testing.T, a *App) *tls.Config {
	t.Helper()
	certPath, _ := tlsPaths(a.cfg)
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in", certPath)
	}
	return &tls.Config{ServerName: testHost, RootCAs: pool}
}

func TestSubmissionSTARTTLSAuthPlain(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	ctx := context.Background()
	c := dialSMTP(t, a.addr(t, ListenSubmission))
	if err := c.Mail("alice@example.test"); err == nil {
		t.Fatal("MAIL before AUTH accepted")
	}
	if err := c.StartTLS(tlsConfig(t, a)); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	// net/smtp checks the host against the name it dialled.
	err := c.Auth(smtp.PlainAuth("", "alice@example.test", "wrong", "127.0.0.1"))
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 535 {
		t.Fatalf("AUTH with a wrong password: %v, want 535", err)
	}
	// net/smtp quits after a failed AUTH: start again.
	c = dialSMTP(t, a.addr(t, ListenSubmission))
	if err := c.StartTLS(tlsConfig(t, a)); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	if err := c.Auth(smtp.PlainAuth("", "alice@example.test", "alice-secret", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("bob@example.test"); err == nil {
		t.Error("MAIL FROM someone else's address accepted")
	} else if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	send(t, c, "alice@example.test", []string{"bob@example.test", "friend@remote.test"}, body)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, a.Store(), "bob@example.test", "INBOX"); len(got) != 1 {
		t.Errorf("bob has %d messages, want 1", len(got))
	}
	items, err := a.Store().QueueItems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || len(items[0].Recipients) != 1 || items[0].Recipients[0].Address != "friend@remote.test" ||
		items[0].From != "alice@example.test" {
		t.Fatalf("queue = %+v, want one item for friend@remote.test", items)
	}
	alice, err := a.Store().Account(ctx, "alice@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if items[0].AccountID != alice.ID {
		t.Errorf("queue item account = %d, want %d", items[0].AccountID, alice.ID)
	}
}

func TestSubmissionsImplicitTLS(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	conn, err := tls.Dial("tcp", a.addr(t, ListenSubmissions), tlsConfig(t, a))
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, testHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", "alice@example.test", "alice-secret", testHost)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	send(t, c, "alice+out@example.test", []string{"bob@example.test"}, body)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if got := inbox(t, a.Store(), "bob@example.test", "INBOX"); len(got) != 1 {
		t.Errorf("bob has %d messages, want 1", len(got))
	}
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	cfg := *a.cfg
	dir := t.TempDir()
	cfg.DataDir = dir
	cfg.Path = filepath.Join(dir, "pillarbox.toml")
	cfg.Listen = config.Listen{Submission: []string{"127.0.0.1:0"}, SMTP: []string{a.addr(t, ListenSMTP)}}
	b, err := New(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if err := b.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "smtp") {
		t.Fatalf("Start on a taken port: %v, want an error naming the listener", err)
	}
	if n := len(b.Addrs()); n != 0 {
		t.Errorf("after failed Start %d listener kinds still bound", n)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	a.LogLevel = new(slog.LevelVar)
	cfg := *a.cfg
	cfg.Log.Level = "debug"
	if err := config.Write(cfg.Path, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.LogLevel.Level() != slog.LevelDebug {
		t.Errorf("level after reload = %v, want debug", a.LogLevel.Level())
	}
	// A broken file is refused and the running config kept.
	if err := os.WriteFile(cfg.Path, []byte("log = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil {
		t.Error("reload of a broken config succeeded")
	}
	if a.LogLevel.Level() != slog.LevelDebug {
		t.Errorf("level changed by a failed reload: %v", a.LogLevel.Level())
	}
	// The server still serves.
	c := dialSMTP(t, a.addr(t, ListenSMTP))
	send(t, c, "sender@remote.test", []string{"alice@example.test"}, body)
}

// A message transfer in progress when Shutdown starts completes and is
// kept (smtpserver answers sessions waiting for a command 421 at once,
// even inside a transaction: nothing of theirs was acknowledged).
func TestShutdownFinishesTransaction(t *testing.T) {
	t.Parallel()
	a := testApp(t)
	addr := a.addr(t, ListenSMTP)
	c := dialSMTP(t, addr)
	if err := c.Mail("sender@remote.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.test"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- a.Shutdown(ctx)
	}()
	// Wait until the listener is closed: Shutdown has begun.
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conn.Close()
		runtime.Gosched()
	}
	io.WriteString(w, body)
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA during shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st, err := sqlstore.Open(a.cfg.DataDir, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := inbox(t, st, "alice@example.test", "INBOX"); len(got) != 1 {
		t.Errorf("after shutdown INBOX has %d messages, want 1", len(got))
	}
}
