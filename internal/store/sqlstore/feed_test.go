package sqlstore

import (
	"testing"

	"pillarbox/internal/store"
)

func newTestFeed() *Store {
	s := &Store{}
	s.feed.subs = map[int64]map[*subscriber]struct{}{}
	return s
}

func changes(acct int64, from, n int) []store.Change {
	out := make([]store.Change, n)
	for i := range out {
		out[i] = store.Change{Kind: store.ChangeAppend, AccountID: acct, UID: uint32(from + i)}
	}
	return out
}

// Changes wait in order, all available at once, up to feedMax.
func TestFeedQueueKeepsOrder(t *testing.T) {
	s := newTestFeed()
	sub := s.Subscribe(1)
	defer sub.Close()
	s.feed.publish(changes(1, 1, feedMax))
	<-sub.Ready()
	got := sub.Take()
	if len(got) != feedMax {
		t.Fatalf("took %d changes, want %d", len(got), feedMax)
	}
	for i, c := range got {
		if c.UID != uint32(i+1) {
			t.Fatalf("change %d: %+v", i, c)
		}
	}
	if got := sub.Take(); got != nil {
		t.Fatalf("second Take: %+v", got)
	}
}

// Past feedMax the queue becomes one Kind 0 change; later changes follow
// it; other subscribers are not affected; an idle subscriber holds no
// queue.
func TestFeedFallBehind(t *testing.T) {
	s := newTestFeed()
	sub := s.Subscribe(1)
	defer sub.Close()
	other := s.Subscribe(2)
	defer other.Close()
	s.feed.publish(changes(1, 1, feedMax+5))
	s.feed.publish(changes(1, 100000, 2))
	s.feed.publish(changes(2, 1, 1))
	got := sub.Take()
	// Kind 0 replaced the first feedMax+1; the 4 after it and the 2 later follow.
	if n := len(got); n != 7 || got[0].Kind != 0 || got[0].AccountID != 1 || got[n-2].UID != 100000 || got[n-1].UID != 100001 {
		t.Fatalf("after falling behind: %d changes, first %+v", len(got), got[0])
	}
	if got := other.Take(); len(got) != 1 || got[0].UID != 1 {
		t.Fatalf("other account: %+v", got)
	}
	if q := sub.(*subscriber).queue; q != nil {
		t.Fatalf("queue kept after Take: cap %d", cap(q))
	}
}

// Close stops delivery; closing the feed gives a Kind 0 to everyone.
func TestFeedCloseAndCloseAll(t *testing.T) {
	s := newTestFeed()
	sub := s.Subscribe(1)
	s.feed.publish(changes(1, 1, 3))
	sub.Close()
	sub.Close()
	if got := sub.Take(); got != nil {
		t.Fatalf("Take after Close: %+v", got)
	}
	sub2 := s.Subscribe(1)
	s.feed.closeAll()
	if got := sub2.Take(); len(got) != 1 || got[0].Kind != 0 {
		t.Fatalf("after closeAll: %+v", got)
	}
	sub3 := s.Subscribe(1)
	if got := sub3.Take(); len(got) != 1 || got[0].Kind != 0 {
		t.Fatalf("subscribing to a closed feed: %+v", got)
	}
}
