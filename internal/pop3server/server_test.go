package pop3server

import (
	"context"
	"encoding/base64"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"pillarbox/internal/store"
)

// capa returns the capability lines after CAPA.
func (c *client) capa() []string {
	c.t.Helper()
	c.send("CAPA\r\n")
	c.expect("+OK")
	return strings.Split(strings.TrimSuffix(c.multi(), "\r\n"), "\r\n")
}

// Without plaintext_loopback, the plain port offers only STLS before TLS;
// after STLS it offers USER and SASL, and input pipelined after STLS is
// discarded (RFC 2595 4).
func TestSTLS(t *testing.T) {
	env := newEnv(t, envConfig{})
	env.deliver(env.alice, "INBOX", "one")
	c := env.dial()
	c.expect("+OK pop.example.test Pillarbox POP3 ready")
	caps := c.capa()
	if !slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") || slices.ContainsFunc(caps, func(s string) bool { return strings.HasPrefix(s, "SASL") }) {
		t.Fatalf("CAPA before TLS = %q", caps)
	}
	c.send("USER alice@example.test\r\n")
	c.expect("-ERR [AUTH] Plaintext authentication is not allowed without TLS")
	c.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNl\r\n")
	c.expect("-ERR [AUTH]")
	c.send("STLS\r\nUSER alice@example.test\r\n") // the USER must be dropped
	c.expect("+OK Begin TLS")
	c.upgrade(env.clientTLS())
	caps = c.capa()
	if slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") || !slices.Contains(caps, "SASL PLAIN LOGIN SCRAM-SHA-256") {
		t.Fatalf("CAPA after TLS = %q", caps)
	}
	c.send("PASS correct horse\r\n")
	c.expect("-ERR Send USER first")
	c.send("STLS\r\n")
	c.expect("-ERR Already using TLS")
	c.send("USER alice@example.test\r\nPASS correct horse\r\n")
	c.expect("+OK")
	c.expect("+OK Maildrop has 1 messages (118 octets)")
	c.send("QUIT\r\n")
	c.expect("+OK Bye")
}

// Implicit TLS (port 995): TLS from the first byte, login allowed.
func TestImplicitTLS(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{ImplicitTLS: true}})
	c := env.dialTLS()
	if got := c.login(alice); got != "+OK Maildrop has 0 messages (0 octets)" {
		t.Fatalf("login: %q", got)
	}
	if slices.Contains(c.capa(), "STLS") {
		t.Fatal("STLS offered over TLS")
	}
	c.send("QUIT\r\n")
	c.expect("+OK Bye")
}

// A server without a certificate offers no STLS.
func TestNoTLS(t *testing.T) {
	env := newEnv(t, envConfig{noTLS: true})
	c := env.dial()
	c.expect("+OK")
	if caps := c.capa(); slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") {
		t.Fatalf("CAPA = %q", caps)
	}
	c.send("STLS\r\n")
	c.expect("-ERR STLS not available")
}

// One session per maildrop (RFC 1939 8): a second login gets [IN-USE]
// and stays in AUTHORIZATION, also on another server sharing Maildrops.
func TestInUse(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	first := env.dial()
	first.login(alice)

	second := env.dial()
	second.expect("+OK")
	second.send("USER alice@example.test\r\nPASS correct horse\r\n")
	second.expect("+OK")
	second.expect("-ERR [IN-USE]")
	second.send("STAT\r\n")
	second.expect("-ERR STAT is not valid in this state")
	second.send("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABjb3JyZWN0IGhvcnNl\r\n")
	second.expect("-ERR [IN-USE]")

	other := New(Options{Store: env.st, Auth: env.auth, Maildrops: env.srv.opts.Maildrops,
		Limits: Limits{PlaintextLoopback: true}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go other.Serve(l)
	defer other.Shutdown(context.Background())
	third := &testEnv{t: t, addr: l.Addr().String()}
	tc := third.dial()
	tc.expect("+OK")
	tc.send("USER alice@example.test\r\nPASS correct horse\r\n")
	tc.expect("+OK")
	tc.expect("-ERR [IN-USE]")

	first.send("QUIT\r\n")
	first.expect("+OK Bye")
	first.closed()
	second.send("USER alice@example.test\r\nPASS correct horse\r\n")
	second.expect("+OK")
	second.expect("+OK Maildrop has 0 messages")
}

// waitLogin logs in, retrying while the previous session of the account
// still holds the maildrop (its goroutine may not have ended yet).
func (env *testEnv) waitLogin(user string) *client {
	env.t.Helper()
	for i := 0; ; i++ {
		c := env.dial()
		c.expect("+OK")
		c.send("USER " + user + "\r\nPASS " + password + "\r\n")
		c.expect("+OK")
		l := c.expect("")
		if strings.HasPrefix(l, "+OK") {
			return c
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || i > 200 {
			env.t.Fatalf("login: %q", l)
		}
		c.conn.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// A dropped connection deletes nothing (RFC 1939 6: no UPDATE without
// QUIT), and neither does an idle timeout.
func TestDroppedConnectionDeletesNothing(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	env.deliver(env.alice, "INBOX", "one")
	env.deliver(env.alice, "INBOX", "two")
	c := env.dial()
	c.login(alice)
	c.send("DELE 1\r\nDELE 2\r\n")
	c.expect("+OK Message 1 deleted")
	c.expect("+OK Message 2 deleted")
	c.conn.Close()

	c = env.waitLogin(alice)
	c.send("STAT\r\n")
	c.expect("+OK 2 236")
	if got := env.uids(env.alice, "INBOX"); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("UIDs after a dropped session: %v", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true, IdleTimeout: 300 * time.Millisecond}}})
	env.deliver(env.alice, "INBOX", "one")
	c := env.dial()
	c.login(alice)
	c.send("DELE 1\r\n")
	c.expect("+OK")
	c.expect("-ERR Idle for too long")
	c.closed()
	env.waitLogin(alice)
	if got := env.uids(env.alice, "INBOX"); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("UIDs after a timeout: %v", got)
	}
}

// QUIT's expunge reaches the change feed (IMAP sessions show it at once)
// with a new MODSEQ; UIDLs stay the same across sessions.
func TestQuitExpungesForIMAP(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	for _, s := range []string{"one", "two", "three"} {
		env.deliver(env.alice, "INBOX", s)
	}
	before := env.mailbox(env.alice, "INBOX").HighestModSeq
	sub := env.st.Subscribe(env.alice.ID)
	defer sub.Close()

	c := env.dial()
	c.login(alice)
	c.send("UIDL\r\n")
	c.expect("+OK")
	uidl1 := c.multi()
	c.send("QUIT\r\n")
	c.expect("+OK Bye (0 messages deleted)")

	c = env.waitLogin(alice)
	c.send("UIDL\r\nDELE 1\r\nDELE 3\r\nQUIT\r\n")
	c.expect("+OK")
	if uidl2 := c.multi(); uidl2 != uidl1 {
		t.Fatalf("UIDL changed between sessions:\n%s\n%s", uidl1, uidl2)
	}
	c.expect("+OK")
	c.expect("+OK")
	c.expect("+OK Bye (2 messages deleted)")

	var expunged []uint32
	for len(expunged) < 2 {
		select {
		case <-sub.Ready():
		case <-time.After(10 * time.Second):
			t.Fatalf("no expunge on the feed (got %v)", expunged)
		}
		for _, ch := range sub.Take() {
			if ch.Kind == store.ChangeExpunge {
				if ch.ModSeq <= before {
					t.Errorf("expunge MODSEQ %d not above %d", ch.ModSeq, before)
				}
				expunged = append(expunged, ch.UID)
			}
		}
	}
	if !slices.Equal(expunged, []uint32{1, 3}) {
		t.Fatalf("expunged %v, want [1 3]", expunged)
	}
	if got := env.uids(env.alice, "INBOX"); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("UIDs left: %v", got)
	}
}

// A maildrop of two mailboxes: numbered INBOX first, then Junk; UIDLs
// survive an IMAP move between them; QUIT expunges in both.
func TestMaildropMailboxes(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	ctx := context.Background()
	if err := env.st.SetPOP3Maildrop(ctx, env.alice.ID, []string{"INBOX", "Junk"}); err != nil {
		t.Fatal(err)
	}
	env.deliver(env.alice, "Junk", "spam")
	env.deliver(env.alice, "INBOX", "one")
	env.deliver(env.alice, "Archive", "not served")

	c := env.dial()
	c.login(alice)
	c.send("UIDL\r\nTOP 2 0\r\n")
	c.expect("+OK")
	uidl := c.multi()
	c.expect("+OK")
	if top := c.multi(); !strings.Contains(top, "Subject: spam") {
		t.Fatalf("message 2 is not Junk's: %q", top)
	}
	c.send("QUIT\r\n")
	c.expect("+OK Bye")

	// An IMAP move keeps the POP3 UID.
	inbox, junk := env.mailbox(env.alice, "INBOX"), env.mailbox(env.alice, "Junk")
	if _, err := env.st.Move(ctx, junk.ID, []uint32{1}, inbox.ID); err != nil {
		t.Fatal(err)
	}
	c = env.waitLogin(alice)
	c.send("UIDL\r\n")
	c.expect("+OK")
	moved := c.multi()
	lines1, lines2 := strings.Fields(uidl), strings.Fields(moved)
	if len(lines1) != 4 || len(lines2) != 4 || lines1[1] != lines2[1] || lines1[3] != lines2[3] {
		t.Fatalf("UIDLs changed by the move:\n%s\n%s", uidl, moved)
	}
	c.send("DELE 1\r\nDELE 2\r\nQUIT\r\n")
	c.expect("+OK")
	c.expect("+OK")
	c.expect("+OK Bye (2 messages deleted)")
	if n := env.mailbox(env.alice, "INBOX").Messages + env.mailbox(env.alice, "Junk").Messages; n != 0 {
		t.Fatalf("%d messages left in the maildrop", n)
	}
	if n := env.mailbox(env.alice, "Archive").Messages; n != 1 {
		t.Fatalf("Archive has %d messages", n)
	}
}

// Delete mode "hide": QUIT keeps the messages for IMAP with the keyword
// $POP3Deleted, and POP3 no longer lists them.
func TestHideMode(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true, Delete: DeleteHide}}})
	env.deliver(env.alice, "INBOX", "one")
	env.deliver(env.alice, "INBOX", "two")
	c := env.dial()
	c.login(alice)
	c.send("DELE 1\r\nQUIT\r\n")
	c.expect("+OK")
	c.expect("+OK Bye (1 messages deleted)")
	m, err := env.st.Message(context.Background(), env.mailbox(env.alice, "INBOX").ID, 1)
	if err != nil || !slices.Contains(m.Flags, HiddenKeyword) {
		t.Fatalf("message 1: %v %v", m.Flags, err)
	}
	c = env.waitLogin(alice)
	c.send("LIST\r\n")
	c.expect("+OK 1 messages (118 octets)")
	c.expect("1 118")
	c.expect(".")
}

// LOGIN-DELAY (RFC 2449 6.8): advertised, and a login sooner is refused.
func TestLoginDelay(t *testing.T) {
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	env := newEnv(t, envConfig{opts: Options{Now: func() time.Time { return now },
		Limits: Limits{PlaintextLoopback: true, LoginDelay: time.Hour}}})
	c := env.dial()
	c.expect("+OK")
	if !slices.Contains(c.capa(), "LOGIN-DELAY 3600") {
		t.Fatal("LOGIN-DELAY not advertised")
	}
	c.send("USER alice@example.test\r\nPASS correct horse\r\nQUIT\r\n")
	c.expect("+OK")
	c.expect("+OK Maildrop")
	c.expect("+OK Bye")
	c.closed()
	c = env.dial()
	c.expect("+OK")
	for i := 0; ; i++ {
		c.send("USER alice@example.test\r\nPASS correct horse\r\n")
		c.expect("+OK")
		l := c.expect("-ERR")
		if l == "-ERR [LOGIN-DELAY] Logged in too recently, try again later" {
			break
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || i > 100 {
			t.Fatalf("second login: %q", l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Failed logins lock the name out (shared lockout): [SYS/TEMP] and close.
func TestLockout(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	c := env.dial()
	c.expect("+OK")
	for range 3 {
		c.send("USER alice@example.test\r\nPASS nope\r\n")
		c.expect("+OK")
		c.expect("-ERR [AUTH] Authentication failed")
	}
	c.send("USER alice@example.test\r\nPASS correct horse\r\n")
	c.expect("+OK")
	c.expect("-ERR [SYS/TEMP] Too many authentication failures")
	c.closed()
}

// Limits: an over-long line is refused and the session goes on;
// commands per session; connections per address.
func TestLimits(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true, MaxLine: 100, MaxCommands: 6, MaxConnsPerIP: 2}}})
	c := env.dial()
	c.login(alice)
	c.send("NOOP " + strings.Repeat("x", 5000) + "\r\nNOOP\r\n")
	c.expect("-ERR Line too long")
	c.expect("+OK")
	c2 := env.dial()
	c2.expect("+OK")
	c3 := env.dial()
	c3.expect("-ERR [SYS/TEMP] Too many connections")
	c3.closed()
	c.send("NOOP\r\nNOOP\r\nNOOP\r\n") // commands 4-6 (the long line was not one)
	c.expect("+OK")
	c.expect("+OK")
	c.expect("+OK")
	c.send("NOOP\r\n")
	c.expect("-ERR [SYS/PERM] Too many commands")
	c.closed()
}

// Replies to pipelined commands come in order (RFC 2449 6.6), and a bare
// LF line end is accepted.
func TestPipelining(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	for _, s := range []string{"one", "two"} {
		env.deliver(env.alice, "INBOX", s)
	}
	c := env.dial()
	c.send("USER alice@example.test\r\nPASS correct horse\r\nSTAT\r\nRETR 1\r\nLIST 2\nTOP 2 0\r\nDELE 1\r\nSTAT\r\nQUIT\r\n")
	c.expect("+OK")
	c.expect("+OK Send PASS")
	c.expect("+OK Maildrop has 2")
	c.expect("+OK 2 236")
	c.expect("+OK 118 octets")
	if body := c.multi(); !strings.Contains(body, "Subject: one\r\n") || len(body) != 118+3 { // three lines stuffed
		t.Fatalf("RETR 1 = %q", body)
	}
	c.expect("+OK 2 118")
	c.expect("+OK Top")
	c.multi()
	c.expect("+OK Message 1 deleted")
	c.expect("+OK 1 118")
	c.expect("+OK Bye (1 messages deleted)")
	c.closed()
}

// Shutdown: a session waiting for a command is told at once and deletes
// nothing.
func TestShutdown(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{Limits: Limits{PlaintextLoopback: true}}})
	env.deliver(env.alice, "INBOX", "one")
	c := env.dial()
	c.login(alice)
	c.send("DELE 1\r\n")
	c.expect("+OK")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.expect("-ERR [SYS/TEMP] Server shutting down")
	c.closed()
	if got := env.uids(env.alice, "INBOX"); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("UIDs after shutdown: %v", got)
	}
}

// AUTH SCRAM-SHA-256 with an independent client (xdg-go/scram), with the
// server's final message sent as a challenge (RFC 5034 4).
func TestAuthSCRAM(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{ImplicitTLS: true}})
	client, err := scram.SHA256.NewClient(alice, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := client.NewConversation()
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	c := env.dialTLS()
	c.expect("+OK")
	c.send("AUTH SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString([]byte(first)) + "\r\n")
	for {
		l := c.expect("")
		if strings.HasPrefix(l, "+OK") {
			break
		}
		chal, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "+ "))
		if err != nil || !strings.HasPrefix(l, "+ ") {
			t.Fatalf("challenge %q: %v", l, err)
		}
		resp, err := conv.Step(string(chal))
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		c.send(base64.StdEncoding.EncodeToString([]byte(resp)) + "\r\n")
	}
	if !conv.Valid() {
		t.Fatal("server signature not verified")
	}
}

func TestParseNumber(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "007": 7, "999999999": 999999999} {
		if n, ok := parseNumber(in); !ok || n != want {
			t.Errorf("parseNumber(%q) = %d, %v", in, n, ok)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1x", "1000000000", " 1"} {
		if _, ok := parseNumber(in); ok {
			t.Errorf("parseNumber(%q) accepted", in)
		}
	}
}

// A message stored as a blob file (over the store's inline size) is sent
// byte-exact and dot-stuffed, over plain TCP and over TLS.
func TestRetrLargeMessage(t *testing.T) {
	env := newEnv(t, envConfig{opts: Options{ImplicitTLS: true}})
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < 300<<10; i++ {
		if i%3 == 0 {
			b.WriteString(".")
		}
		b.WriteString(strings.Repeat("x", i%200) + "\r\n")
	}
	msg := b.String()
	if _, err := env.st.Deliver(context.Background(), &store.Delivery{Blob: strings.NewReader(msg), InternalDate: time.Now(),
		Local: []store.LocalRecipient{{AccountID: env.alice.ID}}}); err != nil {
		t.Fatal(err)
	}
	c := env.dialTLS()
	c.login(alice)
	c.send("LIST 1\r\nRETR 1\r\n")
	c.expect("+OK 1 " + strconv.Itoa(len(msg)))
	c.expect("+OK " + strconv.Itoa(len(msg)) + " octets")
	got := c.multi()
	if unstuffed := strings.ReplaceAll("\r\n"+got, "\r\n..", "\r\n.")[2:]; unstuffed != msg {
		t.Fatalf("RETR of a large message differs (%d bytes, want %d)", len(unstuffed), len(msg))
	}
}

// The login-time table only grows while a delay is set, and old records
// are swept once it has doubled.
func TestMaildropsSweep(t *testing.T) {
	m := NewMaildrops()
	now := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	for id := range int64(minSweep) {
		if err := m.acquire(id, now, 0); err != nil {
			t.Fatal(err)
		}
		m.release(id)
	}
	if len(m.lastLogin) != 0 {
		t.Fatalf("%d login times kept without a delay", len(m.lastLogin))
	}
	for id := range int64(minSweep + 1) {
		if err := m.acquire(id, now, time.Minute); err != nil {
			t.Fatal(err)
		}
		m.release(id)
	}
	if err := m.acquire(1, now.Add(30*time.Second), time.Minute); err == nil {
		t.Fatal("login within the delay accepted")
	}
	// Logins of other accounts a delay later: the old records go at the
	// next sweep, before the table has doubled again.
	later := now.Add(2 * time.Minute)
	for id := int64(minSweep + 1); m.lastLogin[0].Equal(now); id++ {
		if len(m.lastLogin) > 3*minSweep {
			t.Fatalf("no sweep: %d login times kept", len(m.lastLogin))
		}
		if err := m.acquire(id, later, time.Minute); err != nil {
			t.Fatal(err)
		}
		m.release(id)
	}
	for id, at := range m.lastLogin {
		if !at.Equal(later) {
			t.Fatalf("account %d: a login time older than the delay survived the sweep", id)
		}
	}
}
