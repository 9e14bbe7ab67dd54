package storetest

import (
	"bytes"
	"fmt"
	"slices"

	"pillarbox/internal/store"
)

// maildropOf reads an account's POP3Maildrop through every method that
// returns an Account and fails the test if they disagree.
func (e *env) maildropOf(a store.Account) []string {
	e.t.Helper()
	st, ctx := e.st, e.ctx
	byEmail, err := st.Account(ctx, a.Email)
	e.must(err)
	byID, err := st.AccountByID(ctx, a.ID)
	e.must(err)
	withCred, _, err := st.Credentials(ctx, a.Email)
	e.must(err)
	all, err := st.Accounts(ctx)
	e.must(err)
	var listed *store.Account
	for i := range all {
		if all[i].ID == a.ID {
			listed = &all[i]
		}
	}
	if listed == nil {
		e.t.Fatalf("account %s not in Accounts", a.Email)
	}
	got := byEmail.POP3Maildrop
	for what, other := range map[string][]string{"AccountByID": byID.POP3Maildrop,
		"Credentials": withCred.POP3Maildrop, "Accounts": listed.POP3Maildrop} {
		if !slices.Equal(other, got) || (other == nil) != (got == nil) {
			e.t.Errorf("%s: POP3Maildrop %q, Account says %q", what, other, got)
		}
	}
	return got
}

func testPOP3Maildrop(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	b := e.account("other@example.com")
	if got := e.maildropOf(a); got != nil {
		e.t.Errorf("new account: POP3Maildrop = %q, want nil (the default)", got)
	}

	// Kept as given (they need not exist), INBOX canonicalised, the
	// first of each duplicate kept.
	e.must(st.SetPOP3Maildrop(ctx, a.ID, []string{"inbox", "Junk", "INBOX", "Inbox/Sub", "Archive/2024", "Junk", "Nowhere", "junk"}))
	want := []string{"INBOX", "Junk", "INBOX/Sub", "Archive/2024", "Nowhere", "junk"}
	if got := e.maildropOf(a); !slices.Equal(got, want) {
		e.t.Errorf("POP3Maildrop = %q, want %q", got, want)
	}
	if got := e.maildropOf(b); got != nil {
		e.t.Errorf("other account's POP3Maildrop = %q, want nil", got)
	}
	// Other account settings leave it alone, and it leaves them alone.
	e.must(st.SetQuota(ctx, a.ID, 1000))
	e.must(st.SetSaveSent(ctx, a.ID, true))
	if got := e.maildropOf(a); !slices.Equal(got, want) {
		e.t.Errorf("after SetQuota/SetSaveSent: POP3Maildrop = %q, want %q", got, want)
	}
	if acc, err := st.AccountByID(ctx, a.ID); err != nil || acc.QuotaBytes != 1000 || !acc.SaveSent {
		e.t.Errorf("after SetPOP3Maildrop: %+v, %v", acc, err)
	}

	// Invalid names change nothing.
	for _, bad := range [][]string{{""}, {"INBOX", "/Lead"}, {"Trail/"}, {"a//b"}, {"nul\x00"}, {"bad\xff"}} {
		e.wantErr(st.SetPOP3Maildrop(ctx, a.ID, bad), store.ErrInvalidName, fmt.Sprintf("SetPOP3Maildrop(%q)", bad))
	}
	if got := e.maildropOf(a); !slices.Equal(got, want) {
		e.t.Errorf("after invalid names: POP3Maildrop = %q, want %q", got, want)
	}
	e.wantErr(st.SetPOP3Maildrop(ctx, a.ID+b.ID+1000, []string{"INBOX"}), store.ErrNotFound, "SetPOP3Maildrop(unknown account)")
	e.wantErr(st.SetPOP3Maildrop(ctx, a.ID+b.ID+1000, nil), store.ErrNotFound, "SetPOP3Maildrop(unknown account, nil)")

	// nil and empty both reset to the default.
	e.must(st.SetPOP3Maildrop(ctx, a.ID, nil))
	if got := e.maildropOf(a); got != nil {
		e.t.Errorf("after reset with nil: POP3Maildrop = %q, want nil", got)
	}
	e.must(st.SetPOP3Maildrop(ctx, a.ID, []string{"Junk"}))
	if got := e.maildropOf(a); !slices.Equal(got, []string{"Junk"}) {
		e.t.Errorf("POP3Maildrop = %q, want [Junk]", got)
	}
	e.must(st.SetPOP3Maildrop(ctx, a.ID, []string{}))
	if got := e.maildropOf(a); got != nil {
		e.t.Errorf("after reset with []: POP3Maildrop = %q, want nil", got)
	}
}

func testExpungeMany(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	b := e.account("other@example.com")
	sub := st.Subscribe(a.ID)
	defer sub.Close()
	feed := newFeedReader(sub)
	for i := 0; i < 3; i++ {
		e.deliver(a.ID, "INBOX", body("in"))
	}
	e.deliver(a.ID, "Junk", body("junk1"), store.FlagSeen)
	e.deliver(a.ID, "Junk", body("junk2"), store.FlagDeleted)
	// One blob in two mailboxes, both expunged in the same call.
	res, err := st.Deliver(ctx, &store.Delivery{
		Blob:  bytes.NewReader([]byte(body("shared"))),
		Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX"}, {AccountID: a.ID, Mailbox: "Junk"}},
	})
	e.must(err)
	kept := e.deliver(b.ID, "INBOX", body("kept"))
	for i := 0; i < 3+2+2; i++ {
		feed.next(e.t) // the appends
	}
	inbox, junk, archive := e.mailbox(a.ID, "INBOX"), e.mailbox(a.ID, "Junk"), e.mailbox(a.ID, "Archive")
	accBefore, err := st.AccountByID(ctx, a.ID)
	e.must(err)
	sizes := map[int64]map[uint32]int64{}
	for _, mb := range []store.Mailbox{inbox, junk} {
		sizes[mb.ID] = map[uint32]int64{}
		for _, m := range e.messages(mb.ID) {
			sizes[mb.ID][m.UID] = m.Size
		}
	}

	// A missing mailbox, wherever it is in the list, fails the call and
	// removes nothing.
	for _, sets := range [][]store.ExpungeSet{
		{{MailboxID: inbox.ID, UIDs: []uint32{1, 2}}, {MailboxID: inbox.ID + junk.ID + archive.ID + 1000, UIDs: []uint32{1}}},
		{{MailboxID: inbox.ID + junk.ID + archive.ID + 1000, UIDs: []uint32{1}}, {MailboxID: junk.ID, UIDs: []uint32{1}}},
	} {
		got, err := st.ExpungeMany(ctx, sets)
		e.wantErr(err, store.ErrNotFound, "ExpungeMany with a missing mailbox")
		if got != nil {
			e.t.Errorf("ExpungeMany with a missing mailbox returned %+v", got)
		}
	}
	if m := e.mailboxByID(inbox.ID); m != inbox {
		e.t.Errorf("INBOX after failed ExpungeMany = %+v, before %+v", m, inbox)
	}
	if m := e.mailboxByID(junk.ID); m != junk {
		e.t.Errorf("Junk after failed ExpungeMany = %+v, before %+v", m, junk)
	}
	if v, err := st.Vanished(ctx, inbox.ID, 0); err != nil || len(v) != 0 {
		e.t.Errorf("Vanished after failed ExpungeMany = %v, %v", v, err)
	}

	got, err := st.ExpungeMany(ctx, []store.ExpungeSet{
		{MailboxID: inbox.ID, UIDs: []uint32{3, 1, 99, res.Local[0].UID}},
		{MailboxID: archive.ID, UIDs: []uint32{1}},
		{MailboxID: junk.ID, UIDs: []uint32{2, res.Local[1].UID}},
	})
	e.must(err)
	want := []store.ExpungeSet{
		{MailboxID: inbox.ID, UIDs: []uint32{1, 3, res.Local[0].UID}},
		{MailboxID: archive.ID},
		{MailboxID: junk.ID, UIDs: []uint32{2, res.Local[1].UID}},
	}
	if !slices.EqualFunc(got, want, func(x, y store.ExpungeSet) bool {
		return x.MailboxID == y.MailboxID && slices.Equal(x.UIDs, y.UIDs)
	}) {
		e.t.Errorf("ExpungeMany = %+v, want %+v", got, want)
	}
	e.checkExpunged(inbox, []uint32{2}, []uint32{1, 3, res.Local[0].UID})
	e.checkExpunged(junk, []uint32{1}, []uint32{2, res.Local[1].UID})
	if m := e.mailboxByID(archive.ID); m != archive {
		e.t.Errorf("Archive (nothing to expunge) = %+v, before %+v", m, archive)
	}
	var freed int64
	for _, set := range want {
		for _, uid := range set.UIDs {
			freed += sizes[set.MailboxID][uid]
		}
	}
	if acc, _ := st.AccountByID(ctx, a.ID); acc.UsedBytes != accBefore.UsedBytes-freed {
		e.t.Errorf("UsedBytes %d, want %d - %d", acc.UsedBytes, accBefore.UsedBytes, freed)
	}
	e.checkCounts(a.ID)
	e.checkCounts(b.ID)
	if e.content(kept.MailboxID, kept.UID) != body("kept") {
		e.t.Error("other account's message changed")
	}
	if r, err := st.OpenBlob(ctx, res.BlobID); err == nil {
		r.Close()
		e.t.Error("blob of the expunged shared message still there")
	}

	// The feed has one expunge per removed message, in order, and nothing
	// from the failed calls.
	for _, set := range want {
		mb := e.mailboxByID(set.MailboxID)
		var last uint64
		for _, uid := range set.UIDs {
			c := feed.next(e.t)
			if c.Kind != store.ChangeExpunge || c.AccountID != a.ID || c.MailboxID != set.MailboxID || c.UID != uid || c.ModSeq <= last {
				e.t.Errorf("change = %+v, want expunge of %d/%d after MODSEQ %d", c, set.MailboxID, uid, last)
			}
			last = c.ModSeq
		}
		if last != 0 && last != mb.HighestModSeq {
			e.t.Errorf("%s: last expunge MODSEQ %d, HIGHESTMODSEQ %d", mb.Name, last, mb.HighestModSeq)
		}
	}
	if extra := sub.Take(); len(extra) != 0 {
		e.t.Errorf("unexpected changes: %+v", extra)
	}

	// Nothing left to remove: success, empty sets; no sets at all too.
	again, err := st.ExpungeMany(ctx, []store.ExpungeSet{{MailboxID: inbox.ID, UIDs: []uint32{1, 3}}})
	e.must(err)
	if len(again) != 1 || again[0].MailboxID != inbox.ID || len(again[0].UIDs) != 0 {
		e.t.Errorf("second ExpungeMany = %+v", again)
	}
	none, err := st.ExpungeMany(ctx, nil)
	e.must(err)
	if len(none) != 0 {
		e.t.Errorf("ExpungeMany(nil) = %+v", none)
	}
}

// checkExpunged checks a mailbox after an expunge of gone from before:
// what is left, the tombstones, and the counters.
func (e *env) checkExpunged(before store.Mailbox, left, gone []uint32) {
	e.t.Helper()
	if got := uidsOf(e.messages(before.ID)); !slices.Equal(got, left) {
		e.t.Errorf("%s: UIDs left %v, want %v", before.Name, got, left)
	}
	v, err := e.st.Vanished(e.ctx, before.ID, before.HighestModSeq)
	e.must(err)
	if !slices.Equal(v, gone) {
		e.t.Errorf("%s: Vanished = %v, want %v", before.Name, v, gone)
	}
	after := e.mailboxByID(before.ID)
	if after.HighestModSeq <= before.HighestModSeq || after.Messages != len(left) ||
		after.UIDNext != before.UIDNext || after.UIDValidity != before.UIDValidity {
		e.t.Errorf("%s after ExpungeMany = %+v, before %+v", before.Name, after, before)
	}
}
