package sqlstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pillarbox/internal/store"
)

// count runs a COUNT query on a reader connection.
func count(t testing.TB, s *Store, q string, args ...any) int {
	t.Helper()
	var n int
	must(t, s.rdb.QueryRowContext(context.Background(), q, args...).Scan(&n))
	return n
}

func search(t testing.TB, s *Store, mailboxID int64, field store.TextField, substr string) []uint32 {
	t.Helper()
	uids, err := s.SearchText(context.Background(), mailboxID, field, substr)
	must(t, err)
	return uids
}

// TestTextIndexStates follows blobs through the index: pending after
// delivery, indexed by IndexPending (a queue-only blob without text),
// searched through the index, and removed with the last reference.
func TestTextIndexStates(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoSync: true, NoIndexer: true})
	a := setup(t, s)
	r1 := deliver(t, s, a.ID, msg("alpha needle"))
	r2 := deliver(t, s, a.ID, bigMsg("beta needle")) // a file blob
	queued, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg("gamma needle"))),
		Local: []store.LocalRecipient{{AccountID: a.ID}},
		Queue: &store.QueueItem{Recipients: []store.QueueRecipient{{Address: "r@remote.example"}}}})
	must(t, err)
	_, err = s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg("queue only"))),
		Queue: &store.QueueItem{Recipients: []store.QueueRecipient{{Address: "r@remote.example"}}}})
	must(t, err)
	if n := count(t, s, `SELECT COUNT(*) FROM blobs WHERE text_doc IS NULL`); n != 4 {
		t.Fatalf("%d pending blobs after delivery, want 4 (Deliver must not index)", n)
	}
	inbox := r1.MailboxID
	want := []uint32{r1.UID, r2.UID, queued.Local[0].UID}
	if got := search(t, s, inbox, store.TextBody, "NEEDLE"); !slices.Equal(got, want) {
		t.Errorf("unindexed: SearchText = %v, want %v", got, want)
	}
	n, err := s.IndexPending(ctx)
	must(t, err)
	if n != 4 || count(t, s, `SELECT COUNT(*) FROM blobs WHERE text_doc IS NULL`) != 0 ||
		count(t, s, `SELECT COUNT(*) FROM blobs WHERE text_doc = 0`) != 1 || count(t, s, `SELECT COUNT(*) FROM text_fts`) != 3 {
		t.Fatalf("after IndexPending(%d): states wrong", n)
	}
	if got := search(t, s, inbox, store.TextBody, "NEEDLE"); !slices.Equal(got, want) {
		t.Errorf("indexed: SearchText = %v, want %v", got, want)
	}
	// The results come from the index: change one stored text.
	_, err = s.wc.ExecContext(ctx, `UPDATE text_fts SET body = 'planted marker' WHERE rowid =
		(SELECT text_doc FROM blobs WHERE id = (SELECT blob_id FROM messages WHERE mailbox_id = ? AND uid = ?))`, inbox, r1.UID)
	must(t, err)
	if got := search(t, s, inbox, store.TextBody, "planted"); !slices.Equal(got, []uint32{r1.UID}) {
		t.Errorf("long substring not served by the index: %v", got)
	}
	if got := search(t, s, inbox, store.TextBody, "pl"); !slices.Equal(got, []uint32{r1.UID}) {
		t.Errorf("short substring not served by the stored text: %v", got)
	}
	// The text row goes with the blob's last reference (the trigger).
	_, err = s.Expunge(ctx, inbox, []uint32{r1.UID, queued.Local[0].UID})
	must(t, err)
	if n := count(t, s, `SELECT COUNT(*) FROM text_fts`); n != 2 {
		t.Errorf("%d text rows after expunge, want 2 (the queued blob keeps its row)", n)
	}
	must(t, s.DeleteQueueItem(ctx, queued.Queue.ID))
	if n := count(t, s, `SELECT COUNT(*) FROM text_fts`); n != 1 {
		t.Errorf("%d text rows after the queue item went, want 1", n)
	}
	if got := search(t, s, inbox, store.TextBody, "NEEDLE"); !slices.Equal(got, []uint32{r2.UID}) {
		t.Errorf("after expunge: SearchText = %v", got)
	}
}

// TestBackgroundIndexer: with the indexer on, delivered messages end up
// indexed without anyone asking, and search finds them all along.
func TestBackgroundIndexer(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	var want []uint32
	for i := 0; i < 100; i++ {
		want = append(want, deliver(t, s, a.ID, msg(fmt.Sprintf("bg%03d searchable", i))).UID)
	}
	inbox := mustInbox(t, s, a.ID)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if got := search(t, s, inbox, store.TextAll, "SEARCHABLE"); !slices.Equal(got, want) {
			t.Fatalf("SearchText while indexing = %v", got)
		}
		if count(t, s, `SELECT COUNT(*) FROM blobs WHERE text_doc IS NULL`) == 0 {
			break
		}
		if time.Now().After(deadline) { // a guard against hanging, not a timing assertion
			t.Fatal("the background indexer did not index the messages")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := search(t, s, inbox, store.TextAll, "bg042 search"); !slices.Equal(got, []uint32{want[42]}) {
		t.Errorf("indexed: SearchText = %v", got)
	}
}

// TestTextIndexMigration: a database of schema version 2 (before the
// index) is upgraded in place; its messages are found before and after
// they are indexed.
func TestTextIndexMigration(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, NoIndexer: true})
	must(t, err)
	a := setup(t, s)
	r := deliver(t, s, a.ID, msg("old message"))
	// Back to version 2: what migrations 3 to 5 added goes.
	for _, q := range []string{
		`ALTER TABLE accounts DROP COLUMN pop3_maildrop`,
		`ALTER TABLE queue_recipients DROP COLUMN remote_mta`, `ALTER TABLE queue_recipients DROP COLUMN delay_notified`,
		`DROP TRIGGER blobs_text_gone`, `DROP TABLE text_fts`, `DROP INDEX blobs_text_pending`,
		`DROP INDEX blobs_text_doc`, `ALTER TABLE blobs DROP COLUMN text_doc`,
		`DELETE FROM sequences WHERE name = 'textdoc'`, `UPDATE schema_version SET version = 2`,
	} {
		_, err := s.wc.ExecContext(ctx, q)
		must(t, err)
	}
	must(t, s.Close())
	s = openTest(t, dir, Options{NoSync: true, NoIndexer: true})
	if got := search(t, s, r.MailboxID, store.TextBody, "OLD MESSAGE"); !slices.Equal(got, []uint32{r.UID}) {
		t.Errorf("after upgrade: SearchText = %v", got)
	}
	n, err := s.IndexPending(ctx)
	must(t, err)
	if got := search(t, s, r.MailboxID, store.TextBody, "OLD MESSAGE"); n != 1 || !slices.Equal(got, []uint32{r.UID}) {
		t.Errorf("after indexing %d: SearchText = %v", n, got)
	}
}

// TestChangeResync: a commit by another Store on the same directory (as
// by another process) reaches this Store's subscribers as ChangeResync,
// on an open channel; this Store's own commits do not.
func TestChangeResync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1 := openTest(t, dir, Options{NoSync: true})
	a := setup(t, s1)
	sub := s1.Subscribe(a.ID)
	defer sub.Close()
	ch := &changeReader{sub: sub}

	// Own commits: itemised changes, and data_version does not move.
	r := deliver(t, s1, a.ID, msg("own"))
	if c := nextChange(t, ch); c.Kind != store.ChangeAppend || c.UID != r.UID {
		t.Fatalf("own delivery: %+v", c)
	}
	must(t, s1.checkResync(ctx))
	deliver(t, s1, a.ID, msg("own 2"))
	if c := nextChange(t, ch); c.Kind != store.ChangeAppend {
		t.Fatalf("after a poll with no foreign commit: %+v, want the append", c)
	}

	s2 := openTest(t, dir, Options{NoSync: true, NoIndexer: true})
	r2 := deliver(t, s2, a.ID, msg("from the other process"))
	c := nextChange(t, ch) // the background poller sends it
	if c.Kind != store.ChangeResync || c.AccountID != 0 || c.MailboxID != 0 {
		t.Fatalf("foreign delivery: %+v, want ChangeResync", c)
	}
	if m, err := s1.Message(ctx, r2.MailboxID, r2.UID); err != nil || m.UID != r2.UID {
		t.Errorf("message of the other store after resync: %+v %v", m, err)
	}
	// The channel stays open and itemised changes go on.
	r3 := deliver(t, s1, a.ID, msg("own 3"))
	for {
		c := nextChange(t, ch)
		if c.Kind == store.ChangeResync {
			continue // a late poll may still report s2's commit
		}
		if c.Kind != store.ChangeAppend || c.UID != r3.UID {
			t.Fatalf("after resync: %+v", c)
		}
		break
	}
}

// TestResyncCoalesced: an unread ChangeResync is not repeated.
func TestResyncCoalesced(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, NoIndexer: true})
	sub := s.Subscribe(7)
	defer sub.Close()
	s.feed.resync()
	s.feed.resync()
	if got := sub.Take(); len(got) != 1 {
		t.Fatalf("%d changes queued after two resyncs, want 1", len(got))
	}
	s.feed.resync()
	if got := sub.Take(); len(got) != 1 || got[0].Kind != store.ChangeResync {
		t.Errorf("resync after the first was read: %+v", got)
	}
}

// changeReader reads a Subscription one change at a time.
type changeReader struct {
	sub store.Subscription
	buf []store.Change
}

func nextChange(t *testing.T, r *changeReader) store.Change {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for len(r.buf) == 0 {
		select {
		case <-r.sub.Ready():
			r.buf = r.sub.Take()
		case <-deadline:
			t.Fatal("no change on the feed")
		}
	}
	c := r.buf[0]
	r.buf = r.buf[1:]
	return c
}

// searchCorpus builds n messages of about 1.5 KiB with a few words
// that occur in every message, in every 100th, and in one.
func searchCorpus(n int) [][]byte {
	words := strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " +
		"incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation")
	out := make([][]byte, n)
	for i := range out {
		var b strings.Builder
		fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: user@example.com\r\nSubject: message %d of the corpus\r\n\r\n", i%97, i)
		for j := 0; j < 200; j++ {
			b.WriteString(words[(i*7+j*13)%len(words)])
			b.WriteByte(' ')
			if j%12 == 11 {
				b.WriteString("\r\n")
			}
		}
		b.WriteString("\r\nKind regards\r\n")
		if i%100 == 0 {
			b.WriteString("\r\nhundredth marker\r\n")
		}
		if i == n/2 {
			b.WriteString("\r\nthe unique needle\r\n")
		}
		out[i] = []byte(b.String())
	}
	return out
}

// BenchmarkSearchText: 10,000 indexed messages in one mailbox.
func BenchmarkSearchText(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir(), Options{NoSync: true, NoIndexer: true})
	a := setup(b, s)
	corpus := searchCorpus(10000)
	for i := 0; i < len(corpus); i += 500 {
		var ds []*store.Delivery
		for _, m := range corpus[i:min(i+500, len(corpus))] {
			ds = append(ds, &store.Delivery{Blob: bytes.NewReader(m),
				Local: []store.LocalRecipient{{AccountID: a.ID, Prefix: []byte("Delivered-To: user@example.com\r\n")}}})
		}
		_, err := s.DeliverBatch(ctx, ds)
		must(b, err)
	}
	start := time.Now()
	n, err := s.IndexPending(ctx)
	must(b, err)
	b.Logf("indexed %d messages in %v", n, time.Since(start))
	inbox := mustInbox(b, s, a.ID)
	for _, bc := range []struct {
		name   string
		field  store.TextField
		substr string
		hits   int
	}{
		{"rare", store.TextBody, "unique needle", 1},
		{"hundredth", store.TextBody, "hundredth marker", 100},
		{"common", store.TextBody, "kind regards", 10000},
		{"short", store.TextBody, "ip", -1},
		{"text-rare", store.TextAll, "message 5000 of", 1},
		{"none", store.TextAll, "absent words", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var got []uint32
			for b.Loop() {
				got, err = s.SearchText(ctx, inbox, bc.field, bc.substr)
				if err != nil {
					b.Fatal(err)
				}
			}
			if bc.hits >= 0 && len(got) != bc.hits {
				b.Fatalf("%d hits, want %d", len(got), bc.hits)
			}
			b.ReportMetric(float64(len(got)), "hits")
		})
	}
}
