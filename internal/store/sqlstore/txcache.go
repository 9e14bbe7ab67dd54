package sqlstore

import (
	"maps"

	"pillarbox/internal/store"
)

// txCache lets the deliveries of one write transaction share work instead
// of repeating statements per message:
//
//   - sequence values: the first allocation of a sequence in the
//     transaction is an UPDATE ... RETURNING; later ones are counted in
//     memory and written back once (flush). Values only ever grow, so an
//     id used by an operation that rolled back is skipped, never reused;
//   - mailbox rows by (account, name): read once, then kept up to date in
//     memory by appendMessage; their new counters (UIDNEXT,
//     HIGHESTMODSEQ, counts) are written once per mailbox (flush);
//   - account used bytes: added up in memory, written once per account.
//
// Only operations marked op.cached use it (deliveries). The writer
// flushes and empties the cache, outside every savepoint, before any
// other operation runs and before COMMIT, so everything else reads and
// writes the rows directly and a flush is never undone by a savepoint
// rollback. When a cached operation fails, its savepoint is rolled back
// and the cache restored to its state before the operation (restore).
// The transaction holds the write lock (BEGIN IMMEDIATE), so no other
// connection changes these rows meanwhile.
type txCache struct {
	seqs   map[string]*seqAlloc
	mboxes map[mboxKey]*store.Mailbox
	dirty  map[int64]bool  // mailbox IDs whose counters need writing
	used   map[int64]int64 // account ID -> bytes to add to used_bytes
}

// seqAlloc is a sequence as this transaction sees it.
type seqAlloc struct{ last, stored int64 } // last given out; value in the table

type mboxKey struct {
	account int64
	name    string
}

func newTxCache() *txCache {
	return &txCache{
		seqs:   map[string]*seqAlloc{},
		mboxes: map[mboxKey]*store.Mailbox{},
		dirty:  map[int64]bool{},
		used:   map[int64]int64{},
	}
}

func (c *txCache) empty() bool {
	return len(c.seqs) == 0 && len(c.mboxes) == 0 && len(c.used) == 0
}

// cacheSnapshot is the part of the cache an operation's rollback restores.
// Sequences are not restored: skipping values is harmless.
type cacheSnapshot struct {
	mboxes map[mboxKey]store.Mailbox
	dirty  map[int64]bool
	used   map[int64]int64
}

func (c *txCache) snapshot() cacheSnapshot {
	s := cacheSnapshot{mboxes: make(map[mboxKey]store.Mailbox, len(c.mboxes)), dirty: maps.Clone(c.dirty), used: maps.Clone(c.used)}
	for k, mb := range c.mboxes {
		s.mboxes[k] = *mb
	}
	return s
}

// restore brings the cache back to s after the savepoint of a failed
// operation was rolled back. Mailboxes first seen by that operation are
// dropped (their rows may have been created by it).
func (c *txCache) restore(s cacheSnapshot) {
	for k, mb := range c.mboxes {
		if old, ok := s.mboxes[k]; ok {
			*mb = old
		} else {
			delete(c.mboxes, k)
		}
	}
	c.dirty, c.used = s.dirty, s.used
}

// flush writes what the cache holds back to the database and empties it.
func (t *wtx) flushCache(c *txCache) error {
	for name, sq := range c.seqs {
		if sq.last > sq.stored {
			if _, err := t.exec(`UPDATE sequences SET value = ? WHERE name = ?`, sq.last, name); err != nil {
				return err
			}
		}
	}
	for _, mb := range c.mboxes {
		if !c.dirty[mb.ID] {
			continue
		}
		_, err := t.exec(`UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, messages = ?, unseen = ?,
			deleted = ?, size = ? WHERE id = ?`,
			int64(mb.UIDNext), mb.HighestModSeq, mb.Messages, mb.Unseen, mb.Deleted, mb.Size, mb.ID)
		if err != nil {
			return err
		}
	}
	for id, n := range c.used {
		if n == 0 {
			continue
		}
		if _, err := t.exec(`UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?`, n, id); err != nil {
			return err
		}
	}
	clear(c.seqs)
	clear(c.mboxes)
	clear(c.dirty)
	clear(c.used)
	return nil
}

// cachedSeq allocates from a sequence through the cache.
func (t *wtx) cachedSeq(name string) (int64, error) {
	if sq, ok := t.cache.seqs[name]; ok {
		sq.last++
		return sq.last, nil
	}
	v, err := t.incSeq(name)
	if err != nil {
		return 0, err
	}
	t.cache.seqs[name] = &seqAlloc{last: v, stored: v}
	return v, nil
}

// cachedMailbox returns the cached row of a mailbox, reading it on first
// use; the caller may advance it (appendMessage marks it dirty).
func (t *wtx) cachedMailbox(accountID int64, name string) (*store.Mailbox, error) {
	k := mboxKey{accountID, name}
	if mb, ok := t.cache.mboxes[k]; ok {
		return mb, nil
	}
	mb, err := t.mailboxByName(accountID, name)
	if err != nil {
		return nil, err
	}
	t.cache.mboxes[k] = &mb
	return &mb, nil
}

// addCachedMailbox caches a mailbox this transaction has just created.
func (t *wtx) addCachedMailbox(mb store.Mailbox) *store.Mailbox {
	p := &mb
	t.cache.mboxes[mboxKey{mb.AccountID, mb.Name}] = p
	return p
}
