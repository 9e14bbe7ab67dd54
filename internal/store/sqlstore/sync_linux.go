//go:build linux

package sqlstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncBlobs makes the given new blob files and their directory entries
// durable with one syncfs(2) of the file system holding blobDir: one call
// for a whole batch instead of an fsync per file and directory. Since
// Linux 5.8 syncfs reports write-back errors of that file system.
func syncBlobs(blobDir string, _ []string) error {
	return syncFS(blobDir)
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
