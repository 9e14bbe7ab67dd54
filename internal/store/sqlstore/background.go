package sqlstore

import (
	"context"
	"errors"
	"sync"
	"time"

	"pillarbox/internal/store"
)

// Background goroutines besides the write pipeline: the full-text
// indexer (fts.go) and the poller that notices commits of other
// processes (store.ChangeResync).
//
// Cross-process changes: every write of this Store goes through its one
// writer connection, and SQLite's PRAGMA data_version on a connection
// changes exactly when ANOTHER connection has committed. So while the
// change feed has subscribers, the poller runs that pragma through the
// writer (an operation like any other: it shares a batch with
// deliveries, or costs an empty transaction when the writer is idle)
// every resyncPoll, and when the value moved it sends every subscriber a
// store.ChangeResync with AccountID 0 (feed.resync). The first value is
// read at Open, so a commit of another process after Open is never
// missed; one made while nobody subscribed gives the next subscriber one
// needless ChangeResync at worst.

// resyncPoll is how often the poller looks for other processes' commits.
const resyncPoll = 500 * time.Millisecond

// background is the state of the background goroutines.
type background struct {
	stop    context.CancelFunc
	done    []chan struct{} // closed as each goroutine ends
	mu      sync.Mutex      // serialises checkResync
	version int64           // last data_version seen
}

// startBackground starts the poller and, unless noIndexer, the indexer.
func (s *Store) startBackground(noIndexer bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.bg.stop = cancel
	v, err := s.dataVersion(ctx)
	if err != nil {
		return err
	}
	s.bg.version = v
	start := func(fn func(context.Context, chan<- struct{})) {
		done := make(chan struct{})
		s.bg.done = append(s.bg.done, done)
		go fn(ctx, done)
	}
	start(s.resyncLoop)
	if !noIndexer {
		start(s.indexLoop)
	}
	return nil
}

// stopBackground stops the background goroutines and waits for them.
func (s *Store) stopBackground() {
	if s.bg.stop == nil {
		return
	}
	s.bg.stop()
	for _, d := range s.bg.done {
		<-d
	}
}

// dataVersion reads PRAGMA data_version on the writer connection.
func (s *Store) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.write(ctx, &op{readOnly: true, fn: func(t *wtx) error {
		return t.queryRow(`PRAGMA data_version`).Scan(&v)
	}})
	return v, err
}

// resyncLoop polls data_version while there are subscribers.
func (s *Store) resyncLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for sleepCtx(ctx, resyncPoll) {
		if !s.feed.hasSubscribers() {
			continue
		}
		err := s.checkResync(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("sqlstore: polling for other processes' changes", "err", err)
		}
	}
}

// checkResync sends ChangeResync to every subscriber if another
// connection has committed since the last check.
func (s *Store) checkResync(ctx context.Context) error {
	s.bg.mu.Lock()
	defer s.bg.mu.Unlock()
	v, err := s.dataVersion(ctx)
	if err != nil {
		return err
	}
	if v != s.bg.version {
		s.bg.version = v
		s.feed.resync()
	}
	return nil
}

func (f *feed) hasSubscribers() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs) > 0
}

// resync sends store.ChangeResync to every subscriber whose last
// ChangeResync is not still unread in its channel.
func (f *feed) resync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.subs {
		for sub := range m {
			if sub.lastResync && len(sub.queue) > 0 {
				continue // the last one sent is still queued: it covers this
			}
			f.queue(sub, store.Change{Kind: store.ChangeResync})
			sub.lastResync = true
		}
	}
}
