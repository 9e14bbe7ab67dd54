package auth

import (
	"context"
	"testing"

	"github.com/xdg-go/scram"
)

// Parallel attempts get no more password checks per window than
// sequential ones: with MaxFailures 3, of 10 wrong-password logins started
// together from one address only 3 reach the credential check; the others
// are refused as locked at once.
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
	entered, locked := 0, 0
	for entered+locked < 10 {
		select {
		case <-f.st.entered:
			if entered++; entered > 3 {
				t.Fatalf("%d parallel attempts reached the password check, want at most 3", entered)
			}
		case err := <-results:
			if err != ErrLocked {
				t.Fatalf("attempt refused with %v, want ErrLocked", err)
			}
			locked++
		}
	}
	close(f.st.gate)
	for i := 0; i < entered; i++ {
		if err := <-results; err != ErrFailed {
			t.Errorf("checked attempt: %v, want ErrFailed", err)
		}
	}
	if entered != 3 || locked != 7 {
		t.Errorf("checked %d, refused %d; want 3 and 7", entered, locked)
	}
	f.st.gate = nil
	if _, err := f.a.Login(context.Background(), "ann@example.test", "pw", ip2); err != ErrLocked {
		t.Errorf("after 3 failures: %v, want ErrLocked", err)
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
