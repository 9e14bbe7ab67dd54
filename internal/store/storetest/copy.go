package storetest

import (
	"bytes"
	"slices"
	"time"

	"pillarbox/internal/store"
)

func testCopy(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	dst, err := st.CreateMailbox(ctx, a.ID, "Dest", "")
	e.must(err)
	date := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	for i, fl := range [][]string{{store.FlagSeen, "$Label"}, nil, {store.FlagDeleted}} {
		_, err := st.Deliver(ctx, &store.Delivery{
			Blob:         bytes.NewReader([]byte(body(string(rune('a' + i))))),
			InternalDate: date.Add(time.Duration(i) * time.Hour),
			Local:        []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX", Flags: fl, Prefix: []byte("X-N: 1\r\n")}},
		})
		e.must(err)
	}
	src := e.mailbox(a.ID, "INBOX")
	srcMsgs := e.messages(src.ID)
	e.deliver(a.ID, "Dest", body("already"))
	pairs, err := st.Copy(ctx, src.ID, []uint32{3, 1, 42}, dst.ID)
	e.must(err)
	if !slices.Equal(pairs, []store.UIDPair{{Src: 1, Dst: 2}, {Src: 3, Dst: 3}}) {
		e.t.Fatalf("Copy pairs = %v", pairs)
	}
	for _, p := range pairs {
		s := srcMsgs[p.Src-1]
		d, err := st.Message(ctx, dst.ID, p.Dst)
		e.must(err)
		if !slices.Equal(d.Flags, s.Flags) || !d.InternalDate.Equal(s.InternalDate) || d.Size != s.Size ||
			d.POP3UID == s.POP3UID || !bytes.Equal(d.Structure, mustMessage(e, src.ID, p.Src).Structure) {
			e.t.Errorf("copy %+v of %+v", d, s)
		}
		if e.content(dst.ID, p.Dst) != e.content(src.ID, p.Src) {
			e.t.Errorf("copy of UID %d has other bytes", p.Src)
		}
	}
	// The source is untouched.
	if got := e.messages(src.ID); len(got) != 3 || e.mailboxByID(src.ID).HighestModSeq != src.HighestModSeq {
		e.t.Errorf("source after Copy: %d messages", len(got))
	}
	// Copy to the same mailbox works (new UIDs).
	pairs, err = st.Copy(ctx, src.ID, []uint32{2}, src.ID)
	e.must(err)
	if len(pairs) != 1 || pairs[0].Dst != 4 {
		e.t.Errorf("Copy to self = %v", pairs)
	}
	// Not across accounts, not into unknown mailboxes.
	b := e.account("other@example.com")
	_, err = st.Copy(ctx, src.ID, []uint32{1}, e.mailbox(b.ID, "INBOX").ID)
	if err == nil {
		e.t.Error("Copy across accounts succeeded")
	}
	_, err = st.Copy(ctx, src.ID, []uint32{1}, dst.ID+1000)
	e.wantErr(err, store.ErrNotFound, "Copy to unknown mailbox")
	e.checkCounts(a.ID)
	e.checkCounts(b.ID)
}

func mustMessage(e *env, mailboxID int64, uid uint32) store.Message {
	e.t.Helper()
	m, err := e.st.Message(e.ctx, mailboxID, uid)
	e.must(err)
	return m
}

func testMove(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	dst := e.mailbox(a.ID, "Archive")
	r1 := e.deliver(a.ID, "INBOX", body("one"), store.FlagFlagged)
	r2 := e.deliver(a.ID, "INBOX", body("two"))
	src := e.mailboxByID(r1.MailboxID)
	m1 := mustMessage(e, src.ID, r1.UID)
	used, _ := st.AccountByID(ctx, a.ID)

	pairs, err := st.Move(ctx, src.ID, []uint32{r1.UID}, dst.ID)
	e.must(err)
	if len(pairs) != 1 || pairs[0].Src != r1.UID || pairs[0].Dst != 1 {
		e.t.Fatalf("Move pairs = %v", pairs)
	}
	d := mustMessage(e, dst.ID, pairs[0].Dst)
	if d.POP3UID != m1.POP3UID || !slices.Equal(d.Flags, m1.Flags) || !d.InternalDate.Equal(m1.InternalDate) || d.Size != m1.Size {
		e.t.Errorf("moved %+v, was %+v", d, m1)
	}
	if e.content(dst.ID, 1) != body("one") {
		e.t.Error("moved message bytes differ")
	}
	if got := uidsOf(e.messages(src.ID)); !slices.Equal(got, []uint32{r2.UID}) {
		e.t.Errorf("source after Move = %v", got)
	}
	v, err := st.Vanished(ctx, src.ID, src.HighestModSeq)
	e.must(err)
	if !slices.Equal(v, []uint32{r1.UID}) {
		e.t.Errorf("Vanished after Move = %v", v)
	}
	if acc, _ := st.AccountByID(ctx, a.ID); acc.UsedBytes != used.UsedBytes {
		e.t.Errorf("Move changed UsedBytes %d -> %d", used.UsedBytes, acc.UsedBytes)
	}
	// Moving back gives yet another UID, same POP3 UID.
	pairs, err = st.Move(ctx, dst.ID, []uint32{1}, src.ID)
	e.must(err)
	if len(pairs) != 1 || pairs[0].Dst != r2.UID+1 || mustMessage(e, src.ID, pairs[0].Dst).POP3UID != m1.POP3UID {
		e.t.Errorf("Move back = %v", pairs)
	}
	// Move within one mailbox (odd, but must keep the counts exact).
	pairs, err = st.Move(ctx, src.ID, []uint32{r2.UID}, src.ID)
	e.must(err)
	if len(pairs) != 1 || pairs[0].Dst <= r2.UID+1 {
		e.t.Errorf("Move to self = %v", pairs)
	}
	e.checkCounts(a.ID)
}

func testQuota(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	msg := string(bytes.Repeat([]byte("x"), 600))
	e.must(st.SetQuota(ctx, a.ID, 1000))
	deliver := func(check bool) error {
		_, err := st.Deliver(ctx, &store.Delivery{
			Blob:  bytes.NewReader([]byte(msg)),
			Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX", CheckQuota: check}},
		})
		return err
	}
	e.must(deliver(true))
	e.wantErr(deliver(true), store.ErrOverQuota, "Deliver over quota")
	acc, _ := st.AccountByID(ctx, a.ID)
	if acc.UsedBytes != 600 || e.mailbox(a.ID, "INBOX").Messages != 1 {
		e.t.Errorf("after refused delivery: used %d", acc.UsedBytes)
	}
	// SMTP checks quota at RCPT time: without CheckQuota it is stored.
	e.must(deliver(false))
	acc, _ = st.AccountByID(ctx, a.ID)
	if acc.UsedBytes != 1200 {
		e.t.Errorf("UsedBytes = %d, want 1200", acc.UsedBytes)
	}
	// Copy adds bytes: refused over quota. Move does not.
	inbox, arch := e.mailbox(a.ID, "INBOX"), e.mailbox(a.ID, "Archive")
	_, err := st.Copy(ctx, inbox.ID, []uint32{1}, arch.ID)
	e.wantErr(err, store.ErrOverQuota, "Copy over quota")
	_, err = st.Move(ctx, inbox.ID, []uint32{1}, arch.ID)
	e.must(err)
	// Expunge frees space; exactly reaching the quota is allowed.
	_, err = st.Expunge(ctx, arch.ID, []uint32{1})
	e.must(err)
	if acc, _ = st.AccountByID(ctx, a.ID); acc.UsedBytes != 600 {
		e.t.Errorf("UsedBytes after expunge = %d, want 600", acc.UsedBytes)
	}
	e.wantErr(deliver(true), store.ErrOverQuota, "Deliver over quota")
	e.must(st.SetQuota(ctx, a.ID, 1200))
	e.must(deliver(true))
	e.must(st.SetQuota(ctx, a.ID, 0))
	e.must(deliver(true))
	e.checkCounts(a.ID)
}

func testPOP3UID(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	b := e.account("other@example.com")
	seen := map[string]bool{}
	record := func(m store.Message) {
		e.t.Helper()
		if m.POP3UID == "" || seen[m.POP3UID] {
			e.t.Fatalf("POP3UID %q empty or reused", m.POP3UID)
		}
		for _, c := range []byte(m.POP3UID) {
			if c < 0x21 || c > 0x7e {
				e.t.Fatalf("POP3UID %q has byte %#x", m.POP3UID, c)
			}
		}
		if len(m.POP3UID) > 70 { // RFC 1939 7: 1 to 70 characters
			e.t.Fatalf("POP3UID %q too long", m.POP3UID)
		}
		seen[m.POP3UID] = true
	}
	for i := 0; i < 5; i++ {
		e.deliver(a.ID, "INBOX", body("a"))
		e.deliver(b.ID, "INBOX", body("b"))
	}
	inbox := e.mailbox(a.ID, "INBOX")
	for _, id := range []int64{inbox.ID, e.mailbox(b.ID, "INBOX").ID} {
		for _, m := range e.messages(id) {
			record(m)
		}
	}
	m1 := mustMessage(e, inbox.ID, 1)
	_, _, err := st.StoreFlags(ctx, inbox.ID, []uint32{1}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	if got := mustMessage(e, inbox.ID, 1).POP3UID; got != m1.POP3UID {
		e.t.Errorf("POP3UID changed by StoreFlags: %q -> %q", m1.POP3UID, got)
	}
	// Expunged messages' POP3 UIDs are never given out again.
	_, err = st.Expunge(ctx, inbox.ID, []uint32{2, 3})
	e.must(err)
	for i := 0; i < 5; i++ {
		r := e.deliver(a.ID, "INBOX", body("later"))
		record(mustMessage(e, r.MailboxID, r.UID))
	}
	// A copy is a new message.
	pairs, err := st.Copy(ctx, inbox.ID, []uint32{1}, e.mailbox(a.ID, "Trash").ID)
	e.must(err)
	record(mustMessage(e, e.mailbox(a.ID, "Trash").ID, pairs[0].Dst))
}
