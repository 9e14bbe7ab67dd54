//go:build unix

package sqlstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// tryLockExclusive reports whether no other Store (in any process) holds
// the directory's lock file; it then holds it exclusively.
func tryLockExclusive(f *os.File) bool {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// lockShared holds the lock file shared for the life of the Store,
// waiting while another Store cleans up under the exclusive lock.
func lockShared(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_SH)
		if err != unix.EINTR {
			return err
		}
	}
}
