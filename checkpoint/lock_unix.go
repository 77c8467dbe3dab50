//go:build unix

package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive advisory lock (flock(2)) on path without waiting and records this
// process in it (pid, host, start time and what), so that a second process is refused with a
// message naming the first: two processes writing the same state would deliver everything
// twice, or move a checkpoint past what the other has not delivered. The kernel drops the lock
// when the process dies, so a crash never leaves a lock that holds; unlock removes the file,
// so a finished or interrupted process leaves nothing behind. A held lock is a *LockedError
// (errors.Is ErrLocked).
func Lock(path, what string) (unlock func(), err error) {
	// The file is removed on unlock: a process that opened it just before may then lock a
	// file that no longer has a name, while a third creates and locks a new one. After
	// locking, the file must still be the one at path; otherwise try again.
	for range 10 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening lock file: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, &LockedError{Path: path, Holder: readHolder(path)}
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if !samePath(f, path) {
			f.Close() // closing drops the lock
			continue
		}
		b, _ := json.Marshal(self(what))
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt(append(b, '\n'), 0)
		}
		return func() {
			_ = os.Remove(path) // while still holding the lock: see above
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			_ = f.Close()
		}, nil
	}
	return nil, fmt.Errorf("locking %s: the file keeps being replaced", path)
}

// samePath reports whether f is still the file named path.
func samePath(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	pi, err := os.Stat(path)
	return err == nil && os.SameFile(fi, pi)
}
