// Package storetest is the conformance suite every store.Store backend
// passes: Run checks each invariant of the store package comment and the
// documented behaviour of every method, against a fresh store per subtest.
//
// Backends call it from their own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// open must return a new, empty store and arrange for it to be closed
// when the (sub)test ends (t.Cleanup); Close may then run twice, the
// second call must return nil. Subtests run in parallel, so open must be
// safe for concurrent use.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// Run runs the conformance suite.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(e *env)
	}{
		{"Domains", testDomains},
		{"Accounts", testAccounts},
		{"Credentials", testCredentials},
		{"DeleteAccount", testDeleteAccount},
		{"Aliases", testAliases},
		{"MailboxCreate", testMailboxCreate},
		{"MailboxNames", testMailboxNames},
		{"UIDValidity", testUIDValidity},
		{"MailboxDelete", testMailboxDelete},
		{"Rename", testRename},
		{"RenameInbox", testRenameInbox},
		{"Subscribe", testSubscribe},
		{"Deliver", testDeliver},
		{"DeliverAllOrNothing", testDeliverAllOrNothing},
		{"DeliverBatch", testDeliverBatch},
		{"DeliverCreatesMailbox", testDeliverCreatesMailbox},
		{"DeliverNoCreate", testDeliverNoCreate},
		{"SharedBlob", testSharedBlob},
		{"Reader", testReader},
		{"Messages", testMessages},
		{"Flags", testFlags},
		{"UnchangedSince", testUnchangedSince},
		{"Expunge", testExpunge},
		{"ExpungeMany", testExpungeMany},
		{"ChangedSince", testChangedSince},
		{"ModSeqMonotonic", testModSeqMonotonic},
		{"Copy", testCopy},
		{"Move", testMove},
		{"Quota", testQuota},
		{"POP3UID", testPOP3UID},
		{"POP3Maildrop", testPOP3Maildrop},
		{"Queue", testQueue},
		{"BlobRefs", testBlobRefs},
		{"Spool", testSpool},
		{"LargeMessages", testLargeMessages},
		{"Feed", testFeed},
		{"FeedAccounts", testFeedAccounts},
		{"FeedOverflow", testFeedOverflow},
		{"SearchText", testSearchText},
		{"SearchTextLarge", testSearchTextLarge},
		{"ConcurrentDeliver", testConcurrentDeliver},
		{"ConcurrentMixed", testConcurrentMixed},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(&env{t: t, st: open(t), ctx: context.Background()})
		})
	}
}

// env is one subtest's store with helpers that fail the test on error.
type env struct {
	t   *testing.T
	st  store.Store
	ctx context.Context
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) wantErr(err, want error, what string) {
	e.t.Helper()
	if !errors.Is(err, want) {
		e.t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// account creates email (and its domain if needed).
func (e *env) account(email string) store.Account {
	e.t.Helper()
	domain := email[bytes.IndexByte([]byte(email), '@')+1:]
	if _, err := e.st.Domain(e.ctx, domain); errors.Is(err, store.ErrNotFound) {
		e.must(e.st.AddDomain(e.ctx, domain))
	}
	a, err := e.st.CreateAccount(e.ctx, email, store.Credentials{PasswordHash: "$argon2id$test"}, 0)
	e.must(err)
	return a
}

func (e *env) mailbox(accountID int64, name string) store.Mailbox {
	e.t.Helper()
	m, err := e.st.Mailbox(e.ctx, accountID, name)
	e.must(err)
	return m
}

func (e *env) mailboxByID(id int64) store.Mailbox {
	e.t.Helper()
	m, err := e.st.MailboxByID(e.ctx, id)
	e.must(err)
	return m
}

// body returns a small distinct RFC 5322 message.
func body(tag string) string {
	return "From: a@example.org\r\nTo: b@example.com\r\nSubject: " + tag +
		"\r\nMessage-ID: <" + tag + "@example.org>\r\n\r\nHello " + tag + "\r\n"
}

// deliver stores one message for one local recipient.
func (e *env) deliver(accountID int64, mailbox, msg string, flags ...string) store.LocalResult {
	e.t.Helper()
	res, err := e.st.Deliver(e.ctx, &store.Delivery{
		Blob:  bytes.NewReader([]byte(msg)),
		Local: []store.LocalRecipient{{AccountID: accountID, Mailbox: mailbox, Flags: flags}},
	})
	e.must(err)
	if len(res.Local) != 1 {
		e.t.Fatalf("Deliver: %d local results, want 1", len(res.Local))
	}
	return res.Local[0]
}

// content reads a message's bytes.
func (e *env) content(mailboxID int64, uid uint32) string {
	e.t.Helper()
	r, err := e.st.OpenMessage(e.ctx, mailboxID, uid)
	e.must(err)
	defer r.Close()
	b, err := io.ReadAll(r)
	e.must(err)
	if int64(len(b)) != r.Size() {
		e.t.Fatalf("OpenMessage(%d, %d): read %d bytes, Size() = %d", mailboxID, uid, len(b), r.Size())
	}
	return string(b)
}

func (e *env) messages(mailboxID int64) []store.Message {
	e.t.Helper()
	m, err := e.st.Messages(e.ctx, mailboxID, 1, false)
	e.must(err)
	return m
}

func uidsOf(msgs []store.Message) []uint32 {
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

// checkCounts verifies the exact counts of every mailbox of the account
// and its used bytes against the messages actually listed, plus UIDNEXT and
// HIGHESTMODSEQ bounds.
func (e *env) checkCounts(accountID int64) {
	e.t.Helper()
	mbs, err := e.st.Mailboxes(e.ctx, accountID)
	e.must(err)
	var used int64
	for _, mb := range mbs {
		msgs := e.messages(mb.ID)
		var unseen, deleted int
		var size int64
		for _, m := range msgs {
			if !slices.Contains(m.Flags, store.FlagSeen) {
				unseen++
			}
			if slices.Contains(m.Flags, store.FlagDeleted) {
				deleted++
			}
			size += m.Size
			if m.UID >= mb.UIDNext {
				e.t.Errorf("%s: UID %d >= UIDNEXT %d", mb.Name, m.UID, mb.UIDNext)
			}
			if m.ModSeq > mb.HighestModSeq || m.ModSeq == 0 {
				e.t.Errorf("%s: UID %d MODSEQ %d, HIGHESTMODSEQ %d", mb.Name, m.UID, m.ModSeq, mb.HighestModSeq)
			}
		}
		if mb.Messages != len(msgs) || mb.Unseen != unseen || mb.Deleted != deleted || mb.Size != size {
			e.t.Errorf("%s: counts messages=%d unseen=%d deleted=%d size=%d, actual %d %d %d %d",
				mb.Name, mb.Messages, mb.Unseen, mb.Deleted, mb.Size, len(msgs), unseen, deleted, size)
		}
		used += size
	}
	a, err := e.st.AccountByID(e.ctx, accountID)
	e.must(err)
	if a.UsedBytes != used {
		e.t.Errorf("account %s: UsedBytes %d, sum of message sizes %d", a.Email, a.UsedBytes, used)
	}
}

// next receives one change or fails after a generous deadline (a guard
// against hanging, not a timing assertion).
// feedReader reads a Subscription one change at a time.
type feedReader struct {
	sub store.Subscription
	buf []store.Change
}

func newFeedReader(sub store.Subscription) *feedReader { return &feedReader{sub: sub} }

// next returns the next change, failing the test if none comes.
func (r *feedReader) next(t *testing.T) store.Change {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(r.buf) == 0 {
		select {
		case <-r.sub.Ready():
			r.buf = r.sub.Take()
		case <-deadline:
			t.Fatal("no change on the feed")
		}
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}
