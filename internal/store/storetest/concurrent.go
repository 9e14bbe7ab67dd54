package storetest

import (
	"bytes"
	"fmt"
	"sync"

	"pillarbox/internal/store"
)

// testConcurrentDeliver: many goroutines deliver at once; every delivery
// is stored exactly once with distinct UIDs, MODSEQs and POP3 UIDs.
func testConcurrentDeliver(e *env) {
	const workers, each = 20, 15
	a := e.account("user@example.com")
	b := e.account("other@example.com")
	type result struct {
		tag string
		res store.DeliveryResult
	}
	results := make(chan result, workers*each)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				tag := fmt.Sprintf("w%d-m%d", w, i)
				res, err := e.st.Deliver(e.ctx, &store.Delivery{
					Blob: bytes.NewReader([]byte(body(tag))),
					Local: []store.LocalRecipient{
						{AccountID: a.ID, Mailbox: "INBOX"},
						{AccountID: b.ID, Mailbox: "INBOX", Prefix: []byte("X-Tag: " + tag + "\r\n")},
					},
				})
				if err != nil {
					errs <- err
					return
				}
				results <- result{tag, res}
			}
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	uids := map[uint32]string{}
	modseqs := map[uint64]bool{}
	for r := range results {
		la, lb := r.res.Local[0], r.res.Local[1]
		if prev, dup := uids[la.UID]; dup {
			e.t.Fatalf("UID %d given to %s and %s", la.UID, prev, r.tag)
		}
		uids[la.UID] = r.tag
		if modseqs[la.ModSeq] {
			e.t.Fatalf("MODSEQ %d given twice", la.ModSeq)
		}
		modseqs[la.ModSeq] = true
		if got := e.content(la.MailboxID, la.UID); got != body(r.tag) {
			e.t.Fatalf("%s: stored %q", r.tag, got)
		}
		if got := e.content(lb.MailboxID, lb.UID); got != "X-Tag: "+r.tag+"\r\n"+body(r.tag) {
			e.t.Fatalf("%s: second recipient has %q", r.tag, got)
		}
	}
	if len(uids) != workers*each {
		e.t.Fatalf("%d deliveries acknowledged, want %d", len(uids), workers*each)
	}
	inbox := e.mailbox(a.ID, "INBOX")
	msgs := e.messages(inbox.ID)
	pop := map[string]bool{}
	for i, m := range msgs {
		if m.UID != uint32(i+1) {
			e.t.Fatalf("UIDs not dense from 1: %d at %d", m.UID, i)
		}
		if pop[m.POP3UID] {
			e.t.Fatalf("POP3UID %q twice", m.POP3UID)
		}
		pop[m.POP3UID] = true
	}
	if len(msgs) != workers*each || inbox.UIDNext != uint32(workers*each+1) {
		e.t.Errorf("INBOX has %d messages, UIDNEXT %d", len(msgs), inbox.UIDNext)
	}
	e.checkCounts(a.ID)
	e.checkCounts(b.ID)
}

// testConcurrentMixed: deliveries, flag changes and expunges from several
// goroutines keep the counts exact.
func testConcurrentMixed(e *env) {
	a := e.account("user@example.com")
	for i := 0; i < 20; i++ {
		e.deliver(a.ID, "INBOX", body("seed"))
	}
	inbox := e.mailbox(a.ID, "INBOX")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	run := func(fn func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := 0; w < 3; w++ {
		run(func(i int) error {
			_, err := e.st.Deliver(e.ctx, &store.Delivery{Blob: bytes.NewReader([]byte(body("more"))),
				Local: []store.LocalRecipient{{AccountID: a.ID, Mailbox: "INBOX"}}})
			return err
		})
	}
	run(func(i int) error {
		_, _, err := e.st.StoreFlags(e.ctx, inbox.ID, []uint32{uint32(i + 1), uint32(i + 30)}, store.FlagAdd, []string{store.FlagSeen, store.FlagDeleted}, 0)
		return err
	})
	run(func(i int) error {
		_, err := e.st.Expunge(e.ctx, inbox.ID, []uint32{uint32(2*i + 1)})
		return err
	})
	run(func(i int) error {
		_, err := e.st.Move(e.ctx, inbox.ID, []uint32{uint32(2*i + 2)}, e.mailbox(a.ID, "Archive").ID)
		return err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	e.checkCounts(a.ID)
}

func testClosed(e *env) {
	a := e.account("user@example.com")
	e.must(e.st.Close())
	e.wantErr(e.st.AddDomain(e.ctx, "new.example"), store.ErrClosed, "AddDomain after Close")
	_, err := e.st.Account(e.ctx, a.Email)
	e.wantErr(err, store.ErrClosed, "Account after Close")
	_, err = e.st.Deliver(e.ctx, &store.Delivery{Blob: bytes.NewReader([]byte("x")), Local: []store.LocalRecipient{{AccountID: a.ID}}})
	e.wantErr(err, store.ErrClosed, "Deliver after Close")
	_, err = e.st.Messages(e.ctx, 1, 1, false)
	e.wantErr(err, store.ErrClosed, "Messages after Close")
	if err := e.st.Close(); err != nil {
		e.t.Errorf("second Close = %v", err)
	}
}
