package sqlstore

import (
	"sync"

	"pillarbox/internal/store"
)

// feedBuffer is the capacity of a subscriber's channel. One slot is kept
// free for the final Kind 0 change sent when the subscriber falls behind.
const feedBuffer = 1024

// feed fans committed changes out to subscribers. Publishing never blocks.
type feed struct {
	mu     sync.Mutex
	subs   map[int64]map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	account int64
	ch      chan store.Change
	// lastResync: the last change sent was a ChangeResync (feed.resync
	// sends no second one while it is unread).
	lastResync bool
}

// Subscribe returns the change feed of one account (see store.Store).
func (s *Store) Subscribe(accountID int64) (<-chan store.Change, func()) {
	f := &s.feed
	sub := &subscriber{account: accountID, ch: make(chan store.Change, feedBuffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	m := f.subs[accountID]
	if m == nil {
		m = map[*subscriber]struct{}{}
		f.subs[accountID] = m
	}
	m[sub] = struct{}{}
	return sub.ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.drop(sub)
	}
}

// drop removes and closes sub if it is still subscribed. f.mu is held.
func (f *feed) drop(sub *subscriber) {
	m := f.subs[sub.account]
	if _, ok := m[sub]; !ok {
		return
	}
	delete(m, sub)
	if len(m) == 0 {
		delete(f.subs, sub.account)
	}
	close(sub.ch)
}

func (f *feed) publish(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		for sub := range f.subs[c.AccountID] {
			if len(sub.ch) >= cap(sub.ch)-1 {
				sub.ch <- store.Change{AccountID: c.AccountID} // Kind 0: resynchronise
				f.drop(sub)
				continue
			}
			c := c
			c.Flags = append([]string(nil), c.Flags...)
			sub.ch <- c
			sub.lastResync = false
		}
	}
}

func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.subs {
		for sub := range m {
			f.drop(sub)
		}
	}
	f.closed = true
}
