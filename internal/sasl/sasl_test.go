package sasl

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

var errBad = errors.New("bad credentials")

func verifier(user, pass string) Verify {
	return func(u, p string) error {
		if u == user && p == pass {
			return nil
		}
		return errBad
	}
}

func TestPlain(t *testing.T) {
	v := verifier("ann@example.test", "s3cret")
	tests := []struct {
		name string
		ir   []byte
		err  error
	}{
		{"no authzid", []byte("\x00ann@example.test\x00s3cret"), nil},
		{"same authzid", []byte("ann@example.test\x00ann@example.test\x00s3cret"), nil},
		{"authzid other case", []byte("Ann@Example.TEST\x00ann@example.test\x00s3cret"), nil},
		{"other authzid", []byte("bob@example.test\x00ann@example.test\x00s3cret"), ErrAuthzID},
		{"wrong password", []byte("\x00ann@example.test\x00wrong"), errBad},
		{"two fields", []byte("ann@example.test\x00s3cret"), ErrMalformed},
		{"four fields", []byte("\x00ann@example.test\x00s3cret\x00x"), ErrMalformed},
		{"empty authcid", []byte("\x00\x00s3cret"), ErrMalformed},
		{"empty password", []byte("\x00ann@example.test\x00"), ErrMalformed},
		{"bad utf8", []byte("\x00ann\xff\x00s3cret"), ErrMalformed},
		{"empty", []byte{}, ErrMalformed},
		{"too long", append([]byte("\x00ann@example.test\x00"), bytes.Repeat([]byte("x"), MaxResponse)...), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewPlain(v)
			ch, done, err := s.Next(tt.ir)
			if !done || !errors.Is(err, tt.err) || len(ch) != 0 {
				t.Fatalf("Next = %q, %v, %v; want done, %v", ch, done, err, tt.err)
			}
			wantID := ""
			if tt.err == nil {
				wantID = "ann@example.test"
			}
			if s.Identity() != wantID {
				t.Errorf("Identity = %q, want %q", s.Identity(), wantID)
			}
			if _, _, err := s.Next([]byte("\x00ann@example.test\x00s3cret")); !errors.Is(err, ErrDone) {
				t.Errorf("Next after done: %v, want ErrDone", err)
			}
		})
	}
}

func TestPlainWithoutInitialResponse(t *testing.T) {
	s := NewPlain(verifier("ann@example.test", "s3cret"))
	ch, done, err := s.Next(nil)
	if done || err != nil || ch == nil || len(ch) != 0 {
		t.Fatalf("first Next = %q, %v, %v; want empty challenge", ch, done, err)
	}
	if _, done, err := s.Next([]byte("\x00ann@example.test\x00s3cret")); !done || err != nil {
		t.Fatalf("second Next = %v, %v", done, err)
	}
	if s.Identity() != "ann@example.test" {
		t.Errorf("Identity = %q", s.Identity())
	}
}

func TestLogin(t *testing.T) {
	v := verifier("ann@example.test", "s3cret")
	t.Run("valid", func(t *testing.T) {
		s := NewLogin(v)
		steps := []struct{ in, out string }{{"", "Username:"}, {"ann@example.test", "Password:"}}
		for i, st := range steps {
			var in []byte
			if i > 0 {
				in = []byte(st.in)
			}
			ch, done, err := s.Next(in)
			if done || err != nil || string(ch) != st.out {
				t.Fatalf("step %d: %q, %v, %v; want %q", i, ch, done, err, st.out)
			}
		}
		if _, done, err := s.Next([]byte("s3cret")); !done || err != nil {
			t.Fatalf("password step: %v, %v", done, err)
		}
		if s.Identity() != "ann@example.test" {
			t.Errorf("Identity = %q", s.Identity())
		}
		if _, _, err := s.Next([]byte("x")); !errors.Is(err, ErrDone) {
			t.Errorf("after done: %v", err)
		}
	})
	t.Run("initial response is the user name", func(t *testing.T) {
		s := NewLogin(v)
		ch, done, err := s.Next([]byte("ann@example.test"))
		if done || err != nil || string(ch) != "Password:" {
			t.Fatalf("%q, %v, %v", ch, done, err)
		}
		if _, done, err := s.Next([]byte("s3cret")); !done || err != nil {
			t.Fatalf("%v, %v", done, err)
		}
	})
	bad := []struct {
		name       string
		user, pass []byte
		err        error
	}{
		{"wrong password", []byte("ann@example.test"), []byte("nope"), errBad},
		{"empty user", []byte{}, nil, ErrMalformed},
		{"nul in user", []byte("ann\x00"), nil, ErrMalformed},
		{"empty password", []byte("ann@example.test"), []byte{}, ErrMalformed},
		{"long password", []byte("ann@example.test"), bytes.Repeat([]byte("p"), MaxResponse+1), ErrTooLong},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			s := NewLogin(v)
			s.Next(nil)
			_, done, err := s.Next(tt.user)
			if tt.pass != nil {
				if done || err != nil {
					t.Fatalf("user step: %v, %v", done, err)
				}
				_, done, err = s.Next(tt.pass)
			}
			if !done || !errors.Is(err, tt.err) {
				t.Fatalf("got %v, %v; want done, %v", done, err, tt.err)
			}
			if s.Identity() != "" {
				t.Errorf("Identity = %q after failure", s.Identity())
			}
		})
	}
}

func scramLookup(t *testing.T, user, pass string) Lookup {
	t.Helper()
	creds, err := NewSCRAMCredentials(pass, []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	return func(u string) (SCRAMCredentials, error) {
		if u != user {
			return SCRAMCredentials{}, errBad
		}
		return creds, nil
	}
}

// runSCRAM drives a server with xdg-go/scram's client and returns the
// server's final error.
func runSCRAM(t *testing.T, s *ScramServer, user, pass, authz string) error {
	t.Helper()
	cl, err := scram.SHA256.NewClient(user, pass, authz)
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	ch, done, err := s.Next(nil)
	if done || err != nil || len(ch) != 0 {
		t.Fatalf("start: %q, %v, %v", ch, done, err)
	}
	for i := 0; i < 5; i++ {
		resp, cerr := conv.Step(string(ch))
		if cerr != nil {
			t.Fatalf("client step %d: %v", i, cerr)
		}
		ch, done, err = s.Next([]byte(resp))
		if err != nil || done {
			if err == nil && !conv.Valid() {
				t.Fatal("server done but client did not verify the server signature")
			}
			return err
		}
	}
	t.Fatal("exchange did not finish")
	return nil
}

func TestSCRAMWithXdgClient(t *testing.T) {
	lookup := scramLookup(t, "ann@example.test", "pässwörd")
	s := NewScramSHA256(lookup)
	if err := runSCRAM(t, s, "ann@example.test", "pässwörd", ""); err != nil {
		t.Fatalf("valid exchange: %v", err)
	}
	if s.Identity() != "ann@example.test" {
		t.Errorf("Identity = %q", s.Identity())
	}
	if _, _, err := s.Next([]byte{}); !errors.Is(err, ErrDone) {
		t.Errorf("after done: %v", err)
	}

	s = NewScramSHA256(lookup)
	if err := runSCRAM(t, s, "ann@example.test", "wrong", ""); !errors.Is(err, ErrInvalidProof) {
		t.Errorf("wrong password: %v, want ErrInvalidProof", err)
	}
	if s.Identity() != "" {
		t.Errorf("Identity after failure = %q", s.Identity())
	}

	s = NewScramSHA256(lookup)
	if err := runSCRAM(t, s, "bob@example.test", "pässwörd", ""); !errors.Is(err, errBad) {
		t.Errorf("lookup error: %v, want it passed through", err)
	}

	s = NewScramSHA256(lookup)
	if err := runSCRAM(t, s, "ann@example.test", "pässwörd", "bob@example.test"); !errors.Is(err, ErrAuthzID) {
		t.Errorf("foreign authzid: %v, want ErrAuthzID", err)
	}
	s = NewScramSHA256(lookup)
	if err := runSCRAM(t, s, "ann@example.test", "pässwörd", "ann@example.test"); err != nil {
		t.Errorf("own authzid: %v", err)
	}
}

func TestSCRAMSASLprep(t *testing.T) {
	// U+00A0 (no-break space) maps to U+0020 under SASLprep (RFC 4013 2.1):
	// a client that prepares the password must still match.
	lookup := scramLookup(t, "ann", "a\u00a0b")
	if err := runSCRAM(t, NewScramSHA256(lookup), "ann", "a b", ""); err != nil {
		t.Fatalf("SASLprep-equal password: %v", err)
	}
}

func TestSCRAMMalformed(t *testing.T) {
	lookup := scramLookup(t, "ann", "pw")
	for _, tt := range []struct {
		name string
		msg  string
		err  error
	}{
		{"garbage", "hello", ErrMalformed},
		{"channel binding required", "p=tls-unique,,n=ann,r=abc", ErrMalformed},
		{"extension", "n,,m=x,n=ann,r=abc", ErrMalformed},
		{"bad utf8", "n,,n=\xff,r=abc", ErrMalformed},
		{"too long", "n,,n=ann,r=" + strings.Repeat("a", MaxResponse), ErrTooLong},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, done, err := NewScramSHA256(lookup).Next([]byte(tt.msg))
			if !done || !errors.Is(err, tt.err) {
				t.Fatalf("%v, %v; want done, %v", done, err, tt.err)
			}
		})
	}
	t.Run("bad final", func(t *testing.T) {
		s := NewScramSHA256(lookup)
		if _, done, err := s.Next([]byte("n,,n=ann,r=abc")); done || err != nil {
			t.Fatalf("first: %v, %v", done, err)
		}
		if _, done, err := s.Next([]byte("c=biws,r=wrongnonce,p=AAAA")); !done || !errors.Is(err, ErrMalformed) {
			t.Fatalf("final: %v, %v", done, err)
		}
	})
	t.Run("non-empty after server-final", func(t *testing.T) {
		s := NewScramSHA256(lookup)
		cl, _ := scram.SHA256.NewClient("ann", "pw", "")
		conv := cl.NewConversation()
		c1, _ := conv.Step("")
		s1, _, _ := s.Next([]byte(c1))
		c2, _ := conv.Step(string(s1))
		s2, done, err := s.Next([]byte(c2))
		if done || err != nil || !strings.HasPrefix(string(s2), "v=") {
			t.Fatalf("final: %q %v %v", s2, done, err)
		}
		if _, done, err := s.Next([]byte("x")); !done || !errors.Is(err, ErrMalformed) {
			t.Fatalf("%v %v", done, err)
		}
		if s.Identity() != "" {
			t.Errorf("Identity = %q", s.Identity())
		}
	})
}

func TestNewSCRAMCredentialsMatchesLibrary(t *testing.T) {
	salt := []byte("salty-salt-16byt")
	ours, err := NewSCRAMCredentials("pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := scram.SHA256.NewClient("user", "pencil", "")
	lib, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours.StoredKey, lib.StoredKey) || !bytes.Equal(ours.ServerKey, lib.ServerKey) {
		t.Fatal("keys differ from xdg-go/scram's")
	}
	if _, err := NewSCRAMCredentials("pencil", salt, 1000); err == nil {
		t.Error("accepted 1000 iterations")
	}
}

func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00ann@example.test\x00s3cret"))
	f.Add([]byte("a\x00b\x00c"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("a\x00b"))
	f.Add([]byte("\xff\x00b\x00c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		z, c, p, err := ParsePlain(b)
		if err != nil {
			if z != "" || c != "" || p != "" {
				t.Fatal("fields returned with an error")
			}
			return
		}
		if c == "" || p == "" || strings.ContainsRune(z+c+p, 0) {
			t.Fatalf("invalid fields accepted: %q %q %q", z, c, p)
		}
		if got := z + "\x00" + c + "\x00" + p; got != string(b) {
			t.Fatalf("round trip: %q != %q", got, b)
		}
		s := NewPlain(func(u, pw string) error {
			if u != c || pw != p {
				t.Fatalf("verify got %q %q, want %q %q", u, pw, c, p)
			}
			return nil
		})
		s.Next(b)
	})
}

func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=ann,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=ann,n=ann,r=x"), []byte("c=eSws,r=x,p="))
	f.Add([]byte("p=tls-unique,,n=a=2C,r=1"), []byte{})
	creds, err := NewSCRAMCredentials("pw", []byte("0123456789abcdef"), 4096)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final []byte) {
		s := NewScramSHA256(func(string) (SCRAMCredentials, error) { return creds, nil })
		if _, done, err := s.Next(first); done || err != nil {
			return
		}
		_, done, err := s.Next(final)
		if err == nil && done {
			t.Fatal("finished without the empty closing response")
		}
		if err == nil {
			// A forged proof cannot be valid without the password.
			t.Fatalf("accepted proof %q", final)
		}
	})
}
