package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"pillarbox/internal/store"
)

// newBlobID returns 128 random bits as 32 lower-case hex digits.
func newBlobID(now time.Time) string {
	var b [16]byte
	ns := now.UnixNano()
	b[0] = byte(now.Unix() / blobIDEpoch)
	binary.BigEndian.PutUint64(b[1:9], uint64(ns)<<8) // low 56 bits of the clock
	rand.Read(b[8:])                                  // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// blobIDEpoch is how many seconds of blob IDs share their first byte.
//
// A blob ID is 16 bytes in hex: one byte that steps every 64 seconds
// (cycling through 256 values in about 4.5 hours), 7 bytes of the clock in
// nanoseconds, 8 random bytes. IDs made close in time share their first
// byte and sort by creation, so the blobs and messages_blob indexes take
// each commit's new IDs at one place (a page or two) rather than at random
// pages all over the index: fewer pages written per commit. The first two
// hex digits (the blobs/ subdirectory of a file blob) still spread files
// over all 256 directories as time passes. Older random IDs stay valid.
const blobIDEpoch = 64

func validBlobID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) blobPath(id string) string {
	return filepath.Join(s.blobDir, id[:2], id)
}

// CreateSpool creates a temporary file in the spool directory. A Delivery
// whose Blob is such a file adopts it by rename: the whole file, from byte
// 0 to its current size, becomes the blob, whatever its read/write offset.
// The caller closes and removes it after Deliver (removal of an adopted
// file fails harmlessly with fs.ErrNotExist).
func (s *Store) CreateSpool() (*os.File, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	// Names are never reused (clock + per-Store counter, O_EXCL): after an
	// adoption renames a spool file away, a caller removing "its" name must
	// not hit another session's file.
	for {
		name := fmt.Sprintf("spool-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), s.spoolSeq.Add(1))
		f, err := os.OpenFile(filepath.Join(s.spoolDir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
}

// inlineMax is the largest blob stored inside meta.db instead of in a file.
// Creating a file costs far more than appending a few pages to the WAL
// (tens to hundreds of microseconds of file system work per file), and an
// inline blob is made durable by the same WAL fsync as its metadata, so
// small messages need no file, no syncfs and no directory entry. It
// matches the SMTP server's in-memory spool (128 KiB): a message held in
// memory goes inline, a larger one arrives as a spool file that is adopted
// by rename, so no message costs more than one file. Set it to 0 for one
// file per blob.
const inlineMax = 128 << 10

// newBlob is a blob about to be stored: inline (data) or a file in blobs/
// that is not yet durable nor referenced by metadata (path).
type newBlob struct {
	id     string
	size   int64
	inline []byte      // the bytes of an inline blob; nil for a file
	path   string      // the file of a file blob; "" for inline
	data   io.ReaderAt // the bytes, for parsing (memory or an open file)
	undo   func()      // for a file: moves it back to the spool or removes it
}

// putBlob reads r into a new blob: kept in memory when it is at most
// inlineMax bytes, else written (not synced; the writer syncs it) straight
// to its final path. A file there without a blobs row is garbage that
// orphan cleanup removes, and cleanup only runs while no other Store uses
// the directory, so it never sees a blob in flight.
func (s *Store) putBlob(r io.Reader) (*newBlob, error) {
	b := &newBlob{id: newBlobID(s.now()), undo: func() {}}
	if f, ok := r.(*os.File); ok && filepath.Dir(filepath.Clean(f.Name())) == s.spoolDir {
		return b, s.adoptSpool(b, f)
	}
	head, err := io.ReadAll(io.LimitReader(r, inlineMax+1))
	if err != nil {
		return nil, err
	}
	if len(head) <= inlineMax {
		b.size, b.inline, b.data = int64(len(head)), head, bytes.NewReader(head)
		return b, nil
	}
	b.path = s.blobPath(b.id)
	f, err := os.OpenFile(b.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	buf := &limitedBuffer{max: parseBuffer, b: head}
	n, err := io.Copy(f, io.TeeReader(io.MultiReader(bytes.NewReader(head), r), discardFirst(buf, len(head))))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.removeFile(b.path)
		return nil, err
	}
	b.size = n
	if !buf.overflow {
		b.data = bytes.NewReader(buf.b)
	}
	b.undo = func() { s.removeFile(b.path) }
	return b, nil
}

// adoptSpool takes a spool file whole, from byte 0 to its size, whatever
// its offset: read into memory when small, renamed into blobs/ otherwise.
func (s *Store) adoptSpool(b *newBlob, f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	b.size = fi.Size()
	if b.size <= inlineMax {
		b.inline = make([]byte, b.size)
		if n, err := f.ReadAt(b.inline, 0); int64(n) != b.size {
			return fmt.Errorf("short read of spool file (%d of %d bytes): %v", n, b.size, err)
		}
		b.data = bytes.NewReader(b.inline)
		return nil
	}
	b.path = s.blobPath(b.id)
	if err := os.Rename(f.Name(), b.path); err != nil {
		return err
	}
	orig := f.Name()
	b.data = f
	b.undo = func() {
		if err := os.Rename(b.path, orig); err != nil {
			s.log.Warn("sqlstore: returning spool file", "err", err)
		}
	}
	return nil
}

// discardFirst passes writes to w after skipping the first n bytes (which
// w already holds).
func discardFirst(w io.Writer, n int) io.Writer { return &skipWriter{w: w, skip: n} }

type skipWriter struct {
	w    io.Writer
	skip int
}

func (s *skipWriter) Write(p []byte) (int, error) {
	all := len(p)
	if s.skip > 0 {
		k := min(s.skip, len(p))
		s.skip -= k
		p = p[k:]
	}
	if len(p) > 0 {
		if _, err := s.w.Write(p); err != nil {
			return 0, err
		}
	}
	return all, nil
}

// parseBuffer is the largest file blob kept in memory for parsing while
// it is written; larger ones are parsed from the file.
const parseBuffer = 1 << 20

// limitedBuffer keeps what is written to it until it exceeds max.
type limitedBuffer struct {
	b        []byte
	max      int
	overflow bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if !l.overflow {
		if len(l.b)+len(p) > l.max {
			l.overflow, l.b = true, nil
		} else {
			l.b = append(l.b, p...)
		}
	}
	return len(p), nil
}

func (s *Store) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("sqlstore: removing file", "path", path, "err", err)
	}
}

// removeBlobs deletes the files of file blobs whose rows are gone (committed).
func (s *Store) removeBlobs(ids []string) {
	for _, id := range ids {
		s.removeFile(s.blobPath(id))
	}
}

// blobGarbage drops the rows of the given blobs that no message or queue
// item references any more and schedules their files for removal after
// the commit.
func (t *wtx) blobGarbage(ids []string) error {
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		var isFile bool
		err := t.queryRow(`DELETE FROM blobs WHERE id = ?
			AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)
			AND NOT EXISTS (SELECT 1 FROM queue WHERE blob_id = ?)
			RETURNING data IS NULL`, id, id, id).Scan(&isFile)
		if err == sql.ErrNoRows {
			continue // still referenced
		}
		if err != nil {
			return err
		}
		if isFile {
			t.op.garbage = append(t.op.garbage, id)
		}
	}
	return nil
}

// OpenBlob opens a blob (without any per-recipient prefix).
func (s *Store) OpenBlob(ctx context.Context, blobID string) (store.MessageReader, error) {
	if !validBlobID(blobID) {
		return nil, store.ErrNotFound
	}
	var size int64
	var data []byte
	var isFile bool
	err := s.view(ctx, func(r *rtx) error {
		return notFound(r.queryRow(`SELECT size, data, data IS NULL FROM blobs WHERE id = ?`, blobID).Scan(&size, &data, &isFile))
	})
	if err != nil {
		return nil, err
	}
	return s.openReader(nil, blobID, size, data, isFile)
}

// openReader opens prefix + blob: the inline data, or the file. A file
// removed after the metadata was read (concurrent expunge) reports
// store.ErrNotFound.
func (s *Store) openReader(prefix []byte, blobID string, blobSize int64, inline []byte, isFile bool) (store.MessageReader, error) {
	size := int64(len(prefix)) + blobSize
	if !isFile {
		if int64(len(inline)) != blobSize {
			return nil, fmt.Errorf("sqlstore: blob %s has %d bytes, recorded %d", blobID, len(inline), blobSize)
		}
		if inline == nil {
			inline = []byte{}
		}
		return &reader{prefix: prefix, blob: bytes.NewReader(inline), inline: inline, size: size}, nil
	}
	f, err := os.Open(s.blobPath(blobID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &reader{prefix: prefix, blob: f, closer: f, size: size}, nil
}

// reader is a store.MessageReader over prefix bytes followed by a blob.
type reader struct {
	prefix []byte
	blob   io.ReaderAt
	closer io.Closer // nil: nothing to close
	inline []byte    // the blob when it is inline (nil for a file)
	size   int64
	off    int64
}

func (r *reader) Size() int64 { return r.size }

// Bytes implements store.InMemory for a message whose blob is inline;
// for a blob file it returns nil.
func (r *reader) Bytes() [][]byte {
	if r.inline == nil {
		return nil
	}
	return [][]byte{r.prefix, r.inline}
}

func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("sqlstore: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := r.size - off; int64(want) > rest {
		want = int(rest)
	}
	n := 0
	if pl := int64(len(r.prefix)); off < pl {
		n = copy(p[:want], r.prefix[off:])
	}
	if n < want {
		if r.blob == nil {
			return n, errors.New("sqlstore: reader closed")
		}
		m, err := r.blob.ReadAt(p[n:want], off+int64(n)-int64(len(r.prefix)))
		n += m
		if n < want {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the file is shorter than recorded
			}
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *reader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *reader) Close() error {
	r.blob, r.inline = nil, nil
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// cleanOrphans removes spool files and blob files without a blobs row.
// Only called while no other Store has the directory open.
func (s *Store) cleanOrphans(ctx context.Context) error {
	spool, err := os.ReadDir(s.spoolDir)
	if err != nil {
		return err
	}
	for _, e := range spool {
		s.removeFile(filepath.Join(s.spoolDir, e.Name()))
	}
	removed := 0
	for i := 0; i < 256; i++ {
		sub := fmt.Sprintf("%02x", i)
		n, err := s.cleanBlobDir(ctx, sub)
		if err != nil {
			return err
		}
		removed += n
	}
	if removed > 0 || len(spool) > 0 {
		s.log.Info("sqlstore: removed orphan files", "blobs", removed, "spool", len(spool))
	}
	return nil
}

func (s *Store) cleanBlobDir(ctx context.Context, sub string) (int, error) {
	entries, err := os.ReadDir(filepath.Join(s.blobDir, sub))
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	known := map[string]bool{}
	rows, err := s.wc.QueryContext(ctx, `SELECT id FROM blobs WHERE id >= ? AND id < ?`, sub, sub+"~")
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		known[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !known[e.Name()] {
			s.removeFile(filepath.Join(s.blobDir, sub, e.Name()))
			n++
		}
	}
	return n, nil
}
