package sqlstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The third stage of the write path: making commits durable.
//
// The writer connection runs with synchronous=NORMAL, so COMMIT appends the
// transaction's frames to meta.db-wal without waiting for the disk. The
// writer hands each committed batch to this stage and goes on with the next
// transaction at once; the durable goroutine takes every batch committed
// meanwhile, makes the WAL durable with one fdatasync(2) of its own
// descriptor of meta.db-wal (fsync of any descriptor flushes the file), and
// only then removes the batch's garbage blob files, publishes its changes
// and answers its callers. The WAL is a log: one sync covers every frame
// written before it, so a caller is answered only when its commit and every
// commit before it are on stable storage. SQLite itself syncs the WAL
// before each checkpoint and the database file after it (that is what
// synchronous=NORMAL keeps), so frames overwritten by a WAL restart were
// already durable in the database file.
//
// Flag changes (StoreFlags) are "relaxed": their change is published and
// their caller answered as soon as the transaction commits, like Dovecot,
// which does not fsync flag updates; a power loss right after may lose the
// change, never a message. So a flag change can reach subscribers before
// the changes of an earlier operation still waiting here (an append of
// the same message, even): subscribers must keep a flag change of a UID
// they do not know yet until its append arrives (imapserver's view does).
//
// The price of overlapping the sync with the next transaction is that a
// commit is visible to readers (an IMAP session listing the mailbox) about
// one fsync before it is durable: a power loss in that window loses a
// message nobody was told was accepted (its SMTP client got no 250 and
// sends it again). Nothing that was acknowledged can be lost.
//
// If the sync fails, the batches it covered are answered with the error and
// the Store refuses every later write: after a failed fsync Linux may have
// dropped the dirty pages, so a later successful sync would prove nothing.

// committed is a batch whose transaction committed, waiting for the sync.
type committed struct {
	ops     []*op
	results []error
}

// durableQueue hands committed batches from the writer to the durable goroutine.
type durableQueue struct {
	mu      sync.Mutex
	taken   sync.Cond // signalled when take empties batches
	batches []committed
	kick    chan struct{} // capacity 1
}

func (q *durableQueue) init() {
	q.taken.L = &q.mu
	q.kick = make(chan struct{}, 1)
}

func (q *durableQueue) push(c committed) {
	q.mu.Lock()
	q.batches = append(q.batches, c)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *durableQueue) take() []committed {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.batches
	q.batches = nil
	q.taken.Broadcast()
	return b
}

// waitTaken blocks until the durable goroutine has taken every committed
// batch, i.e. is syncing (or has synced) all of them. The writer calls it
// before it starts a transaction: it commits at most one batch ahead of
// the sync in flight, and what arrives meanwhile gathers into the next
// batch. Committing eagerly instead makes many small transactions, which
// cost more CPU per message than they save in latency.
func (q *durableQueue) waitTaken() {
	q.mu.Lock()
	for len(q.batches) > 0 {
		q.taken.Wait()
	}
	q.mu.Unlock()
}

// durable answers committed batches once they are durable, until the
// writer has ended and everything it committed is answered.
func (s *Store) durable() {
	defer close(s.durableEnd)
	for {
		stop := false
		select {
		case <-s.toDurable.kick:
		case <-s.writerEnd:
			stop = true
		}
		for b := s.toDurable.take(); len(b) > 0; b = s.toDurable.take() {
			s.finish(b)
		}
		if stop {
			return
		}
	}
}

// finish syncs the WAL once for the given batches and answers them.
func (s *Store) finish(batches []committed) {
	var err error
	if !s.noSync && needsSync(batches) {
		start := time.Now()
		err = s.syncWAL()
		s.statWALSync.Add(int64(time.Since(start)))
		s.statWALSyncs.Add(1)
	}
	if err != nil {
		s.failed.Store(true)
		s.log.Error("sqlstore: syncing the WAL failed; refusing further writes", "err", err)
		err = fmt.Errorf("sqlstore: sync: %w", err)
	}
	if err == nil && adminChanged(batches) {
		s.bumpAdminGen()
	}
	for _, b := range batches {
		for i, o := range b.ops {
			if err != nil {
				if !o.answered {
					o.done <- err
				}
				continue
			}
			if b.results[i] != nil {
				o.runUndo()
				o.done <- b.results[i]
				continue
			}
			s.removeBlobs(o.garbage)
			s.feed.publish(o.changes)
			if !o.answered {
				o.done <- nil
			}
		}
	}
}

// needsSync reports whether any operation of the batches may have written.
func needsSync(batches []committed) bool {
	for _, b := range batches {
		for _, o := range b.ops {
			if !o.readOnly {
				return true
			}
		}
	}
	return false
}

// adminChanged reports whether an admin operation of the batches committed.
func adminChanged(batches []committed) bool {
	for _, b := range batches {
		for i, o := range b.ops {
			if o.admin && b.results[i] == nil {
				return true
			}
		}
	}
	return false
}

// errFailed is returned by writes after a failed WAL sync.
var errFailed = errors.New("sqlstore: an earlier sync failed; restart to recover")

// openWAL opens the descriptor the durable stage syncs. The writer
// connection keeps meta.db-wal in existence while the Store is open.
func (s *Store) openWAL() error {
	if s.noSync {
		return nil
	}
	f, err := os.Open(filepath.Join(s.dir, "meta.db-wal"))
	if err != nil {
		return fmt.Errorf("sqlstore: open WAL: %w", err)
	}
	s.walFD = f
	return nil
}

// syncWAL makes meta.db-wal durable. It checks that its descriptor still
// names the file SQLite writes (SQLite deletes the WAL only when the last
// connection closes, which cannot happen while the writer connection is
// open; the check makes sure of it) and reopens it if not.
func (s *Store) syncWAL() error {
	if err := s.syncFile(s.walFD); err != nil {
		return err
	}
	cur, err := s.walFD.Stat()
	if err != nil {
		return err
	}
	onDisk, err := os.Stat(filepath.Join(s.dir, "meta.db-wal"))
	if err != nil {
		return err
	}
	if os.SameFile(cur, onDisk) {
		return nil
	}
	s.log.Warn("sqlstore: meta.db-wal was replaced; reopening it")
	s.walFD.Close()
	if err := s.openWAL(); err != nil {
		return err
	}
	return s.syncFile(s.walFD)
}
