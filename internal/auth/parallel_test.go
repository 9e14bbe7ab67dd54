package auth

import (
	"context"
	"testing"

	"github.com/xdg-go/scram"
)

// Parallel attempts get no more password checks per window than
// sequential ones: with MaxFailures 3, of 10 wrong-password logins started
// together from one address only 3 reach the credential check; the others
// wait for those, and once they have failed (locking the name and the
// address) are refused as locked without a check.
func TestLockoutParallelLogins(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3})
	f.st.add(t, "ann@example.test", "pw")
	f.st.gate, f.st.entered = make(chan struct{}), make(chan struct{}, 10)
	results := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := f.a.Login(context.Background(), "ann@example.test", "bad", ip1)
			results <- err
		}()
	}
	for i := 0; i < 3; i++ {
		<-f.st.entered
	}
	select {
	case err := <-results:
		t.Fatalf("an attempt ended (%v) while the first three were still being checked", err)
	case <-f.st.entered:
		t.Fatal("a fourth parallel attempt reached the password check")
	default:
	}
	close(f.st.gate)
	failed, locked := 0, 0
	for i := 0; i < 10; i++ {
		switch err := <-results; err {
		case ErrFailed:
			failed++
		case ErrLocked:
			locked++
		default:
			t.Fatalf("attempt: %v", err)
		}
	}
	if n := len(f.st.entered); failed != 3 || locked != 7 || n != 0 {
		t.Errorf("checked %d, refused %d, %d more checks; want 3, 7, 0", failed, locked, n)
	}
	f.st.gate = nil
	if _, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip2); err != ErrLocked {
		t.Errorf("after 3 failures: %v, want ErrLocked", err)
	}
}

// Honest clients logging in on many connections at once from one address
// (a mail client's first sync, an office behind NAT) all get in: with
// MaxFailures 3, 12 parallel correct logins of 4 accounts succeed; at most
// 3 password checks run at once.
func TestParallelGoodLoginsNotLocked(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3})
	for _, u := range []string{"a", "b", "c", "d"} {
		f.st.add(t, u+"@example.test", "pw")
	}
	f.st.gate, f.st.entered = make(chan struct{}), make(chan struct{}, 12)
	results := make(chan error, 12)
	for i := 0; i < 12; i++ {
		u := []string{"a", "b", "c", "d"}[i%4]
		go func() {
			_, err := f.a.Login(context.Background(), u+"@example.test", "pw", ip1)
			results <- err
		}()
	}
	for i := 0; i < 3; i++ {
		<-f.st.entered
	}
	select {
	case <-f.st.entered:
		t.Fatal("more than 3 password checks at once from one address")
	default:
	}
	close(f.st.gate)
	for i := 0; i < 12; i++ {
		if err := <-results; err != nil {
			t.Errorf("login %d: %v", i, err)
		}
	}
}

// A SCRAM exchange opened before the account was locked cannot present
// its proof afterwards.
func TestSCRAMProofAfterLock(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 3})
	f.st.add(t, "ann@example.test", "pw")
	s, err := f.a.NewServer(context.Background(), "SCRAM-SHA-256", ip1)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := scram.SHA256.NewClient("ann@example.test", "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	first, _ := conv.Step("")
	ch, done, err := s.Next([]byte(first))
	if err != nil || done {
		t.Fatalf("client-first: %v, done=%v", err, done)
	}
	for i := 0; i < 3; i++ {
		f.a.Login(context.Background(), "ann@example.test", "bad", ip2)
	}
	final, err := conv.Step(string(ch))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Next([]byte(final)); err != ErrLocked {
		t.Fatalf("proof after lock: %v, want ErrLocked", err)
	}
	if _, ok := s.Account(); ok {
		t.Fatal("exchange authenticated while locked")
	}
}
