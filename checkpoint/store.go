// Package checkpoint keeps what dtforward has delivered on disk: per appliance one versioned
// JSON file holding each source's cursor, the keys delivered that can still come back, and the
// pbid gaps being checked. Every state file (this one and backfill's) is written by one
// atomic writer with one fsync policy (file.go), and an unusable file is an error that says
// how to go on without a gap (errors.go), never a silent restart from scratch.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// StateVersion is the checkpoint file format version written by this build. A file with another
// version is refused rather than guessed at.
const StateVersion = 1

// State is the content of one appliance's checkpoint file.
type State struct {
	Version   int                  `json:"version"`
	Appliance string               `json:"appliance"`
	Sources   map[string]*Progress `json:"sources"`
}

// Progress is one source's progress as saved on disk (the poller's in-memory view of a source
// is its sourceState).
type Progress struct {
	// Cursor is the end (epoch ms) of the last window whose records were all delivered. The next
	// window starts at Cursor − overlap.
	Cursor int64 `json:"cursor"`
	// Seen and Runs hold the keys already delivered that can still come back in a future
	// window (see Delivered): Seen the keys with the record version that was delivered (so a
	// changed record is sent again), Runs the runs of consecutive unversioned numeric keys
	// (breach pbids), Bitmaps the stretches of pbids delivered out of order. A file from before
	// runs existed has pbids in Seen; NewDelivered moves them.
	Seen    map[string]Seen `json:"seen,omitempty"`
	Runs    []Run           `json:"runs,omitempty"`
	Bitmaps []*Bitmap       `json:"bitmaps,omitempty"`
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

// Store is an appliance's checkpoint file. It is safe for concurrent use by the appliance's
// source goroutines; every Commit rewrites the whole file atomically.
type Store struct {
	path string
	mu   sync.Mutex
	// sources holds each source's progress encoded: Commit encodes it at once, so the store
	// never copies a source's delivered keys (a flood's worth of them, copied at every
	// commit, was most of the memory a same-millisecond flood cost).
	sources   map[string]json.RawMessage
	appliance string
	file      *File
	// cursors holds each source's committed cursor, written each one as last written to the
	// file (they differ while writes fail).
	cursors, written map[string]int64
	fellBack         error
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

// Open reads the checkpoint of appliance in dir, creating dir if needed. A missing file is
// an empty state (every source starts at POLL_START); an unreadable, corrupt or foreign-version
// file is a *StateError naming the file.
func Open(dir, appliance string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating STATE_DIR %s: %w", dir, err)
	}
	s := &Store{
		path:      filepath.Join(dir, FileName(appliance)),
		appliance: appliance,
		sources:   map[string]json.RawMessage{},
		cursors:   map[string]int64{},
		written:   map[string]int64{},
	}
	s.file = NewFile(s.path, "checkpoint")
	parse := func(b []byte) (State, error) {
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("not valid JSON: %w", err)
		}
		if st.Version != StateVersion {
			return st, fmt.Errorf("format version %d, this build reads version %d", st.Version, StateVersion)
		}
		if st.Appliance != appliance {
			return st, fmt.Errorf("belongs to appliance %q, not %q", st.Appliance, appliance)
		}
		for _, name := range slices.Sorted(maps.Keys(st.Sources)) {
			// 0 is 1970: a zeroed or hand-edited file, never a position dtforward wrote.
			if ss := st.Sources[name]; ss == nil || ss.Cursor <= 0 {
				return st, fmt.Errorf("source %q has no valid cursor", name)
			}
		}
		return st, nil
	}
	b, fellBack, err := s.file.Read(func(b []byte) error { _, err := parse(b); return err })
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, &StateError{Path: s.path, Err: err}
	}
	st, err := parse(b)
	if err != nil {
		return nil, &StateError{Path: s.path, Err: err, Recovery: recovery(s.path, appliance, b, time.Now())}
	}
	for name, p := range st.Sources {
		if s.sources[name], err = json.Marshal(p); err != nil {
			return nil, err
		}
		s.cursors[name], s.written[name] = p.Cursor, p.Cursor
	}
	if fellBack != nil {
		s.fellBack = fmt.Errorf("%s is unusable (%w), most likely cut short by a power loss between fsyncs; resumed from its last durable copy %s, which repeats at most %s of progress",
			s.path, fellBack, prevPath(s.path), durableEvery)
	}
	return s, nil
}

// FellBack is non-nil when Open found the file empty or unusable and resumed from its last
// durable copy; it says so, for the caller to log.
func (s *Store) FellBack() error { return s.fellBack }

// Written returns a source's cursor as last written to the file (what a restart would resume
// from), which lags the committed one while writes fail; ok is false before the first write.
func (s *Store) Written(name string) (cursor int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cursor, ok = s.written[name]
	return cursor, ok
}

// Path returns the checkpoint file path.
func (s *Store) Path() string { return s.path }

// Source returns a copy of a source's state; ok is false when the source has never committed.
func (s *Store) Source(name string) (ss Progress, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, ok := s.sources[name]
	if !ok {
		return Progress{}, false
	}
	// It was encoded by this store (or checked by Open), so it decodes.
	if err := json.Unmarshal(raw, &ss); err != nil {
		panic(fmt.Sprintf("checkpoint: own encoding of source %q does not decode: %v", name, err))
	}
	return ss, true
}

// Commit records a source's new state and rewrites the file (File.Write: atomic always,
// durable at most every durableEvery). Flush makes the last write durable. ss is encoded before
// Commit returns and not kept, so the caller may change what it shares (Delivered.Into) right
// after. On error the in-memory state is still updated, so the next Commit retries the write
// with the newest state.
func (s *Store) Commit(name string, ss Progress) error {
	raw, err := json.Marshal(&ss)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[name] = raw
	s.cursors[name] = ss.Cursor
	return s.writeLocked(false)
}

// Flush makes the checkpoint durable if a Commit since the last durable write was not.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.file.Unsynced() {
		return nil
	}
	return s.writeLocked(true)
}

func (s *Store) writeLocked(durable bool) error {
	b, err := json.Marshal(struct {
		Version   int                        `json:"version"`
		Appliance string                     `json:"appliance"`
		Sources   map[string]json.RawMessage `json:"sources"`
	}{StateVersion, s.appliance, s.sources})
	if err != nil {
		return err
	}
	if err := s.file.Write(b, durable); err != nil {
		return err
	}
	maps.Copy(s.written, s.cursors)
	return nil
}
