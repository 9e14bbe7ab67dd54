package storetest

import (
	"slices"

	"pillarbox/internal/store"
)

func testMailboxCreate(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	m, err := st.CreateMailbox(ctx, a.ID, "Projects", "")
	e.must(err)
	if m.ID == 0 || m.AccountID != a.ID || m.Name != "Projects" || m.UIDValidity == 0 || m.UIDNext != 1 ||
		m.Messages != 0 || m.Subscribed {
		e.t.Errorf("CreateMailbox = %+v", m)
	}
	got := e.mailboxByID(m.ID)
	if got.Name != m.Name || got.UIDValidity != m.UIDValidity || got.HighestModSeq != m.HighestModSeq {
		e.t.Errorf("MailboxByID = %+v, created %+v", got, m)
	}
	_, err = st.CreateMailbox(ctx, a.ID, "Projects", "")
	e.wantErr(err, store.ErrExists, "CreateMailbox twice")
	_, err = st.CreateMailbox(ctx, a.ID, "inbox", "")
	e.wantErr(err, store.ErrExists, "CreateMailbox(inbox)")
	arch, err := st.CreateMailbox(ctx, a.ID, "Old/Archive 2020", store.SpecialArchive)
	e.must(err)
	if arch.SpecialUse != store.SpecialArchive {
		e.t.Errorf("special use = %q", arch.SpecialUse)
	}
	_, err = st.CreateMailbox(ctx, a.ID+1000, "X", "")
	e.wantErr(err, store.ErrNotFound, "CreateMailbox(unknown account)")
	_, err = st.Mailbox(ctx, a.ID, "Nope")
	e.wantErr(err, store.ErrNotFound, "Mailbox(unknown)")
	_, err = st.MailboxByID(ctx, arch.ID+1000)
	e.wantErr(err, store.ErrNotFound, "MailboxByID(unknown)")
	_, err = st.Mailboxes(ctx, a.ID+1000)
	e.wantErr(err, store.ErrNotFound, "Mailboxes(unknown account)")

	// Distinct IDs and UIDVALIDITYs; other accounts are separate.
	b := e.account("other@example.com")
	mb, err := st.CreateMailbox(ctx, b.ID, "Projects", "")
	e.must(err)
	all, err := st.Mailboxes(ctx, a.ID)
	e.must(err)
	all2, err := st.Mailboxes(ctx, b.ID)
	e.must(err)
	ids, uvs := map[int64]bool{}, map[uint32]bool{}
	for _, x := range append(all, all2...) {
		if ids[x.ID] || uvs[x.UIDValidity] {
			e.t.Errorf("duplicate ID or UIDVALIDITY: %+v", x)
		}
		ids[x.ID], uvs[x.UIDValidity] = true, true
	}
	if len(all) != len(store.DefaultMailboxes)+2 || len(all2) != len(store.DefaultMailboxes)+1 || mb.ID == m.ID {
		e.t.Errorf("Mailboxes: %d and %d", len(all), len(all2))
	}
	// INBOX is spelled in upper case whatever the request.
	in := e.mailbox(a.ID, "iNbOx")
	if in.Name != "INBOX" {
		e.t.Errorf("Mailbox(iNbOx).Name = %q", in.Name)
	}
}

func testMailboxNames(e *env) {
	a := e.account("user@example.com")
	for _, bad := range []string{"", "/a", "a/", "a//b", "a\x00b", "\xff\xfe"} {
		_, err := e.st.CreateMailbox(e.ctx, a.ID, bad, "")
		e.wantErr(err, store.ErrInvalidName, "CreateMailbox("+bad+")")
	}
	_, err := e.st.CreateMailbox(e.ctx, a.ID, "Good", `\Bogus`)
	e.wantErr(err, store.ErrInvalidName, "CreateMailbox with unknown special-use")
	m, err := e.st.CreateMailbox(e.ctx, a.ID, "Ünïcode/Ordner", "")
	e.must(err)
	if e.mailbox(a.ID, "Ünïcode/Ordner").ID != m.ID {
		e.t.Error("UTF-8 name not found again")
	}
	e.wantErr(e.st.RenameMailbox(e.ctx, m.ID, "a//b"), store.ErrInvalidName, "RenameMailbox to bad name")
	e.wantErr(e.st.RenameMailbox(e.ctx, m.ID, "INBOX"), store.ErrExists, "RenameMailbox to INBOX")
}

func testUIDValidity(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	m, err := st.CreateMailbox(ctx, a.ID, "Box", "")
	e.must(err)
	r := e.deliver(a.ID, "Box", body("one"))
	if r.UIDValidity != m.UIDValidity {
		e.t.Errorf("Deliver UIDVALIDITY %d, mailbox %d", r.UIDValidity, m.UIDValidity)
	}
	_, _, err = st.StoreFlags(ctx, m.ID, []uint32{r.UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	_, err = st.Expunge(ctx, m.ID, []uint32{r.UID})
	e.must(err)
	if got := e.mailboxByID(m.ID).UIDValidity; got != m.UIDValidity {
		e.t.Errorf("UIDVALIDITY changed from %d to %d", m.UIDValidity, got)
	}
	prev := m
	for i := 0; i < 3; i++ {
		e.must(st.DeleteMailbox(ctx, prev.ID))
		n, err := st.CreateMailbox(ctx, a.ID, "Box", "")
		e.must(err)
		if n.ID == prev.ID || n.UIDValidity <= prev.UIDValidity {
			e.t.Errorf("recreated mailbox: ID %d UIDVALIDITY %d, before ID %d UIDVALIDITY %d",
				n.ID, n.UIDValidity, prev.ID, prev.UIDValidity)
		}
		if n.UIDNext != 1 || n.Messages != 0 {
			e.t.Errorf("recreated mailbox not empty: %+v", n)
		}
		v, err := st.Vanished(ctx, n.ID, 0)
		e.must(err)
		if len(v) != 0 {
			e.t.Errorf("recreated mailbox has tombstones %v", v)
		}
		prev = n
	}
}

func testMailboxDelete(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	m, err := st.CreateMailbox(ctx, a.ID, "Box", "")
	e.must(err)
	e.deliver(a.ID, "Box", body("one"))
	e.deliver(a.ID, "INBOX", body("two"))
	if e.mailboxByID(m.ID).Messages != 1 {
		e.t.Fatal("delivery to Box missing")
	}
	e.must(st.DeleteMailbox(ctx, m.ID))
	e.wantErr(st.DeleteMailbox(ctx, m.ID), store.ErrNotFound, "DeleteMailbox twice")
	_, err = st.Messages(ctx, m.ID, 1, false)
	e.wantErr(err, store.ErrNotFound, "Messages of deleted mailbox")
	_, err = st.Mailbox(ctx, a.ID, "Box")
	e.wantErr(err, store.ErrNotFound, "Mailbox after delete")
	if err := st.DeleteMailbox(ctx, e.mailbox(a.ID, "INBOX").ID); err == nil {
		e.t.Error("DeleteMailbox(INBOX) succeeded")
	}
	e.checkCounts(a.ID)
}

func testRename(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	for _, n := range []string{"a", "a/b", "a/b/c", "ab", "z"} {
		_, err := st.CreateMailbox(ctx, a.ID, n, "")
		e.must(err)
	}
	before := map[string]store.Mailbox{}
	for _, n := range []string{"a", "a/b", "a/b/c", "ab"} {
		before[n] = e.mailbox(a.ID, n)
	}
	r := e.deliver(a.ID, "a/b", body("child"))
	e.wantErr(st.RenameMailbox(ctx, before["a"].ID, "z"), store.ErrExists, "RenameMailbox to existing")
	if err := st.RenameMailbox(ctx, before["a"].ID, "a/b/x"); err == nil {
		e.t.Error("renaming a mailbox below itself succeeded")
	}
	e.must(st.RenameMailbox(ctx, before["a"].ID, "x/y"))
	for old, now := range map[string]string{"a": "x/y", "a/b": "x/y/b", "a/b/c": "x/y/b/c", "ab": "ab"} {
		m := e.mailbox(a.ID, now)
		if m.ID != before[old].ID || m.UIDValidity != before[old].UIDValidity {
			e.t.Errorf("%s -> %s: %+v, before %+v", old, now, m, before[old])
		}
	}
	for _, gone := range []string{"a", "a/b", "a/b/c"} {
		_, err := st.Mailbox(ctx, a.ID, gone)
		e.wantErr(err, store.ErrNotFound, "old name "+gone)
	}
	if got := e.content(r.MailboxID, r.UID); got != body("child") {
		e.t.Errorf("message after rename = %q", got)
	}
	e.wantErr(st.RenameMailbox(ctx, before["a"].ID+1000, "q"), store.ErrNotFound, "RenameMailbox(unknown)")
}

func testRenameInbox(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	inbox := e.mailbox(a.ID, "INBOX")
	child, err := st.CreateMailbox(ctx, a.ID, "INBOX/child", "")
	e.must(err)
	r1 := e.deliver(a.ID, "INBOX", body("one"), store.FlagSeen, "$Label1")
	r2 := e.deliver(a.ID, "INBOX", body("two"))
	old := e.messages(inbox.ID)
	e.must(st.RenameMailbox(ctx, inbox.ID, "Old Inbox"))

	in := e.mailbox(a.ID, "INBOX")
	if in.ID != inbox.ID || in.UIDValidity != inbox.UIDValidity || in.Messages != 0 || in.UIDNext < r2.UID+1 {
		e.t.Errorf("INBOX after rename = %+v, before %+v", in, inbox)
	}
	v, err := st.Vanished(ctx, inbox.ID, r2.ModSeq)
	e.must(err)
	if !slices.Equal(v, []uint32{r1.UID, r2.UID}) {
		e.t.Errorf("Vanished(INBOX) = %v, want %v", v, []uint32{r1.UID, r2.UID})
	}
	moved := e.mailbox(a.ID, "Old Inbox")
	msgs := e.messages(moved.ID)
	if len(msgs) != 2 {
		e.t.Fatalf("renamed mailbox has %d messages", len(msgs))
	}
	for i, m := range msgs {
		if !slices.Equal(m.Flags, old[i].Flags) || !m.InternalDate.Equal(old[i].InternalDate) || m.POP3UID != old[i].POP3UID {
			e.t.Errorf("moved message %+v, was %+v", m, old[i])
		}
	}
	if e.content(moved.ID, msgs[0].UID) != body("one") || e.content(moved.ID, msgs[1].UID) != body("two") {
		e.t.Error("moved message bytes differ")
	}
	if e.mailbox(a.ID, "INBOX/child").ID != child.ID {
		e.t.Error("INBOX/child was renamed with INBOX")
	}
	e.checkCounts(a.ID)
}

func testSubscribe(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	m, err := st.CreateMailbox(ctx, a.ID, "Box", "")
	e.must(err)
	e.must(st.SetSubscribed(ctx, m.ID, true))
	if !e.mailboxByID(m.ID).Subscribed {
		e.t.Error("not subscribed")
	}
	e.must(st.SetSubscribed(ctx, m.ID, false))
	if e.mailboxByID(m.ID).Subscribed {
		e.t.Error("still subscribed")
	}
	e.wantErr(st.SetSubscribed(ctx, m.ID+1000, true), store.ErrNotFound, "SetSubscribed(unknown)")
}
