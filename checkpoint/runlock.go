package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// RunLockName is the lock file of an unsharded "run" in its state directory.
const RunLockName = "dtforward.lock"

// shardLockName is the lock file of shard index of a sharded "run".
func shardLockName(index int) string { return "dtforward-shard-" + strconv.Itoa(index) + ".lock" }

// ShardError is a shard already held by another process: two processes with the same
// SHARD_INDEX would both poll that shard's appliances and nobody the others'.
type ShardError struct {
	Index, Count int
	Locked       *LockedError
}

// Error implements error.
func (e *ShardError) Error() string {
	return fmt.Sprintf("SHARD_INDEX: shard %d of %d already runs on this state directory: %v. Each process needs its own SHARD_INDEX (0 to %d)",
		e.Index, e.Count, e.Locked, e.Count-1)
}

// Unwrap returns the lock error.
func (e *ShardError) Unwrap() error { return e.Locked }

// RunLockedError is a state directory another run holds.
type RunLockedError struct{ *LockedError }

// Error implements error.
func (e *RunLockedError) Error() string {
	return fmt.Sprintf("STATE_DIR: %v; another dtforward run uses this state: stop it first (two processes on one state send every alert twice, or skip some)", e.LockedError)
}

// Unwrap returns the lock error.
func (e *RunLockedError) Unwrap() error { return e.LockedError }

// LockRun takes the lock of one "run" on the state directory dir (created if needed), held
// until unlock: an unsharded run holds dtforward.lock, shard i of a sharded run (count > 1)
// holds dtforward-shard-<i>.lock, so shards may share one directory (their appliances, and so
// their checkpoint files, are disjoint) while a duplicated SHARD_INDEX is refused. A sharded
// and an unsharded run on the same directory refuse each other too: each takes its own lock,
// then checks the other kind is free (a simultaneous start makes both refuse, never both run).
// A held lock is a *LockedError naming the holder, or a *ShardError for a duplicated shard.
func LockRun(dir string, index, count int) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating STATE_DIR %s: %w", dir, err)
	}
	own, what := RunLockName, "dtforward run"
	if count > 1 {
		own, what = shardLockName(index), fmt.Sprintf("dtforward run, shard %d of %d", index, count)
	}
	unlock, err = Lock(filepath.Join(dir, own), what)
	var le *LockedError
	if errors.As(err, &le) && count > 1 {
		return nil, &ShardError{Index: index, Count: count, Locked: le}
	}
	if errors.As(err, &le) {
		return nil, &RunLockedError{le}
	}
	if err != nil {
		return nil, err
	}
	// The other kind: an unsharded run checks every shard lock, a shard the unsharded lock.
	others := []string{filepath.Join(dir, RunLockName)}
	if count <= 1 {
		others, _ = filepath.Glob(filepath.Join(dir, "dtforward-shard-*.lock"))
	}
	for _, o := range others {
		probe, err := Lock(o, "")
		if errors.As(err, &le) {
			unlock()
			return nil, &RunLockedError{le}
		}
		if err == nil {
			probe() // free: nobody holds it (a crashed process's file is removed)
		}
	}
	return unlock, nil
}
