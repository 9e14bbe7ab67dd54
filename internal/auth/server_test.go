package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"pillarbox/internal/sasl"
)

func TestLockoutPerAccount(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3, Lockout: 10 * time.Minute})
	f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	// Failures from three addresses: the address counters stay below 3.
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		if _, err := f.a.Login(ctx, "ANN@example.test", "bad", netip.MustParseAddr(ip)); err != ErrFailed {
			t.Fatalf("failure: %v", err)
		}
	}
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", netip.MustParseAddr("198.51.100.7")); err != ErrLocked {
		t.Fatalf("right password while locked: %v, want ErrLocked", err)
	}
	if _, err := f.a.Login(ctx, "carl@example.test", "x", netip.MustParseAddr("192.0.2.1")); err != ErrFailed {
		t.Fatalf("other name from a failing address: %v, want ErrFailed", err)
	}
	f.advance(10*time.Minute - time.Second)
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", ip2); err != ErrLocked {
		t.Fatalf("just before the end: %v", err)
	}
	f.advance(time.Second)
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", ip2); err != nil {
		t.Fatalf("after lockout: %v", err)
	}
}

func TestLockoutPerAddress(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3, Lockout: time.Hour})
	f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	a6 := netip.MustParseAddr("2001:db8:1:2::10")
	for _, u := range []string{"x@example.test", "y@example.test", "z@example.test"} {
		if _, err := f.a.Login(ctx, u, "guess", a6); err != ErrFailed {
			t.Fatal(err)
		}
	}
	// Same /64, other host: locked. Other /64: fine.
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", netip.MustParseAddr("2001:db8:1:2::99")); err != ErrLocked {
		t.Fatalf("same /64: %v, want ErrLocked", err)
	}
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", netip.MustParseAddr("2001:db8:1:3::10")); err != nil {
		t.Fatalf("other /64: %v", err)
	}
}

func TestFailuresOutsideWindowDoNotLock(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3, Lockout: 10 * time.Minute})
	f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		f.a.Login(ctx, "ann@example.test", "bad", ip1)
		if i%2 == 1 {
			f.advance(10 * time.Minute)
		}
	}
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", ip1); err != nil {
		t.Fatalf("spread-out failures locked: %v", err)
	}
}

func TestSuccessResetsAccountCount(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3, Lockout: 10 * time.Minute})
	f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	login := func(pw string, ip netip.Addr) error { _, err := f.a.Login(ctx, "ann@example.test", pw, ip); return err }
	login("bad", ip1)
	login("bad", ip2)
	if err := login("pw", ip1); err != nil {
		t.Fatal(err)
	}
	login("bad", ip2)
	login("bad", netip.MustParseAddr("192.0.2.3"))
	if err := login("pw", netip.MustParseAddr("192.0.2.4")); err != nil {
		t.Fatalf("count not reset by success: %v", err)
	}
}

func TestNeverLock(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: -1, FailureDelay: -1})
	f.st.add(t, "ann@example.test", "pw")
	for i := 0; i < 8; i++ {
		f.a.Login(context.Background(), "ann@example.test", "bad", ip1)
	}
	if _, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip1); err != nil {
		t.Fatal(err)
	}
	if len(f.slept()) != 0 {
		t.Errorf("negative FailureDelay still slept: %v", f.slept())
	}
}

func TestMechanisms(t *testing.T) {
	f := newFixture(t, Options{})
	if m := f.a.Mechanisms(false); len(m) != 0 {
		t.Errorf("without TLS: %v", m)
	}
	if m := strings.Join(f.a.Mechanisms(true), " "); m != "PLAIN LOGIN SCRAM-SHA-256" {
		t.Errorf("with TLS: %q", m)
	}
	f = newFixture(t, Options{AllowPlaintext: true})
	if m := f.a.Mechanisms(false); len(m) != 3 {
		t.Errorf("AllowPlaintext: %v", m)
	}
	if _, err := f.a.NewServer(context.Background(), "CRAM-MD5", ip1); err != ErrMechanism {
		t.Errorf("CRAM-MD5: %v", err)
	}
}

// exchange runs a full SASL exchange with scripted responses.
func exchange(t *testing.T, s Server, responses ...[]byte) error {
	t.Helper()
	for i, r := range responses {
		_, done, err := s.Next(r)
		if done || err != nil {
			if i != len(responses)-1 && err == nil {
				t.Fatalf("done after %d of %d responses", i+1, len(responses))
			}
			return err
		}
	}
	t.Fatal("exchange not finished")
	return nil
}

func TestServerPlainAndLogin(t *testing.T) {
	f := newFixture(t, Options{})
	want := f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	for _, tt := range []struct {
		mech string
		resp [][]byte
		err  error
	}{
		{"plain", [][]byte{[]byte("\x00Ann@Example.test\x00pw")}, nil},
		{"PLAIN", [][]byte{nil, []byte("ann@example.test\x00ann@example.test\x00pw")}, nil},
		{"PLAIN", [][]byte{[]byte("\x00ann@example.test\x00nope")}, ErrFailed},
		{"PLAIN", [][]byte{[]byte("\x00bob@example.test\x00pw")}, ErrFailed},
		{"PLAIN", [][]byte{[]byte("bob@example.test\x00ann@example.test\x00pw")}, sasl.ErrAuthzID},
		{"PLAIN", [][]byte{[]byte("garbage")}, sasl.ErrMalformed},
		{"LOGIN", [][]byte{nil, []byte("ann@example.test"), []byte("pw")}, nil},
		{"LOGIN", [][]byte{[]byte("ann@example.test"), []byte("pw")}, nil},
		{"LOGIN", [][]byte{nil, []byte("ann@example.test"), []byte("nope")}, ErrFailed},
	} {
		s, err := f.a.NewServer(ctx, tt.mech, ip1)
		if err != nil {
			t.Fatal(err)
		}
		err = exchange(t, s, tt.resp...)
		if !errors.Is(err, tt.err) {
			t.Errorf("%s %q: err %v, want %v", tt.mech, tt.resp, err, tt.err)
		}
		got, ok := s.Account()
		if ok != (tt.err == nil) || (ok && (got.ID != want.ID || got.Email != want.Email)) {
			t.Errorf("%s %q: Account = %+v, %v", tt.mech, tt.resp, got, ok)
		}
	}
}

// scramExchange drives an auth Server with xdg-go/scram's client. It
// returns the server-first message and the final error.
func scramExchange(t *testing.T, a *Authenticator, user, pw string, ip netip.Addr) (Server, string, error) {
	t.Helper()
	s, err := a.NewServer(context.Background(), "SCRAM-SHA-256", ip)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := scram.SHA256.NewClient(user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	var first string
	ch, done, err := s.Next(nil)
	for i := 0; !done && err == nil; i++ {
		resp, cerr := conv.Step(string(ch))
		if cerr != nil {
			t.Fatalf("client: %v", cerr)
		}
		ch, done, err = s.Next([]byte(resp))
		if i == 0 && err == nil {
			first = string(ch)
		}
		if i > 4 {
			t.Fatal("exchange does not end")
		}
	}
	if err == nil && !conv.Valid() {
		t.Fatal("client did not verify the server")
	}
	return s, first, err
}

func TestServerSCRAM(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3})
	want := f.st.add(t, "ann@example.test", "pässword")

	s, _, err := scramExchange(t, f.a, "Ann@example.TEST", "pässword", ip1)
	if err != nil {
		t.Fatalf("valid: %v", err)
	}
	if got, ok := s.Account(); !ok || got.ID != want.ID || got.Email != want.Email {
		t.Fatalf("Account = %+v, %v", got, ok)
	}

	s, _, err = scramExchange(t, f.a, "ann@example.test", "wrong", ip1)
	if err != ErrFailed {
		t.Fatalf("wrong password: %v", err)
	}
	if _, ok := s.Account(); ok {
		t.Error("Account ok after failure")
	}

	// Unknown user: same error; a stable salt across attempts, so a
	// probe cannot tell it from a real account by the salt changing.
	_, first1, err1 := scramExchange(t, f.a, "bob@example.test", "x", ip2)
	_, first2, err2 := scramExchange(t, f.a, "bob@example.test", "x", ip2)
	if err1 != ErrFailed || err2 != ErrFailed {
		t.Fatalf("unknown user: %v, %v", err1, err2)
	}
	salt := func(s1 string) string {
		for _, f := range strings.Split(s1, ",") {
			if strings.HasPrefix(f, "s=") {
				return f
			}
		}
		t.Fatalf("no salt in %q", s1)
		return ""
	}
	if salt(first1) != salt(first2) {
		t.Errorf("decoy salt changes: %q vs %q", first1, first2)
	}
	if n := len(f.slept()); n != 3 {
		t.Errorf("failures delayed %d times, want 3", n)
	}
	// Third failure for bob locks him.
	scramExchange(t, f.a, "bob@example.test", "x", netip.MustParseAddr("192.0.2.9"))
	s, _ = f.a.NewServer(context.Background(), "SCRAM-SHA-256", netip.MustParseAddr("192.0.2.10"))
	s.Next(nil)
	if _, done, err := s.Next([]byte("n,,n=bob@example.test,r=abcdef")); !done || err != ErrLocked {
		t.Errorf("locked SCRAM: %v, %v", done, err)
	}
}

func TestServerSCRAMWithoutKeys(t *testing.T) {
	f := newFixture(t, Options{})
	f.st.add(t, "ann@example.test", "pw")
	c := f.st.creds["ann@example.test"]
	c.SCRAMSHA256 = nil
	f.st.creds["ann@example.test"] = c
	if _, _, err := scramExchange(t, f.a, "ann@example.test", "pw", ip1); err != ErrFailed {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	f.st.err = errors.New("db gone")
	s, _ := f.a.NewServer(context.Background(), "SCRAM-SHA-256", ip1)
	if _, _, err := s.Next([]byte("n,,n=ann@example.test,r=abc")); err != ErrTemporary {
		t.Fatalf("store error: %v, want ErrTemporary", err)
	}
}

// SetLockout changes the failure count and lock time at run time.
func TestSetLockout(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 5, Lockout: time.Hour})
	f.st.add(t, "ann@example.test", "pw")
	ctx := context.Background()
	f.a.SetLockout(2, time.Minute)
	for i := 0; i < 2; i++ {
		if _, err := f.a.Login(ctx, "ann@example.test", "bad", ip2); err != ErrFailed {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", ip2); err != ErrLocked {
		t.Fatalf("after 2 failures with limit 2: %v, want ErrLocked", err)
	}
	f.advance(time.Minute)
	if _, err := f.a.Login(ctx, "ann@example.test", "pw", ip2); err != nil {
		t.Fatalf("after the new 1-minute lockout: %v", err)
	}
	f.a.SetLockout(-1, 0) // never lock
	for i := 0; i < 5; i++ {
		if _, err := f.a.Login(ctx, "ann@example.test", "bad", ip2); err != ErrFailed {
			t.Fatalf("failure %d without lockout: %v", i, err)
		}
	}
}
