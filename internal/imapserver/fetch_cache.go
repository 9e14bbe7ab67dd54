package imapserver

import "sync"

// fetchCache keeps, per mailbox, the rendered ENVELOPE, BODY and
// BODYSTRUCTURE texts of messages. A message never changes and a (mailbox ID, UID)
// pair never names another message (UIDs are not reused, a recreated
// mailbox has a new ID), so entries never go stale; they are only
// dropped to stay within the memory budget, least recently used mailbox
// first. A repeated FETCH of headers, e.g. "FETCH 1:* (FLAGS UID
// ENVELOPE)", then costs one read of the rows without their structure
// (itself cached by sqlstore while the mailbox is unchanged) and no
// decoding or rendering: Dovecot's index cache plays this part there.
//
// Entries are immutable once cached; a FETCH that renders an item an
// entry lacks replaces it with a fuller copy. It is shared by the
// sessions of a Server and safe for concurrent use.
type fetchCache struct {
	mu    sync.Mutex
	limit int // bytes (estimated)
	bytes int
	tick  uint64
	boxes map[int64]*fetchBox
}

// fetchBox is the cache of one mailbox.
type fetchBox struct {
	msgs  map[uint32]*fetchEntry
	bytes int
	used  uint64
	full  bool // over the budget alone: no more entries are added
}

// fetchEntry is the cached FETCH data of one message. The texts are nil
// until a FETCH asked for them; they start with "(".
type fetchEntry struct {
	env  []byte // ENVELOPE
	body []byte // BODY (non-extensible BODYSTRUCTURE)
	bs   []byte // BODYSTRUCTURE
}

// fetchCacheBytes is the budget of a Server's fetch cache: about 24
// mailboxes of 10,000 messages with their envelopes.
const fetchCacheBytes = 128 << 20

// entryOverhead estimates the bytes of one cached entry besides its
// texts (the struct, its map slot).
const entryOverhead = 112

func (e *fetchEntry) cost() int { return entryOverhead + len(e.env) + len(e.body) + len(e.bs) }

func newFetchCache(limit int) *fetchCache {
	return &fetchCache{limit: limit, boxes: map[int64]*fetchBox{}}
}

// get sets out[i] to the entry of uids[i] (nil when not cached).
func (c *fetchCache) get(mb int64, uids []uint32, out []*fetchEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxes[mb]
	if b == nil {
		return
	}
	c.tick++
	b.used = c.tick
	for i, u := range uids {
		out[i] = b.msgs[u]
	}
}

// put adds or replaces entries. Other mailboxes are dropped, least
// recently used first, to stay within the budget; a mailbox that does not
// fit alone keeps what it has and takes no more.
func (c *fetchCache) put(mb int64, uids []uint32, ents []*fetchEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxes[mb]
	if b == nil {
		b = &fetchBox{msgs: make(map[uint32]*fetchEntry, len(uids))}
		c.boxes[mb] = b
	}
	c.tick++
	b.used = c.tick
	for i, u := range uids {
		e := ents[i]
		old := b.msgs[u]
		n := e.cost()
		if old != nil {
			n -= old.cost()
		} else if b.full {
			continue
		}
		if c.bytes+n > c.limit && !c.evict(mb, c.bytes+n-c.limit) {
			b.full = true
			continue
		}
		b.msgs[u] = e
		b.bytes += n
		c.bytes += n
	}
}

// evict drops least recently used mailboxes other than keep until need
// bytes are free; false if that is not possible (c.mu held).
func (c *fetchCache) evict(keep int64, need int) bool {
	for need > 0 {
		victim, oldest := int64(0), ^uint64(0)
		for id, b := range c.boxes {
			if id != keep && b.used < oldest {
				victim, oldest = id, b.used
			}
		}
		if oldest == ^uint64(0) {
			return false
		}
		n := c.boxes[victim].bytes
		c.bytes -= n
		need -= n
		delete(c.boxes, victim)
	}
	return true
}
