package imapserver

import (
	"sync"

	"pillarbox/internal/imap"
)

// searchCache keeps, per mailbox, what SEARCH needs of each message
// beyond its flags: RFC822.SIZE, the days of the internal date and of the
// Date header, the decoded Subject and address lists, and the decoded
// values of header fields HEADER asked for. All of it is fixed for the
// life of a message, and a (mailbox ID, UID) pair never names another
// message (UIDs are not reused, a recreated mailbox has a new ID), so
// entries never go stale; they are only dropped to stay within the
// memory budget, least recently used mailbox first. Flags and MODSEQ
// come from the session's view, which the change feed keeps current, so
// a repeated search over a large mailbox touches the store only for
// BODY/TEXT and for messages it has not seen. (Dovecot's index cache
// plays this part there.)
//
// It is shared by the sessions of a Server and safe for concurrent use.
type searchCache struct {
	mu    sync.Mutex
	limit int // bytes (estimated)
	bytes int
	tick  uint64
	boxes map[int64]*searchBox
}

// searchBox is the cache of one mailbox.
type searchBox struct {
	msgs  map[uint32]*searchFields
	hdrs  map[string]map[uint32][]string // lower-case field name -> UID -> folded values (nil: absent)
	used  uint64
	bytes int
}

// searchFields are the fixed search data of one message. Read-only once
// cached.
type searchFields struct {
	size    int64
	day     int32 // internal date, yyyymmdd in its own zone
	hasEnv  bool  // the fields below are set
	sentDay int32 // Date header (internal date when missing or unreadable)
	bodyAt  int64 // end of the header section; 0 if unknown
	subject string
	addrs   [numAddrFields]string
}

// searchCacheBytes is the budget of one search cache: about 10
// mailboxes of 10,000 messages, shared by SEARCH and UID SEARCH of every
// session of a Server.
const searchCacheBytes = 32 << 20

// fieldOverhead estimates the bytes of one cached entry besides its strings.
const fieldOverhead = 160

func newSearchCache(limit int) *searchCache {
	return &searchCache{limit: limit, boxes: map[int64]*searchBox{}}
}

// get fills out[i] with the cached fields of uids[i] (nil when missing,
// or without the envelope when env is needed).
func (c *searchCache) get(mb int64, uids []uint32, out []*searchFields, env bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxes[mb]
	if b == nil {
		return
	}
	c.tick++
	b.used = c.tick
	for i, u := range uids {
		if f := b.msgs[u]; f != nil && (f.hasEnv || !env) {
			out[i] = f
		}
	}
}

// put adds fields.
func (c *searchCache) put(mb int64, fields map[uint32]*searchFields) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.box(mb)
	for u, f := range fields {
		n := fieldOverhead + len(f.subject)
		for _, a := range f.addrs {
			n += len(a)
		}
		if old := b.msgs[u]; old != nil {
			continue // the same message: keep the first (with env if it had it)
		}
		b.msgs[u] = f
		b.bytes += n
		c.bytes += n
	}
	c.evict(mb)
}

// header returns the cached values of header field name of uid.
func (c *searchCache) header(mb int64, name string, uid uint32) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.boxes[mb]
	if b == nil {
		return nil, false
	}
	vals, ok := b.hdrs[name][uid]
	return vals, ok
}

// putHeader caches the values of header field name of uid.
func (c *searchCache) putHeader(mb int64, name string, uid uint32, vals []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.box(mb)
	m := b.hdrs[name]
	if m == nil {
		m = map[uint32][]string{}
		b.hdrs[name] = m
	}
	if _, ok := m[uid]; ok {
		return
	}
	n := 48 + len(name)/8
	for _, v := range vals {
		n += len(v) + 16
	}
	m[uid] = vals
	b.bytes += n
	c.bytes += n
	c.evict(mb)
}

// box returns the cache of mailbox mb, creating it (c.mu held).
func (c *searchCache) box(mb int64) *searchBox {
	b := c.boxes[mb]
	if b == nil {
		b = &searchBox{msgs: map[uint32]*searchFields{}, hdrs: map[string]map[uint32][]string{}}
		c.boxes[mb] = b
	}
	c.tick++
	b.used = c.tick
	return b
}

// evict drops least recently used mailboxes other than keep until the
// cache is within its limit; if keep alone is over it, keep is dropped
// too (c.mu held).
func (c *searchCache) evict(keep int64) {
	for c.bytes > c.limit {
		victim, oldest := int64(0), ^uint64(0)
		for id, b := range c.boxes {
			if id != keep && b.used < oldest {
				victim, oldest = id, b.used
			}
		}
		if oldest == ^uint64(0) {
			victim = keep
		}
		c.bytes -= c.boxes[victim].bytes
		delete(c.boxes, victim)
		if victim == keep {
			return
		}
	}
}

// cmdSearchShared runs SEARCH and UID SEARCH with the Server's one search
// cache, shared by every session (its entries never go stale: a message's
// search data never changes and (mailbox, UID) is never reused).
func cmdSearchShared(s *session, cmd *imap.Command) error {
	return cmdSearch(s, cmd, s.srv.search)
}
