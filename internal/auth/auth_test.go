package auth

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"pillarbox/internal/sasl"
	"pillarbox/internal/store"
)

// fakeStore implements only Credentials; any other method panics (nil
// embedded interface), which proves auth uses nothing else.
type fakeStore struct {
	store.Store
	mu    sync.Mutex
	creds map[string]store.Credentials
	accts map[string]store.Account
	err   error
	calls []string
	// When gate is set, Credentials signals entered and waits for gate.
	gate    chan struct{}
	entered chan struct{}
}

func (f *fakeStore) Credentials(_ context.Context, email string) (store.Account, store.Credentials, error) {
	if f.gate != nil {
		f.entered <- struct{}{}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, email)
	if f.err != nil {
		return store.Account{}, store.Credentials{}, f.err
	}
	a, ok := f.accts[email]
	if !ok {
		return store.Account{}, store.Credentials{}, store.ErrNotFound
	}
	return a, f.creds[email], nil
}

func (f *fakeStore) add(t *testing.T, email, pw string) store.Account {
	t.Helper()
	c, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := store.Account{ID: int64(len(f.accts) + 1), Email: email}
	f.accts[email], f.creds[email] = a, c
	return a
}

type fixture struct {
	st     *fakeStore
	a      *Authenticator
	now    time.Time
	mu     sync.Mutex
	sleeps []time.Duration
	logs   *bytes.Buffer
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}
func (f *fixture) slept() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{
		st:   &fakeStore{creds: map[string]store.Credentials{}, accts: map[string]store.Account{}},
		now:  time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		logs: &bytes.Buffer{},
	}
	opts.Now = f.clock
	opts.Sleep = func(_ context.Context, d time.Duration) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.sleeps = append(f.sleeps, d)
	}
	opts.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.a = New(f.st, opts)
	return f
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

var (
	ip1 = netip.MustParseAddr("192.0.2.1")
	ip2 = netip.MustParseAddr("192.0.2.2")
)

func TestHashPassword(t *testing.T) {
	c1, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := HashPassword("correct horse")
	if !strings.HasPrefix(c1.PasswordHash, "$argon2id$v=19$m=32768,t=2,p=1$") {
		t.Errorf("PHC = %q", c1.PasswordHash)
	}
	if c1.PasswordHash == c2.PasswordHash || bytes.Equal(c1.SCRAMSHA256.Salt, c2.SCRAMSHA256.Salt) {
		t.Error("two hashes of one password are equal: salt not random")
	}
	if strings.Contains(c1.PasswordHash, "correct") {
		t.Error("clear password in hash")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsf": false, "": false} {
		if ok, err := checkPHC(c1.PasswordHash, pw); err != nil || ok != want {
			t.Errorf("checkPHC(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	s := c1.SCRAMSHA256
	if s == nil || s.Iterations < 4096 || len(s.Salt) != 16 {
		t.Fatalf("SCRAM creds = %+v", s)
	}
	want, _ := sasl.NewSCRAMCredentials("correct horse", s.Salt, s.Iterations)
	if !bytes.Equal(want.StoredKey, s.StoredKey) || !bytes.Equal(want.ServerKey, s.ServerKey) {
		t.Error("SCRAM keys do not derive from the password")
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("empty password accepted")
	}
}

func TestDecodePHCRejects(t *testing.T) {
	c, _ := HashPassword("x")
	good := c.PasswordHash
	f := strings.Split(good, "$")
	for name, s := range map[string]string{
		"empty":        "",
		"argon2i":      strings.Replace(good, "argon2id", "argon2i", 1),
		"version":      strings.Replace(good, "v=19", "v=16", 1),
		"huge memory":  strings.Join([]string{"", f[1], f[2], "m=4194304,t=2,p=1", f[4], f[5]}, "$"),
		"zero time":    strings.Join([]string{"", f[1], f[2], "m=32768,t=0,p=1", f[4], f[5]}, "$"),
		"many threads": strings.Join([]string{"", f[1], f[2], "m=32768,t=2,p=255", f[4], f[5]}, "$"),
		"trailing":     strings.Join([]string{"", f[1], f[2], "m=32768,t=2,p=1x", f[4], f[5]}, "$"),
		"bad salt":     strings.Join([]string{"", f[1], f[2], f[3], "!!", f[5]}, "$"),
		"short key":    strings.Join([]string{"", f[1], f[2], f[3], f[4], "AAAA"}, "$"),
		"extra field":  good + "$x",
		"bcrypt":       "$2a$10$abcdefghijklmnopqrstuu5Kz8X9n7r7n5Vx1o3a9mE5l1h6v7J1e",
	} {
		if _, _, _, err := decodePHC(s); err == nil {
			t.Errorf("%s: accepted %q", name, s)
		}
	}
	if _, _, _, err := decodePHC(good); err != nil {
		t.Errorf("good PHC rejected: %v", err)
	}
}

func TestNormalizeUser(t *testing.T) {
	for in, want := range map[string]string{
		"Ann@Example.TEST":     "ann@example.test",
		"ann@example.test.":    "ann@example.test",
		"ÄNN@Bücher.example":   "änn@xn--bcher-kva.example",
		"\"a@b\"@example.test": "\"a@b\"@example.test",
	} {
		got, ok := NormalizeUser(in)
		if !ok || got != want {
			t.Errorf("NormalizeUser(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"ann", "@example.test", "ann@", "ann@exa mple..test"} {
		if _, ok := NormalizeUser(in); ok {
			t.Errorf("NormalizeUser(%q) ok", in)
		}
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, Options{FailureDelay: 2 * time.Second})
	want := f.st.add(t, "ann@example.test", "s3cret-pw")
	ctx := context.Background()

	got, err := f.a.Login(ctx, "Ann@EXAMPLE.test", "s3cret-pw", ip1)
	if err != nil || got.ID != want.ID || got.Email != want.Email {
		t.Fatalf("Login = %+v, %v; want %+v", got, err, want)
	}
	if len(f.slept()) != 0 {
		t.Errorf("success was delayed: %v", f.slept())
	}
	_, errWrong := f.a.Login(ctx, "ann@example.test", "wrong-pw", ip1)
	_, errUnknown := f.a.Login(ctx, "bob@example.test", "s3cret-pw", ip1)
	_, errInvalid := f.a.Login(ctx, "not-an-address", "s3cret-pw", ip1)
	if errWrong != ErrFailed || errUnknown != ErrFailed || errInvalid != ErrFailed {
		t.Fatalf("errors: wrong %v, unknown %v, invalid %v; want ErrFailed for all", errWrong, errUnknown, errInvalid)
	}
	if s := f.slept(); len(s) != 3 || s[0] != 2*time.Second || s[1] != 2*time.Second || s[2] != 2*time.Second {
		t.Errorf("sleeps = %v, want three of 2s", s)
	}
	if strings.Contains(f.logs.String(), "s3cret") || strings.Contains(f.logs.String(), "wrong-pw") {
		t.Errorf("password in logs:\n%s", f.logs)
	}
}

// The unknown-user path must do the same work as a wrong password: one
// store look-up and one argon2id computation with the current parameters.
func TestUnknownUserDoesSameWork(t *testing.T) {
	f := newFixture(t, Options{})
	real, _ := HashPassword("pw")
	rp, _, _, err := decodePHC(real.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	dp, _, dkey, err := decodePHC(f.a.dummyHash())
	if err != nil {
		t.Fatal(err)
	}
	if rp != dp || len(dkey) != argonKeyLen {
		t.Errorf("decoy params %+v differ from real %+v", dp, rp)
	}
	f.a.Login(context.Background(), "nobody@example.test", "pw", ip1)
	if len(f.st.calls) != 1 || f.st.calls[0] != "nobody@example.test" {
		t.Errorf("store calls = %v", f.st.calls)
	}
}

func TestLoginCorruptHash(t *testing.T) {
	f := newFixture(t, Options{})
	f.st.add(t, "ann@example.test", "pw")
	f.st.creds["ann@example.test"] = store.Credentials{PasswordHash: "$argon2id$garbage"}
	if _, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip1); err != ErrFailed {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	if !strings.Contains(f.logs.String(), "hash unusable") {
		t.Errorf("corrupt hash not logged:\n%s", f.logs)
	}
}

func TestLoginStoreError(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 1})
	f.st.err = errors.New("disk on fire")
	_, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip1)
	if err != ErrTemporary {
		t.Fatalf("err = %v, want ErrTemporary", err)
	}
	if strings.Contains(err.Error(), "disk") {
		t.Error("internal error leaked")
	}
	f.st.err = nil
	f.st.add(t, "ann@example.test", "pw")
	if _, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip1); err != nil {
		t.Fatalf("store error counted as a failure: %v", err)
	}
}
