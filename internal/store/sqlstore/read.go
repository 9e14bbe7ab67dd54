package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"pillarbox/internal/store"
)

// Reads. Every read statement is prepared once per Store on the reader
// pool (database/sql then prepares it once on each reader connection and
// reuses it) instead of being parsed again on every call. A method that
// runs ONE statement runs it without an explicit transaction (view): a
// single SELECT is atomic in SQLite, it reads one WAL snapshot from its
// first step to its reset. Methods that run several statements that must
// agree run them in one read transaction (read).

// readStmts is the Store's cache of prepared read statements by SQL text.
type readStmts struct {
	mu     sync.RWMutex
	m      map[string]*sql.Stmt
	closed bool
}

// get returns q prepared on db, preparing it on first use.
func (c *readStmts) get(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.RLock()
	st, ok := c.m[q]
	closed := c.closed
	c.mu.RUnlock()
	if ok {
		return st, nil
	}
	if closed {
		return nil, store.ErrClosed
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if c.closed {
		return nil, store.ErrClosed
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// close closes every statement; later gets fail with store.ErrClosed.
func (c *readStmts) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, st := range c.m {
		errs = append(errs, st.Close())
	}
	c.m = nil
	return errors.Join(errs...)
}

// rtx runs read statements: inside a read transaction (tx != nil) or
// each on its own (tx == nil, see view).
type rtx struct {
	s   *Store
	ctx context.Context
	tx  *sql.Tx
}

func (r *rtx) stmt(q string) (*sql.Stmt, error) {
	st, err := r.s.rstmts.get(r.ctx, r.s.rdb, q)
	if err != nil || r.tx == nil {
		return st, err
	}
	return r.tx.StmtContext(r.ctx, st), nil
}

// queryRow runs a query that returns at most one row.
func (r *rtx) queryRow(q string, args ...any) scanner {
	st, err := r.stmt(q)
	if err != nil {
		return errScanner{err}
	}
	return st.QueryRowContext(r.ctx, args...)
}

// each runs a query and calls fn for every row.
func (r *rtx) each(q string, args []any, fn func(row scanner) error) error {
	st, err := r.stmt(q)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(r.ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// errScanner is a row whose query failed before it ran.
type errScanner struct{ err error }

func (e errScanner) Scan(...any) error { return e.err }

// view runs fn for a read of a single statement, without a transaction.
func (s *Store) view(ctx context.Context, fn func(r *rtx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.readErr(fn(&rtx{s: s, ctx: ctx}))
}

// read runs fn in a read-only transaction on a reader connection, so that
// the queries of one method see one snapshot.
func (s *Store) read(ctx context.Context, fn func(r *rtx) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return s.readErr(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	return s.readErr(fn(&rtx{s: s, ctx: ctx, tx: tx}))
}

// readErr reports a failure caused by a concurrent Close as
// store.ErrClosed.
func (s *Store) readErr(err error) error {
	if err != nil && !errors.Is(err, store.ErrNotFound) && s.closed.Load() {
		return store.ErrClosed
	}
	return err
}
