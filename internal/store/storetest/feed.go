package storetest

import (
	"slices"

	"pillarbox/internal/store"
)

func testFeed(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	ch, cancel := st.Subscribe(a.ID)
	defer cancel()

	r := e.deliver(a.ID, "INBOX", body("feed"), store.FlagDraft)
	c, ok := next(e.t, ch)
	if !ok || c.Kind != store.ChangeAppend || c.AccountID != a.ID || c.MailboxID != r.MailboxID || c.UID != r.UID ||
		c.ModSeq != r.ModSeq || !slices.Equal(c.Flags, []string{store.FlagDraft}) {
		e.t.Fatalf("append change = %+v, delivered %+v", c, r)
	}
	// Published after commit: the message is readable by now.
	if _, err := st.Message(ctx, c.MailboxID, c.UID); err != nil {
		e.t.Errorf("message of change not readable: %v", err)
	}

	up, _, err := st.StoreFlags(ctx, r.MailboxID, []uint32{r.UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	c, _ = next(e.t, ch)
	if c.Kind != store.ChangeFlags || c.UID != r.UID || c.ModSeq != up[0].ModSeq || !slices.Equal(c.Flags, up[0].Flags) {
		e.t.Errorf("flags change = %+v, update %+v", c, up)
	}
	_, err = st.Expunge(ctx, r.MailboxID, []uint32{r.UID})
	e.must(err)
	c, _ = next(e.t, ch)
	mb := e.mailboxByID(r.MailboxID)
	if c.Kind != store.ChangeExpunge || c.UID != r.UID || c.ModSeq != mb.HighestModSeq {
		e.t.Errorf("expunge change = %+v, HIGHESTMODSEQ %d", c, mb.HighestModSeq)
	}
	nb, err := st.CreateMailbox(ctx, a.ID, "New", "")
	e.must(err)
	c, _ = next(e.t, ch)
	if c.Kind != store.ChangeMailbox || c.MailboxID != nb.ID {
		e.t.Errorf("mailbox change = %+v", c)
	}
	// A failed operation publishes nothing; the next change is the next one.
	_, err = st.CreateMailbox(ctx, a.ID, "New", "")
	e.wantErr(err, store.ErrExists, "CreateMailbox twice")
	e.must(st.SetSubscribed(ctx, nb.ID, true))
	c, _ = next(e.t, ch)
	if c.Kind != store.ChangeMailbox || c.MailboxID != nb.ID {
		e.t.Errorf("subscription change = %+v", c)
	}
	// Move: append in the destination and expunge in the source.
	r2 := e.deliver(a.ID, "INBOX", body("moved"))
	next(e.t, ch)
	pairs, err := st.Move(ctx, r2.MailboxID, []uint32{r2.UID}, nb.ID)
	e.must(err)
	var kinds []store.ChangeKind
	for i := 0; i < 2; i++ {
		c, _ = next(e.t, ch)
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
	cancel()
	for range ch { // cancel closes the channel
	}
	cancel() // twice is harmless
}

// testFeedAccounts: a subscriber sees its own account only, and only
// changes made after Subscribe.
func testFeedAccounts(e *env) {
	a := e.account("a@example.com")
	b := e.account("b@example.com")
	e.deliver(b.ID, "INBOX", body("before"))
	chB, cancelB := e.st.Subscribe(b.ID)
	defer cancelB()
	chB2, cancelB2 := e.st.Subscribe(b.ID)
	defer cancelB2()
	e.deliver(a.ID, "INBOX", body("for a"))
	rb := e.deliver(b.ID, "INBOX", body("for b"))
	for _, ch := range []<-chan store.Change{chB, chB2} {
		c, _ := next(e.t, ch)
		if c.AccountID != b.ID || c.Kind != store.ChangeAppend || c.UID != rb.UID || c.MailboxID != rb.MailboxID {
			e.t.Errorf("first change for b = %+v, want append of %+v", c, rb)
		}
	}
}

// testFeedOverflow: a subscriber that does not read gets a final Kind 0
// change and a closed channel; the writer is never blocked by it.
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
	ch, cancel := st.Subscribe(a.ID)
	defer cancel()
	if cap(ch) == 0 {
		e.t.Fatal("change feed channel is not buffered")
	}
	produced := 0
	for i := 0; produced <= cap(ch)+n; i++ {
		op := store.FlagAdd
		if i%2 == 1 {
			op = store.FlagRemove
		}
		up, _, err := st.StoreFlags(ctx, mb.ID, uids, op, []string{store.FlagFlagged}, 0)
		e.must(err)
		produced += len(up)
	}
	var last store.Change
	got := 0
	for c := range ch {
		if last.Kind == 0 && got > 0 {
			e.t.Fatalf("change after the Kind 0 change: %+v", c)
		}
		last = c
		got++
	}
	if last.Kind != 0 || got > produced {
		e.t.Errorf("overflowed feed ended with %+v after %d changes (%d produced)", last, got, produced)
	}
	// The store keeps working and a new subscription works.
	ch2, cancel2 := st.Subscribe(a.ID)
	defer cancel2()
	r := e.deliver(a.ID, "INBOX", body("after"))
	if c, _ := next(e.t, ch2); c.UID != r.UID || c.Kind != store.ChangeAppend {
		e.t.Errorf("change after overflow = %+v", c)
	}
}
