package sqlstore

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// SearchText finds the messages of a mailbox whose text contains substr
// (see store.Store). All of it runs in one read transaction, so every
// message of one snapshot is looked at exactly once:
//
//   - indexed messages: for a folded substr of 3 or more runes, the
//     trigram index gives the candidates (a phrase query: the trigrams of
//     substr in a row, that is substr as a substring) and the stored text
//     confirms each; shorter ones (the trigram index cannot help) and
//     ones with control characters read the stored text of every message;
//   - messages whose blob is not indexed yet: their text is extracted and
//     checked here;
//   - TextAll: the per-recipient prefix of every message is checked too.
func (s *Store) SearchText(ctx context.Context, mailboxID int64, field store.TextField, substr string) ([]uint32, error) {
	if field != store.TextBody && field != store.TextAll {
		return nil, errors.New("sqlstore: unknown text field")
	}
	q := message.Fold(substr)
	all := field == store.TextAll
	hit := map[uint32]bool{}
	match := func(hdr, body string) bool {
		return strings.Contains(body, q) || all && strings.Contains(hdr, q)
	}
	err := s.read(ctx, func(r *rtx) error {
		var n int
		if err := r.queryRow(`SELECT 1 FROM mailboxes WHERE id = ?`, mailboxID).Scan(&n); err != nil {
			return notFound(err)
		}
		if q == "" {
			return r.eachUID(`SELECT uid FROM messages WHERE mailbox_id = ?`, mailboxID, hit)
		}
		if err := r.searchIndexed(mailboxID, q, all, match, hit); err != nil {
			return err
		}
		if err := r.searchPending(mailboxID, match, hit); err != nil {
			return err
		}
		if all {
			return r.searchPrefixes(mailboxID, q, hit)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(hit))
	for uid := range hit {
		out = append(out, uid)
	}
	slices.Sort(out)
	return out, nil
}

// searchIndexed checks the messages whose blob text is in text_fts.
func (r *rtx) searchIndexed(mailboxID int64, q string, all bool, match func(hdr, body string) bool, hit map[uint32]bool) error {
	cols := `'', f.body`
	if all {
		cols = `f.hdr, f.body`
	}
	check := func(row scanner) error {
		var uid int64
		var hdr, body string
		if err := row.Scan(&uid, &hdr, &body); err != nil {
			return err
		}
		if match(hdr, body) {
			hit[uint32(uid)] = true
		}
		return nil
	}
	if utf8.RuneCountInString(q) < 3 || strings.ContainsFunc(q, unicode.IsControl) {
		return r.each(`SELECT m.uid, `+cols+` FROM messages m
			JOIN blobs b ON b.id = m.blob_id
			JOIN text_fts f ON f.rowid = b.text_doc
			WHERE m.mailbox_id = ? AND b.text_doc > 0`, []any{mailboxID}, check)
	}
	phrase := `"` + strings.ReplaceAll(q, `"`, `""`) + `"`
	if !all {
		phrase = `body : ` + phrase
	}
	// Matches first, then their messages by blob (CROSS JOIN fixes the
	// order; "+" keeps SQLite from scanning the mailbox per match).
	return r.each(`SELECT m.uid, `+cols+` FROM text_fts f
		CROSS JOIN blobs b ON b.text_doc = f.rowid
		CROSS JOIN messages m ON m.blob_id = b.id
		WHERE text_fts MATCH ? AND +m.mailbox_id = ?`, []any{phrase, mailboxID}, check)
}

// searchPending extracts and checks the text of the mailbox's messages
// whose blob is not indexed yet, one at a time. A blob removed meanwhile (its message
// expunged after this snapshot) is skipped.
func (r *rtx) searchPending(mailboxID int64, match func(hdr, body string) bool, hit map[uint32]bool) error {
	// The mailbox's messages first, each blob probed in the partial
	// index of unindexed blobs (no blob row read unless it is pending):
	// when the indexer lags far behind (a large import), blobs-first would
	// read every pending blob of the whole database for every search.
	return r.each(`SELECT m.uid, b.id, b.size, b.data, b.data IS NULL
		FROM messages m CROSS JOIN blobs b INDEXED BY blobs_text_pending
		WHERE m.mailbox_id = ? AND b.id = m.blob_id AND b.text_doc IS NULL`, []any{mailboxID},
		func(row scanner) error {
			var uid, size int64
			var id string
			var data []byte
			var isFile bool
			if err := row.Scan(&uid, &id, &size, &data, &isFile); err != nil {
				return err
			}
			tx, err := r.s.blobText(id, size, data, isFile)
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if match(message.Fold(tx.Header), message.Fold(tx.Body)) {
				hit[uint32(uid)] = true
			}
			return nil
		})
}

// searchPrefixes checks the per-recipient prefix lines (TextAll). The
// prefixes of one mailbox repeat a lot (Delivered-To is the same in all),
// so each distinct one is decoded once.
func (r *rtx) searchPrefixes(mailboxID int64, q string, hit map[uint32]bool) error {
	seen := map[string]bool{}
	return r.each(`SELECT uid, prefix FROM messages WHERE mailbox_id = ? AND length(prefix) > 0`,
		[]any{mailboxID}, func(row scanner) error {
			var uid int64
			var prefix []byte
			if err := row.Scan(&uid, &prefix); err != nil {
				return err
			}
			m, ok := seen[string(prefix)]
			if !ok {
				m = strings.Contains(message.Fold(message.HeaderText(prefix)), q)
				if len(seen) < 10000 {
					seen[string(prefix)] = m
				}
			}
			if m {
				hit[uint32(uid)] = true
			}
			return nil
		})
}

// eachUID adds the UIDs a query returns to set.
func (r *rtx) eachUID(q string, mailboxID int64, set map[uint32]bool) error {
	return r.each(q, []any{mailboxID}, func(row scanner) error {
		var uid int64
		if err := row.Scan(&uid); err != nil {
			return err
		}
		set[uint32(uid)] = true
		return nil
	})
}
