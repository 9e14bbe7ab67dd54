//go:build linux

package sqlstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncBlobs makes the given new blob files and their directory entries
// durable with one syncfs(2) of the file system holding the blob
// directory: one call for a whole batch instead of an fsync per file and
// directory. Since Linux 5.8 syncfs reports write-back errors of that file
// system that happened since dir was opened, once per open file: dir is
// opened once per Store (at Open), so no error after that can be consumed
// by another descriptor, process or caller before this Store sees it.
func syncBlobs(dir *os.File, _ []string) error {
	return unix.Syncfs(int(dir.Fd()))
}

// syncTree makes the data directory tree durable after it was created.
func syncTree(dir, blobDir string) error {
	if err := syncFS(blobDir); err != nil {
		return err
	}
	return syncFS(dir)
}

func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return unix.Syncfs(int(d.Fd()))
}

// fdatasync flushes f's data and the metadata needed to read it back.
func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
