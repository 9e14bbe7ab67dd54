package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// msgRow is a message about to be inserted.
type msgRow struct {
	msgID     int64 // 0: allocate a new one (new POP3 UID)
	blobID    string
	prefix    []byte
	size      int64 // len(prefix) + blob size
	flags     []string
	date      time.Time
	structure []byte
}

// Deliver stores a delivery atomically and durably (see store.Store and
// the package comment). An empty LocalRecipient.Mailbox means INBOX.
func (s *Store) Deliver(ctx context.Context, d *store.Delivery) (store.DeliveryResult, error) {
	res, err := s.DeliverBatch(ctx, []*store.Delivery{d})
	if err != nil {
		return store.DeliveryResult{}, err
	}
	return res[0], nil
}

// DeliverBatch stores several deliveries in one operation of the writer:
// one savepoint, so all or none commit, in the order given.
func (s *Store) DeliverBatch(ctx context.Context, ds []*store.Delivery) ([]store.DeliveryResult, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	ps := make([]*prepared, 0, len(ds))
	undoAll := func() {
		for _, p := range ps {
			p.b.undo()
		}
	}
	for _, d := range ds {
		p, err := s.prepare(d)
		if err != nil {
			undoAll()
			return nil, err
		}
		ps = append(ps, p)
	}
	res := make([]store.DeliveryResult, len(ps))
	o := &op{undo: undoAll, cached: true, fn: func(t *wtx) error {
		for i, p := range ps {
			r, err := t.deliver(p.b, p.locals, p.structs, p.date, p.queue)
			if err != nil {
				return err
			}
			res[i] = r
		}
		return nil
	}}
	for _, p := range ps {
		if p.b.path != "" {
			o.blobs = append(o.blobs, p.b.path)
		}
	}
	if err := s.write(ctx, o); err != nil {
		return nil, err
	}
	return res, nil
}

// prepared is a delivery whose blob is written (not yet durable) and
// whose structures are parsed, ready for the writer.
type prepared struct {
	b       *newBlob
	locals  []store.LocalRecipient
	structs [][]byte
	date    time.Time
	queue   *store.QueueItem
}

// prepare checks a delivery, writes its blob and parses it per recipient.
func (s *Store) prepare(d *store.Delivery) (*prepared, error) {
	if d == nil || d.Blob == nil {
		return nil, errors.New("sqlstore: delivery without blob")
	}
	if len(d.Local) == 0 && d.Queue == nil {
		return nil, errors.New("sqlstore: delivery without recipients")
	}
	locals := make([]store.LocalRecipient, len(d.Local))
	for i, lr := range d.Local {
		if lr.Mailbox == "" {
			lr.Mailbox = "INBOX"
		}
		name, err := normMailbox(lr.Mailbox)
		if err != nil {
			return nil, err
		}
		flags, err := normFlags(lr.Flags)
		if err != nil {
			return nil, err
		}
		lr.Mailbox, lr.Flags = name, flags
		locals[i] = lr
	}
	b, err := s.putBlob(d.Blob)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: writing blob: %w", err)
	}
	structs, err := s.structures(b, locals)
	if err != nil {
		b.undo()
		return nil, err
	}
	date := d.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	return &prepared{b: b, locals: locals, structs: structs, date: date, queue: d.Queue}, nil
}

// structures parses prefix+blob for every local recipient.
func (s *Store) structures(b *newBlob, locals []store.LocalRecipient) ([][]byte, error) {
	if len(locals) == 0 {
		return nil, nil
	}
	data := b.data
	if data == nil {
		f, err := os.Open(b.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		data = f
	}
	out := make([][]byte, len(locals))
	for i, lr := range locals {
		r := &reader{prefix: lr.Prefix, blob: data, size: int64(len(lr.Prefix)) + b.size}
		p, err := message.Parse(r, r.size)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: parsing message: %w", err)
		}
		if out[i], err = p.MarshalBinary(); err != nil {
			return nil, fmt.Errorf("sqlstore: encoding structure: %w", err)
		}
	}
	return out, nil
}

func (t *wtx) deliver(b *newBlob, locals []store.LocalRecipient, structs [][]byte, date time.Time, q *store.QueueItem) (store.DeliveryResult, error) {
	res := store.DeliveryResult{BlobID: b.id, Size: b.size, Local: make([]store.LocalResult, len(locals))}
	var inline any // NULL for a file blob
	if b.path == "" {
		inline = nonNil(b.inline)
	}
	if _, err := t.exec(`INSERT INTO blobs (id, size, created_at, data) VALUES (?, ?, ?, ?)`, b.id, b.size, t.now.UnixNano(), inline); err != nil {
		return res, err
	}
	for i, lr := range locals {
		mb, err := t.deliveryMailbox(lr.AccountID, lr.Mailbox, lr.NoCreate)
		if err != nil {
			return res, err
		}
		size := int64(len(lr.Prefix)) + b.size
		if lr.CheckQuota {
			if err := t.checkQuota(lr.AccountID, size); err != nil {
				return res, err
			}
		}
		m := msgRow{blobID: b.id, prefix: lr.Prefix, size: size, flags: lr.Flags, date: date, structure: structs[i]}
		if err := t.appendMessage(mb, &m); err != nil {
			return res, err
		}
		res.Local[i] = store.LocalResult{MailboxID: mb.ID, UIDValidity: mb.UIDValidity, UID: mb.UIDNext - 1, ModSeq: mb.HighestModSeq}
	}
	if q != nil {
		item, err := t.insertQueue(q, b)
		if err != nil {
			return res, err
		}
		res.Queue = &item
	}
	return res, nil
}

// deliveryMailbox returns the mailbox a delivery goes to, creating it if
// needed (unless noCreate); through the transaction's cache when there is one.
func (t *wtx) deliveryMailbox(accountID int64, name string, noCreate bool) (*store.Mailbox, error) {
	var mb *store.Mailbox
	var err error
	if t.cache != nil {
		mb, err = t.cachedMailbox(accountID, name)
	} else {
		var m store.Mailbox
		m, err = t.mailboxByName(accountID, name)
		mb = &m
	}
	if err != store.ErrNotFound {
		return mb, err
	}
	if noCreate { // store.LocalRecipient.NoCreate (IMAP APPEND: TRYCREATE)
		return nil, fmt.Errorf("sqlstore: mailbox %q: %w", name, store.ErrNotFound)
	}
	if err := t.accountExists(accountID); err != nil {
		return nil, err
	}
	m, err := t.createMailbox(accountID, name, "", false)
	if err != nil {
		return nil, err
	}
	if t.cache != nil {
		return t.addCachedMailbox(m), nil
	}
	return &m, nil
}

func (t *wtx) accountExists(id int64) error {
	var n int
	return notFound(t.queryRow(`SELECT 1 FROM accounts WHERE id = ?`, id).Scan(&n))
}

// checkQuota fails with store.ErrOverQuota when adding bytes would take
// the account over its quota.
func (t *wtx) checkQuota(accountID, add int64) error {
	var quota, used int64
	if err := t.queryRow(`SELECT quota_bytes, used_bytes FROM accounts WHERE id = ?`, accountID).Scan(&quota, &used); err != nil {
		return notFound(err)
	}
	if t.cache != nil {
		used += t.cache.used[accountID] // not yet written
	}
	if quota > 0 && used+add > quota {
		return store.ErrOverQuota
	}
	return nil
}

// appendMessage inserts m as the next UID of mb with a new MODSEQ and
// updates the counts; mb is advanced in place. With a txCache, mb must be
// the cached row (deliveryMailbox): the counts are written by flushCache.
func (t *wtx) appendMessage(mb *store.Mailbox, m *msgRow) error {
	if mb.UIDNext == math.MaxUint32 {
		return fmt.Errorf("sqlstore: mailbox %d has no UIDs left", mb.ID)
	}
	if m.msgID == 0 {
		id, err := t.nextSeq(seqMessage)
		if err != nil {
			return err
		}
		m.msgID = id
	}
	uid, modseq := mb.UIDNext, mb.HighestModSeq+1
	date, tz := encodeDate(m.date)
	_, err := t.exec(`INSERT INTO messages (mailbox_id, uid, modseq, msg_id, blob_id, prefix, size, flags,
		internal_date, internal_tz, structure) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		mb.ID, int64(uid), modseq, m.msgID, m.blobID, nonNil(m.prefix), m.size, encodeFlags(m.flags), date, tz, m.structure)
	if err != nil {
		return err
	}
	seen, deleted := seenDeleted(m.flags)
	if t.cache != nil {
		// mb is the cached row: flushCache writes its counters.
		t.cache.dirty[mb.ID] = true
		t.cache.used[mb.AccountID] += m.size
	} else {
		_, err = t.exec(`UPDATE mailboxes SET uid_next = ?, highest_modseq = ?, messages = messages + 1,
			unseen = unseen + ?, deleted = deleted + ?, size = size + ? WHERE id = ?`,
			int64(uid)+1, modseq, 1-seen, deleted, m.size, mb.ID)
		if err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE accounts SET used_bytes = used_bytes + ? WHERE id = ?`, m.size, mb.AccountID); err != nil {
			return err
		}
	}
	mb.UIDNext, mb.HighestModSeq = uid+1, modseq
	mb.Messages++
	mb.Unseen += 1 - seen
	mb.Deleted += deleted
	mb.Size += m.size
	t.change(store.Change{Kind: store.ChangeAppend, AccountID: mb.AccountID, MailboxID: mb.ID, UID: uid, ModSeq: modseq, Flags: m.flags})
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// encodeDate stores a time as Unix nanoseconds (clamped to the range
// int64 nanoseconds can hold) and its zone offset in seconds.
func encodeDate(d time.Time) (nanos, tz int64) {
	lo, hi := time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)
	if d.Before(lo) {
		d = lo
	} else if d.After(hi) {
		d = hi
	}
	_, off := d.Zone()
	return d.UnixNano(), int64(off)
}

func decodeDate(nanos, tz int64) time.Time {
	t := time.Unix(0, nanos)
	if tz == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(tz)))
}
