package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
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
//
// Between fsyncs a write is renamed into place without its data being flushed: a killed
// process cannot undo that, but a power cut can leave the file empty or torn (XFS shows a
// zero-length file). So every durable write is also kept under <path>.prev (a hard link to the
// fsynced file, which later renames over path do not touch), and Read falls back to it when
// path is empty or unusable: a power cut then repeats at most durableEvery of progress.
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

// prevPath is the last durable content of path.
func prevPath(path string) string { return path + ".prev" }

// Read returns the file's content. When path is empty or valid rejects it and the last
// durable copy is valid, it returns that copy, and fellBack says why path was not used (for
// the caller to log). A missing path is fs.ErrNotExist (its old copy is removed: deleting a
// state file means starting over, and a later fall-back must not revive it).
func (f *File) Read(valid func([]byte) error) (data []byte, fellBack error, err error) {
	data, err = os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(prevPath(f.path))
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	bad := valid(data)
	if len(data) == 0 {
		bad = errors.New("the file is empty")
	}
	if bad == nil {
		return data, nil, nil
	}
	prev, perr := os.ReadFile(prevPath(f.path))
	if perr != nil || len(prev) == 0 || valid(prev) != nil {
		return data, nil, nil // no usable copy: the caller reports path as it is
	}
	return prev, bad, nil
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
		if err := keepDurable(f.path, data); err != nil {
			return fmt.Errorf("writing %s %s: keeping its durable copy: %w", f.what, f.path, err)
		}
		f.synced, f.unsynced = time.Now(), false
	} else {
		f.unsynced = true
	}
	return nil
}

// keepDurable makes <path>.prev the durable content just written to path: a hard link to the
// same fsynced file, or, where the filesystem has no hard links, a fsynced copy.
func keepDurable(path string, data []byte) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-prev")
	_ = os.Remove(tmp)
	if err := os.Link(path, tmp); err != nil {
		return writeAtomic(prevPath(path), data, true)
	}
	if err := os.Rename(tmp, prevPath(path)); err != nil {
		_ = os.Remove(tmp)
		return stable("renaming the temporary file", err)
	}
	return syncDir(filepath.Dir(path))
}

// stable drops the file name from err: a temporary file's name is new on every write, and an
// error text that changes every time defeats the logging of repeated errors once. The caller
// names the state file.
func stable(op string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("%s: %w", op, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return stable("opening the directory", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return stable("syncing the directory", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file next to path and renames it over path; with
// sync, the data and then the directory entry are fsynced.
func writeAtomic(path string, data []byte, sync bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return stable("creating a temporary file", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return stable("writing the temporary file", err)
	}
	if sync {
		if err = f.Sync(); err != nil {
			return stable("syncing the temporary file", err)
		}
	}
	if err = f.Close(); err != nil {
		return stable("closing the temporary file", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return stable("renaming the temporary file", err)
	}
	if !sync {
		return nil
	}
	// The rename is durable only once the directory entry is.
	return syncDir(dir)
}
