package sqlstore

import (
	"slices"
	"sort"
	"sync"
	"unsafe"

	"pillarbox/internal/store"
)

// listCache keeps, per mailbox, the message rows (without structure) the
// last whole-mailbox Messages call read, tagged with the mailbox's
// HIGHESTMODSEQ in that read's snapshot. Invariant it relies on: every
// write that changes a mailbox's message rows (Deliver, Copy, Move,
// StoreFlags, Expunge, the INBOX rename) raises that mailbox's
// highest_modseq in the same transaction, and mailbox IDs are never
// reused. So rows tagged with the value a read transaction sees are
// exactly what querying them in that transaction would return: Messages
// reads highest_modseq (it reads the mailbox row anyway) and copies the
// cached rows instead of scanning the table, which makes repeated
// SELECTs of a large mailbox (clients that reconnect, re-SELECT) cheap.
// Entries are immutable once cached (callers get copies; flag slices are
// shared and never modified); the least recently used mailbox is dropped
// beyond the memory budget.
type listCache struct {
	mu    sync.Mutex
	bytes int
	tick  uint64
	boxes map[int64]*listEntry
}

type listEntry struct {
	modseq uint64
	msgs   []store.Message // UID order, read-only
	bytes  int
	used   uint64
}

// listCacheBytes is the budget: about 250,000 messages.
const listCacheBytes = 32 << 20

// listRowBytes estimates the memory of one cached row (the struct, its
// POP3 UID string, its share of the flag slices).
const listRowBytes = int(unsafe.Sizeof(store.Message{})) + 16

// get returns a copy of the cached rows with UID >= fromUID when the
// entry of mailbox mb has the given HIGHESTMODSEQ.
func (c *listCache) get(mb int64, modseq uint64, fromUID uint32) ([]store.Message, bool) {
	c.mu.Lock()
	e := c.boxes[mb]
	if e == nil || e.modseq != modseq {
		c.mu.Unlock()
		return nil, false
	}
	c.tick++
	e.used = c.tick
	msgs := e.msgs
	c.mu.Unlock()
	i := sort.Search(len(msgs), func(i int) bool { return msgs[i].UID >= fromUID })
	if i == len(msgs) {
		return nil, true
	}
	return slices.Clone(msgs[i:]), true
}

// put caches the rows of mailbox mb read at HIGHESTMODSEQ modseq,
// replacing an entry read at a lower one.
func (c *listCache) put(mb int64, modseq uint64, msgs []store.Message) {
	n := len(msgs) * listRowBytes
	if n > listCacheBytes/2 {
		return // one huge mailbox would push out everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.boxes == nil {
		c.boxes = map[int64]*listEntry{}
	}
	if old := c.boxes[mb]; old != nil {
		if old.modseq >= modseq {
			return
		}
		c.bytes -= old.bytes
	}
	c.tick++
	c.boxes[mb] = &listEntry{modseq: modseq, msgs: slices.Clone(msgs), bytes: n, used: c.tick}
	c.bytes += n
	for c.bytes > listCacheBytes {
		victim, oldest := int64(0), ^uint64(0)
		for id, e := range c.boxes {
			if id != mb && e.used < oldest {
				victim, oldest = id, e.used
			}
		}
		if oldest == ^uint64(0) {
			return // only mb is left (it fits: n <= half the budget)
		}
		c.bytes -= c.boxes[victim].bytes
		delete(c.boxes, victim)
	}
}
