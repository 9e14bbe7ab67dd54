package imapserver

import (
	"context"
	"testing"

	"pillarbox/internal/store"
)

// TestViewShare: views of a mailbox in the same state share one message
// list; a view that changes copies it first and the others do not see
// the change until their own feed brings it; a new state is not shared
// with the old one.
func TestViewShare(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	for i := 0; i < 3; i++ {
		env.deliver(env.alice, "INBOX", nil, "")
	}
	ctx := context.Background()
	snaps := newViewSnaps()
	open := func() *view {
		v, err := openView(ctx, env.st, env.alice.ID, "INBOX", false, snaps)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.close)
		return v
	}
	v1, v2 := open(), open()
	if &v1.msgs[0] != &v2.msgs[0] || !v1.sharedMsgs || !v2.sharedMsgs {
		t.Fatal("views of the same state do not share their message list")
	}
	mb := env.mailbox(env.alice, "INBOX")
	if _, _, err := env.st.StoreFlags(ctx, mb.ID, []uint32{2}, store.FlagAdd, []string{"$Work"}, 0); err != nil {
		t.Fatal(err)
	}
	<-v1.sub.Ready() // flag changes are published just after StoreFlags returns
	v1.poll()        // v1 takes the change: it copies the list and the flag tables
	if v1.sharedMsgs || v1.sharedFlags || &v1.msgs[0] == &v2.msgs[0] {
		t.Fatal("a changed view still shares")
	}
	if got := v1.flagsOf(v1.msgs[1]); len(got) != 1 || got[0] != "$Work" {
		t.Fatalf("v1 flags %q", got)
	}
	if got := v2.flagsOf(v2.msgs[1]); len(got) != 0 {
		t.Fatalf("v2 sees v1's change before its feed brings it: %q", got)
	}
	v3 := open() // the new state: read again, not the old snapshot
	if &v3.msgs[0] == &v2.msgs[0] {
		t.Fatal("a view of a new state shares the old one's list")
	}
	if got := v3.flagsOf(v3.msgs[1]); len(got) != 1 {
		t.Fatalf("v3 flags %q", got)
	}
	// flush appends new messages to msgs: a shared list has no spare
	// capacity, so that reallocates instead of writing into it.
	if cap(v2.msgs) != len(v2.msgs) {
		t.Fatalf("shared list has capacity %d for %d messages", cap(v2.msgs), len(v2.msgs))
	}
}

// TestViewShareSessions: three sessions on one mailbox over the socket;
// a flag change in one reaches the others, and a session selecting
// afterwards sees it.
func TestViewShareSessions(t *testing.T) {
	env := newEnv(t, envConfig{plaintext: true})
	for i := 0; i < 3; i++ {
		env.deliver(env.alice, "INBOX", nil, "")
	}
	dial := func() *client {
		c := env.dial()
		c.login(alice)
		fetchLines(c, "S", "SELECT INBOX")
		return c
	}
	a, b := dial(), dial()
	b.send("B IDLE\r\n")
	b.expect("+ ")
	fetchLines(a, "A", `STORE 2 +FLAGS.SILENT ($Work)`)
	b.expect("* FLAGS (")
	b.expect(`* 2 FETCH (FLAGS ($Work) UID 2)`)
	b.send("DONE\r\n")
	b.expect("B OK")
	c := dial()
	got := fetchLines(c, "C", "FETCH 1:3 FLAGS")
	if !containsLine(got, `* 2 FETCH (FLAGS ($Work))`) || !containsLine(got, `* 1 FETCH (FLAGS ())`) {
		t.Fatalf("c: %q", got)
	}
	fetchLines(b, "B", "EXPUNGE")
	fetchLines(b, "B", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	fetchLines(b, "B", "EXPUNGE")
	if got := fetchLines(a, "A", "NOOP"); !containsLine(got, "* 1 EXPUNGE") {
		t.Fatalf("a after b's EXPUNGE: %q", got)
	}
	if got := fetchLines(c, "C", "UID FETCH 1:* UID"); !containsLine(got, "* 2 FETCH (UID 2)") || !containsLine(got, "* 1 EXPUNGE") {
		t.Fatalf("c after b's EXPUNGE: %q", got)
	}
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
