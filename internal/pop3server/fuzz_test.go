package pop3server

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/auth"
	"pillarbox/internal/store"
	"pillarbox/internal/testkit"
)

// fastAuth accepts alice with the password "pw" without hashing, so the
// session fuzzer reaches TRANSACTION cheaply; SASL goes to the real
// authenticator.
type fastAuth struct {
	*auth.Authenticator
	st store.Store
}

func (a fastAuth) Login(ctx context.Context, user, pass string, remote netip.Addr) (store.Account, error) {
	if strings.EqualFold(user, alice) && pass == "pw" {
		return a.st.Account(ctx, alice)
	}
	return store.Account{}, auth.ErrFailed
}

// FuzzSession feeds arbitrary client bytes to a whole session over a real
// socket (with a real store) and fails on any panic the session recovered
// from or on a session that does not end.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"CAPA\r\nQUIT\r\n",
		"USER alice@example.test\r\nPASS pw\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 1\r\nDELE 1\r\nRSET\r\nDELE 3\r\nQUIT\r\n",
		"USER alice@example.test\r\nPASS pw\r\nLIST 99\r\nRETR 0\r\nTOP 1 999999999\r\nDELE 2\r\nDELE 2\r\nUIDL 2\r\nNOOP\r\n",
		"AUTH\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\nYQ==\r\n=\r\nAUTH SCRAM-SHA-256 biwsbj1hLHI9eA==\r\n",
		"STLS\r\nUSER\r\nPASS\r\n\r\n\n\r\nQUIT extra\r\n",
		"USER alice@example.test\nPASS pw\nTOP 1 0\nRETR 3\nQUIT\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	env := newEnv(f, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true, MaxConnsPerIP: -1, MaxLine: 512}},
		auth: func(a *auth.Authenticator, st store.Store) Authenticator { return fastAuth{a, st} }})
	for i := range 3 {
		env.deliver(env.alice, "INBOX", "message "+strconv.Itoa(i))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// QUIT ends the session whatever the input left open; a session
		// that had DELEs may expunge: deliveries below keep messages there.
		testkit.FeedSession(t, env.addr, append(append([]byte{}, in...), "\r\nQUIT\r\n"...), env.logs)
		refill(t, env)
	})
}

// FuzzParseCommand checks the command-line parser: the keyword is the
// upper-cased text before the first space, the argument everything after
// it, and message numbers round-trip.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"RETR 1", "pass two words ", "TOP 1 10", "", " ", "UIDL\x00", "list 007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kw, arg := parseCommand(line)
		if strings.Contains(kw, " ") || kw != strings.ToUpper(kw) {
			t.Fatalf("keyword %q", kw)
		}
		rebuilt := kw
		if strings.Contains(line, " ") {
			rebuilt += " " + arg
		}
		if !strings.EqualFold(rebuilt, strings.ToUpper(line)) && len(rebuilt) == len(line) {
			t.Fatalf("%q parsed as %q + %q", line, kw, arg)
		}
		if n, ok := parseNumber(arg); ok {
			if n < 0 || strconv.Itoa(n) != strings.TrimLeft(arg, "0") && !(n == 0 && strings.Trim(arg, "0") == "") {
				t.Fatalf("parseNumber(%q) = %d", arg, n)
			}
		}
	})
}

// refill keeps three messages in alice's INBOX between fuzz runs.
func refill(t *testing.T, env *testEnv) {
	ctx := context.Background()
	mb, err := env.st.Mailbox(ctx, env.alice.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for n := mb.Messages; n < 3; n++ {
		if _, err := env.st.Deliver(ctx, &store.Delivery{Blob: strings.NewReader(testMessage("refill")),
			InternalDate: time.Now(), Local: []store.LocalRecipient{{AccountID: env.alice.ID}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzStuffer: whatever the input and however it is cut into chunks,
// undoing the dot-stuffing (RFC 1939 3) gives the input back, followed by
// CRLF when it did not end with a line break, and no line of the output
// that starts with '.' is a lone "." line.
func FuzzStuffer(f *testing.F) {
	f.Add([]byte(".a\r\n..b\r\n.\r\nc"), uint8(1))
	f.Add([]byte("x\n.\n"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		var out []byte
		var st stuffer
		emit := func(b []byte) { out = append(out, b...) }
		step := int(cut)%7 + 1
		for i := 0; i < len(in); i += step {
			st.feed(in[i:min(i+step, len(in))], emit)
		}
		st.finish(emit)
		want := string(in)
		if len(in) > 0 && in[len(in)-1] != '\n' {
			want += "\r\n"
		}
		lines := strings.SplitAfter(string(out), "\n")
		var back strings.Builder
		for _, l := range lines {
			if strings.HasPrefix(l, ".") {
				if l == ".\r\n" || l == ".\n" {
					t.Fatalf("lone dot line in %q", out)
				}
				l = l[1:]
			}
			back.WriteString(l)
		}
		if back.String() != want {
			t.Fatalf("unstuffed %q, want %q", back.String(), want)
		}
	})
}
