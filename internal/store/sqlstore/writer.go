package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"pillarbox/internal/store"
)

// op is one write operation submitted to the writer goroutine.
type op struct {
	fn func(t *wtx) error
	// blobs are new blob files (full paths) that must be durable before
	// the operation's metadata commits.
	blobs []string
	// undo runs when the operation definitely did not commit (it failed
	// inside its savepoint or never ran); it removes the op's new blob.
	undo func()
	// cached marks a delivery: it may use the transaction's txCache.
	cached bool
	// readOnly marks an operation that writes nothing (it only needs the
	// writer connection): a batch of such operations needs no WAL sync.
	readOnly bool
	// admin marks a change to domains, accounts or aliases: once it is
	// durable the admin generation is bumped (admingen.go).
	admin bool
	// relaxed marks a change whose caller is answered once it commits,
	// without waiting for the WAL sync (flag changes, like Dovecot's
	// default); answered records that it was.
	relaxed, answered bool

	state atomic.Int32 // opPending -> opTaken | opCancelled
	done  chan error

	changes []store.Change // published after commit
	garbage []string       // blob IDs whose files go after commit
}

const (
	opPending int32 = iota
	opTaken
	opCancelled
)

// wtx is the writing transaction as seen by one operation.
type wtx struct {
	s   *Store
	ctx context.Context
	now time.Time
	op  *op
	// cache is the transaction's txCache for a cached operation, nil
	// for any other: then every statement goes to the database.
	cache *txCache
}

// write submits the operation and waits for its outcome. Once the
// pipeline has taken the operation the caller waits for the commit even if
// ctx ends, so an operation never commits behind the back of a caller that
// saw an error.
func (s *Store) write(ctx context.Context, o *op) error {
	o.done = make(chan error, 1)
	if err := ctx.Err(); err != nil {
		o.runUndo()
		return err
	}
	s.submitMu.RLock()
	if s.closed.Load() {
		s.submitMu.RUnlock()
		o.runUndo()
		return store.ErrClosed
	}
	if s.failed.Load() {
		s.submitMu.RUnlock()
		o.runUndo()
		return errFailed
	}
	if len(o.blobs) > 0 && !s.noSync {
		s.toSync.push(o)
	} else {
		s.toCommit.push(o)
	}
	s.submitMu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opPending, opCancelled) {
			o.runUndo()
			return ctx.Err()
		}
		return <-o.done
	}
}

// do is write for operations without blobs.
func (s *Store) do(ctx context.Context, fn func(t *wtx) error) error {
	return s.write(ctx, &op{fn: fn})
}

// doRelaxed is do for changes that need not be durable before the caller
// goes on (flag changes): see op.relaxed.
func (s *Store) doRelaxed(ctx context.Context, fn func(t *wtx) error) error {
	return s.write(ctx, &op{fn: fn, relaxed: true})
}

// doAdmin is do for changes to domains, accounts and aliases.
func (s *Store) doAdmin(ctx context.Context, fn func(t *wtx) error) error {
	return s.write(ctx, &op{fn: fn, admin: true})
}

func (o *op) runUndo() {
	if o.undo != nil {
		o.undo()
	}
}

// opQueue is a list of submitted operations and a wake-up signal.
type opQueue struct {
	mu   sync.Mutex
	ops  []*op
	kick chan struct{} // capacity 1
}

func newOpQueue() *opQueue { return &opQueue{kick: make(chan struct{}, 1)} }

func (q *opQueue) push(ops ...*op) {
	q.mu.Lock()
	q.ops = append(q.ops, ops...)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *opQueue) take() []*op {
	q.mu.Lock()
	defer q.mu.Unlock()
	ops := q.ops
	q.ops = nil
	return ops
}

// The write path has three stages so that the slow parts of some
// operations overlap the work of others:
//
//	syncer:  takes the operations with new blob files, makes the files
//	         durable (one syncfs for all of them), passes them on;
//	writer:  takes everything ready to commit (operations without blob
//	         files go there directly) and commits it in one transaction
//	         (synchronous=NORMAL: no fsync inside COMMIT), passes it on;
//	durable: makes every batch committed meanwhile durable with one WAL
//	         fdatasync, then answers (durable.go).
//
// Each stage takes all that accumulated while it was busy, so batches
// grow with the load. A caller sees its result only after its commit is
// on stable storage.
func (s *Store) syncer() {
	defer close(s.syncerDone)
	for {
		stop := false
		select {
		case <-s.toSync.kick:
		case <-s.quit:
			stop = true
		}
		if ops := s.syncBatch(s.toSync.take()); len(ops) > 0 {
			s.toCommit.push(ops...)
		}
		if stop {
			return
		}
	}
}

// syncBatch takes the operations whose callers still wait and makes
// their blobs durable. It answers and drops them all if that fails.
func (s *Store) syncBatch(batch []*op) []*op {
	live := batch[:0]
	var blobs []string
	for _, o := range batch {
		if !o.state.CompareAndSwap(opPending, opTaken) {
			continue // the caller gave up before we started
		}
		live = append(live, o)
		blobs = append(blobs, o.blobs...)
	}
	if len(blobs) == 0 {
		return live
	}
	start := time.Now()
	err := s.syncBlobs(s.blobFD, blobs)
	s.statSync.Add(int64(time.Since(start)))
	if err != nil {
		s.log.Error("sqlstore: syncing blobs", "err", err)
		err = fmt.Errorf("sqlstore: sync blobs: %w", err)
		for _, o := range live {
			o.runUndo()
			o.done <- err
		}
		return nil
	}
	return live
}

// writer commits what is ready until Close, then what is left.
func (s *Store) writer() {
	defer close(s.writerEnd)
	for {
		select {
		case <-s.toCommit.kick:
		case <-s.syncerDone:
			for ops := s.toCommit.take(); len(ops) > 0; ops = s.toCommit.take() {
				s.commitAll(ops)
			}
			return
		}
		s.toDurable.waitTaken()
		s.commitAll(s.toCommit.take())
	}
}

// commitAll commits the operations still wanted, maxBatch per transaction.
func (s *Store) commitAll(ops []*op) {
	live := ops[:0]
	for _, o := range ops {
		if o.state.Load() == opTaken || o.state.CompareAndSwap(opPending, opTaken) {
			live = append(live, o)
		}
	}
	for len(live) > 0 {
		n := min(len(live), maxBatch)
		s.toDurable.waitTaken()
		s.commitBatch(live[:n])
		live = live[n:]
	}
}

// commitBatch runs every operation of the batch in one transaction,
// commits, and hands the batch to the durable stage (durable.go), which
// answers the waiters once the commit is on stable storage.
func (s *Store) commitBatch(live []*op) {
	start := time.Now()
	results, err := s.runTx(live)
	s.statTx.Add(int64(time.Since(start)))
	s.statBatches.Add(1)
	s.statOps.Add(int64(len(live)))
	if err != nil {
		// The transaction did not commit (or its outcome is unknown):
		// leave blob files alone, orphan cleanup decides later.
		s.log.Error("sqlstore: write transaction failed", "err", err, "ops", len(live))
		for _, o := range live {
			o.done <- err
		}
		return
	}
	for i, o := range live {
		if o.relaxed && results[i] == nil {
			// Published and answered at commit (see durable.go); the
			// durable stage then has nothing left to do for it.
			s.feed.publish(o.changes)
			o.changes = nil
			o.answered = true
			o.done <- nil
		}
	}
	s.toDurable.push(committed{ops: live, results: results})
}

// runTx runs the operations inside one IMMEDIATE transaction, each in
// a savepoint when there are several. results[i] is op i's own error; err
// is a failure of the whole transaction.
//
// A batch of one operation runs without a savepoint: if it fails, the
// whole transaction, which holds nothing else, is rolled back instead.
func (s *Store) runTx(ops []*op) (results []error, err error) {
	ctx := context.Background()
	if _, err := s.wc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return nil, fmt.Errorf("sqlstore: begin: %w", err)
	}
	results = make([]error, len(ops))
	single := len(ops) == 1
	cache := newTxCache()
	for i, o := range ops {
		t := &wtx{s: s, ctx: ctx, now: s.now(), op: o}
		if !o.cached && !cache.empty() {
			// Everything else reads the rows directly: write the
			// cache back first, outside any savepoint.
			if err := t.flushCache(cache); err != nil {
				return nil, s.rollback(fmt.Errorf("sqlstore: flush: %w", err))
			}
		}
		if o.cached {
			t.cache = cache
		}
		if single {
			if results[i] = o.fn(t); results[i] != nil {
				o.changes, o.garbage = nil, nil
				s.rollback(nil) //nolint:errcheck // logged; the op's error is what matters
				return results, nil
			}
			break
		}
		var snap cacheSnapshot
		if o.cached {
			snap = cache.snapshot()
		}
		if _, err := t.exec("SAVEPOINT op"); err != nil {
			return nil, s.rollback(fmt.Errorf("sqlstore: savepoint: %w", err))
		}
		results[i] = o.fn(t)
		if results[i] != nil {
			o.changes, o.garbage = nil, nil
			if _, err := t.exec("ROLLBACK TO op"); err != nil {
				return nil, s.rollback(fmt.Errorf("sqlstore: rollback to savepoint: %w", err))
			}
			if o.cached {
				cache.restore(snap)
			}
		}
		if _, err := t.exec("RELEASE op"); err != nil {
			return nil, s.rollback(fmt.Errorf("sqlstore: release savepoint: %w", err))
		}
	}
	if !cache.empty() {
		t := &wtx{s: s, ctx: ctx, now: s.now()}
		if err := t.flushCache(cache); err != nil {
			return nil, s.rollback(fmt.Errorf("sqlstore: flush: %w", err))
		}
	}
	if _, err := s.wc.ExecContext(ctx, "COMMIT"); err != nil {
		return nil, s.rollback(fmt.Errorf("sqlstore: commit: %w", err))
	}
	return results, nil
}

func (s *Store) rollback(err error) error {
	if _, rerr := s.wc.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
		s.log.Error("sqlstore: rollback", "err", rerr)
	}
	return err
}

// stmt returns a prepared statement on the writer connection.
func (t *wtx) stmt(q string) (*sql.Stmt, error) {
	if st, ok := t.s.stmts[q]; ok {
		return st, nil
	}
	st, err := t.s.wc.PrepareContext(t.ctx, q)
	if err != nil {
		return nil, err
	}
	t.s.stmts[q] = st
	return st, nil
}

func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(t.ctx, args...)
}

// execN runs an UPDATE/DELETE and returns the number of rows it touched.
func (t *wtx) execN(q string, args ...any) (int64, error) {
	r, err := t.exec(q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

// mustTouch runs q and returns store.ErrNotFound when it touched no row.
func (t *wtx) mustTouch(q string, args ...any) error {
	n, err := t.execN(q, args...)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

func (t *wtx) query(q string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(t.ctx, args...)
}

func (t *wtx) queryRow(q string, args ...any) *sql.Row {
	st, err := t.stmt(q)
	if err != nil {
		// Surface the prepare error through Scan.
		return t.s.wc.QueryRowContext(t.ctx, q, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// nextSeq allocates the next value of a global sequence.
func (t *wtx) nextSeq(name string) (int64, error) {
	if t.cache != nil {
		return t.cachedSeq(name)
	}
	return t.incSeq(name)
}

// incSeq advances a sequence in the database and returns its new value.
func (t *wtx) incSeq(name string) (int64, error) {
	var v int64
	err := t.queryRow(`UPDATE sequences SET value = value + 1 WHERE name = ? RETURNING value`, name).Scan(&v)
	return v, err
}

// nextUIDValidity allocates a UIDVALIDITY larger than every earlier one and
// not smaller than the clock in seconds (so that a database recreated
// from scratch still gives larger values).
func (t *wtx) nextUIDValidity() (uint32, error) {
	var cur int64
	if err := t.queryRow(`SELECT value FROM sequences WHERE name = ?`, seqUIDValidity).Scan(&cur); err != nil {
		return 0, err
	}
	next := max(cur+1, t.now.Unix())
	if next > 0xffffffff {
		return 0, errors.New("sqlstore: UIDVALIDITY space exhausted")
	}
	if _, err := t.exec(`UPDATE sequences SET value = ? WHERE name = ?`, next, seqUIDValidity); err != nil {
		return 0, err
	}
	return uint32(next), nil
}

func (t *wtx) change(c store.Change) { t.op.changes = append(t.op.changes, c) }
