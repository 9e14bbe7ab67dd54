package storetest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

func testQueue(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	blob := body("outbound")
	in := &store.QueueItem{
		From: "user@example.com", Ret: "HDRS", EnvID: "env-1", SMTPUTF8: true, Body: "8BITMIME", RequireTLS: true, AccountID: a.ID,
		Recipients: []store.QueueRecipient{
			{Address: "r1@remote.example", ORcpt: "rfc822;r1@remote.example", Notify: "FAILURE,DELAY"},
			{Address: "r2@other.example", Notify: "NEVER"},
		},
	}
	res, err := st.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(blob)), Queue: in})
	e.must(err)
	q := res.Queue
	if q == nil || q.ID == "" || q.BlobID != res.BlobID || q.Size != int64(len(blob)) || q.CreatedAt.IsZero() {
		e.t.Fatalf("stored queue item = %+v, result %+v", q, res)
	}
	for _, c := range []byte(q.ID) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			e.t.Errorf("queue ID %q is not URL-safe", q.ID)
			break
		}
	}
	got, err := st.QueueItem(ctx, q.ID)
	e.must(err)
	if got.From != in.From || got.Ret != "HDRS" || got.EnvID != "env-1" || !got.SMTPUTF8 || got.Body != "8BITMIME" ||
		!got.RequireTLS || got.Held || got.AccountID != a.ID || got.BlobID != q.BlobID || got.Size != q.Size ||
		!got.CreatedAt.Equal(q.CreatedAt) || len(got.Recipients) != 2 {
		e.t.Fatalf("QueueItem = %+v, stored %+v", got, q)
	}
	for i, r := range got.Recipients {
		w := in.Recipients[i]
		if r.Address != w.Address || r.ORcpt != w.ORcpt || r.Notify != w.Notify || r.State != store.RcptPending || r.Attempts != 0 {
			e.t.Errorf("recipient %d = %+v", i, r)
		}
	}
	res2, err := st.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(body("second"))), Queue: &store.QueueItem{
		From: "", Recipients: []store.QueueRecipient{{Address: "x@remote.example"}}}})
	e.must(err)
	all, err := st.QueueItems(ctx)
	e.must(err)
	if len(all) != 2 || all[0].ID == all[1].ID || !slices.ContainsFunc(all, func(x store.QueueItem) bool { return x.ID == res2.Queue.ID }) {
		e.t.Errorf("QueueItems = %+v", all)
	}

	// Blob of a queue item.
	r, err := st.OpenBlob(ctx, q.BlobID)
	e.must(err)
	b, err := io.ReadAll(r)
	r.Close()
	e.must(err)
	if string(b) != blob {
		e.t.Errorf("OpenBlob = %q", b)
	}

	testQueueState(e, q.ID)

	e.must(st.DeleteQueueItem(ctx, q.ID))
	e.wantErr(st.DeleteQueueItem(ctx, q.ID), store.ErrNotFound, "DeleteQueueItem twice")
	_, err = st.QueueItem(ctx, q.ID)
	e.wantErr(err, store.ErrNotFound, "QueueItem after delete")
	_, err = st.OpenBlob(ctx, q.BlobID)
	e.wantErr(err, store.ErrNotFound, "OpenBlob after its last reference went")
	_, err = st.OpenBlob(ctx, "../../meta.db")
	e.wantErr(err, store.ErrNotFound, "OpenBlob(bad id)")
	all, _ = st.QueueItems(ctx)
	if len(all) != 1 {
		e.t.Errorf("QueueItems after delete = %d", len(all))
	}
}

// testQueueState: recipient state updates and holding.
func testQueueState(e *env, id string) {
	st, ctx := e.st, e.ctx
	q := store.QueueItem{ID: id}
	// Recipient state.
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e.must(st.UpdateQueueRecipients(ctx, q.ID, []store.QueueRecipient{
		{Address: "r2@other.example", State: store.RcptFailed, Attempts: 3, NextAttempt: when, LastError: "550 5.1.1 no such user"},
	}))
	got, err := st.QueueItem(ctx, q.ID)
	e.must(err)
	r1, r2 := got.Recipients[0], got.Recipients[1]
	if r1.State != store.RcptPending || r2.State != store.RcptFailed || r2.Attempts != 3 || !r2.NextAttempt.Equal(when) ||
		r2.LastError != "550 5.1.1 no such user" || r2.Notify != "NEVER" {
		e.t.Errorf("after UpdateQueueRecipients: %+v %+v", r1, r2)
	}
	e.must(st.UpdateQueueRecipients(ctx, q.ID, []store.QueueRecipient{{Address: "r1@remote.example", State: store.RcptDelivered, Attempts: 1}}))
	got, _ = st.QueueItem(ctx, q.ID)
	if got.Recipients[0].State != store.RcptDelivered || got.Recipients[1].State != store.RcptFailed {
		e.t.Errorf("second update: %+v", got.Recipients)
	}
	e.wantErr(st.UpdateQueueRecipients(ctx, "nope", []store.QueueRecipient{{Address: "r1@remote.example"}}), store.ErrNotFound, "UpdateQueueRecipients(unknown)")

	e.must(st.SetQueueHeld(ctx, q.ID, true))
	if got, _ := st.QueueItem(ctx, q.ID); !got.Held {
		e.t.Error("not held")
	}
	e.must(st.SetQueueHeld(ctx, q.ID, false))
	if got, _ := st.QueueItem(ctx, q.ID); got.Held {
		e.t.Error("still held")
	}
	e.wantErr(st.SetQueueHeld(ctx, "nope", true), store.ErrNotFound, "SetQueueHeld(unknown)")

	testQueueRetry(e, q.ID, when)
}

// testQueueRetry: the DSN bookkeeping fields, RetryQueue and the queue
// generation.
func testQueueRetry(e *env, id string, when time.Time) {
	st, ctx := e.st, e.ctx
	w, _ := st.(store.QueueWatcher)
	gen := func() uint64 {
		if w == nil {
			return 0
		}
		g, err := w.QueueGeneration()
		e.must(err)
		return g
	}
	g0 := gen()
	e.must(st.UpdateQueueRecipients(ctx, id, []store.QueueRecipient{{Address: "r1@remote.example",
		State: store.RcptPending, Attempts: 2, NextAttempt: when, LastError: "451 4.3.0 later",
		RemoteMTA: "mx1.remote.example", DelayNotified: true}}))
	got, err := st.QueueItem(ctx, id)
	e.must(err)
	if r := got.Recipients[0]; r.RemoteMTA != "mx1.remote.example" || !r.DelayNotified || !r.NextAttempt.Equal(when) {
		e.t.Errorf("RemoteMTA/DelayNotified not kept: %+v", r)
	}
	if w != nil && gen() != g0 {
		e.t.Error("UpdateQueueRecipients moved the queue generation")
	}
	n, err := st.RetryQueue(ctx, id)
	e.must(err)
	got, _ = st.QueueItem(ctx, id)
	if r := got.Recipients[0]; n != 1 || !r.NextAttempt.IsZero() || r.Attempts != 2 || !r.DelayNotified {
		e.t.Errorf("RetryQueue(%s) = %d; recipient %+v", id, n, r)
	}
	if r := got.Recipients[1]; r.State != store.RcptFailed || !r.NextAttempt.Equal(when) {
		e.t.Errorf("RetryQueue touched a failed recipient: %+v", r)
	}
	if w != nil && gen() == g0 {
		e.t.Error("RetryQueue did not move the queue generation")
	}
	g1 := gen()
	e.must(st.SetQueueHeld(ctx, id, false))
	if w != nil && gen() == g1 {
		e.t.Error("SetQueueHeld did not move the queue generation")
	}
	_, err = st.RetryQueue(ctx, "nope")
	e.wantErr(err, store.ErrNotFound, "RetryQueue(unknown)")
	if n, err := st.RetryQueue(ctx, ""); err != nil || n < 1 {
		e.t.Errorf("RetryQueue(all) = %d, %v", n, err)
	}
}

// testBlobRefs: a blob shared by messages and a queue item lives until its
// last reference goes.
func testBlobRefs(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("a@example.com")
	b := e.account("b@example.com")
	box, err := st.CreateMailbox(ctx, b.ID, "Box", "")
	e.must(err)
	res, err := st.Deliver(ctx, &store.Delivery{
		Blob: bytes.NewReader([]byte(body("shared"))),
		Local: []store.LocalRecipient{
			{AccountID: a.ID, Mailbox: "INBOX"},
			{AccountID: b.ID, Mailbox: "Box"},
		},
		Queue: &store.QueueItem{Recipients: []store.QueueRecipient{{Address: "c@remote.example"}}},
	})
	e.must(err)
	blobOK := func(want bool, when string) {
		e.t.Helper()
		r, err := st.OpenBlob(ctx, res.BlobID)
		if err == nil {
			r.Close()
		}
		if want && err != nil || !want && err != store.ErrNotFound {
			e.t.Errorf("%s: OpenBlob err = %v", when, err)
		}
	}
	la, lb := res.Local[0], res.Local[1]
	// A copy is one more reference.
	pairs, err := st.Copy(ctx, la.MailboxID, []uint32{la.UID}, e.mailbox(a.ID, "Archive").ID)
	e.must(err)
	_, err = st.Expunge(ctx, la.MailboxID, []uint32{la.UID})
	e.must(err)
	blobOK(true, "after expunging one message")
	e.must(st.DeleteQueueItem(ctx, res.Queue.ID))
	blobOK(true, "after deleting the queue item")
	e.must(st.DeleteMailbox(ctx, box.ID))
	blobOK(true, "after deleting b's mailbox")
	if e.content(e.mailbox(a.ID, "Archive").ID, pairs[0].Dst) != body("shared") {
		e.t.Error("copy unreadable")
	}
	_ = lb
	e.must(st.DeleteAccount(ctx, a.Email))
	blobOK(false, "after the last reference went")
}

// testSpool: a Spooler's spool file is adopted by Deliver; the caller's
// close and remove afterwards are harmless.
func testSpool(e *env) {
	sp, ok := e.st.(store.Spooler)
	if !ok {
		e.t.Skip("backend is not a store.Spooler")
	}
	a := e.account("user@example.com")
	for i, tag := range []string{"spooled-1", "spooled-2"} {
		f, err := sp.CreateSpool()
		e.must(err)
		_, err = f.WriteString(body(tag))
		e.must(err)
		if i == 1 {
			_, err = f.Seek(3, io.SeekStart) // the offset does not matter
			e.must(err)
		}
		res, err := e.st.Deliver(e.ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte("X-Spool: 1\r\n")}}})
		e.must(err)
		f.Close()
		os.Remove(f.Name())
		if got := e.content(res.Local[0].MailboxID, res.Local[0].UID); got != "X-Spool: 1\r\n"+body(tag) {
			e.t.Errorf("spooled message %d = %q", i, got)
		}
	}
	e.checkCounts(a.ID)
}

// bigBody returns a message of about n bytes.
func bigBody(tag string, n int) string {
	var b bytes.Buffer
	b.WriteString(body(tag))
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s line %d: the quick brown fox jumps over the lazy dog\r\n", tag, i)
	}
	return b.String()
}

// testLargeMessages: sizes around and far above anything a backend may
// keep in memory or inline, from a reader and from a spool file.
func testLargeMessages(e *env) {
	a := e.account("user@example.com")
	sp, spooler := e.st.(store.Spooler)
	for _, n := range []int{64<<10 - 100, 64<<10 + 100, 200 << 10, 3 << 20} {
		for _, spooled := range []bool{false, true} {
			if spooled && !spooler {
				continue
			}
			tag := fmt.Sprintf("big%d-%v", n, spooled)
			msg := bigBody(tag, n)
			var blob io.Reader = strings.NewReader(msg)
			if spooled {
				f, err := sp.CreateSpool()
				e.must(err)
				defer os.Remove(f.Name())
				defer f.Close()
				_, err = f.WriteString(msg)
				e.must(err)
				blob = f
			}
			prefix := "Delivered-To: user@example.com\r\n"
			res, err := e.st.Deliver(e.ctx, &store.Delivery{Blob: blob, Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte(prefix)}}})
			e.must(err)
			lr := res.Local[0]
			if res.Size != int64(len(msg)) {
				e.t.Errorf("%s: blob size %d, want %d", tag, res.Size, len(msg))
			}
			full := prefix + msg
			if got := e.content(lr.MailboxID, lr.UID); got != full {
				e.t.Errorf("%s: content differs (%d bytes, want %d)", tag, len(got), len(full))
			}
			m := mustMessage(e, lr.MailboxID, lr.UID)
			p, err := message.Parse(strings.NewReader(full), int64(len(full)))
			e.must(err)
			want, err := p.MarshalBinary()
			e.must(err)
			if m.Size != int64(len(full)) || !bytes.Equal(m.Structure, want) {
				e.t.Errorf("%s: Size %d, structure equal %v", tag, m.Size, bytes.Equal(m.Structure, want))
			}
		}
	}
	e.checkCounts(a.ID)
}
