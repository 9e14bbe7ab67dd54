package sqlstore

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// The admin generation lets a caller cache what it looked up about
// domains, accounts and aliases (the SMTP server does, per RCPT) and know
// cheaply when to drop the cache: AdminGeneration changes after every
// committed change to those tables, made by this Store or by any other
// process on the same data directory (the CLI while the server runs).
//
// On disk it is the file "admin.gen": 8 random bytes, rewritten (no fsync:
// it only has to be seen by running processes) by every Store after each
// commit that changed domains, accounts, aliases, credentials, quotas,
// save-sent or POP3 maildrops. Reading it is one pread(2); random values make a change by
// two processes at once still a change. The generation combines the file's
// value with an in-process counter, so this Store's own changes are seen
// even before the file is rewritten.

const adminGenFile = "admin.gen"

// openAdminGen opens (creating) admin.gen for the Store's life.
func (s *Store) openAdminGen() error {
	f, err := os.OpenFile(filepath.Join(s.dir, adminGenFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	s.adminFD = f
	return nil
}

// bumpAdminGen records that admin data changed (called once the change is
// durable, before its caller is answered).
func (s *Store) bumpAdminGen() {
	s.adminLocal.Add(1)
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	if _, err := s.adminFD.WriteAt(b[:], 0); err != nil {
		s.log.Warn("sqlstore: writing admin.gen", "err", err)
	}
}

// AdminGeneration returns a value that changes whenever domains, accounts
// or aliases change (through any Store on this directory). Callers that
// cache lookups compare it before trusting the cache.
func (s *Store) AdminGeneration() (uint64, error) {
	var b [8]byte
	n, err := s.adminFD.ReadAt(b[:], 0)
	if n < len(b) && err != nil {
		if n == 0 {
			return s.adminLocal.Load(), nil // never written: no change from elsewhere yet
		}
		return 0, err
	}
	return binary.LittleEndian.Uint64(b[:]) ^ s.adminLocal.Load()<<1, nil
}

// Dir returns the data directory the Store was opened on.
func (s *Store) Dir() string { return s.dir }

// The queue generation works like the admin generation, in the file
// "queue.gen": RetryQueue and SetQueueHeld rewrite it after their commit,
// and the queue scheduler of a running server polls QueueGeneration to
// learn of what the CLI did. Nothing else moves it, so the scheduler's
// own updates never make it re-read the queue.
const queueGenFile = "queue.gen"

// bumpQueueGen records an administrator's queue change.
func (s *Store) bumpQueueGen() {
	s.queueLocal.Add(1)
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	if err := writeGen(filepath.Join(s.dir, queueGenFile), b[:]); err != nil {
		s.log.Warn("sqlstore: writing queue.gen", "err", err)
	}
}

// QueueGeneration returns a value that changes whenever RetryQueue or
// SetQueueHeld commits (through any Store on this directory).
func (s *Store) QueueGeneration() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, queueGenFile))
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	var v uint64
	if len(b) >= 8 {
		v = binary.LittleEndian.Uint64(b[:8])
	}
	return v ^ s.queueLocal.Load()<<1, nil
}

// writeGen overwrites a generation file in place (no fsync: only running
// processes read it).
func writeGen(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
