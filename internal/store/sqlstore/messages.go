package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"pillarbox/internal/store"
)

const messageCols = `uid, modseq, msg_id, size, flags, internal_date, internal_tz`

// rowScanner turns message rows into store.Messages with few allocations:
// the Scan destinations are reused from row to row and are *any, which
// database/sql fills without reflection; rows with the same flags share
// one flag slice (clipped, so an append by the caller copies; callers
// never modify flags in place) and rows with the same zone offset one
// *time.Location.
type rowScanner struct {
	mailboxID int64
	structure bool
	vals      [8]any
	dest      [8]any
	flags     map[string][]string
	zoneOff   int64
	zone      *time.Location
	pop       []byte
}

func newRowScanner(mailboxID int64, withStructure bool) *rowScanner {
	rs := &rowScanner{mailboxID: mailboxID, structure: withStructure, flags: map[string][]string{}}
	for i := range rs.vals {
		rs.dest[i] = &rs.vals[i]
	}
	return rs
}

// scan reads one row of messageCols (and structure when asked for).
func (rs *rowScanner) scan(r scanner) (store.Message, error) {
	n := 7
	if rs.structure {
		n = 8
	}
	clear(rs.vals[:])
	m := store.Message{MailboxID: rs.mailboxID}
	if err := r.Scan(rs.dest[:n]...); err != nil {
		return m, notFound(err)
	}
	v := &rs.vals
	m.UID = uint32(anyInt(v[0]))
	m.ModSeq = uint64(anyInt(v[1]))
	// The POP3 UID derives from the global message id: "p" + hex.
	rs.pop = strconv.AppendInt(append(rs.pop[:0], 'p'), anyInt(v[2]), 16)
	m.POP3UID = string(rs.pop)
	m.Size = anyInt(v[3])
	m.Flags = rs.decodeFlags(v[4])
	m.InternalDate = rs.date(anyInt(v[5]), anyInt(v[6]))
	if b, ok := v[7].([]byte); ok && len(b) > 0 {
		m.Structure = b // database/sql gave us our own copy
	}
	return m, nil
}

// anyInt is the integer database/sql stored in an *any destination.
func anyInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

func (rs *rowScanner) decodeFlags(v any) []string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	}
	if s == "" {
		return nil
	}
	if f, ok := rs.flags[s]; ok {
		return f
	}
	f := slices.Clip(decodeFlags(s))
	rs.flags[s] = f
	return f
}

func (rs *rowScanner) date(nanos, tz int64) time.Time {
	t := time.Unix(0, nanos)
	if tz == 0 {
		return t.UTC()
	}
	if rs.zone == nil || rs.zoneOff != tz {
		rs.zone, rs.zoneOff = time.FixedZone("", int(tz)), tz
	}
	return t.In(rs.zone)
}

func scanMessage(r scanner, mailboxID int64, withStructure bool) (store.Message, error) {
	return newRowScanner(mailboxID, withStructure).scan(r)
}

// listMessages runs a message query (mailbox ID as first argument) after
// checking that the mailbox exists. Without structure, a query over the
// whole mailbox is answered from (and fills) the Store's list cache.
func (s *Store) listMessages(ctx context.Context, mailboxID int64, withStructure bool, fromUID uint32, where string, args ...any) ([]store.Message, error) {
	cols := messageCols
	if withStructure {
		cols += ", structure"
	}
	cacheable := !withStructure && where == whereFromUID
	var out []store.Message
	err := s.read(ctx, func(r *rtx) error {
		var modseq, count int64
		if err := r.queryRow(`SELECT highest_modseq, messages FROM mailboxes WHERE id = ?`, mailboxID).Scan(&modseq, &count); err != nil {
			return notFound(err)
		}
		if cacheable {
			if cached, ok := s.lists.get(mailboxID, uint64(modseq), fromUID); ok {
				out = cached
				return nil
			}
		}
		if where == whereFromUID && fromUID <= 1 && count > 0 {
			out = make([]store.Message, 0, count) // the whole mailbox: no regrowing
		}
		rs := newRowScanner(mailboxID, withStructure)
		err := r.each(`SELECT `+cols+` FROM messages WHERE mailbox_id = ? AND `+where+` ORDER BY uid`,
			append([]any{mailboxID}, args...), func(row scanner) error {
				m, err := rs.scan(row)
				if err == nil {
					out = append(out, m)
				}
				return err
			})
		if err == nil && cacheable && fromUID <= 1 {
			s.lists.put(mailboxID, uint64(modseq), out)
		}
		return err
	})
	return out, err
}

const whereFromUID = `uid >= ?`

// Messages lists a mailbox in UID order from fromUID on.
func (s *Store) Messages(ctx context.Context, mailboxID int64, fromUID uint32, withStructure bool) ([]store.Message, error) {
	return s.listMessages(ctx, mailboxID, withStructure, fromUID, whereFromUID, int64(fromUID))
}

// ChangedSince returns the messages whose MODSEQ > sinceModSeq.
func (s *Store) ChangedSince(ctx context.Context, mailboxID int64, sinceModSeq uint64) ([]store.Message, error) {
	return s.listMessages(ctx, mailboxID, false, 0, `modseq > ?`, int64(sinceModSeq))
}

// Message returns one message with its structure.
func (s *Store) Message(ctx context.Context, mailboxID int64, uid uint32) (store.Message, error) {
	var m store.Message
	err := s.view(ctx, func(r *rtx) (err error) {
		m, err = scanMessage(r.queryRow(`SELECT `+messageCols+`, structure FROM messages
			WHERE mailbox_id = ? AND uid = ?`, mailboxID, int64(uid)), mailboxID, true)
		return err
	})
	return m, err
}

// OpenMessage opens prefix + blob of a message.
func (s *Store) OpenMessage(ctx context.Context, mailboxID int64, uid uint32) (store.MessageReader, error) {
	var prefix, data driverBytes
	var blobID string
	var blobSize int64
	var isFile bool
	err := s.view(ctx, func(r *rtx) error {
		return notFound(r.queryRow(`SELECT m.prefix, m.blob_id, b.size, b.data, b.data IS NULL FROM messages m
			JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.uid = ?`,
			mailboxID, int64(uid)).Scan(&prefix, &blobID, &blobSize, &data, &isFile))
	})
	if err != nil {
		return nil, err
	}
	return s.openReader(prefix, blobID, blobSize, data, isFile)
}

// driverBytes scans a BLOB column without database/sql's copy: it keeps
// the slice the driver returned. database/sql documents such memory as the
// driver's until the next Scan; modernc.org/sqlite allocates a fresh slice
// for every BLOB value it returns (conn.columnBlob: make + copy) and never
// reuses it, so keeping it is safe with this driver.
// TestDriverBytesNotReused checks that assumption whenever the driver
// changes.
type driverBytes []byte

func (b *driverBytes) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*b = nil
	case []byte:
		*b = v
	case string:
		*b = []byte(v)
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into bytes", src)
	}
	return nil
}

// Vanished returns the UIDs expunged with a MODSEQ > sinceModSeq.
func (s *Store) Vanished(ctx context.Context, mailboxID int64, sinceModSeq uint64) ([]uint32, error) {
	var out []uint32
	err := s.read(ctx, func(r *rtx) error {
		var n int
		if err := r.queryRow(`SELECT 1 FROM mailboxes WHERE id = ?`, mailboxID).Scan(&n); err != nil {
			return notFound(err)
		}
		return r.each(`SELECT uid FROM tombstones WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`,
			[]any{mailboxID, int64(sinceModSeq)}, func(row scanner) error {
				var uid int64
				if err := row.Scan(&uid); err != nil {
					return err
				}
				out = append(out, uint32(uid))
				return nil
			})
	})
	return out, err
}

// stored is a message row as the writer reads it back.
type stored struct {
	uid    uint32
	modseq uint64
	flags  []string
	size   int64
	blobID string
	msgID  int64
}

// selectUIDs returns the existing messages among uids, in UID order. It
// scans the UID range once instead of one lookup per UID.
func (t *wtx) selectUIDs(mailboxID int64, uids []uint32) ([]stored, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	want := make(map[uint32]bool, len(uids))
	lo, hi := uids[0], uids[0]
	for _, u := range uids {
		want[u] = true
		lo, hi = min(lo, u), max(hi, u)
	}
	rows, err := t.query(`SELECT uid, modseq, flags, size, blob_id, msg_id FROM messages
		WHERE mailbox_id = ? AND uid >= ? AND uid <= ? ORDER BY uid`, mailboxID, int64(lo), int64(hi))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var m stored
		var uid int64
		var flags string
		if err := rows.Scan(&uid, &m.modseq, &flags, &m.size, &m.blobID, &m.msgID); err != nil {
			return nil, err
		}
		if m.uid = uint32(uid); want[m.uid] {
			m.flags = decodeFlags(flags)
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

func (t *wtx) allUIDs(mailboxID int64) ([]uint32, error) {
	rows, err := t.query(`SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid`, mailboxID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, err
		}
		out = append(out, uint32(uid))
	}
	return out, rows.Err()
}

// StoreFlags changes flags (see store.Store). updated lists only the
// messages whose flags changed, each with its new MODSEQ.
func (s *Store) StoreFlags(ctx context.Context, mailboxID int64, uids []uint32, op store.FlagOp, flags []string, unchangedSince uint64) (updated []store.FlagUpdate, failed []uint32, err error) {
	fl, err := normFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	if op != store.FlagAdd && op != store.FlagRemove && op != store.FlagReplace {
		return nil, nil, store.ErrInvalidName
	}
	err = s.doRelaxed(ctx, func(t *wtx) error {
		updated, failed = nil, nil
		mb, err := t.mailboxByID(mailboxID)
		if err != nil {
			return err
		}
		msgs, err := t.selectUIDs(mailboxID, uids)
		if err != nil {
			return err
		}
		dUnseen, dDeleted := 0, 0
		for _, m := range msgs {
			if unchangedSince > 0 && m.modseq > unchangedSince {
				failed = append(failed, m.uid) // RFC 7162 3.1.3
				continue
			}
			nf := applyFlags(m.flags, op, fl)
			if slices.Equal(nf, m.flags) {
				continue
			}
			mb.HighestModSeq++
			if _, err := t.exec(`UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?`,
				encodeFlags(nf), mb.HighestModSeq, mailboxID, int64(m.uid)); err != nil {
				return err
			}
			s0, d0 := seenDeleted(m.flags)
			s1, d1 := seenDeleted(nf)
			dUnseen += s0 - s1
			dDeleted += d1 - d0
			updated = append(updated, store.FlagUpdate{UID: m.uid, ModSeq: mb.HighestModSeq, Flags: nf})
			t.change(store.Change{Kind: store.ChangeFlags, AccountID: mb.AccountID, MailboxID: mailboxID,
				UID: m.uid, ModSeq: mb.HighestModSeq, Flags: nf})
		}
		if len(updated) == 0 {
			return nil
		}
		_, err = t.exec(`UPDATE mailboxes SET highest_modseq = ?, unseen = unseen + ?, deleted = deleted + ? WHERE id = ?`,
			mb.HighestModSeq, dUnseen, dDeleted, mailboxID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return updated, failed, nil
}

// Expunge removes the given UIDs that exist and returns them.
func (s *Store) Expunge(ctx context.Context, mailboxID int64, uids []uint32) (expunged []uint32, err error) {
	err = s.do(ctx, func(t *wtx) error {
		got, blobs, err := t.expunge(mailboxID, uids)
		expunged = got
		if err != nil {
			return err
		}
		return t.blobGarbage(blobs)
	})
	if err != nil {
		return nil, err
	}
	return expunged, nil
}

// ExpungeMany expunges in several mailboxes in one transaction: all or
// none (see store.Store).
func (s *Store) ExpungeMany(ctx context.Context, sets []store.ExpungeSet) ([]store.ExpungeSet, error) {
	var out []store.ExpungeSet
	err := s.do(ctx, func(t *wtx) error {
		out = make([]store.ExpungeSet, len(sets))
		var blobs []string
		for i, set := range sets {
			uids, b, err := t.expunge(set.MailboxID, set.UIDs)
			if err != nil {
				return err // the transaction rolls back: nothing removed
			}
			out[i] = store.ExpungeSet{MailboxID: set.MailboxID, UIDs: uids}
			blobs = append(blobs, b...)
		}
		return t.blobGarbage(blobs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// expunge removes the existing messages among uids from one mailbox,
// updating its counts and the account's used bytes. It returns the UIDs
// removed and their blobs, which the caller passes to blobGarbage.
func (t *wtx) expunge(mailboxID int64, uids []uint32) (expunged []uint32, blobs []string, err error) {
	mb, err := t.mailboxByID(mailboxID)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := t.selectUIDs(mailboxID, uids)
	if err != nil {
		return nil, nil, err
	}
	var freed int64
	for _, m := range msgs {
		if err := t.removeMessage(&mb, m); err != nil {
			return nil, nil, err
		}
		expunged = append(expunged, m.uid)
		blobs = append(blobs, m.blobID)
		freed += m.size
	}
	if freed > 0 {
		if _, err := t.exec(`UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?`, freed, mb.AccountID); err != nil {
			return nil, nil, err
		}
	}
	return expunged, blobs, nil
}

// removeMessage deletes one message, leaves its tombstone with a new
// MODSEQ and updates mb's counts (in the database and in memory). The
// account's used bytes are the caller's business.
func (t *wtx) removeMessage(mb *store.Mailbox, m stored) error {
	mb.HighestModSeq++
	if err := t.mustTouch(`DELETE FROM messages WHERE mailbox_id = ? AND uid = ?`, mb.ID, int64(m.uid)); err != nil {
		return err
	}
	if _, err := t.exec(`INSERT INTO tombstones (mailbox_id, uid, modseq) VALUES (?, ?, ?)`,
		mb.ID, int64(m.uid), mb.HighestModSeq); err != nil {
		return err
	}
	seen, deleted := seenDeleted(m.flags)
	if _, err := t.exec(`UPDATE mailboxes SET highest_modseq = ?, messages = messages - 1, unseen = unseen - ?,
		deleted = deleted - ?, size = size - ? WHERE id = ?`,
		mb.HighestModSeq, 1-seen, deleted, m.size, mb.ID); err != nil {
		return err
	}
	mb.Messages--
	mb.Unseen -= 1 - seen
	mb.Deleted -= deleted
	mb.Size -= m.size
	t.change(store.Change{Kind: store.ChangeExpunge, AccountID: mb.AccountID, MailboxID: mb.ID, UID: m.uid, ModSeq: mb.HighestModSeq})
	return nil
}

// Copy copies messages into another mailbox of the same account, keeping
// flags and internal date; each copy gets a new UID and a new POP3 UID.
// It fails with store.ErrOverQuota when the copies would exceed the quota.
func (s *Store) Copy(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]store.UIDPair, error) {
	var pairs []store.UIDPair
	err := s.do(ctx, func(t *wtx) (err error) {
		pairs, err = t.copyMessages(srcMailboxID, uids, dstMailboxID, false)
		return err
	})
	return pairs, err
}

// Move moves messages (new UIDs in the destination, tombstones in the
// source); POP3 UIDs, flags and internal dates stay.
func (s *Store) Move(ctx context.Context, srcMailboxID int64, uids []uint32, dstMailboxID int64) ([]store.UIDPair, error) {
	var pairs []store.UIDPair
	err := s.do(ctx, func(t *wtx) (err error) {
		pairs, err = t.copyMessages(srcMailboxID, uids, dstMailboxID, true)
		return err
	})
	return pairs, err
}

func (t *wtx) copyMessages(srcID int64, uids []uint32, dstID int64, move bool) ([]store.UIDPair, error) {
	src, err := t.mailboxByID(srcID)
	if err != nil {
		return nil, err
	}
	dst, err := t.mailboxByID(dstID)
	if err != nil {
		return nil, err
	}
	if src.AccountID != dst.AccountID {
		return nil, store.ErrNotFound
	}
	msgs, err := t.selectUIDs(srcID, uids)
	if err != nil {
		return nil, err
	}
	if !move {
		var total int64
		for _, m := range msgs {
			total += m.size
		}
		if err := t.checkQuota(src.AccountID, total); err != nil {
			return nil, err
		}
	}
	dstp := &dst
	if src.ID == dst.ID {
		dstp = &src // one mailbox: one in-memory copy of its counters
	}
	pairs := make([]store.UIDPair, 0, len(msgs))
	for _, m := range msgs {
		row := msgRow{blobID: m.blobID, size: m.size, flags: m.flags}
		var date, tz int64
		if err := t.queryRow(`SELECT prefix, internal_date, internal_tz, structure FROM messages WHERE mailbox_id = ? AND uid = ?`,
			srcID, int64(m.uid)).Scan(&row.prefix, &date, &tz, &row.structure); err != nil {
			return nil, err
		}
		row.date = decodeDate(date, tz)
		if move {
			row.msgID = m.msgID // keeps the POP3 UID; the source row goes first (msg_id is unique)
			if err := t.removeMessage(&src, m); err != nil {
				return nil, err
			}
			// A move within the account leaves its used bytes alone:
			// appendMessage adds the size back.
			if _, err := t.exec(`UPDATE accounts SET used_bytes = used_bytes - ? WHERE id = ?`, m.size, src.AccountID); err != nil {
				return nil, err
			}
		}
		if err := t.appendMessage(dstp, &row); err != nil {
			return nil, err
		}
		pairs = append(pairs, store.UIDPair{Src: m.uid, Dst: dstp.UIDNext - 1})
	}
	return pairs, nil
}
