package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"

	"pillarbox/internal/store"
)

// queueBehindBlockedWriter runs fns (each submits one operation) while
// the writer is held inside another transaction, waiting after each
// until its operation is queued, so that they all commit in ONE
// transaction, in this order, once the writer is released. It returns
// when they have all returned.
func queueBehindBlockedWriter(t *testing.T, s *Store, fns ...func()) {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		blocked <- s.do(context.Background(), func(*wtx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	queued := func() int {
		s.toCommit.mu.Lock()
		defer s.toCommit.mu.Unlock()
		return len(s.toCommit.ops)
	}
	done := make(chan struct{}, len(fns))
	for i, fn := range fns {
		go func() { fn(); done <- struct{}{} }()
		for queued() < i+1 {
			runtime.Gosched()
		}
	}
	batches := s.statBatches.Load()
	close(release)
	must(t, <-blocked)
	for range fns {
		<-done
	}
	if n := s.statBatches.Load() - batches; n != 2 {
		t.Fatalf("operations committed in %d transactions after the blocker, want 1", n-1)
	}
}

// TestOneTransactionMixedOps checks that deliveries sharing a
// transaction (and its txCache) with failing deliveries and other
// operations leave exactly the state they would leave one by one.
func TestOneTransactionMixedOps(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	ctx := context.Background()
	a := setup(t, s)
	inbox := mustInbox(t, s, a.ID)
	old := deliver(t, s, a.ID, msg("old"))
	acct, err := s.AccountByID(ctx, a.ID)
	must(t, err)
	prefix := "Delivered-To: x\r\n"
	size := int64(len(prefix) + len(msg("m1")))
	must(t, s.SetQuota(ctx, a.ID, acct.UsedBytes+2*size)) // room for two more

	local := func(mbox string, checkQuota bool) store.LocalRecipient {
		return store.LocalRecipient{AccountID: a.ID, Mailbox: mbox, Prefix: []byte(prefix), CheckQuota: checkQuota}
	}
	type outcome struct {
		res []store.DeliveryResult
		err error
	}
	out := make([]outcome, 6)
	batch := func(i int, tag string, lrs ...store.LocalRecipient) func() {
		return func() {
			var ds []*store.Delivery
			for j, lr := range lrs {
				ds = append(ds, &store.Delivery{Blob: bytes.NewReader([]byte(msg(tag[j*2 : j*2+2]))), Local: []store.LocalRecipient{lr}})
			}
			out[i].res, out[i].err = s.DeliverBatch(ctx, ds)
		}
	}
	var expunged []uint32
	var expErr error
	queueBehindBlockedWriter(t, s,
		batch(0, "m1", local("INBOX", false)),
		batch(1, "m2", local("INBOX", true)),
		batch(2, "m3", local("INBOX", true)),                          // over quota, counting m1 and m2 not yet written
		batch(3, "m4m5", local("Fresh", false), local("INBOX", true)), // all or nothing: no Fresh
		func() { expunged, expErr = s.Expunge(ctx, inbox, []uint32{old.UID}) },
		batch(4, "m6", local("INBOX", false)),
		batch(5, "m7", local("Fresh", false)),
	)
	for i, want := range []error{nil, nil, store.ErrOverQuota, store.ErrOverQuota, nil, nil} {
		if !errors.Is(out[i].err, want) {
			t.Fatalf("delivery %d: err %v, want %v", i, out[i].err, want)
		}
	}
	must(t, expErr)
	if len(expunged) != 1 {
		t.Fatalf("expunged %v", expunged)
	}
	uids := []uint32{out[0].res[0].Local[0].UID, out[1].res[0].Local[0].UID, out[4].res[0].Local[0].UID}
	if uids[0] != old.UID+1 || uids[1] != old.UID+2 || uids[2] != old.UID+3 {
		t.Fatalf("INBOX UIDs %v after %d: failed deliveries must not use UIDs", uids, old.UID)
	}
	checkCounters(t, s, a.ID)
	mb, err := s.MailboxByID(ctx, inbox)
	must(t, err)
	if mb.Messages != 3 || mb.UIDNext != uids[2]+1 || mb.HighestModSeq != out[4].res[0].Local[0].ModSeq {
		t.Fatalf("INBOX %+v", mb)
	}
	fresh, err := s.Mailbox(ctx, a.ID, "Fresh")
	must(t, err)
	if fresh.Messages != 1 || fresh.UIDNext != 2 || fresh.ID != out[5].res[0].Local[0].MailboxID {
		t.Fatalf("Fresh %+v", fresh)
	}
	acct, err = s.AccountByID(ctx, a.ID)
	must(t, err)
	if acct.UsedBytes != 4*size {
		t.Fatalf("used bytes %d, want %d", acct.UsedBytes, 4*size)
	}

	// A failing operation alone in its transaction leaves nothing behind
	// and the writer goes on.
	_, err = s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg("m8"))), Local: []store.LocalRecipient{local("Other", true)}})
	if !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("over quota alone: %v", err)
	}
	if _, err := s.Mailbox(ctx, a.ID, "Other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mailbox of a failed delivery: %v", err)
	}
	after := deliver(t, s, a.ID, msg("m9"))
	if after.UID != uids[2]+1 {
		t.Fatalf("next UID %d, want %d", after.UID, uids[2]+1)
	}
	checkCounters(t, s, a.ID)
}

// checkCounters compares the stored counters with the messages: mailbox
// counts, account used bytes, and the message id sequence (POP3 UIDs are
// never reused: the sequence is at least every id ever stored).
func checkCounters(t *testing.T, s *Store, accountID int64) {
	t.Helper()
	var bad int
	must(t, s.rdb.QueryRow(`SELECT COUNT(*) FROM mailboxes mb WHERE account_id = ? AND (
		messages != (SELECT COUNT(*) FROM messages WHERE mailbox_id = mb.id) OR
		size != (SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = mb.id) OR
		unseen != (SELECT COUNT(*) FROM messages WHERE mailbox_id = mb.id AND flags NOT LIKE '%\Seen%') OR
		uid_next <= (SELECT COALESCE(MAX(uid), 0) FROM messages WHERE mailbox_id = mb.id) OR
		highest_modseq < (SELECT COALESCE(MAX(modseq), 0) FROM messages WHERE mailbox_id = mb.id))`, accountID).Scan(&bad))
	if bad != 0 {
		t.Fatalf("%d mailboxes with counters that do not match their messages", bad)
	}
	var used, sum int64
	must(t, s.rdb.QueryRow(`SELECT used_bytes, (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
		WHERE mb.account_id = a.id) FROM accounts a WHERE id = ?`, accountID).Scan(&used, &sum))
	if used != sum {
		t.Fatalf("used_bytes %d, messages %d", used, sum)
	}
	var seq, maxID int64
	must(t, s.rdb.QueryRow(`SELECT value, (SELECT COALESCE(MAX(msg_id), 0) FROM messages) FROM sequences WHERE name = ?`, seqMessage).Scan(&seq, &maxID))
	if seq < maxID {
		t.Fatalf("message sequence %d below stored id %d", seq, maxID)
	}
}
