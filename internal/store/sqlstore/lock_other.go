//go:build !unix

package sqlstore

import "os"

// Without flock(2) we cannot know whether another process uses the
// directory, so orphan cleanup never runs.
func tryLockExclusive(*os.File) bool { return false }

func lockShared(*os.File) error { return nil }
