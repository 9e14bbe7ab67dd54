package smtpserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/sasl"
	"pillarbox/internal/store"
	"pillarbox/internal/testkit"
)

var _ Authenticator = (*auth.Authenticator)(nil)

// fakeBackend is an in-memory Backend: local domain example.test with
// users alice and bob; every other domain is remote.
type fakeBackend struct {
	dir     string
	panicky bool // CheckRecipient panics for panic@example.test

	mu        sync.Mutex
	delivered []delivery
	spools    []string
	nextID    int
}

type delivery struct {
	Info SessionInfo
	Env  Envelope
	Msg  string
}

var (
	errFakeRelay   = &Error{Code: 554, Enhanced: [3]int{5, 7, 1}, Message: "Relay access denied"}
	errFakeUnknown = &Error{Code: 550, Enhanced: [3]int{5, 1, 1}, Message: "No such user here"}
	errFakeOwner   = &Error{Code: 553, Enhanced: [3]int{5, 7, 1}, Message: "Sender address not owned"}
)

func (b *fakeBackend) CheckSender(ctx context.Context, si *SessionInfo, from string) error {
	if from == "tempfail@example.test" {
		return errors.New("database on fire: secret detail")
	}
	if si.Mode.submission() && (si.Account == nil || !strings.EqualFold(from, si.Account.Email)) {
		return errFakeOwner
	}
	return nil
}

func (b *fakeBackend) CheckRecipient(ctx context.Context, si *SessionInfo, rcpt string, size int64) (any, error) {
	if rcpt == "Postmaster" { // the path parser's spelling of <Postmaster>
		return "local:postmaster", nil
	}
	i := strings.LastIndexByte(rcpt, '@')
	local, dom := rcpt[:i], strings.ToLower(rcpt[i+1:])
	if dom != "example.test" {
		if si.Account == nil {
			return nil, errFakeRelay
		}
		return "remote:" + rcpt, nil
	}
	switch strings.ToLower(local) {
	case "alice", "bob", "ünicode":
		return "local:" + strings.ToLower(local), nil
	case "panic":
		if b.panicky {
			panic("fake backend panic")
		}
	case "tempfail":
		return nil, errors.New("secret internal detail")
	}
	return nil, errFakeUnknown
}

func (b *fakeBackend) Deliver(ctx context.Context, si *SessionInfo, env *Envelope, msg io.Reader) (string, error) {
	data, err := io.ReadAll(msg)
	if err != nil {
		return "", err
	}
	if bytes.Contains(data, []byte("FAIL-DELIVERY")) {
		return "", errors.New("disk full: secret detail")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	e := *env
	e.Recipients = append([]Recipient(nil), env.Recipients...)
	b.delivered = append(b.delivered, delivery{Info: *si, Env: e, Msg: string(data)})
	return fmt.Sprintf("Q%d", b.nextID), nil
}

func (b *fakeBackend) CreateSpool() (*os.File, error) {
	f, err := os.CreateTemp(b.dir, "spool-*")
	if err == nil {
		b.mu.Lock()
		b.spools = append(b.spools, f.Name())
		b.mu.Unlock()
	}
	return f, err
}

func (b *fakeBackend) deliveries() []delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]delivery(nil), b.delivered...)
}

// fakeAuth uses the real SASL mechanisms over a map of passwords.
type fakeAuth struct {
	users map[string]string // email -> password
	scram map[string]sasl.SCRAMCredentials
}

func newFakeAuth(t testing.TB) *fakeAuth {
	a := &fakeAuth{
		users: map[string]string{"alice@example.test": "correct horse", "locked@example.test": "x"},
		scram: map[string]sasl.SCRAMCredentials{},
	}
	for u, p := range a.users {
		cr, err := sasl.NewSCRAMCredentials(p, []byte("salt-"+u), 4096)
		if err != nil {
			t.Fatal(err)
		}
		a.scram[u] = cr
	}
	return a
}

func (a *fakeAuth) Mechanisms(tls bool) []string {
	if !tls {
		return nil
	}
	return []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}
}

func (a *fakeAuth) NewServer(ctx context.Context, mech string, remote netip.Addr) (auth.Server, error) {
	verify := func(user, pass string) error {
		if user == "locked@example.test" {
			return auth.ErrLocked
		}
		if user == "storedown@example.test" {
			return auth.ErrTemporary
		}
		if p, ok := a.users[user]; !ok || p != pass {
			return auth.ErrFailed
		}
		return nil
	}
	var m sasl.Server
	switch mech {
	case "PLAIN":
		m = sasl.NewPlain(verify)
	case "LOGIN":
		m = sasl.NewLogin(verify)
	case "SCRAM-SHA-256":
		m = sasl.NewScramSHA256(func(user string) (sasl.SCRAMCredentials, error) {
			if user == "locked@example.test" {
				return sasl.SCRAMCredentials{}, auth.ErrLocked
			}
			cr, ok := a.scram[user]
			if !ok {
				return sasl.SCRAMCredentials{}, auth.ErrFailed
			}
			return cr, nil
		})
	default:
		return nil, errors.New("unknown mechanism")
	}
	return &fakeSASL{m: m}, nil
}

type fakeSASL struct{ m sasl.Server }

func (f *fakeSASL) Next(r []byte) ([]byte, bool, error) { return f.m.Next(r) }
func (f *fakeSASL) Account() (store.Account, bool) {
	id := f.m.Identity()
	if id == "" {
		return store.Account{}, false
	}
	return store.Account{ID: 1, Email: strings.ToLower(id)}, true
}

// logBuffer collects log output for assertions (secrets, panics).
type logBuffer = testkit.LogBuffer

type testEnv struct {
	srv  *Server
	be   *fakeBackend
	addr string
	logs *logBuffer
	ca   *x509.CertPool
	pem  string // CA/cert file for external clients
	done chan error
}

var fixedNow = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)

// startServer runs a server on 127.0.0.1:0. opts.Backend, Logger, Now,
// Hostname and Rand are filled in when empty.
func startServer(t testing.TB, opts Options) *testEnv {
	t.Helper()
	env := &testEnv{be: &fakeBackend{dir: t.TempDir(), panicky: true}, logs: &logBuffer{}, done: make(chan error, 1)}
	if opts.Backend == nil {
		opts.Backend = env.be
	}
	if opts.Hostname == "" {
		opts.Hostname = "mx.example.test"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	if opts.Rand == nil {
		opts.Rand = &countingRand{}
	}
	if opts.Mode != ModeMX && opts.Auth == nil {
		opts.Auth = newFakeAuth(t)
	}
	if opts.TLSConfig != nil || opts.Mode != ModeMX {
		cfg, pool, pemPath := testTLS(t)
		opts.TLSConfig, env.ca, env.pem = cfg, pool, pemPath
	}
	env.srv = New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.addr = l.Addr().String()
	go func() { env.done <- env.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = env.srv.Shutdown(ctx)
		if err := <-env.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if logs := env.logs.String(); strings.Contains(logs, "correct horse") ||
			strings.Contains(logs, "AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNl") {
			t.Errorf("a password reached the log")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", env.logs.String())
		}
	})
	return env
}

// countingRand gives deterministic connection IDs: 000000000001, ...
type countingRand struct {
	mu sync.Mutex
	n  uint64
}

func (r *countingRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	v := r.n
	for i := len(p) - 1; i >= 0; i-- {
		p[i] = byte(v)
		v >>= 8
	}
	return len(p), nil
}

// testTLS makes a self-signed certificate for mx.example.test, localhost,
// 127.0.0.1 and ::1, and writes it to a PEM file for external clients.
func testTLS(t testing.TB) (*tls.Config, *x509.CertPool, string) {
	t.Helper()
	cfg, pool, certPEM := testkit.TLS(t, "mx.example.test")
	pemPath := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(pemPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, pool, pemPath
}

func (e *testEnv) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.ca, ServerName: "mx.example.test"}
}

// tlsPlaceholder is a non-nil TLSConfig that makes startServer generate a
// certificate (for MX STARTTLS).
func tlsPlaceholder() *tls.Config { return &tls.Config{} }
