package storetest

import (
	"bytes"
	"io"
	"slices"
	"time"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

func testDeliver(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	inbox := e.mailbox(a.ID, "INBOX")
	date := time.Date(2024, 2, 29, 13, 14, 15, 0, time.FixedZone("", -5*3600))
	prefix := []byte("Return-Path: <a@example.org>\r\nDelivered-To: user@example.com\r\n")
	blob := body("first")
	res, err := st.Deliver(ctx, &store.Delivery{
		Blob:         bytes.NewReader([]byte(blob)),
		InternalDate: date,
		Local:        []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX", Prefix: prefix, Flags: []string{store.FlagSeen}}},
	})
	e.must(err)
	if res.BlobID == "" || res.Size != int64(len(blob)) || res.Queue != nil || len(res.Local) != 1 {
		e.t.Fatalf("DeliveryResult = %+v", res)
	}
	lr := res.Local[0]
	if lr.MailboxID != inbox.ID || lr.UIDValidity != inbox.UIDValidity || lr.UID != 1 || lr.ModSeq <= inbox.HighestModSeq {
		e.t.Errorf("LocalResult = %+v, INBOX before %+v", lr, inbox)
	}
	m, err := st.Message(ctx, inbox.ID, lr.UID)
	e.must(err)
	if m.MailboxID != inbox.ID || m.UID != lr.UID || m.ModSeq != lr.ModSeq || !m.InternalDate.Equal(date) ||
		m.Size != int64(len(prefix)+len(blob)) || !slices.Equal(m.Flags, []string{store.FlagSeen}) || m.POP3UID == "" {
		e.t.Errorf("Message = %+v", m)
	}
	full := string(prefix) + blob
	if got := e.content(inbox.ID, lr.UID); got != full {
		e.t.Errorf("OpenMessage = %q, want %q", got, full)
	}
	// Structure is message.Parse over prefix+blob, marshalled.
	p, err := message.Parse(bytes.NewReader([]byte(full)), int64(len(full)))
	e.must(err)
	want, err := p.MarshalBinary()
	e.must(err)
	if !bytes.Equal(m.Structure, want) {
		e.t.Errorf("Structure differs from message.Parse: %d bytes vs %d", len(m.Structure), len(want))
	}
	after := e.mailbox(a.ID, "INBOX")
	if after.UIDNext != 2 || after.HighestModSeq != lr.ModSeq || after.Messages != 1 || after.Unseen != 0 ||
		after.Size != m.Size || after.UIDValidity != inbox.UIDValidity {
		e.t.Errorf("INBOX after Deliver = %+v", after)
	}
	if acc, _ := st.AccountByID(ctx, a.ID); acc.UsedBytes != m.Size {
		e.t.Errorf("UsedBytes = %d, want %d", acc.UsedBytes, m.Size)
	}
	// UIDs increase one by one; MODSEQs increase.
	prev := lr
	for i := 0; i < 5; i++ {
		r := e.deliver(a.ID, "INBOX", body("more"))
		if r.UID != prev.UID+1 || r.ModSeq <= prev.ModSeq {
			e.t.Errorf("delivery %d: %+v after %+v", i, r, prev)
		}
		prev = r
	}
	_, err = st.Message(ctx, inbox.ID, 99)
	e.wantErr(err, store.ErrNotFound, "Message(unknown UID)")
	_, err = st.OpenMessage(ctx, inbox.ID, 99)
	e.wantErr(err, store.ErrNotFound, "OpenMessage(unknown UID)")
	e.checkCounts(a.ID)
}

func testDeliverAllOrNothing(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	_, err := st.Deliver(ctx, &store.Delivery{
		Blob: bytes.NewReader([]byte(body("x"))),
		Local: []store.LocalRecipient{
			{AccountID: a.ID, Mailbox: "INBOX"},
			{AccountID: a.ID + 1000, Mailbox: "INBOX"},
		},
		Queue: &store.QueueItem{From: "a@example.com", Recipients: []store.QueueRecipient{{Address: "r@remote.example"}}},
	})
	e.wantErr(err, store.ErrNotFound, "Deliver to unknown account")
	if m := e.mailbox(a.ID, "INBOX"); m.Messages != 0 || m.UIDNext != 1 {
		e.t.Errorf("INBOX after failed delivery = %+v", m)
	}
	q, err := st.QueueItems(ctx)
	e.must(err)
	if len(q) != 0 {
		e.t.Errorf("queue after failed delivery = %+v", q)
	}
	// A later delivery is not disturbed.
	if r := e.deliver(a.ID, "INBOX", body("y")); r.UID != 1 {
		e.t.Errorf("UID after failed delivery = %d", r.UID)
	}
	e.checkCounts(a.ID)
}

func testDeliverCreatesMailbox(e *env) {
	a := e.account("user@example.com")
	r := e.deliver(a.ID, "Lists/golang", body("list"))
	m := e.mailbox(a.ID, "Lists/golang")
	if m.ID != r.MailboxID || m.Messages != 1 || r.UIDValidity != m.UIDValidity {
		e.t.Errorf("created mailbox %+v, result %+v", m, r)
	}
	_, err := e.st.Deliver(e.ctx, &store.Delivery{
		Blob:  bytes.NewReader([]byte(body("bad"))),
		Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "bad//name"}},
	})
	e.wantErr(err, store.ErrInvalidName, "Deliver to invalid mailbox name")
}

func testSharedBlob(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("a@example.com")
	b := e.account("b@example.com")
	blob := body("shared")
	pa, pb := []byte("Delivered-To: a@example.com\r\n"), []byte("Delivered-To: b@example.com\r\nX-Extra: 1\r\n")
	res, err := st.Deliver(ctx, &store.Delivery{
		Blob: bytes.NewReader([]byte(blob)),
		Local: []store.LocalRecipient{
			{AccountID: a.ID, Mailbox: "INBOX", Prefix: pa},
			{AccountID: b.ID, Mailbox: "INBOX", Prefix: pb},
			{AccountID: b.ID, Mailbox: "Archive", Prefix: pb, Flags: []string{store.FlagSeen}},
		},
	})
	e.must(err)
	if len(res.Local) != 3 {
		e.t.Fatalf("%d local results", len(res.Local))
	}
	for i, want := range []string{string(pa) + blob, string(pb) + blob, string(pb) + blob} {
		lr := res.Local[i]
		if got := e.content(lr.MailboxID, lr.UID); got != want {
			e.t.Errorf("recipient %d: %q, want %q", i, got, want)
		}
		m, err := st.Message(ctx, lr.MailboxID, lr.UID)
		e.must(err)
		if m.Size != int64(len(want)) {
			e.t.Errorf("recipient %d: Size %d, want %d", i, m.Size, len(want))
		}
	}
	r, err := st.OpenBlob(ctx, res.BlobID)
	e.must(err)
	got, err := io.ReadAll(r)
	r.Close()
	e.must(err)
	if string(got) != blob || r.Size() != int64(len(blob)) {
		e.t.Errorf("OpenBlob = %q", got)
	}
	e.checkCounts(a.ID)
	e.checkCounts(b.ID)
}

func testReader(e *env) {
	a := e.account("user@example.com")
	prefix := "Delivered-To: user@example.com\r\n"
	blob := body("reader")
	res, err := e.st.Deliver(e.ctx, &store.Delivery{
		Blob:  bytes.NewReader([]byte(blob)),
		Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte(prefix)}},
	})
	e.must(err)
	full := prefix + blob
	r, err := e.st.OpenMessage(e.ctx, res.Local[0].MailboxID, res.Local[0].UID)
	e.must(err)
	defer r.Close()
	if r.Size() != int64(len(full)) {
		e.t.Fatalf("Size = %d, want %d", r.Size(), len(full))
	}
	for _, c := range []struct{ off, n int }{{0, 5}, {len(prefix) - 3, 10}, {len(prefix), 7}, {len(full) - 4, 4}, {0, len(full)}} {
		buf := make([]byte, c.n)
		n, err := r.ReadAt(buf, int64(c.off))
		if n != c.n || (err != nil && err != io.EOF) || string(buf) != full[c.off:c.off+c.n] {
			e.t.Errorf("ReadAt(%d, %d) = %d %v %q", c.off, c.n, n, err, buf[:n])
		}
	}
	buf := make([]byte, 10)
	n, err := r.ReadAt(buf, int64(len(full)-4))
	if n != 4 || err != io.EOF || string(buf[:n]) != full[len(full)-4:] {
		e.t.Errorf("ReadAt past end = %d %v", n, err)
	}
	if n, err := r.ReadAt(buf, int64(len(full))); n != 0 || err != io.EOF {
		e.t.Errorf("ReadAt(size) = %d %v", n, err)
	}
	all, err := io.ReadAll(r)
	e.must(err)
	if string(all) != full {
		e.t.Errorf("Read = %q", all)
	}
}

func testMessages(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	var rs []store.LocalResult
	for i := 0; i < 4; i++ {
		rs = append(rs, e.deliver(a.ID, "INBOX", body("m"+string(rune('a'+i)))))
	}
	mb := rs[0].MailboxID
	all := e.messages(mb)
	if !slices.Equal(uidsOf(all), []uint32{1, 2, 3, 4}) {
		e.t.Fatalf("Messages = %v", uidsOf(all))
	}
	from3, err := st.Messages(ctx, mb, 3, true)
	e.must(err)
	if !slices.Equal(uidsOf(from3), []uint32{3, 4}) {
		e.t.Errorf("Messages(from 3) = %v", uidsOf(from3))
	}
	for i, m := range all {
		if m.Structure != nil {
			e.t.Errorf("Messages without structure returned %d structure bytes", len(m.Structure))
		}
		one, err := st.Message(ctx, mb, m.UID)
		e.must(err)
		if one.ModSeq != m.ModSeq || one.POP3UID != m.POP3UID || one.Size != m.Size || m.ModSeq != rs[i].ModSeq {
			e.t.Errorf("Message(%d) = %+v, listed %+v", m.UID, one, m)
		}
		if i >= 2 && !bytes.Equal(from3[i-2].Structure, one.Structure) {
			e.t.Errorf("UID %d: structure differs between Messages and Message", m.UID)
		}
	}
	_, err = st.Messages(ctx, mb+1000, 1, false)
	e.wantErr(err, store.ErrNotFound, "Messages(unknown mailbox)")
}

func testFlags(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	r1 := e.deliver(a.ID, "INBOX", body("one"))
	r2 := e.deliver(a.ID, "INBOX", body("two"), store.FlagSeen)
	mb := r1.MailboxID
	before := e.mailboxByID(mb)

	up, failed, err := st.StoreFlags(ctx, mb, []uint32{r1.UID, r2.UID, 99}, store.FlagAdd,
		[]string{`\seen`, `\FLAGGED`, "$Forwarded", `\Seen`}, 0)
	e.must(err)
	want := []string{"$Forwarded", store.FlagFlagged, store.FlagSeen}
	if len(failed) != 0 || len(up) != 2 || !slices.Equal(up[0].Flags, want) || !slices.Equal(up[1].Flags, want) {
		e.t.Fatalf("StoreFlags(+) = %+v failed %v, want flags %v", up, failed, want)
	}
	if up[0].UID != r1.UID || up[0].ModSeq <= before.HighestModSeq || up[1].ModSeq <= before.HighestModSeq {
		e.t.Errorf("updates %+v, HIGHESTMODSEQ before %d", up, before.HighestModSeq)
	}
	mid := e.mailboxByID(mb)
	if mid.HighestModSeq < max(up[0].ModSeq, up[1].ModSeq) || mid.Unseen != 0 {
		e.t.Errorf("mailbox after +FLAGS = %+v", mid)
	}
	m1, err := st.Message(ctx, mb, r1.UID)
	e.must(err)
	if !slices.Equal(m1.Flags, want) || m1.ModSeq != up[0].ModSeq {
		e.t.Errorf("Message after +FLAGS = %+v", m1)
	}

	// No change: no update, MODSEQ and HIGHESTMODSEQ stay.
	up, _, err = st.StoreFlags(ctx, mb, []uint32{r1.UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	if len(up) != 0 || e.mailboxByID(mb).HighestModSeq != mid.HighestModSeq {
		e.t.Errorf("no-op StoreFlags: %+v, HIGHESTMODSEQ %d -> %d", up, mid.HighestModSeq, e.mailboxByID(mb).HighestModSeq)
	}
	if m, _ := st.Message(ctx, mb, r1.UID); m.ModSeq != m1.ModSeq {
		e.t.Errorf("no-op StoreFlags changed MODSEQ %d -> %d", m1.ModSeq, m.ModSeq)
	}

	up, _, err = st.StoreFlags(ctx, mb, []uint32{r1.UID}, store.FlagRemove, []string{`\SEEN`, "$forwarded"}, 0)
	e.must(err)
	if len(up) != 1 || !slices.Equal(up[0].Flags, []string{store.FlagFlagged}) || up[0].ModSeq <= mid.HighestModSeq {
		e.t.Errorf("StoreFlags(-) = %+v", up)
	}
	up, _, err = st.StoreFlags(ctx, mb, []uint32{r2.UID}, store.FlagReplace, []string{store.FlagDeleted, "Junk"}, 0)
	e.must(err)
	if len(up) != 1 || !slices.Equal(up[0].Flags, []string{"Junk", store.FlagDeleted}) {
		e.t.Errorf("StoreFlags(=) = %+v", up)
	}
	if m := e.mailboxByID(mb); m.Unseen != 2 || m.Deleted != 1 {
		e.t.Errorf("counts after flag changes = %+v", m)
	}
	up, _, err = st.StoreFlags(ctx, mb, []uint32{r2.UID}, store.FlagReplace, nil, 0)
	e.must(err)
	if len(up) != 1 || len(up[0].Flags) != 0 {
		e.t.Errorf("StoreFlags(= ()) = %+v", up)
	}
	for _, bad := range [][]string{{"two words"}, {""}, {`\Bogus`}, {"a(b"}} {
		_, _, err := st.StoreFlags(ctx, mb, []uint32{r1.UID}, store.FlagAdd, bad, 0)
		e.wantErr(err, store.ErrInvalidName, "StoreFlags with bad flag")
	}
	_, _, err = st.StoreFlags(ctx, mb+1000, []uint32{1}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.wantErr(err, store.ErrNotFound, "StoreFlags(unknown mailbox)")
	e.checkCounts(a.ID)
}

// testUnchangedSince: RFC 7162 3.1.3 conditional STORE.
func testUnchangedSince(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	r1 := e.deliver(a.ID, "INBOX", body("one"))
	r2 := e.deliver(a.ID, "INBOX", body("two"))
	r3 := e.deliver(a.ID, "INBOX", body("three"))
	mb := r1.MailboxID
	// r2 changes after r3 was delivered.
	up, _, err := st.StoreFlags(ctx, mb, []uint32{r2.UID}, store.FlagAdd, []string{"$Seen2"}, 0)
	e.must(err)
	bump := up[0].ModSeq
	up, failed, err := st.StoreFlags(ctx, mb, []uint32{r1.UID, r2.UID, r3.UID}, store.FlagAdd, []string{store.FlagFlagged}, r3.ModSeq)
	e.must(err)
	if !slices.Equal(failed, []uint32{r2.UID}) || len(up) != 2 || up[0].UID != r1.UID || up[1].UID != r3.UID {
		e.t.Errorf("UNCHANGEDSINCE %d: updated %+v failed %v", r3.ModSeq, up, failed)
	}
	m2, err := st.Message(ctx, mb, r2.UID)
	e.must(err)
	if slices.Contains(m2.Flags, store.FlagFlagged) || m2.ModSeq != bump {
		e.t.Errorf("failed message was changed: %+v", m2)
	}
	// UNCHANGEDSINCE equal to the current MODSEQ passes.
	up, failed, err = st.StoreFlags(ctx, mb, []uint32{r2.UID}, store.FlagAdd, []string{store.FlagFlagged}, bump)
	e.must(err)
	if len(failed) != 0 || len(up) != 1 {
		e.t.Errorf("UNCHANGEDSINCE = MODSEQ: updated %+v failed %v", up, failed)
	}
}

func testExpunge(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	var rs []store.LocalResult
	for i := 0; i < 5; i++ {
		rs = append(rs, e.deliver(a.ID, "INBOX", body("x")))
	}
	mb := rs[0].MailboxID
	before := e.mailboxByID(mb)
	used, _ := st.AccountByID(ctx, a.ID)
	gone, err := st.Expunge(ctx, mb, []uint32{2, 4, 99})
	e.must(err)
	if !slices.Equal(gone, []uint32{2, 4}) {
		e.t.Errorf("Expunge = %v", gone)
	}
	if got := uidsOf(e.messages(mb)); !slices.Equal(got, []uint32{1, 3, 5}) {
		e.t.Errorf("Messages after expunge = %v", got)
	}
	after := e.mailboxByID(mb)
	if after.HighestModSeq <= before.HighestModSeq || after.UIDNext != before.UIDNext || after.Messages != 3 ||
		after.UIDValidity != before.UIDValidity {
		e.t.Errorf("mailbox after expunge = %+v, before %+v", after, before)
	}
	for _, c := range []struct {
		since uint64
		want  []uint32
	}{{0, []uint32{2, 4}}, {before.HighestModSeq, []uint32{2, 4}}, {after.HighestModSeq, nil}} {
		v, err := st.Vanished(ctx, mb, c.since)
		e.must(err)
		if !slices.Equal(v, c.want) {
			e.t.Errorf("Vanished(%d) = %v, want %v", c.since, v, c.want)
		}
	}
	acc, _ := st.AccountByID(ctx, a.ID)
	if acc.UsedBytes >= used.UsedBytes {
		e.t.Errorf("UsedBytes %d after expunge, %d before", acc.UsedBytes, used.UsedBytes)
	}
	// UIDs are not reused; the next one continues after the highest ever.
	if r := e.deliver(a.ID, "INBOX", body("y")); r.UID != 6 {
		e.t.Errorf("UID after expunge = %d, want 6", r.UID)
	}
	gone, err = st.Expunge(ctx, mb, []uint32{2})
	e.must(err)
	if len(gone) != 0 {
		e.t.Errorf("second Expunge(2) = %v", gone)
	}
	_, err = st.Expunge(ctx, mb+1000, []uint32{1})
	e.wantErr(err, store.ErrNotFound, "Expunge(unknown mailbox)")
	_, err = st.Vanished(ctx, mb+1000, 0)
	e.wantErr(err, store.ErrNotFound, "Vanished(unknown mailbox)")
	e.checkCounts(a.ID)
}

func testChangedSince(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	for i := 0; i < 4; i++ {
		e.deliver(a.ID, "INBOX", body("x"))
	}
	mb := e.mailbox(a.ID, "INBOX")
	c, err := st.ChangedSince(ctx, mb.ID, mb.HighestModSeq)
	e.must(err)
	if len(c) != 0 {
		e.t.Errorf("ChangedSince(HIGHESTMODSEQ) = %v", uidsOf(c))
	}
	_, _, err = st.StoreFlags(ctx, mb.ID, []uint32{3}, store.FlagAdd, []string{store.FlagAnswered}, 0)
	e.must(err)
	e.deliver(a.ID, "INBOX", body("new"))
	_, err = st.Expunge(ctx, mb.ID, []uint32{1})
	e.must(err)
	c, err = st.ChangedSince(ctx, mb.ID, mb.HighestModSeq)
	e.must(err)
	if !slices.Equal(uidsOf(c), []uint32{3, 5}) {
		e.t.Errorf("ChangedSince = %v, want [3 5]", uidsOf(c))
	}
	all, err := st.ChangedSince(ctx, mb.ID, 0)
	e.must(err)
	if len(all) != 4 {
		e.t.Errorf("ChangedSince(0) = %v", uidsOf(all))
	}
	_, err = st.ChangedSince(ctx, mb.ID+1000, 0)
	e.wantErr(err, store.ErrNotFound, "ChangedSince(unknown mailbox)")
}

// testModSeqMonotonic: every change in a mailbox gets a MODSEQ larger
// than every earlier one, and UIDVALIDITY never moves.
func testModSeqMonotonic(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	mb := e.mailbox(a.ID, "INBOX")
	other, err := st.CreateMailbox(ctx, a.ID, "Other", "")
	e.must(err)
	last := mb.HighestModSeq
	seen := map[uint64]bool{}
	step := func(what string, modseqs ...uint64) {
		e.t.Helper()
		cur := e.mailboxByID(mb.ID)
		if cur.HighestModSeq <= last || cur.UIDValidity != mb.UIDValidity {
			e.t.Fatalf("%s: HIGHESTMODSEQ %d after %d, UIDVALIDITY %d (was %d)", what, cur.HighestModSeq, last, cur.UIDValidity, mb.UIDValidity)
		}
		for _, m := range modseqs {
			if m <= last || m > cur.HighestModSeq {
				e.t.Fatalf("%s: MODSEQ %d outside (%d, %d]", what, m, last, cur.HighestModSeq)
			}
			seen[m] = true
		}
		last = cur.HighestModSeq
	}
	r1 := e.deliver(a.ID, "INBOX", body("1"))
	step("deliver", r1.ModSeq)
	r2 := e.deliver(a.ID, "INBOX", body("2"))
	step("deliver", r2.ModSeq)
	up, _, err := st.StoreFlags(ctx, mb.ID, []uint32{r1.UID, r2.UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	e.must(err)
	step("flags", up[0].ModSeq, up[1].ModSeq)
	pairs, err := st.Copy(ctx, other.ID, nil, mb.ID)
	e.must(err)
	if len(pairs) != 0 {
		e.t.Errorf("empty Copy = %v", pairs)
	}
	o := e.deliver(a.ID, "Other", body("o"))
	pairs, err = st.Copy(ctx, other.ID, []uint32{o.UID}, mb.ID)
	e.must(err)
	m, err := st.Message(ctx, mb.ID, pairs[0].Dst)
	e.must(err)
	step("copy in", m.ModSeq)
	_, err = st.Move(ctx, mb.ID, []uint32{r1.UID}, other.ID)
	e.must(err)
	step("move out")
	_, err = st.Expunge(ctx, mb.ID, []uint32{r2.UID})
	e.must(err)
	step("expunge")
	v, err := st.Vanished(ctx, mb.ID, 0)
	e.must(err)
	if !slices.Equal(v, []uint32{r1.UID, r2.UID}) {
		e.t.Errorf("Vanished = %v", v)
	}
}
