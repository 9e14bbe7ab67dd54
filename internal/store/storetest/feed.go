package storetest

import (
	"slices"

	"pillarbox/internal/store"
)

func testFeed(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	sub := st.Subscribe(a.ID)
	defer sub.Close()
	ch := newFeedReader(sub)

	r := e.deliver(a.ID, "INBOX", body("feed"), store.FlagDraft)
	// Available by the time Deliver returned: no waiting.
	if got := sub.Take(); len(got) != 1 {
		e.t.Fatalf("changes available when Deliver returned: %+v, want one", got)
	} else {
		ch.buf = got
	}
	c := ch.next(e.t)
	if c.Kind != store.ChangeAppend || c.AccountID != a.ID || c.MailboxID != r.MailboxID || c.UID != r.UID ||
		c.ModSeq != r.ModSeq || !slices.Equal(c.Flags, []string{store.FlagDraft}) {
		e.t.Fatalf("append change = %+v, delivered %+v", c, r)
	}
	// Published after commit: the message is readable by now.
	if _, err := st.Message(ctx, c.MailboxID, c.UID); err != nil {
		e.t.Errorf("message of change not readable: %v", err)
	}

	up, _, err := st.StoreFlags(ctx, r.MailboxID, []uint32{r.UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	c = ch.next(e.t)
	if c.Kind != store.ChangeFlags || c.UID != r.UID || c.ModSeq != up[0].ModSeq || !slices.Equal(c.Flags, up[0].Flags) {
		e.t.Errorf("flags change = %+v, update %+v", c, up)
	}
	_, err = st.Expunge(ctx, r.MailboxID, []uint32{r.UID})
	e.must(err)
	c = ch.next(e.t)
	mb := e.mailboxByID(r.MailboxID)
	if c.Kind != store.ChangeExpunge || c.UID != r.UID || c.ModSeq != mb.HighestModSeq {
		e.t.Errorf("expunge change = %+v, HIGHESTMODSEQ %d", c, mb.HighestModSeq)
	}
	nb, err := st.CreateMailbox(ctx, a.ID, "New", "")
	e.must(err)
	c = ch.next(e.t)
	if c.Kind != store.ChangeMailbox || c.MailboxID != nb.ID {
		e.t.Errorf("mailbox change = %+v", c)
	}
	// A failed operation publishes nothing; the next change is the next one.
	_, err = st.CreateMailbox(ctx, a.ID, "New", "")
	e.wantErr(err, store.ErrExists, "CreateMailbox twice")
	e.must(st.SetSubscribed(ctx, nb.ID, true))
	c = ch.next(e.t)
	if c.Kind != store.ChangeMailbox || c.MailboxID != nb.ID {
		e.t.Errorf("subscription change = %+v", c)
	}
	// Move: append in the destination and expunge in the source.
	r2 := e.deliver(a.ID, "INBOX", body("moved"))
	ch.next(e.t)
	pairs, err := st.Move(ctx, r2.MailboxID, []uint32{r2.UID}, nb.ID)
	e.must(err)
	var kinds []store.ChangeKind
	for i := 0; i < 2; i++ {
		c = ch.next(e.t)
		kinds = append(kinds, c.Kind)
		if c.Kind == store.ChangeAppend && (c.MailboxID != nb.ID || c.UID != pairs[0].Dst) ||
			c.Kind == store.ChangeExpunge && (c.MailboxID != r2.MailboxID || c.UID != r2.UID) {
			e.t.Errorf("move change = %+v", c)
		}
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []store.ChangeKind{store.ChangeAppend, store.ChangeExpunge}) {
		e.t.Errorf("move changes = %v", kinds)
	}
	sub.Close()
	e.deliver(a.ID, "INBOX", body("after close"))
	if got := sub.Take(); got != nil {
		e.t.Errorf("changes after Close: %+v", got)
	}
	sub.Close() // twice is harmless
}

// testFeedAccounts: a subscriber sees its own account only, and only
// changes made after Subscribe.
func testFeedAccounts(e *env) {
	a := e.account("a@example.com")
	b := e.account("b@example.com")
	e.deliver(b.ID, "INBOX", body("before"))
	subB := e.st.Subscribe(b.ID)
	defer subB.Close()
	subB2 := e.st.Subscribe(b.ID)
	defer subB2.Close()
	e.deliver(a.ID, "INBOX", body("for a"))
	rb := e.deliver(b.ID, "INBOX", body("for b"))
	for _, sub := range []store.Subscription{subB, subB2} {
		c := newFeedReader(sub).next(e.t)
		if c.AccountID != b.ID || c.Kind != store.ChangeAppend || c.UID != rb.UID || c.MailboxID != rb.MailboxID {
			e.t.Errorf("first change for b = %+v, want append of %+v", c, rb)
		}
	}
}

// testFeedOverflow: a subscriber that does not read while tens of
// thousands of changes are made gets them replaced by a Kind 0 change
// (resynchronise), the writer is never blocked by it, and the
// subscription goes on afterwards.
func testFeedOverflow(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	const n = 64
	for i := 0; i < n; i++ {
		e.deliver(a.ID, "INBOX", body("o"))
	}
	mb := e.mailbox(a.ID, "INBOX")
	uids := make([]uint32, n)
	for i := range uids {
		uids[i] = uint32(i + 1)
	}
	sub := st.Subscribe(a.ID)
	defer sub.Close()
	produced := 0
	for i := 0; produced < 20000; i++ {
		op := store.FlagAdd
		if i%2 == 1 {
			op = store.FlagRemove
		}
		up, _, err := st.StoreFlags(ctx, mb.ID, uids, op, []string{store.FlagFlagged}, 0)
		e.must(err)
		produced += len(up)
	}
	got := sub.Take()
	resync := slices.IndexFunc(got, func(c store.Change) bool { return c.Kind == 0 })
	if resync < 0 || len(got) >= produced {
		e.t.Fatalf("%d changes produced unread: got %d back, Kind 0 at %d; want some dropped for a Kind 0", produced, len(got), resync)
	}
	// The store keeps working and the subscription goes on.
	r := e.deliver(a.ID, "INBOX", body("after"))
	rd := newFeedReader(sub)
	c := rd.next(e.t)
	for c.Kind == store.ChangeFlags || c.Kind == 0 {
		c = rd.next(e.t)
	}
	if c.UID != r.UID || c.Kind != store.ChangeAppend {
		e.t.Errorf("change after overflow = %+v", c)
	}
}
