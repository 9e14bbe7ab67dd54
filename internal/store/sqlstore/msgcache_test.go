package sqlstore

import (
	"context"
	"reflect"
	"testing"

	"pillarbox/internal/store"
)

// TestListCacheFollowsWrites warms the list cache of two mailboxes before
// every kind of write and checks that Messages then returns exactly what
// an uncached read (ChangedSince 0: every message, no cache) returns: a
// write that changed rows without raising HIGHESTMODSEQ would show up as
// a stale answer here.
func TestListCacheFollowsWrites(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{NoSync: true, NoIndexer: true})
	a := setup(t, s)
	ctx := context.Background()
	inbox := mustInbox(t, s, a.ID)
	other, err := s.CreateMailbox(ctx, a.ID, "Other", "")
	must(t, err)
	for i := 0; i < 5; i++ {
		deliver(t, s, a.ID, msg("m"))
	}
	check := func(step string) {
		t.Helper()
		for _, mb := range []int64{inbox, other.ID} {
			got, err := s.Messages(ctx, mb, 1, false)
			if err != nil {
				t.Fatalf("%s: Messages: %v", step, err)
			}
			want, err := s.ChangedSince(ctx, mb, 0)
			must(t, err)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: mailbox %d: cached %+v, store %+v", step, mb, got, want)
			}
			tail, err := s.Messages(ctx, mb, 3, false)
			must(t, err)
			var wantTail []store.Message
			for _, m := range want {
				if m.UID >= 3 {
					wantTail = append(wantTail, m)
				}
			}
			if !reflect.DeepEqual(tail, wantTail) {
				t.Fatalf("%s: mailbox %d from UID 3: %+v, want %+v", step, mb, tail, wantTail)
			}
		}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"deliver", func() error { deliver(t, s, a.ID, msg("n")); return nil }},
		{"flags", func() error {
			_, _, err := s.StoreFlags(ctx, inbox, []uint32{1, 2}, store.FlagAdd, []string{store.FlagSeen, "Work"}, 0)
			return err
		}},
		{"expunge", func() error { _, err := s.Expunge(ctx, inbox, []uint32{2}); return err }},
		{"copy", func() error { _, err := s.Copy(ctx, inbox, []uint32{1, 3}, other.ID); return err }},
		{"move", func() error { _, err := s.Move(ctx, inbox, []uint32{4}, other.ID); return err }},
		{"flags other", func() error {
			_, _, err := s.StoreFlags(ctx, other.ID, []uint32{1}, store.FlagReplace, nil, 0)
			return err
		}},
		{"rename inbox", func() error { return s.RenameMailbox(ctx, inbox, "Old") }},
	}
	check("start")
	for _, st := range steps {
		must(t, st.do())
		check(st.name)
	}
	// The cached copy is the caller's: changing it does not change the cache.
	got, err := s.Messages(ctx, other.ID, 1, false)
	must(t, err)
	got[0].UID = 999
	again, err := s.Messages(ctx, other.ID, 1, false)
	must(t, err)
	if again[0].UID == 999 {
		t.Fatal("Messages returned the cache's own rows")
	}
	must(t, s.DeleteMailbox(ctx, other.ID))
	if _, err := s.Messages(ctx, other.ID, 1, false); err != store.ErrNotFound {
		t.Fatalf("deleted mailbox: %v, want ErrNotFound", err)
	}
}

// TestListCacheBudget: entries beyond the budget drop the least recently
// used mailbox; a mailbox over half the budget is not cached.
func TestListCacheBudget(t *testing.T) {
	var c listCache
	rows := func(n int) []store.Message {
		out := make([]store.Message, n)
		for i := range out {
			out[i].UID = uint32(i + 1)
		}
		return out
	}
	per := listCacheBytes / listRowBytes / 3 // a third of the budget each
	c.put(1, 5, rows(per))
	c.put(2, 5, rows(per))
	if _, ok := c.get(1, 5, 1); !ok { // 1 is now more recent than 2
		t.Fatal("mailbox 1 not cached")
	}
	c.put(3, 5, rows(per))
	c.put(4, 5, rows(per)) // over budget: 2 goes first
	if _, ok := c.get(2, 5, 1); ok {
		t.Fatal("least recently used mailbox 2 kept")
	}
	if _, ok := c.get(4, 5, 1); !ok {
		t.Fatal("mailbox 4 not cached")
	}
	if c.bytes > listCacheBytes {
		t.Fatalf("%d bytes cached, budget %d", c.bytes, listCacheBytes)
	}
	if _, ok := c.get(4, 6, 1); ok {
		t.Fatal("entry served for another HIGHESTMODSEQ")
	}
	c.put(4, 4, rows(1)) // an older read does not replace a newer one
	if got, _ := c.get(4, 5, 1); len(got) != per {
		t.Fatalf("older read replaced the entry: %d rows", len(got))
	}
	c.put(5, 5, rows(listCacheBytes/listRowBytes/2+1))
	if _, ok := c.get(5, 5, 1); ok {
		t.Fatal("a mailbox over half the budget was cached")
	}
}
