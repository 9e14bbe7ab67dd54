//go:build !linux

package sqlstore

import (
	"fmt"
	"os"
	"path/filepath"
)

// syncBlobs fsyncs every new blob file, then every directory holding one.
func syncBlobs(_ *os.File, paths []string) error {
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := syncPath(p); err != nil {
			return err
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

// syncTree fsyncs the blob fan-out directories, blobDir and dir.
func syncTree(dir, blobDir string) error {
	for i := 0; i < 256; i++ {
		if err := syncPath(filepath.Join(blobDir, fmt.Sprintf("%02x", i))); err != nil {
			return err
		}
	}
	if err := syncPath(blobDir); err != nil {
		return err
	}
	return syncPath(dir)
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// fdatasync flushes f (a full fsync where fdatasync is not available).
func fdatasync(f *os.File) error { return f.Sync() }
