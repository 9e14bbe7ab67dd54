// Package sqlstore is Pillarbox's embedded storage backend: metadata in
// SQLite (modernc.org/sqlite, pure Go) and message bodies in immutable
// blobs. It implements store.Store and store.Spooler.
//
// On-disk layout under the data directory:
//
//	meta.db, meta.db-wal, meta.db-shm   SQLite database (WAL mode; the WAL is synced by us, durable.go)
//	blobs/xx/<id>                       one immutable file per blob larger than 128 KiB;
//	                                    <id> is 32 lower-case hex digits (128 random
//	                                    bits), xx its first two
//	spool/                              temporary files from CreateSpool
//	admin.gen                           8 bytes rewritten on every change to domains,
//	                                    accounts or aliases (admingen.go)
//	lock                                flock(2) file: shared while a Store is open,
//	                                    exclusive during orphan cleanup at Open
//
// Blobs of at most 128 KiB (inlineMax) live in meta.db (blobs.data): a file
// per small message costs more file system work than the whole SQLite
// transaction, and the WAL fsync that commits the metadata makes them
// durable too. The schema (schema.go) is plain SQL that ports to
// PostgreSQL (BLOB becomes BYTEA); it is created and migrated at Open,
// versioned in schema_version.
//
// Writes: one writer goroutine per Store owns one SQLite connection. Every
// write method hands an operation to the Store's pipeline (writer.go),
// which gathers the operations submitted concurrently into a batch and
// runs them in ONE transaction (BEGIN IMMEDIATE, so several processes can
// share the directory), each inside its own SAVEPOINT so that a failing
// operation is rolled back alone (group commit; a batch of one runs
// without a savepoint and a failure rolls back the whole transaction).
// Deliveries of one transaction share sequence allocations, mailbox rows
// and counter updates through a per-transaction cache (txcache.go).
// Readers use a separate pool of connections, prepared statements and see
// committed snapshots; a read of one statement runs without BEGIN (read.go).
//
// Durability (store.go's Deliver rule): Deliver writes a file blob straight
// to its final path in blobs/ (or renames an adopted spool file there)
// without syncing, and submits the operation. Before the operation's
// transaction begins, a syncer goroutine makes all new blob files waiting
// at that moment and their directory entries durable at once: one
// syncfs(2) of the blob file system on Linux, an fsync of every file and
// its directory elsewhere. Then the metadata commits (WAL fsync), and only
// then are the waiters answered. A crash therefore leaves at worst blob
// files without metadata: garbage, removed by the next Open that finds no
// other Store using the directory (flock on "lock"; such a file is never a
// delivery in flight then). Metadata never points to a missing blob: blob
// files are removed only after the commit that dropped their last
// reference.
//
// Invariants kept here: UIDVALIDITY comes from a global counter seeded
// with the clock and only increases; UIDNEXT and HIGHESTMODSEQ are read and
// advanced inside the writing transaction; every appended, changed or
// expunged message gets its own new MODSEQ; expunges leave (uid, modseq)
// tombstones; mailbox counts (messages, unseen, deleted, size) and account
// used bytes are updated in the same transaction as the messages; the POP3
// UID is "p" followed by the hex of the message's global id, allocated
// once from a counter seeded with the clock (Copy allocates a new one, Move
// keeps it). A blob's reference count is the number of messages and queue
// items that name it (indexed), so it cannot drift; the blob row and file
// go when it reaches zero.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"pillarbox/internal/store"
)

// Options configure a Store.
type Options struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	// NoSync skips every fsync/syncfs and runs SQLite with
	// synchronous=OFF. For tests and benchmarks only: a crash can lose
	// acknowledged data.
	NoSync bool
	// NoIndexer does not start the background full-text indexer (fts.go)
	// (short-lived processes such as CLI commands: the server indexes
	// what they store). SearchText works either way.
	NoIndexer bool
}

// Store is the embedded backend. Create it with Open.
type Store struct {
	dir, blobDir, spoolDir string
	log                    *slog.Logger
	now                    func() time.Time
	noSync                 bool

	blobFD *os.File // blobs/, open for the Store's life: syncfs target
	// syncBlobs makes new blob files durable (syncBlobs of this platform;
	// tests inject failures).
	syncBlobs func(dir *os.File, paths []string) error
	walFD     *os.File // meta.db-wal, synced by the durable stage (durable.go)
	adminFD   *os.File // admin.gen (admingen.go)
	// adminLocal counts this Store's own admin changes.
	adminLocal atomic.Uint64
	// queueLocal counts this Store's own queue admin changes (queue.gen).
	queueLocal atomic.Uint64
	// syncFile makes the WAL durable (fdatasync; tests inject failures).
	syncFile func(*os.File) error

	wdb  *sql.DB // writer: one connection, used only by the writer goroutine
	wc   *sql.Conn
	rdb  *sql.DB // readers
	lock *os.File

	stmts  map[string]*sql.Stmt // writer goroutine only
	rstmts readStmts            // prepared read statements (read.go)
	lists  listCache            // whole-mailbox message rows (msgcache.go)

	submitMu   sync.RWMutex // held shared while submitting, exclusive to close
	toSync     *opQueue     // operations whose blob files need a sync
	toCommit   *opQueue     // operations ready for the transaction
	quit       chan struct{}
	syncerDone chan struct{}
	writerEnd  chan struct{}
	toDurable  durableQueue // committed batches waiting for the WAL sync
	durableEnd chan struct{}
	failed     atomic.Bool // a WAL sync failed: writes are refused
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error

	feed feed
	bg   background // full-text indexer, cross-process change poller (background.go)

	// Statistics: committed batches and the operations in them.
	statBatches, statOps atomic.Int64
	spoolSeq             atomic.Uint64 // spool file names
	statSync, statTx     atomic.Int64  // nanoseconds in blob syncs and in transactions
	statWALSync          atomic.Int64  // nanoseconds in WAL syncs
	statWALSyncs         atomic.Int64  // WAL syncs
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Spooler = (*Store)(nil)
)

// maxBatch bounds the number of operations in one transaction.
const maxBatch = 512

// readerMmapBytes is how much of meta.db each reader connection maps.
// Mapped pages a reader touched count in the process's RSS (8 readers x
// 1 GiB reached 7 GiB RSS in bench/imap.sh while searches scanned a large
// database), so the map covers only the first 128 MiB (the metadata pages
// most reads touch); the rest is read with pread.
const readerMmapBytes = 128 << 20

// busyTimeoutMS is how long a connection waits for another process's lock.
const busyTimeoutMS = 15000

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:        abs,
		blobDir:    filepath.Join(abs, "blobs"),
		syncBlobs:  syncBlobs,
		syncFile:   fdatasync,
		spoolDir:   filepath.Join(abs, "spool"),
		log:        opts.Logger,
		now:        opts.Now,
		noSync:     opts.NoSync,
		stmts:      map[string]*sql.Stmt{},
		toSync:     newOpQueue(),
		toCommit:   newOpQueue(),
		quit:       make(chan struct{}),
		syncerDone: make(chan struct{}),
		writerEnd:  make(chan struct{}),
		durableEnd: make(chan struct{}),
	}
	s.toDurable.init()
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.feed.subs = map[int64]map[*subscriber]struct{}{}
	if err := s.makeDirs(); err != nil {
		return nil, err
	}
	if err := s.open(); err != nil {
		s.closeAll()
		return nil, err
	}
	go s.syncer()
	go s.writer()
	go s.durable()
	if err := s.startBackground(opts.NoIndexer); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	return s, nil
}

func (s *Store) makeDirs() error {
	for _, d := range []string{s.dir, s.blobDir, s.spoolDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(s.blobDir, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return err
		}
	}
	if s.noSync {
		return nil
	}
	d, err := os.Open(s.blobDir)
	if err != nil {
		return err
	}
	s.blobFD = d
	// Make the directory tree itself durable once.
	return syncTree(s.dir, s.blobDir)
}

// ensurePrivate creates path with mode 0600 if it is missing, and takes
// group and other permissions away from an existing one.
func ensurePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(fi.Mode().Perm() &^ 0o077); err != nil {
			return fmt.Errorf("sqlstore: %w", err)
		}
	}
	return nil
}

// restrict takes group and other permissions away from path if it exists
// (a WAL left by an older version keeps recent password-hash pages).
func restrict(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, fi.Mode().Perm()&^0o077); err != nil {
			return fmt.Errorf("sqlstore: %w", err)
		}
	}
	return nil
}

func (s *Store) dsn(writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "temp_store(MEMORY)") // savepoint sub-journals: no temp files
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		if s.noSync {
			q.Add("_pragma", "synchronous(OFF)")
		} else {
			// COMMIT does not wait for the disk: the durable stage
			// syncs the WAL before anyone is answered (durable.go).
			q.Add("_pragma", "synchronous(NORMAL)")
		}
	} else {
		q.Add("_pragma", "query_only(1)")
		// Readers map the database instead of copying pages with pread:
		// a third less CPU per OpenMessage of an inline blob (measured,
		// FETCH BODY[] of 1,000 3 KiB messages). Address space only; pages
		// not in the WAL are then read in place from the OS page cache.
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", readerMmapBytes))
	}
	u := url.URL{Scheme: "file", Path: filepath.Join(s.dir, "meta.db"), RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) open() error {
	lock, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	s.lock = lock
	exclusive := tryLockExclusive(lock)

	// meta.db holds password hashes: private to the owner. SQLite gives
	// the -wal and -shm files the database file's mode.
	if err := ensurePrivate(filepath.Join(s.dir, "meta.db")); err != nil {
		return err
	}
	for _, side := range []string{"meta.db-wal", "meta.db-shm"} {
		if err := restrict(filepath.Join(s.dir, side)); err != nil {
			return err
		}
	}
	s.wdb, err = sql.Open("sqlite", s.dsn(true))
	if err != nil {
		return err
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if s.wc, err = s.wdb.Conn(ctx); err != nil {
		return fmt.Errorf("sqlstore: open meta.db: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.openWAL(); err != nil {
		return err
	}
	if err := s.openAdminGen(); err != nil {
		return err
	}
	s.rdb, err = sql.Open("sqlite", s.dsn(false))
	if err != nil {
		return err
	}
	s.rdb.SetMaxOpenConns(8)
	s.rdb.SetMaxIdleConns(8)
	if exclusive {
		// No other Store has the directory open: nothing is in flight,
		// so files without metadata are garbage from a crash.
		if err := s.cleanOrphans(ctx); err != nil {
			s.log.Warn("sqlstore: orphan cleanup failed", "err", err)
		}
	}
	return lockShared(lock)
}

// Close stops the pipeline after the operations already taken, then closes
// the database. Later calls return nil; other methods return
// store.ErrClosed once Close has begun.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.submitMu.Lock()
		s.closed.Store(true) // no submission after this
		s.submitMu.Unlock()
		close(s.quit)
		<-s.writerEnd
		<-s.durableEnd
		s.stopBackground()
		s.logStats()
		s.feed.closeAll()
		s.closeErr = s.closeAll()
	})
	return s.closeErr
}

// logStats logs what the group commit did over the Store's life.
func (s *Store) logStats() {
	batches, ops := s.statBatches.Load(), s.statOps.Load()
	if batches == 0 {
		return
	}
	s.log.Info("store closed", "commits", batches, "operations", ops,
		"ops_per_commit", float64(ops)/float64(batches),
		"avg_commit", time.Duration(s.statTx.Load()/batches).String(),
		"blob_sync_total", time.Duration(s.statSync.Load()).String(),
		"wal_syncs", s.statWALSyncs.Load(),
		"wal_sync_total", time.Duration(s.statWALSync.Load()).String())
}

func (s *Store) closeAll() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	if s.wc != nil {
		errs = append(errs, s.wc.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rstmts.close(), s.rdb.Close())
	}
	if s.blobFD != nil {
		errs = append(errs, s.blobFD.Close())
	}
	if s.walFD != nil {
		errs = append(errs, s.walFD.Close())
	}
	if s.adminFD != nil {
		errs = append(errs, s.adminFD.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
