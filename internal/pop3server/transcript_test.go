package pop3server

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pillarbox/internal/store"
)

// TestTranscripts runs every testdata/*.txt dialogue against a fresh
// server (certificate for STLS, plaintext login allowed on loopback,
// accounts alice and bob). Lines:
//
//	C: text            sent with CRLF
//	S: text            the next reply line must equal text; a text ending
//	                   in '*' matches any line with the text before it
//	S: <closed>        the server must close the connection
//	! deliver ACCOUNT MAILBOX SUBJECT   store testMessage(SUBJECT)
//	! expunge ACCOUNT MAILBOX UID...    expunge in the store (as IMAP would)
//	! check ACCOUNT MAILBOX UID...      the mailbox holds exactly these UIDs
//	! flags ACCOUNT MAILBOX UID FLAG... message UID has exactly these flags
//	# comment
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true, MaxErrors: 8}}})
			runTranscript(t, env, string(b))
		})
	}
}

func runTranscript(t *testing.T, env *testEnv, script string) {
	c := env.dial()
	for n, line := range strings.Split(script, "\n") {
		line = strings.TrimRight(line, "\r")
		where := "line " + strconv.Itoa(n+1)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "C: "):
			c.send(line[3:] + "\r\n")
		case line == "S: <closed>":
			if l, err := c.line(); err == nil || !isClosed(err) {
				t.Fatalf("%s: want the connection closed, got %q, %v", where, l, err)
			}
		case strings.HasPrefix(line, "S: "):
			want := line[3:]
			got, err := c.line()
			if err != nil {
				t.Fatalf("%s: want %q: %v", where, want, err)
			}
			if p, ok := strings.CutSuffix(want, "*"); ok && strings.HasPrefix(got, p) || got == want {
				continue
			}
			t.Fatalf("%s: got %q, want %q", where, got, want)
		case strings.HasPrefix(line, "! "):
			env.directive(t, where, strings.Fields(line[2:]))
		default:
			t.Fatalf("%s: bad transcript line %q", where, line)
		}
	}
}

func (env *testEnv) directive(t *testing.T, where string, f []string) {
	if len(f) < 3 {
		t.Fatalf("%s: bad directive %q", where, f)
	}
	acct := map[string]store.Account{"alice": env.alice, "bob": env.bob}[f[1]]
	if acct.ID == 0 {
		t.Fatalf("%s: unknown account %q", where, f[1])
	}
	mailbox := f[2]
	var uids []uint32
	if f[0] != "deliver" && f[0] != "flags" {
		for _, v := range f[3:] {
			u, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				t.Fatalf("%s: bad UID %q", where, v)
			}
			uids = append(uids, uint32(u))
		}
	}
	ctx := context.Background()
	switch f[0] {
	case "deliver":
		env.deliver(acct, mailbox, strings.Join(f[3:], " "))
	case "expunge":
		if _, err := env.st.Expunge(ctx, env.mailbox(acct, mailbox).ID, uids); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	case "check":
		if got := env.uids(acct, mailbox); !slices.Equal(got, uids) {
			t.Fatalf("%s: %s holds UIDs %v, want %v", where, mailbox, got, uids)
		}
	case "flags":
		u, err := strconv.ParseUint(f[3], 10, 32)
		if err != nil {
			t.Fatalf("%s: bad UID %q", where, f[3])
		}
		m, err := env.st.Message(ctx, env.mailbox(acct, mailbox).ID, uint32(u))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if want := f[4:]; !slices.Equal(m.Flags, want) && !(len(m.Flags) == 0 && len(want) == 0) {
			t.Fatalf("%s: flags %v, want %v", where, m.Flags, want)
		}
	default:
		t.Fatalf("%s: unknown directive %q", where, f[0])
	}
}
