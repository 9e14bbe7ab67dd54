package storetest

import (
	"bytes"
	"fmt"
	"strings"

	"pillarbox/internal/store"
)

// DeliverBatch: all deliveries commit together, in order (UIDs follow the
// slice), with their own dates and flags; one bad delivery stores nothing.
func testDeliverBatch(e *env) {
	st, ctx := e.st, e.ctx
	a := e.account("user@example.com")
	e.deliver(a.ID, "INBOX", body("before"))
	var ds []*store.Delivery
	for i := 0; i < 40; i++ {
		mb := "INBOX"
		if i%3 == 0 {
			mb = "Archive"
		}
		blob := body(fmt.Sprintf("batch %d", i))
		if i == 7 { // one large message, to mix both blob kinds of a backend
			blob += strings.Repeat("large body line\r\n", 8000)
		}
		ds = append(ds, &store.Delivery{
			Blob:  bytes.NewReader([]byte(blob)),
			Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: mb, Flags: []string{store.FlagSeen}}},
		})
	}
	res, err := st.DeliverBatch(ctx, ds)
	e.must(err)
	if len(res) != len(ds) {
		e.t.Fatalf("DeliverBatch returned %d results for %d deliveries", len(res), len(ds))
	}
	last := map[int64]uint32{}
	for i, r := range res {
		lr := r.Local[0]
		if lr.UID <= last[lr.MailboxID] {
			e.t.Errorf("delivery %d: UID %d not after %d: order not kept", i, lr.UID, last[lr.MailboxID])
		}
		last[lr.MailboxID] = lr.UID
		if got, want := e.content(lr.MailboxID, lr.UID), fmt.Sprintf("batch %d", i); !strings.Contains(got, want) {
			e.t.Errorf("delivery %d stored %.40q", i, got)
		}
	}
	if m := e.mailbox(a.ID, "INBOX"); m.Messages != 1+26 || m.Unseen != 1 {
		e.t.Errorf("INBOX after batch = %+v", m)
	}
	e.checkCounts(a.ID)

	// All or nothing: the third delivery names an unknown account.
	bad := []*store.Delivery{
		{Blob: bytes.NewReader([]byte(body("ok 1"))), Local: []store.LocalRecipient{{AccountID: a.ID}}},
		{Blob: bytes.NewReader([]byte(body("ok 2"))), Local: []store.LocalRecipient{{AccountID: a.ID}}},
		{Blob: bytes.NewReader([]byte(body("bad"))), Local: []store.LocalRecipient{{AccountID: a.ID + 1000}}},
	}
	before := e.mailbox(a.ID, "INBOX")
	_, err = st.DeliverBatch(ctx, bad)
	e.wantErr(err, store.ErrNotFound, "DeliverBatch with an unknown account")
	if after := e.mailbox(a.ID, "INBOX"); after.Messages != before.Messages || after.UIDNext != before.UIDNext {
		e.t.Errorf("failed batch changed INBOX: %+v -> %+v", before, after)
	}
	if r, err := st.DeliverBatch(ctx, nil); err != nil || len(r) != 0 {
		e.t.Errorf("empty batch: %v, %v", r, err)
	}
	e.checkCounts(a.ID)
}
