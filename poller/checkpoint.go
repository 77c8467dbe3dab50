package poller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StateVersion is the checkpoint file format version written by this build. A file with another
// version is refused rather than guessed at.
const StateVersion = 1

// State is the content of one appliance's checkpoint file.
type State struct {
	Version   int                     `json:"version"`
	Appliance string                  `json:"appliance"`
	Sources   map[string]*SourceState `json:"sources"`
}

// SourceState is one source's progress.
type SourceState struct {
	// Cursor is the end (epoch ms) of the last window whose records were all delivered. The next
	// window starts at Cursor − overlap.
	Cursor int64 `json:"cursor"`
	// Seen holds the keys already delivered that can still come back in a future window, with
	// the record version that was delivered (so a changed record is sent again).
	Seen map[string]Seen `json:"seen,omitempty"`
	// Gaps tracks the pbids missing between delivered breaches (modelbreaches only).
	Gaps *GapState `json:"gaps,omitempty"`
}

// Seen is one delivered record.
type Seen struct {
	// Version is the delivered version of the record: empty for breaches, the state for
	// Antigena actions and AI Analyst events, which change under the same id.
	Version string `json:"v,omitempty"`
	// Time is the record's creation (or update) time in epoch ms; it decides when the key has
	// fallen out of the overlap and can be forgotten.
	Time int64 `json:"t"`
}

// StateError reports a checkpoint file that exists but cannot be used. dtforward never silently
// restarts from scratch over such a file: that would re-send or skip a window of alerts.
type StateError struct {
	Path string
	Err  error
	// Recovery, when set, tells the user how to go on without a gap (the live checkpoint sets
	// it: the exact backfill command and POLL_START).
	Recovery string
}

// Error implements error.
func (e *StateError) Error() string {
	if e.Recovery != "" {
		return fmt.Sprintf("checkpoint %s is unusable: %v.\n%s", e.Path, e.Err, e.Recovery)
	}
	return fmt.Sprintf("checkpoint %s is unusable: %v (fix it, or remove it to start again at POLL_START)", e.Path, e.Err)
}

// recoveryMargin is how far before the best known position the suggested backfill starts:
// records the overlap would have re-read, and a margin for a cursor that is only estimated.
const recoveryMargin = time.Hour

// cursorText finds cursors in a checkpoint that does not parse as a whole.
var cursorText = regexp.MustCompile(`"cursor"\s*:\s*([0-9]{1,18})`)

// recovery explains how to replace an unusable checkpoint without losing alerts: move it aside,
// backfill from before the last known position up to now, and start run exactly there. The
// position is the smallest plausible cursor still readable in the file, else the file's last
// write (the checkpoint is rewritten after every poll).
func recovery(path, appliance string, content []byte, now time.Time) string {
	var from time.Time
	for _, m := range cursorText.FindAllSubmatch(content, -1) {
		ms, err := strconv.ParseInt(string(m[1]), 10, 64)
		if err != nil || ms <= 0 {
			continue
		}
		if t := time.UnixMilli(ms); t.Before(now) && (from.IsZero() || t.Before(from)) {
			from = t
		}
	}
	if fi, err := os.Stat(path); from.IsZero() && err == nil {
		from = fi.ModTime()
	}
	if from.IsZero() {
		return "Move the file aside and start again: run begins at POLL_START; cover the time before it with \"dtforward backfill --appliance " +
			shellQuote(appliance) + " --from <when dtforward last ran> --to <POLL_START>\"."
	}
	to := now.UTC().Truncate(time.Second)
	from = from.Add(-recoveryMargin).UTC().Truncate(time.Second)
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) }
	return "dtforward does not guess where it stopped. To go on without a gap: move the file aside, forward what may be missing with\n" +
		"  dtforward backfill --appliance " + shellQuote(appliance) + " --from " + stamp(from) + " --to " + stamp(to) + "\n" +
		"and start run with POLL_START=" + stamp(to) + " (where the backfill ends). --from is " + recoveryMargin.String() +
		" before the last position readable in the file (or its last write): a few duplicates, no gap."
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Unwrap returns the underlying error.
func (e *StateError) Unwrap() error { return e.Err }

// Store is an appliance's checkpoint file. It is safe for concurrent use by the appliance's
// source goroutines; every Commit rewrites the whole file atomically.
type Store struct {
	path string
	mu   sync.Mutex
	st   State
	// synced is when the file was last written durably; unsynced is set while a later write
	// is not (see Commit).
	synced   time.Time
	unsynced bool
}

// FileName returns the checkpoint file name for an appliance label: the label with every
// character outside [A-Za-z0-9._-] replaced by '_', plus ".json".
func FileName(appliance string) string {
	var b strings.Builder
	for _, r := range appliance {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "appliance.json"
	}
	return b.String() + ".json"
}

// OpenStore reads the checkpoint of appliance in dir, creating dir if needed. A missing file is
// an empty state (every source starts at POLL_START); an unreadable, corrupt or foreign-version
// file is a *StateError naming the file.
func OpenStore(dir, appliance string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating STATE_DIR %s: %w", dir, err)
	}
	s := &Store{
		path: filepath.Join(dir, FileName(appliance)),
		st:   State{Version: StateVersion, Appliance: appliance, Sources: map[string]*SourceState{}},
	}
	removeTempFiles(s.path)
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, &StateError{Path: s.path, Err: err}
	}
	unusable := func(err error) error {
		return &StateError{Path: s.path, Err: err, Recovery: recovery(s.path, appliance, b, time.Now())}
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, unusable(fmt.Errorf("not valid JSON: %w", err))
	}
	if st.Version != StateVersion {
		return nil, unusable(fmt.Errorf("format version %d, this build reads version %d", st.Version, StateVersion))
	}
	if st.Appliance != appliance {
		return nil, unusable(fmt.Errorf("belongs to appliance %q, not %q", st.Appliance, appliance))
	}
	if st.Sources == nil {
		st.Sources = map[string]*SourceState{}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Sources)) {
		// 0 is 1970: a zeroed or hand-edited file, never a position dtforward wrote.
		if ss := st.Sources[name]; ss == nil || ss.Cursor <= 0 {
			return nil, unusable(fmt.Errorf("source %q has no valid cursor", name))
		}
	}
	s.st = st
	return s, nil
}

// Path returns the checkpoint file path.
func (s *Store) Path() string { return s.path }

// Source returns a copy of a source's state; ok is false when the source has never committed.
func (s *Store) Source(name string) (ss SourceState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.st.Sources[name]
	if !ok {
		return SourceState{}, false
	}
	return SourceState{Cursor: cur.Cursor, Seen: maps.Clone(cur.Seen), Gaps: cur.Gaps.clone()}, true
}

// Commit records a source's new state and rewrites the file atomically (temp file, rename), so
// a crash leaves either the old or the new checkpoint. The write is also made durable (fsync of
// the file and the directory) when the last durable one is durableEvery old: a killed process
// cannot undo a rename, only a power loss can, and then by at most durableEvery of progress —
// repeats, never losses — while an fsync per batch would dominate a catch-up on a busy disk.
// Flush makes the last write durable. The store keeps its own copy of ss.Seen. On error the
// in-memory state is still updated, so the next Commit retries the write with the newest state.
func (s *Store) Commit(name string, ss SourceState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Sources[name] = &SourceState{Cursor: ss.Cursor, Seen: maps.Clone(ss.Seen), Gaps: ss.Gaps.clone()}
	return s.writeLocked(time.Since(s.synced) >= durableEvery)
}

// Flush makes the checkpoint durable if a Commit since the last durable write was not.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.unsynced {
		return nil
	}
	return s.writeLocked(true)
}

func (s *Store) writeLocked(durable bool) error {
	b, err := json.Marshal(&s.st)
	if err != nil {
		return err
	}
	if !durable {
		if err := replaceFile(s.path, b); err != nil {
			return err
		}
		s.unsynced = true
		return nil
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return err
	}
	s.synced, s.unsynced = time.Now(), false
	return nil
}

// removeTempFiles deletes the temporary files a process killed mid-write left next to path
// (".<name>.tmp-*", as writeFileAtomic and replaceFile create them). Only the caller may write
// path, so none of them can belong to a write in progress.
func removeTempFiles(path string) {
	// The base name holds only [A-Za-z0-9._-], never a glob metacharacter.
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, f := range leftovers {
		_ = os.Remove(f)
	}
}

func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("writing checkpoint %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
