package delivery

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/smtpserver"
	"pillarbox/internal/store"
	"pillarbox/internal/store/sqlstore"
)

// fixture is a real sqlstore with two local domains, accounts and aliases.
type fixture struct {
	st                *sqlstore.Store
	l                 *Local
	alice, bob, carol store.Account
	mx, sub, subCarol *smtpserver.SessionInfo
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(t.TempDir(), sqlstore.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"example.test", "other.test"} {
		must(st.AddDomain(ctx, d))
	}
	cred := store.Credentials{PasswordHash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"}
	f := &fixture{st: st}
	f.alice, err = st.CreateAccount(ctx, "alice@example.test", cred, 0)
	must(err)
	f.bob, err = st.CreateAccount(ctx, "bob@example.test", cred, 100)
	must(err)
	f.carol, err = st.CreateAccount(ctx, "carol@other.test", cred, 0)
	must(err)
	aliases := map[string][]string{
		"team@example.test":  {"alice@example.test", "bob@example.test"},
		"info@example.test":  {"alice@example.test"},
		"fwd@example.test":   {"x@remote.test"},
		"sales@example.test": {"info@example.test", "ext@remote.test", "nobody@example.test"},
		"loop1@example.test": {"loop2@example.test"},
		"loop2@example.test": {"loop1@example.test"},
		"@other.test":        {"carol@other.test"},
		"d0@example.test":    {"d1@example.test"},
	}
	// A chain longer than the depth limit: d0 -> d1 -> ... -> d12 -> alice.
	for i := 1; i <= 12; i++ {
		aliases["d"+strconv.Itoa(i)+"@example.test"] = []string{"d" + strconv.Itoa(i+1) + "@example.test"}
	}
	aliases["d13@example.test"] = []string{"alice@example.test"}
	for a, tg := range aliases {
		must(st.AddAlias(ctx, a, tg))
	}
	f.l = NewLocal(st, LocalOptions{Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }})
	f.mx = &smtpserver.SessionInfo{ConnID: "c1", Mode: smtpserver.ModeMX}
	f.sub = &smtpserver.SessionInfo{ConnID: "c2", Mode: smtpserver.ModeSubmission, TLS: true, Account: &f.alice}
	f.subCarol = &smtpserver.SessionInfo{ConnID: "c3", Mode: smtpserver.ModeSubmissions, TLS: true, Account: &f.carol}
	return f
}

func emails(accs []store.Account) []string {
	var out []string
	for _, a := range accs {
		out = append(out, a.Email)
	}
	return out
}

func wantSMTPError(t *testing.T, err error, code int, enh [3]int) {
	t.Helper()
	var se *smtpserver.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want SMTP %d %v", err, code, enh)
	}
	if se.Code != code || se.Enhanced != enh {
		t.Fatalf("err = %d %v %q, want %d %v", se.Code, se.Enhanced, se.Message, code, enh)
	}
}

func TestCheckRecipient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name     string
		si       *smtpserver.SessionInfo
		rcpt     string
		size     int64
		accounts []string
		remote   []string
		direct   bool
		code     int
		enh      [3]int
	}{
		{name: "exact account", rcpt: "alice@example.test", accounts: []string{"alice@example.test"}, direct: true},
		{name: "case folded", rcpt: "ALICE@Example.TEST", accounts: []string{"alice@example.test"}, direct: true},
		{name: "subaddress", rcpt: "alice+news@example.test", accounts: []string{"alice@example.test"}, direct: true},
		{name: "alias two accounts", rcpt: "team@example.test", accounts: []string{"alice@example.test", "bob@example.test"}},
		{name: "subaddress of alias", rcpt: "team+x@example.test", accounts: []string{"alice@example.test", "bob@example.test"}},
		{name: "alias forwards out, unauthenticated", rcpt: "fwd@example.test", remote: []string{"x@remote.test"}},
		{name: "nested alias, mixed, unknown member skipped", rcpt: "sales@example.test",
			accounts: []string{"alice@example.test"}, remote: []string{"ext@remote.test"}},
		{name: "catch-all", rcpt: "whoever@other.test", accounts: []string{"carol@other.test"}},
		{name: "account beats catch-all", rcpt: "carol@other.test", accounts: []string{"carol@other.test"}, direct: true},
		{name: "unknown local", rcpt: "nobody@example.test", code: 550, enh: [3]int{5, 1, 1}},
		{name: "unknown subaddress", rcpt: "nobody+x@example.test", code: 550, enh: [3]int{5, 1, 1}},
		{name: "alias loop", rcpt: "loop1@example.test", code: 550, enh: [3]int{5, 4, 6}},
		{name: "alias too deep", rcpt: "d0@example.test", code: 550, enh: [3]int{5, 4, 6}},
		{name: "relay denied", rcpt: "someone@remote.test", code: 554, enh: [3]int{5, 7, 1}},
		{name: "relay authenticated", si: f.sub, rcpt: "Someone@Remote.test", remote: []string{"someone@remote.test"}},
		{name: "percent hack", rcpt: "someone%remote.test@example.test", code: 554, enh: [3]int{5, 7, 1}},
		{name: "percent hack authenticated", si: f.sub, rcpt: "someone%remote.test@example.test", code: 554, enh: [3]int{5, 7, 1}},
		{name: "bang path", rcpt: "remote.test!someone@example.test", code: 554, enh: [3]int{5, 7, 1}},
		{name: "source route", rcpt: "@example.test:someone@remote.test", code: 554, enh: [3]int{5, 7, 1}},
		{name: "quoted at", rcpt: `"someone@remote.test"@example.test`, code: 554, enh: [3]int{5, 7, 1}},
		{name: "over quota", rcpt: "bob@example.test", size: 101, code: 552, enh: [3]int{5, 2, 2}},
		{name: "within quota", rcpt: "bob@example.test", size: 100, accounts: []string{"bob@example.test"}, direct: true},
		{name: "alias drops full member", rcpt: "team@example.test", size: 101, accounts: []string{"alice@example.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			si := tc.si
			if si == nil {
				si = f.mx
			}
			tok, err := f.l.CheckRecipient(context.Background(), si, tc.rcpt, tc.size)
			if tc.code != 0 {
				wantSMTPError(t, err, tc.code, tc.enh)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := tok.(*Resolution)
			if got := emails(r.Accounts()); !slices.Equal(got, tc.accounts) {
				t.Errorf("accounts = %v, want %v", got, tc.accounts)
			}
			if !slices.Equal(r.Remote(), tc.remote) {
				t.Errorf("remote = %v, want %v", r.Remote(), tc.remote)
			}
			if r.Direct != tc.direct {
				t.Errorf("direct = %v, want %v", r.Direct, tc.direct)
			}
		})
	}
}

// Trailing dots and other odd spellings of a remote domain never relay.
func TestNoRelayTricks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, rcpt := range []string{
		"someone@remote.test.", "someone@REMOTE.test", "someone@[192.0.2.1]",
		`"someone%remote.test"@example.test`, "someone@remote.test@example.test",
		"@a.test,@b.test:someone@remote.test", "someone!remote.test@other.test",
	} {
		if _, err := f.l.CheckRecipient(context.Background(), f.mx, rcpt, 0); err == nil {
			t.Errorf("%q accepted without authentication", rcpt)
		} else {
			var se *smtpserver.Error
			if !errors.As(err, &se) || se.Code < 550 {
				t.Errorf("%q: err = %v, want a permanent SMTP error", rcpt, err)
			}
		}
	}
}

func TestCheckSender(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Addresses that start with alice's name but belong to others.
	ctx := context.Background()
	if _, err := f.st.CreateAccount(ctx, "alice+billing@example.test", store.Credentials{}, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.st.AddAlias(ctx, "alice+bob@example.test", []string{"bob@example.test"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		si   *smtpserver.SessionInfo
		from string
		ok   bool
	}{
		{"own address", nil, "alice@example.test", true},
		{"own address other case", nil, "Alice@EXAMPLE.test", true},
		{"own subaddress", nil, "alice+lists@example.test", true},
		{"alias of own", nil, "info@example.test", true},
		{"alias including own", nil, "team@example.test", true},
		{"nested alias", nil, "sales@example.test", true},
		{"someone else", nil, "bob@example.test", false},
		{"another account named like own subaddress", nil, "alice+billing@example.test", false},
		{"an alias named like own subaddress", nil, "alice+bob@example.test", false},
		{"foreign domain", nil, "alice@remote.test", false},
		{"null sender", nil, "", false},
		{"catch-all does not grant", f.subCarol, "whoever@other.test", false},
		{"catch-all owner own address", f.subCarol, "carol@other.test", true},
		{"mx accepts anything", f.mx, "whoever@remote.test", true},
		{"mx accepts null", f.mx, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			si := tc.si
			if si == nil {
				si = f.sub
			}
			err := f.l.CheckSender(context.Background(), si, tc.from)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				wantSMTPError(t, err, 553, [3]int{5, 7, 1})
			}
		})
	}
}

// spool writes body into a spool file from the backend.
func spool(t *testing.T, l *Local, body string) *os.File {
	t.Helper()
	f, err := l.CreateSpool()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); os.Remove(f.Name()) })
	if _, err := f.WriteString(body); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) envelope(t *testing.T, si *smtpserver.SessionInfo, from string, rcpts ...string) *smtpserver.Envelope {
	t.Helper()
	env := &smtpserver.Envelope{From: from, Body: "8BITMIME", Ret: "HDRS", EnvID: "env1"}
	for _, r := range rcpts {
		tok, err := f.l.CheckRecipient(context.Background(), si, r, 0)
		if err != nil {
			t.Fatalf("rcpt %s: %v", r, err)
		}
		env.Recipients = append(env.Recipients, smtpserver.Recipient{Address: r, Notify: "FAILURE", Token: tok})
	}
	return env
}

// mailbox returns the messages' bytes and flags in an account's mailbox.
func (f *fixture) mailbox(t *testing.T, acc store.Account, name string) (bodies []string, flags [][]string) {
	t.Helper()
	ctx := context.Background()
	mb, err := f.st.Mailbox(ctx, acc.ID, name)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := f.st.Messages(ctx, mb.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		r, err := f.st.OpenMessage(ctx, mb.ID, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
		flags = append(flags, m.Flags)
	}
	return bodies, flags
}

const testBody = "Subject: hi\r\n\r\nhello\r\n"

func TestDeliverMX(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	env := f.envelope(t, f.mx, "sender@remote.test",
		"alice@example.test", "alice+tag@example.test", "team@example.test", "fwd@example.test")
	id, err := f.l.Deliver(ctx, f.mx, env, spool(t, f.l, testBody))
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := f.mailbox(t, f.alice, "INBOX")
	want := "Return-Path: <sender@remote.test>\r\nDelivered-To: alice@example.test\r\n" + testBody
	if len(alice) != 1 || alice[0] != want {
		t.Fatalf("alice INBOX = %q, want one %q", alice, want)
	}
	bob, _ := f.mailbox(t, f.bob, "INBOX")
	want = "Return-Path: <sender@remote.test>\r\nDelivered-To: bob@example.test\r\n" + testBody
	if len(bob) != 1 || bob[0] != want {
		t.Fatalf("bob INBOX = %q, want one %q", bob, want)
	}
	q, err := f.st.QueueItem(ctx, id)
	if err != nil {
		t.Fatalf("queue item %q: %v", id, err)
	}
	if len(q.Recipients) != 1 || q.Recipients[0].Address != "x@remote.test" ||
		q.Recipients[0].ORcpt != "rfc822;fwd@example.test" || q.Recipients[0].Notify != "FAILURE" ||
		q.Recipients[0].State != store.RcptPending {
		t.Errorf("queue recipients = %+v", q.Recipients)
	}
	if q.From != "sender@remote.test" || q.Ret != "HDRS" || q.EnvID != "env1" || q.Body != "8BITMIME" || q.AccountID != 0 {
		t.Errorf("queue item = %+v", q)
	}
}

func TestDeliverSubaddressDeliveredTo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.envelope(t, f.mx, "", "Alice+Tag@example.test")
	id, err := f.l.Deliver(context.Background(), f.mx, env, spool(t, f.l, testBody))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "L") {
		t.Errorf("id = %q, want a generated L... id", id)
	}
	got, _ := f.mailbox(t, f.alice, "INBOX")
	want := "Return-Path: <>\r\nDelivered-To: alice+tag@example.test\r\n" + testBody
	if len(got) != 1 || got[0] != want {
		t.Fatalf("INBOX = %q, want %q", got, want)
	}
	if items, _ := f.st.QueueItems(context.Background()); len(items) != 0 {
		t.Errorf("queue = %+v, want empty", items)
	}
}

func TestDeliverSubmissionSaveSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.SetSaveSent(ctx, f.alice.ID, true); err != nil {
		t.Fatal(err)
	}
	env := f.envelope(t, f.sub, "alice@example.test", "bob@example.test", "Friend@Remote.test", "friend@remote.test")
	env.SMTPUTF8 = true
	id, err := f.l.Deliver(ctx, f.sub, env, spool(t, f.l, testBody))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.mailbox(t, f.bob, "INBOX"); len(got) != 1 {
		t.Errorf("bob INBOX has %d messages, want 1", len(got))
	}
	sent, flags := f.mailbox(t, f.alice, "Sent")
	if len(sent) != 1 || sent[0] != testBody || !slices.Contains(flags[0], store.FlagSeen) {
		t.Errorf("alice Sent = %q flags %v, want the message, \\Seen", sent, flags)
	}
	if got, _ := f.mailbox(t, f.alice, "INBOX"); len(got) != 0 {
		t.Errorf("alice INBOX has %d messages, want 0", len(got))
	}
	q, err := f.st.QueueItem(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Recipients) != 1 || q.Recipients[0].Address != "friend@remote.test" || q.Recipients[0].ORcpt != "" {
		t.Errorf("recipients = %+v, want one friend@remote.test", q.Recipients)
	}
	if q.AccountID != f.alice.ID || !q.SMTPUTF8 || q.From != "alice@example.test" {
		t.Errorf("queue item = %+v", q)
	}
}

func TestDeliverSubmissionNoSaveSent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	env := f.envelope(t, f.sub, "alice@example.test", "bob@example.test")
	if _, err := f.l.Deliver(context.Background(), f.sub, env, spool(t, f.l, testBody)); err != nil {
		t.Fatal(err)
	}
	if sent, _ := f.mailbox(t, f.alice, "Sent"); len(sent) != 0 {
		t.Errorf("Sent has %d messages without SaveSent", len(sent))
	}
}

// RFC 5321 4.1.1.3 and 4.5.1: "Postmaster" without a domain, and
// postmaster@ of every local domain, are accepted even when no account or
// alias has that name: they reach the postmaster of a local domain.
func TestPostmaster(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if err := f.st.AddAlias(ctx, "postmaster@example.test", []string{"bob@example.test"}); err != nil {
		t.Fatal(err)
	}
	// third.test has neither a postmaster nor a catch-all.
	if err := f.st.AddDomain(ctx, "third.test"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"Postmaster", "postmaster", "postmaster@example.test", "PostMaster@third.test"} {
		tok, err := f.l.CheckRecipient(ctx, f.mx, rcpt, 0)
		if err != nil {
			t.Errorf("RCPT %s: %v", rcpt, err)
			continue
		}
		acc := tok.(*Resolution).Accounts()
		if len(acc) != 1 || acc[0].ID != f.bob.ID {
			t.Errorf("RCPT %s reached %+v, want bob", rcpt, acc)
		}
	}
}
