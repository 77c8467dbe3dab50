package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// durableEvery is how often a state file is also fsynced. Every write renames a complete new
// file into place, which a killed process cannot undo (the page cache outlives it), so a crash
// repeats at most the batch in flight. Only a power loss can roll the file back, by at most
// this much of progress: repeats, never losses. An fsync per batch instead would dominate a
// catch-up or a backfill on a busy disk.
const durableEvery = 2 * time.Second

// File is one state file, always replaced whole: readers (and a crash) see the old or the new
// content, never a mix. It is the only writer of state files; its caller serializes writes.
type File struct {
	path string
	what string // "checkpoint", "backfill state": for error messages
	// synced is when the file was last written durably; unsynced is set while a later write
	// is not.
	synced   time.Time
	unsynced bool
}

// NewFile returns the writer of path and removes the temporary files a process killed
// mid-write left next to it: only one writer exists per path (one process per STATE_DIR, a
// lock per backfill), so none of them can belong to a write in progress.
func NewFile(path, what string) *File {
	// The base name holds only [A-Za-z0-9._-] (FileName), never a glob metacharacter.
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, f := range leftovers {
		_ = os.Remove(f)
	}
	return &File{path: path, what: what}
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Unsynced reports whether the last write is not durable yet.
func (f *File) Unsynced() bool { return f.unsynced }

// Write replaces the file's content with data atomically, and durably (fsync of the file and
// the directory) when durable is set or the last durable write is durableEvery old.
func (f *File) Write(data []byte, durable bool) error {
	durable = durable || time.Since(f.synced) >= durableEvery
	if err := writeAtomic(f.path, data, durable); err != nil {
		return fmt.Errorf("writing %s %s: %w", f.what, f.path, err)
	}
	if durable {
		f.synced, f.unsynced = time.Now(), false
	} else {
		f.unsynced = true
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it over path; with
// sync, the data and then the directory entry are fsynced.
func writeAtomic(path string, data []byte, sync bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if sync {
		if err = f.Sync(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
