package sqlstore

import (
	"sync"

	"pillarbox/internal/store"
)

// feedMax is how many changes may wait for one subscriber. Beyond it the
// subscriber has fallen behind: what waits is replaced by one Kind 0
// change (store.Subscription).
const feedMax = 4096

// feed fans committed changes out to subscribers. Publishing never blocks:
// changes wait in each subscriber's queue (a slice that exists only while
// something waits, so an idle subscriber costs about a hundred bytes) and
// a capacity-1 channel says that something does.
type feed struct {
	mu     sync.Mutex
	subs   map[int64]map[*subscriber]struct{}
	closed bool
}

// subscriber is one Subscribe call; queue, closed and lastResync are
// guarded by feed.mu.
type subscriber struct {
	f       *feed
	account int64
	ready   chan struct{} // capacity 1
	queue   []store.Change
	closed  bool
	// lastResync: the last change queued was a ChangeResync (feed.resync
	// sends no second one while it is unread).
	lastResync bool
}

// Subscribe returns the change feed of one account (see store.Store).
func (s *Store) Subscribe(accountID int64) store.Subscription {
	f := &s.feed
	sub := &subscriber{f: f, account: accountID, ready: make(chan struct{}, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.queue(sub, store.Change{AccountID: accountID}) // Kind 0: nothing more comes
		return sub
	}
	m := f.subs[accountID]
	if m == nil {
		m = map[*subscriber]struct{}{}
		f.subs[accountID] = m
	}
	m[sub] = struct{}{}
	return sub
}

func (sub *subscriber) Ready() <-chan struct{} { return sub.ready }

func (sub *subscriber) Take() []store.Change {
	sub.f.mu.Lock()
	defer sub.f.mu.Unlock()
	q := sub.queue
	sub.queue = nil
	return q
}

func (sub *subscriber) Close() {
	f := sub.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unlist(sub)
	sub.closed = true
	sub.queue = nil
}

// unlist removes sub from the subscribers. f.mu is held.
func (f *feed) unlist(sub *subscriber) {
	m := f.subs[sub.account]
	delete(m, sub)
	if len(m) == 0 {
		delete(f.subs, sub.account)
	}
}

// queue adds c to sub's queue (or, past feedMax, replaces the queue with
// a Kind 0 change) and signals it. f.mu is held.
func (f *feed) queue(sub *subscriber, c store.Change) {
	if sub.closed {
		return
	}
	switch {
	case len(sub.queue) < feedMax:
		sub.queue = append(sub.queue, c)
	default:
		clear(sub.queue)
		sub.queue = append(sub.queue[:0], store.Change{AccountID: sub.account})
	}
	select {
	case sub.ready <- struct{}{}:
	default:
	}
}

func (f *feed) publish(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		for sub := range f.subs[c.AccountID] {
			c := c
			c.Flags = append([]string(nil), c.Flags...)
			f.queue(sub, c)
			sub.lastResync = false
		}
	}
}

// closeAll ends the feed: every subscriber gets a Kind 0 change and
// nothing after it.
func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.subs {
		for sub := range m {
			f.queue(sub, store.Change{AccountID: sub.account})
			f.unlist(sub)
		}
	}
	f.closed = true
}
