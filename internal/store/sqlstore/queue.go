package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"time"

	"pillarbox/internal/store"
)

// queueIDEncoding is lower-case base32 without padding: URL-safe.
var queueIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newQueueID returns 100 random bits as 20 URL-safe characters.
func newQueueID() string {
	var b [13]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return queueIDEncoding.EncodeToString(b[:])[:20]
}

func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	n, _ := encodeDate(t)
	return n
}

func timeOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// insertQueue stores a queue item for blob b and returns it as stored.
func (t *wtx) insertQueue(q *store.QueueItem, b *newBlob) (store.QueueItem, error) {
	item := *q
	item.ID = newQueueID()
	item.BlobID, item.Size = b.id, b.size
	if item.CreatedAt.IsZero() {
		item.CreatedAt = t.now
	}
	item.CreatedAt = fromNanos(item.CreatedAt.UnixNano())
	_, err := t.exec(`INSERT INTO queue (id, from_addr, blob_id, size, created_at, ret, env_id, smtputf8, body,
		require_tls, held, account_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		item.ID, item.From, item.BlobID, item.Size, item.CreatedAt.UnixNano(), item.Ret, item.EnvID,
		boolInt(item.SMTPUTF8), item.Body, boolInt(item.RequireTLS), boolInt(item.Held), item.AccountID)
	if err != nil {
		return item, err
	}
	item.Recipients = make([]store.QueueRecipient, len(q.Recipients))
	for i, r := range q.Recipients {
		if r.State == "" {
			r.State = store.RcptPending
		}
		r.NextAttempt = timeOrZero(nanosOrZero(r.NextAttempt))
		_, err := t.exec(`INSERT INTO queue_recipients (queue_id, seq, address, orcpt, notify, state, attempts,
			next_attempt, last_error, remote_mta, delay_notified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			item.ID, i, r.Address, r.ORcpt, r.Notify, r.State, r.Attempts, nanosOrZero(r.NextAttempt), r.LastError,
			r.RemoteMTA, boolInt(r.DelayNotified))
		if err != nil {
			return item, err
		}
		item.Recipients[i] = r
	}
	return item, nil
}

const queueCols = `id, from_addr, blob_id, size, created_at, ret, env_id, smtputf8, body, require_tls, held, account_id`

func scanQueueItem(r scanner) (store.QueueItem, error) {
	var q store.QueueItem
	var at int64
	var utf8, reqTLS, held int
	err := r.Scan(&q.ID, &q.From, &q.BlobID, &q.Size, &at, &q.Ret, &q.EnvID, &utf8, &q.Body, &reqTLS, &held, &q.AccountID)
	q.CreatedAt = fromNanos(at)
	q.SMTPUTF8, q.RequireTLS, q.Held = utf8 != 0, reqTLS != 0, held != 0
	return q, notFound(err)
}

// QueueItems lists the queue, oldest first.
func (s *Store) QueueItems(ctx context.Context) ([]store.QueueItem, error) {
	var out []store.QueueItem
	err := s.read(ctx, func(r *rtx) error {
		index := map[string]int{}
		err := r.each(`SELECT `+queueCols+` FROM queue ORDER BY created_at, id`, nil, func(row scanner) error {
			q, err := scanQueueItem(row)
			if err != nil {
				return err
			}
			index[q.ID] = len(out)
			out = append(out, q)
			return nil
		})
		if err != nil {
			return err
		}
		return queueRecipients(r, `SELECT `+rcptCols+` FROM queue_recipients ORDER BY queue_id, seq`, nil, func(id string, r store.QueueRecipient) {
			if i, ok := index[id]; ok {
				out[i].Recipients = append(out[i].Recipients, r)
			}
		})
	})
	return out, err
}

const rcptCols = `queue_id, address, orcpt, notify, state, attempts, next_attempt, last_error, remote_mta, delay_notified`

func queueRecipients(rt *rtx, q string, args []any, fn func(string, store.QueueRecipient)) error {
	return rt.each(q, args, func(row scanner) error {
		var id string
		var r store.QueueRecipient
		var next int64
		var delayed int
		if err := row.Scan(&id, &r.Address, &r.ORcpt, &r.Notify, &r.State, &r.Attempts, &next, &r.LastError,
			&r.RemoteMTA, &delayed); err != nil {
			return err
		}
		r.NextAttempt, r.DelayNotified = timeOrZero(next), delayed != 0
		fn(id, r)
		return nil
	})
}

// QueueItem returns one queue item.
func (s *Store) QueueItem(ctx context.Context, id string) (store.QueueItem, error) {
	var q store.QueueItem
	err := s.read(ctx, func(r *rtx) (err error) {
		if q, err = scanQueueItem(r.queryRow(`SELECT `+queueCols+` FROM queue WHERE id = ?`, id)); err != nil {
			return err
		}
		return queueRecipients(r, `SELECT `+rcptCols+` FROM queue_recipients WHERE queue_id = ? ORDER BY seq`, []any{id}, func(_ string, r store.QueueRecipient) {
			q.Recipients = append(q.Recipients, r)
		})
	})
	return q, err
}

// UpdateQueueRecipients writes state, attempts, next attempt and last
// error of the given recipients (matched by Address; an unknown address
// is store.ErrNotFound and nothing changes).
func (s *Store) UpdateQueueRecipients(ctx context.Context, id string, rcpts []store.QueueRecipient) error {
	return s.do(ctx, func(t *wtx) error {
		var n int
		if err := t.queryRow(`SELECT 1 FROM queue WHERE id = ?`, id).Scan(&n); err != nil {
			return notFound(err)
		}
		for _, r := range rcpts {
			if r.State == "" {
				r.State = store.RcptPending
			}
			err := t.mustTouch(`UPDATE queue_recipients SET state = ?, attempts = ?, next_attempt = ?, last_error = ?,
				remote_mta = ?, delay_notified = ? WHERE queue_id = ? AND address = ?`, r.State, r.Attempts,
				nanosOrZero(r.NextAttempt), r.LastError, r.RemoteMTA, boolInt(r.DelayNotified), id, r.Address)
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SetQueueHeld holds or releases a queue item.
func (s *Store) SetQueueHeld(ctx context.Context, id string, held bool) error {
	err := s.do(ctx, func(t *wtx) error {
		return t.mustTouch(`UPDATE queue SET held = ? WHERE id = ?`, boolInt(held), id)
	})
	if err == nil {
		s.bumpQueueGen()
	}
	return err
}

// RetryQueue makes the pending recipients of one item (or of all) due now.
func (s *Store) RetryQueue(ctx context.Context, id string) (int, error) {
	var n int
	err := s.do(ctx, func(t *wtx) error {
		if id != "" {
			var one int
			if err := t.queryRow(`SELECT 1 FROM queue WHERE id = ?`, id).Scan(&one); err != nil {
				return notFound(err)
			}
		}
		if _, err := t.exec(`UPDATE queue_recipients SET next_attempt = 0
			WHERE state = ? AND (? = '' OR queue_id = ?)`, store.RcptPending, id, id); err != nil {
			return err
		}
		if id != "" {
			n = 1
			return nil
		}
		return t.queryRow(`SELECT count(DISTINCT queue_id) FROM queue_recipients WHERE state = ?`, store.RcptPending).Scan(&n)
	})
	if err == nil {
		s.bumpQueueGen()
	}
	return n, err
}

// DeleteQueueItem removes a queue item and, when nothing else uses it,
// its blob.
func (s *Store) DeleteQueueItem(ctx context.Context, id string) error {
	return s.do(ctx, func(t *wtx) error {
		var blob string
		if err := t.queryRow(`SELECT blob_id FROM queue WHERE id = ?`, id).Scan(&blob); err != nil {
			return notFound(err)
		}
		if _, err := t.exec(`DELETE FROM queue_recipients WHERE queue_id = ?`, id); err != nil {
			return err
		}
		if err := t.mustTouch(`DELETE FROM queue WHERE id = ?`, id); err != nil {
			return err
		}
		return t.blobGarbage([]string{blob})
	})
}
