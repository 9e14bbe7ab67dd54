package sqlstore

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"pillarbox/internal/message"
	"pillarbox/internal/store"
)

// Full-text index (SearchText, search.go).
//
// What is indexed: the text of each blob (message.ExtractText: decoded
// headers and text parts, at most textLimit bytes), case-folded with
// message.Fold, in the FTS5 table text_fts (columns hdr, body; trigram
// tokenizer, case-sensitive because the text is folded already). A blob
// is shared by every recipient of a delivery, so it is indexed once; the
// per-recipient prefix is not indexed (SearchText checks it in memory).
// blobs.text_doc records the state: NULL = not indexed yet (partial index
// blobs_text_pending), 0 = nothing to index (no message uses the blob: a
// queue-only blob), > 0 = the text_fts rowid. The trigger blobs_text_gone
// deletes the text_fts row with its blob row, whatever path deletes it.
//
// Who indexes: never Deliver, so that indexing costs deliveries nothing
// but a partial-index entry. A background goroutine (started by Open
// unless Options.NoIndexer) reads pending blobs in batches on a reader
// connection, extracts their text outside the writer, and submits the
// rows as write operations of at most indexChunk bytes of text. It reads
// and it writes only once the writer has been idle (no commit, nothing
// queued) for indexIdle, so it yields to deliveries; under a load that
// never lets the writer idle it goes ahead after indexMaxWait (a round of
// at most indexBatchBlobs blobs per indexMaxWait). It polls for new blobs every indexPoll when there is
// nothing to do, so messages stored by another process are indexed too.
// Progress is in the database (text_doc), so a restart resumes; two
// processes indexing at once are harmless (the write only fills rows
// that are still NULL). A blob whose text cannot be read (I/O error) is
// logged and stays pending; SearchText reads pending messages directly.

const (
	textLimit       = 1 << 20   // text indexed per blob
	indexBatchBlobs = 64        // pending blobs read per round
	indexChunk      = 128 << 10 // text bytes per write operation
	indexIdle       = 50 * time.Millisecond
	indexMaxWait    = 10 * time.Second
	indexPoll       = time.Second
)

// blobText is one pending blob's extracted (folded) text.
type blobText struct {
	id       string
	hasText  bool // a message uses the blob: store the text
	hdr, txt string
}

// pendingBlob is a row of a pending-blobs query.
type pendingBlob struct {
	id          string
	size        int64
	data        []byte
	isFile, use bool
}

// indexLoop is the background indexer; it ends when the Store closes.
func (s *Store) indexLoop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	cursor := ""
	for ctx.Err() == nil {
		next, n, err := s.indexRound(ctx, cursor, true)
		if err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("sqlstore: full-text indexer", "err", err)
		}
		cursor = next
		if n > 0 && err == nil {
			continue
		}
		cursor = "" // a pass is over (or failed): start again later
		if !sleepCtx(ctx, indexPoll) {
			return
		}
	}
}

// IndexPending indexes every blob that is pending when it is called,
// without waiting for the writer to be idle, and returns how many blobs
// it processed. The background indexer does the same over time; this is
// for tests, benchmarks and administrative commands.
func (s *Store) IndexPending(ctx context.Context) (int, error) {
	cursor, total := "", 0
	for {
		next, n, err := s.indexRound(ctx, cursor, false)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
		cursor = next
	}
}

// indexRound indexes up to indexBatchBlobs pending blobs whose IDs are
// greater than cursor. It returns the last ID it looked at and how many
// blobs it looked at (0: none pending after cursor). With wait it reads
// and writes only when the writer is idle (waitWriterIdle).
func (s *Store) indexRound(ctx context.Context, cursor string, wait bool) (string, int, error) {
	if wait && !s.waitWriterIdle(ctx) { // no reading or parsing under load either
		return cursor, 0, ctx.Err()
	}
	var pend []pendingBlob
	err := s.read(ctx, func(r *rtx) error {
		return r.each(`SELECT b.id, b.size, b.data, b.data IS NULL,
			EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = b.id)
			FROM blobs b WHERE b.text_doc IS NULL AND b.id > ? ORDER BY b.id LIMIT ?`,
			[]any{cursor, indexBatchBlobs}, func(row scanner) error {
				var p pendingBlob
				if err := row.Scan(&p.id, &p.size, &p.data, &p.isFile, &p.use); err != nil {
					return err
				}
				pend = append(pend, p)
				return nil
			})
	})
	if err != nil || len(pend) == 0 {
		return cursor, 0, err
	}
	texts := make([]blobText, 0, len(pend))
	for _, p := range pend {
		bt, ok := s.extractBlob(p)
		if ok {
			texts = append(texts, bt)
		}
	}
	last := pend[len(pend)-1].id
	for len(texts) > 0 {
		n, size := 0, 0
		for n < len(texts) && (n == 0 || size+len(texts[n].hdr)+len(texts[n].txt) <= indexChunk) {
			size += len(texts[n].hdr) + len(texts[n].txt)
			n++
		}
		if wait && !s.waitWriterIdle(ctx) {
			return last, len(pend), ctx.Err()
		}
		chunk := texts[:n]
		if err := s.do(ctx, func(t *wtx) error { return t.storeTexts(chunk) }); err != nil {
			return last, len(pend), err
		}
		texts = texts[n:]
	}
	return last, len(pend), nil
}

// extractBlob reads a pending blob's text. ok is false when the blob
// cannot be read now (it stays pending).
func (s *Store) extractBlob(p pendingBlob) (blobText, bool) {
	bt := blobText{id: p.id, hasText: p.use}
	if !p.use {
		return bt, true
	}
	tx, err := s.blobText(p.id, p.size, p.data, p.isFile)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return bt, false // deleted meanwhile
	}
	if err != nil {
		s.log.Warn("sqlstore: reading blob text", "blob", p.id, "err", err)
		return bt, false
	}
	bt.hdr, bt.txt = message.Fold(tx.Header), message.Fold(tx.Body)
	return bt, true
}

// blobText extracts a blob's text (not folded).
func (s *Store) blobText(id string, size int64, data []byte, isFile bool) (message.Text, error) {
	r, err := s.openReader(nil, id, size, data, isFile)
	if err != nil {
		return message.Text{}, err
	}
	defer r.Close()
	return message.ExtractText(r, r.Size(), textLimit)
}

// storeTexts records extracted texts; blobs indexed meanwhile (by another
// process) or deleted are skipped.
func (t *wtx) storeTexts(texts []blobText) error {
	// One sequence update for the whole chunk: rowids last-n+1 .. last
	// (some stay unused when blobs are skipped).
	var last int64
	err := t.queryRow(`UPDATE sequences SET value = value + ? WHERE name = ? RETURNING value`,
		len(texts), seqTextDoc).Scan(&last)
	if err != nil {
		return err
	}
	next := last - int64(len(texts))
	for _, bt := range texts {
		if !bt.hasText {
			// Only a blob without messages can never gain text: check
			// again under the write lock.
			_, err := t.exec(`UPDATE blobs SET text_doc = 0 WHERE id = ? AND text_doc IS NULL
				AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)`, bt.id, bt.id)
			if err != nil {
				return err
			}
			continue
		}
		var pending bool
		err := t.queryRow(`SELECT text_doc IS NULL FROM blobs WHERE id = ?`, bt.id).Scan(&pending)
		if err != nil && !errors.Is(notFound(err), store.ErrNotFound) {
			return err
		}
		if !pending {
			continue
		}
		next++
		doc := next
		if _, err := t.exec(`UPDATE blobs SET text_doc = ? WHERE id = ?`, doc, bt.id); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO text_fts (rowid, hdr, body) VALUES (?, ?, ?)`, doc, bt.hdr, bt.txt); err != nil {
			return err
		}
	}
	return nil
}

// waitWriterIdle waits until the writer has committed nothing and had
// nothing queued for indexIdle, or indexMaxWait has passed. It returns
// false when ctx ends first.
func (s *Store) waitWriterIdle(ctx context.Context) bool {
	deadline := time.Now().Add(indexMaxWait)
	last := s.statBatches.Load()
	for {
		if !sleepCtx(ctx, indexIdle) {
			return false
		}
		cur := s.statBatches.Load()
		if cur == last && s.writerQueued() == 0 || time.Now().After(deadline) {
			return true
		}
		last = cur
	}
}

// writerQueued is the number of operations waiting for the syncer or the
// writer.
func (s *Store) writerQueued() int {
	n := 0
	for _, q := range []*opQueue{s.toSync, s.toCommit} {
		q.mu.Lock()
		n += len(q.ops)
		q.mu.Unlock()
	}
	return n
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
