package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pillarbox/internal/store"
	"pillarbox/internal/store/storetest"
)

func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, t.TempDir(), Options{})
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func msg(tag string) string {
	return "From: a@example.org\r\nSubject: " + tag + "\r\n\r\nbody " + tag + "\r\n"
}

// bigMsg is a message stored as a file (larger than inlineMax).
func bigMsg(tag string) string {
	return msg(tag) + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", inlineMax/64+10)
}

// setup creates example.com and user@example.com.
func setup(t testing.TB, s *Store) store.Account {
	t.Helper()
	ctx := context.Background()
	must(t, s.AddDomain(ctx, "example.com"))
	a, err := s.CreateAccount(ctx, "user@example.com", store.Credentials{PasswordHash: "h"}, 0)
	must(t, err)
	return a
}

func deliver(t testing.TB, s *Store, accountID int64, body string) store.LocalResult {
	t.Helper()
	res, err := s.Deliver(context.Background(), &store.Delivery{
		Blob:  bytes.NewReader([]byte(body)),
		Local: []store.LocalRecipient{{AccountID: accountID, Mailbox: "INBOX", Prefix: []byte("Delivered-To: x\r\n")}},
	})
	must(t, err)
	return res.Local[0]
}

func readMsg(t testing.TB, s *Store, mailboxID int64, uid uint32) string {
	t.Helper()
	r, err := s.OpenMessage(context.Background(), mailboxID, uid)
	must(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	must(t, err)
	return string(b)
}

// blobFiles lists the files under blobs/.
func blobFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, d.Name())
		}
		return err
	})
	must(t, err)
	return out
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	a := setup(t, s)
	must(t, s.AddAlias(ctx, "info@example.com", []string{"user@example.com"}))
	r1 := deliver(t, s, a.ID, msg("one"))
	deliver(t, s, a.ID, msg("two"))
	_, _, err = s.StoreFlags(ctx, r1.MailboxID, []uint32{r1.UID}, store.FlagAdd, []string{store.FlagSeen, "$Work"}, 0)
	must(t, err)
	_, err = s.Expunge(ctx, r1.MailboxID, []uint32{2})
	must(t, err)
	res, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg("q"))),
		Queue: &store.QueueItem{From: "user@example.com", Recipients: []store.QueueRecipient{{Address: "r@remote.example"}}}})
	must(t, err)
	before, err := s.Mailbox(ctx, a.ID, "INBOX")
	must(t, err)
	msgsBefore, err := s.Messages(ctx, before.ID, 1, true)
	must(t, err)
	must(t, s.Close())

	s = openTest(t, dir, Options{})
	after, err := s.Mailbox(ctx, a.ID, "INBOX")
	must(t, err)
	if after != before {
		t.Errorf("INBOX after reopen %+v, before %+v", after, before)
	}
	msgsAfter, err := s.Messages(ctx, before.ID, 1, true)
	must(t, err)
	if len(msgsAfter) != 1 || msgsAfter[0].POP3UID != msgsBefore[0].POP3UID ||
		!slices.Equal(msgsAfter[0].Flags, []string{"$Work", store.FlagSeen}) || !msgsAfter[0].InternalDate.Equal(msgsBefore[0].InternalDate) {
		t.Errorf("messages after reopen %+v, before %+v", msgsAfter, msgsBefore)
	}
	if got := readMsg(t, s, before.ID, 1); got != "Delivered-To: x\r\n"+msg("one") {
		t.Errorf("message after reopen = %q", got)
	}
	if v, _ := s.Vanished(ctx, before.ID, 0); !slices.Equal(v, []uint32{2}) {
		t.Errorf("Vanished after reopen = %v", v)
	}
	if q, err := s.QueueItem(ctx, res.Queue.ID); err != nil || q.BlobID != res.BlobID {
		t.Errorf("queue item after reopen: %+v %v", q, err)
	}
	if _, err := s.Alias(ctx, "info@example.com"); err != nil {
		t.Errorf("alias after reopen: %v", err)
	}
	if r := deliver(t, s, a.ID, msg("three")); r.UID != 3 || r.ModSeq <= before.HighestModSeq {
		t.Errorf("delivery after reopen = %+v", r)
	}
	m, err := s.CreateMailbox(ctx, a.ID, "New", "")
	must(t, err)
	mbs, _ := s.Mailboxes(ctx, a.ID)
	for _, x := range mbs {
		if x.ID != m.ID && x.UIDValidity >= m.UIDValidity {
			t.Errorf("new mailbox UIDVALIDITY %d not above %s's %d", m.UIDValidity, x.Name, x.UIDValidity)
		}
	}
}

func TestOrphanCleanup(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	must(t, err)
	a := setup(t, s)
	r := deliver(t, s, a.ID, bigMsg("kept"))
	deliver(t, s, a.ID, msg("inline"))
	must(t, s.Close())
	kept := blobFiles(t, dir)
	if len(kept) != 1 {
		t.Fatalf("blob files = %v", kept)
	}
	// While another Store has the directory open, nothing is removed:
	// the orphan could be that Store's delivery in flight.
	holder, err := Open(dir, Options{})
	must(t, err)
	orphan := newBlobID(time.Now())
	must(t, os.WriteFile(filepath.Join(dir, "blobs", orphan[:2], orphan), []byte("half"), 0o600))
	spool := filepath.Join(dir, "spool", "spool-123")
	must(t, os.WriteFile(spool, []byte("partial"), 0o600))
	s2, err := Open(dir, Options{})
	must(t, err)
	if len(blobFiles(t, dir)) != 2 {
		t.Error("orphan removed while another Store was open")
	}
	if _, err := os.Stat(spool); err != nil {
		t.Error("spool file removed while another Store was open")
	}
	must(t, s2.Close())
	must(t, holder.Close())

	s = openTest(t, dir, Options{})
	if got := blobFiles(t, dir); !slices.Equal(got, kept) {
		t.Errorf("blob files after cleanup = %v, want %v", got, kept)
	}
	if _, err := os.Stat(spool); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool file not removed: %v", err)
	}
	if got := readMsg(t, s, r.MailboxID, r.UID); got != "Delivered-To: x\r\n"+bigMsg("kept") {
		t.Errorf("kept message = %q", got)
	}
}

// TestTwoStores: two Store values on one directory behave like two
// processes (separate connections, file locks): both write, both see
// everything, nothing is lost or given twice.
func TestTwoStores(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1 := openTest(t, dir, Options{})
	s2 := openTest(t, dir, Options{})
	a := setup(t, s1)
	if got, err := s2.Account(ctx, "user@example.com"); err != nil || got.ID != a.ID {
		t.Fatalf("second store does not see the account: %+v %v", got, err)
	}
	const per = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	uids := map[uint32]string{}
	for i, s := range []*Store{s1, s2, s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				tag := fmt.Sprintf("s%d-%d", i, j)
				res, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg(tag))),
					Local: []store.LocalRecipient{{AccountID: a.ID}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := uids[res.Local[0].UID]; dup {
					t.Errorf("UID %d given to %s and %s", res.Local[0].UID, prev, tag)
				}
				uids[res.Local[0].UID] = tag
				mu.Unlock()
			}
		}()
	}
	// Admin changes from the "CLI" store meanwhile.
	must(t, s2.AddDomain(ctx, "other.example"))
	_, err := s2.CreateMailbox(ctx, a.ID, "FromCLI", "")
	must(t, err)
	wg.Wait()
	for _, s := range []*Store{s1, s2} {
		inbox, err := s.Mailbox(ctx, a.ID, "INBOX")
		must(t, err)
		if inbox.Messages != 4*per || inbox.UIDNext != 4*per+1 {
			t.Errorf("INBOX = %+v", inbox)
		}
		if _, err := s.Mailbox(ctx, a.ID, "FromCLI"); err != nil {
			t.Error(err)
		}
	}
	inbox := mustInbox(t, s2, a.ID)
	for uid, tag := range uids {
		if got := readMsg(t, s2, inbox, uid); got != msg(tag) {
			t.Fatalf("UID %d = %q, want %s", uid, got, tag)
		}
	}
}

func mustInbox(t testing.TB, s *Store, accountID int64) int64 {
	t.Helper()
	m, err := s.Mailbox(context.Background(), accountID, "INBOX")
	must(t, err)
	return m.ID
}

// TestSpoolReturnedOnFailure: a spool file adopted by a Deliver that
// fails is back in place, so the caller may retry or remove it.
func TestSpoolReturnedOnFailure(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	a := setup(t, s)
	f, err := s.CreateSpool()
	must(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = f.WriteString(bigMsg("spool"))
	must(t, err)
	_, err = s.Deliver(ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID + 99}}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Deliver to unknown account: %v", err)
	}
	if b, err := os.ReadFile(f.Name()); err != nil || string(b) != bigMsg("spool") {
		t.Fatalf("spool file after failed delivery: %q %v", b, err)
	}
	if n := len(blobFiles(t, s.dir)); n != 0 {
		t.Errorf("%d blob files after failed delivery", n)
	}
	res, err := s.Deliver(ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID}}})
	must(t, err)
	if got := readMsg(t, s, res.Local[0].MailboxID, res.Local[0].UID); got != bigMsg("spool") {
		t.Errorf("retried spool delivery = %q", got)
	}
}

// TestKeywordsCaseInsensitive documents this backend's keyword rule.
func TestKeywordsCaseInsensitive(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	r := deliver(t, s, a.ID, msg("k"))
	up, _, err := s.StoreFlags(ctx, r.MailboxID, []uint32{r.UID}, store.FlagAdd, []string{"$Label1", "$label1", `\Recent`}, 0)
	must(t, err)
	if len(up) != 1 || !slices.Equal(up[0].Flags, []string{"$Label1"}) {
		t.Errorf("flags = %+v", up)
	}
	up, _, err = s.StoreFlags(ctx, r.MailboxID, []uint32{r.UID}, store.FlagAdd, []string{"$LABEL1"}, 0)
	must(t, err)
	if len(up) != 0 {
		t.Errorf("adding a keyword in other case changed flags: %+v", up)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true})
	must(t, err)
	_, err = s.wc.ExecContext(context.Background(), `UPDATE schema_version SET version = 999`)
	must(t, err)
	must(t, s.Close())
	if s, err := Open(dir, Options{NoSync: true}); err == nil {
		s.Close()
		t.Fatal("Open accepted a newer schema")
	}
}

// TestCancelledBeforeCommit: a caller whose context ends before the
// writer takes its operation gets the context error and nothing is stored.
func TestCancelledBeforeCommit(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(msg("c"))), Local: []store.LocalRecipient{{AccountID: a.ID}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver with cancelled context: %v", err)
	}
	inbox, err := s.Mailbox(context.Background(), a.ID, "INBOX")
	must(t, err)
	if inbox.Messages != 0 || len(blobFiles(t, s.dir)) != 0 {
		t.Errorf("cancelled delivery left %d messages, %d blobs", inbox.Messages, len(blobFiles(t, s.dir)))
	}
}

// TestInjectedClock: CreatedAt and default internal dates come from
// Options.Now.
func TestInjectedClock(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	s := openTest(t, t.TempDir(), Options{NoSync: true, Now: func() time.Time { return now }})
	a := setup(t, s)
	if !a.CreatedAt.Equal(now) {
		t.Errorf("CreatedAt = %v", a.CreatedAt)
	}
	r := deliver(t, s, a.ID, msg("t"))
	m, err := s.Message(context.Background(), r.MailboxID, r.UID)
	must(t, err)
	if !m.InternalDate.Equal(now) {
		t.Errorf("InternalDate = %v", m.InternalDate)
	}
}

// TestBlobFileRemoved: the file goes with the last reference, not before.
func TestBlobFileRemoved(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoSync: true})
	a := setup(t, s)
	res, err := s.Deliver(ctx, &store.Delivery{Blob: bytes.NewReader([]byte(bigMsg("f"))),
		Local: []store.LocalRecipient{{AccountID: a.ID}},
		Queue: &store.QueueItem{Recipients: []store.QueueRecipient{{Address: "r@remote.example"}}}})
	must(t, err)
	path := s.blobPath(res.BlobID)
	_, err = s.Expunge(ctx, res.Local[0].MailboxID, []uint32{res.Local[0].UID})
	must(t, err)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("blob file gone while the queue item uses it: %v", err)
	}
	must(t, s.DeleteQueueItem(ctx, res.Queue.ID))
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blob file still there after its last reference went: %v", err)
	}
}

// TestInlineAndFileBlobs: small blobs live in meta.db, large ones in
// files; an adopted small spool file is copied, not moved.
func TestInlineAndFileBlobs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	a := setup(t, s)
	deliver(t, s, a.ID, msg("small"))
	if n := len(blobFiles(t, s.dir)); n != 0 {
		t.Errorf("small message made %d blob files", n)
	}
	deliver(t, s, a.ID, bigMsg("big"))
	if n := len(blobFiles(t, s.dir)); n != 1 {
		t.Errorf("large message made %d blob files", n)
	}
	f, err := s.CreateSpool()
	must(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = f.WriteString(msg("spooled"))
	must(t, err)
	_, err = s.Deliver(ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID}}})
	must(t, err)
	if _, err := os.Stat(f.Name()); err != nil {
		t.Errorf("small spool file was moved: %v", err)
	}
}

// meta.db (password hashes) and its WAL are private to the owner, also
// when an older version created them readable by others.
func TestMetaDBPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "meta.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddDomain(context.Background(), "example.test"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"meta.db", "meta.db-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group/other access", name, fi.Mode().Perm())
		}
	}
	st.Close()
}

// When making a batch's blob files durable fails, nothing is acknowledged
// and nothing is stored: Deliver returns the error, the mailbox is
// unchanged, no blob file stays, and the adopted spool file is back in
// place for a retry, which succeeds once syncing works again.
func TestBlobSyncFailure(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	a := setup(t, s)
	injected := errors.New("injected: write-back error")
	s.syncBlobs = func(*os.File, []string) error { return injected }
	f, err := s.CreateSpool()
	must(t, err)
	defer os.Remove(f.Name())
	defer f.Close()
	_, err = f.WriteString(bigMsg("sync"))
	must(t, err)
	_, err = s.Deliver(ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID}}})
	if !errors.Is(err, injected) {
		t.Fatalf("Deliver with failing sync: %v, want the sync error", err)
	}
	mb, err := s.Mailbox(ctx, a.ID, "INBOX")
	must(t, err)
	if mb.Messages != 0 || mb.UIDNext != 1 {
		t.Errorf("INBOX after failed sync: %+v", mb)
	}
	if n := len(blobFiles(t, s.dir)); n != 0 {
		t.Errorf("%d blob files after failed sync", n)
	}
	if b, err := os.ReadFile(f.Name()); err != nil || string(b) != bigMsg("sync") {
		t.Fatalf("spool file after failed sync: %d bytes, %v", len(b), err)
	}
	s.syncBlobs = syncBlobs
	res, err := s.Deliver(ctx, &store.Delivery{Blob: f, Local: []store.LocalRecipient{{AccountID: a.ID}}})
	must(t, err)
	if got := readMsg(t, s, res.Local[0].MailboxID, res.Local[0].UID); got != bigMsg("sync") {
		t.Errorf("retried delivery stored %d bytes", len(got))
	}
}

func TestBlobIDsOrderedAndValid(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	prev := ""
	for i := 0; i < 100; i++ {
		id := newBlobID(base.Add(time.Duration(i) * time.Millisecond))
		if !validBlobID(id) {
			t.Fatalf("invalid id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %q after %q", id, prev)
		}
		prev = id
	}
	// The first byte steps with time, so file blobs spread over blobs/xx.
	a, b := newBlobID(base), newBlobID(base.Add(blobIDEpoch*time.Second))
	if a[:2] == b[:2] {
		t.Fatalf("first byte did not step: %q %q", a, b)
	}
}

// A delivery is answered only after the WAL sync that covers its commit
// has returned: while the sync is held, Deliver has not returned.
func TestAnsweredAfterWALSync(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	a := setup(t, s)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	s.syncFile = func(f *os.File) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return fdatasync(f)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Deliver(ctx, &store.Delivery{Blob: strings.NewReader("Subject: x\r\n\r\nbody\r\n"), Local: []store.LocalRecipient{{AccountID: a.ID}}})
		done <- err
	}()
	<-entered
	select {
	case err := <-done:
		t.Fatalf("Deliver returned (%v) while the WAL sync was still running", err)
	default:
	}
	close(release)
	must(t, <-done)
}

// When the WAL sync fails, the deliveries it covered get the error, and
// the Store refuses every later write (the kernel may have dropped the
// dirty pages, so a later sync would prove nothing).
func TestWALSyncFailure(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	a := setup(t, s)
	injected := errors.New("injected: EIO")
	s.syncFile = func(*os.File) error { return injected }
	msg := func() *store.Delivery {
		return &store.Delivery{Blob: strings.NewReader("Subject: x\r\n\r\nbody\r\n"), Local: []store.LocalRecipient{{AccountID: a.ID}}}
	}
	if _, err := s.Deliver(ctx, msg()); !errors.Is(err, injected) {
		t.Fatalf("Deliver with failing WAL sync: %v, want the sync error", err)
	}
	s.syncFile = fdatasync
	if _, err := s.Deliver(ctx, msg()); !errors.Is(err, errFailed) {
		t.Fatalf("Deliver after a failed WAL sync: %v, want errFailed", err)
	}
	if err := s.SetQuota(ctx, a.ID, 1); !errors.Is(err, errFailed) {
		t.Fatalf("SetQuota after a failed WAL sync: %v, want errFailed", err)
	}
}

// Operations that write nothing (the cross-process poll) cost no WAL sync.
func TestReadOnlyOpNoSync(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoIndexer: true})
	a := setup(t, s)
	var syncs atomic.Int32
	s.syncFile = func(f *os.File) error { syncs.Add(1); return fdatasync(f) }
	if _, err := s.dataVersion(ctx); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 0 {
		t.Fatalf("a read-only operation cost %d WAL syncs", n)
	}
	must(t, s.SetQuota(ctx, a.ID, 1<<20))
	if n := syncs.Load(); n != 1 {
		t.Fatalf("a write cost %d WAL syncs, want 1", n)
	}
}

// Flag changes are answered and published at commit, without waiting for
// the WAL sync (like Dovecot, which does not fsync flag updates).
func TestStoreFlagsRelaxed(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{NoIndexer: true})
	a := setup(t, s)
	r, err := s.Deliver(ctx, &store.Delivery{Blob: strings.NewReader("Subject: x\r\n\r\nbody\r\n"), Local: []store.LocalRecipient{{AccountID: a.ID}}})
	must(t, err)
	sub := s.Subscribe(a.ID)
	defer sub.Close()
	release := make(chan struct{})
	defer close(release)
	s.syncFile = func(f *os.File) error { <-release; return fdatasync(f) }
	up, _, err := s.StoreFlags(ctx, r.Local[0].MailboxID, []uint32{r.Local[0].UID}, store.FlagAdd, []string{store.FlagSeen}, 0)
	must(t, err) // returned although the sync is held
	if len(up) != 1 {
		t.Fatalf("updates %+v", up)
	}
	if got := sub.Take(); len(got) != 1 || got[0].Kind != store.ChangeFlags {
		t.Fatalf("change when StoreFlags returned: %+v", got)
	}
}
