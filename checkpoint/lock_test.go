//go:build unix

package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flock(2) locks belong to an open file, so a second Lock in the same process is refused
// exactly as a second process is (the two-process case is tested with the binary in cmd).
func TestLockNamesTheHolderAndLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path, "dtforward run")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(path, "dtforward run")
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want a *LockedError", err)
	}
	host, _ := os.Hostname()
	if le.Holder.PID != os.Getpid() || le.Holder.Host != host || le.Holder.Started.IsZero() || le.Holder.What != "dtforward run" {
		t.Errorf("holder %+v, want pid %d on %s with its start time", le.Holder, os.Getpid(), host)
	}
	if msg := err.Error(); !strings.Contains(msg, "pid ") || !strings.Contains(msg, host) || !strings.Contains(msg, "started ") {
		t.Errorf("message %q does not name the holder", msg)
	}
	unlock()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left behind after unlock: %v", err)
	}
	unlock, err = Lock(path, "again")
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock()
}

// A process killed while holding the lock leaves the file, but not the lock.
func TestLockTakesOverAStaleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	if err := os.WriteFile(path, []byte(`{"pid":99999999,"host":"gone"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(path, "run")
	if err != nil {
		t.Fatalf("a stale lock file without a holder refused: %v", err)
	}
	defer unlock()
	if h := readHolder(path); h.PID != os.Getpid() {
		t.Errorf("lock file names pid %d, want this process %d", h.PID, os.Getpid())
	}
}

func TestLockRunShards(t *testing.T) {
	dir := t.TempDir()
	u1, err := LockRun(dir, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Another shard shares the directory.
	u0, err := LockRun(dir, 0, 3)
	if err != nil {
		t.Fatalf("shard 0 next to shard 1: %v", err)
	}
	// The same shard twice is refused, naming the shard.
	_, err = LockRun(dir, 1, 3)
	var se *ShardError
	if !errors.As(err, &se) || se.Index != 1 || !strings.Contains(err.Error(), "shard 1 of 3") || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("duplicate shard: %v, want a *ShardError naming shard 1 and its holder", err)
	}
	// An unsharded run on the directory of running shards is refused.
	if _, err := LockRun(dir, 0, 1); !errors.Is(err, ErrLocked) {
		t.Fatalf("unsharded run next to shards: %v, want ErrLocked", err)
	}
	u0()
	u1()
	// And a shard next to an unsharded run.
	u, err := LockRun(dir, 0, 1)
	if err != nil {
		t.Fatalf("unsharded run once the shards stopped: %v", err)
	}
	if _, err := LockRun(dir, 2, 3); !errors.Is(err, ErrLocked) {
		t.Fatalf("shard next to an unsharded run: %v, want ErrLocked", err)
	}
	// The refused shard released its own lock.
	if m, _ := filepath.Glob(filepath.Join(dir, "dtforward-shard-*.lock")); len(m) != 0 {
		t.Errorf("refused shard left %v", m)
	}
	if _, err := LockRun(dir, 0, 1); !errors.Is(err, ErrLocked) {
		t.Fatalf("second unsharded run: %v, want ErrLocked", err)
	}
	u()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.lock")); len(m) != 0 {
		t.Errorf("lock files left behind: %v", m)
	}
}
