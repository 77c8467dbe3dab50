package backfill

// state.go is the backfill's own state file: per source, the cursor up to which everything was
// delivered and the windows before it that failed.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/checkpoint"
)

// backfillState is the state file: per source, the cursor up to which everything was delivered
// and the windows before it that failed.
type backfillState struct {
	Version   int                        `json:"version"`
	Appliance string                     `json:"appliance"`
	From      int64                      `json:"from"`
	To        int64                      `json:"to"`
	Args      string                     `json:"args,omitempty"` // the range as given: Config.Args
	Sources   []string                   `json:"sources"`
	Progress  map[string]*backfillCursor `json:"progress"`
}

type backfillCursor struct {
	Cursor int64      `json:"cursor"`
	Failed [][2]int64 `json:"failed,omitempty"`
}

// StatePath returns the state file of a backfill of appliance over [from, to) for
// sources: "backfill-<appliance>-<hash>.json" in dir, the hash covering the range and the
// sorted source list, so the same command finds its own file and a different range never
// resumes another's progress.
func StatePath(dir, appliance string, from, to time.Time, sources []string) string {
	srcs := slices.Clone(sources)
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	h := sha256.Sum256([]byte(appliance + "\x00" + strconv.FormatInt(from.UnixMilli(), 10) + "\x00" +
		strconv.FormatInt(to.UnixMilli(), 10) + "\x00" + strings.Join(srcs, ",")))
	name := strings.TrimSuffix(checkpoint.FileName(appliance), ".json")
	return filepath.Join(dir, "backfill-"+name+"-"+hex.EncodeToString(h[:6])+".json")
}

// LockPath is the lock file of the backfills of appliance in dir; it exists only while one runs.
func LockPath(dir, appliance string) string {
	return filepath.Join(dir, "backfill-"+strings.TrimSuffix(checkpoint.FileName(appliance), ".json")+".lock")
}

// complete reports whether every source reached the end of the range with no failed window.
func (st *backfillState) complete() bool {
	for _, n := range st.Sources {
		c := st.Progress[n]
		if c == nil || c.Cursor < st.To || len(c.Failed) > 0 {
			return false
		}
	}
	return true
}

// pick decides which state this run continues, before it is loaded: the state of the range
// asked for (resumed as always); else the unfinished state of a run given the same Args with
// the same sources, whose range this run adopts (a range relative to now names other times on
// every run); any other unfinished state of the appliance with sources in common is an
// *UnfinishedError, or with Restart is dropped (as is this range's own state).
func (b *backfiller) pick(names []string) error {
	base := strings.TrimSuffix(checkpoint.FileName(b.sum.Appliance), ".json")
	files, _ := filepath.Glob(filepath.Join(b.cfg.StateDir, "backfill-"+base+"-*.json"))
	var conflicts []*UnfinishedError
	adopted := false
	for _, f := range files {
		data, err := os.ReadFile(f)
		var st backfillState
		if err != nil || json.Unmarshal(data, &st) != nil || st.Version != StateVersion || st.Appliance != b.sum.Appliance {
			continue // not a state of this appliance this build reads: load reports it if it is ours
		}
		same := sameSet(st.Sources, names)
		switch {
		case !intersects(st.Sources, names):
			continue
		case st.From == b.from && st.To == b.to && same:
			if b.cfg.Restart {
				b.drop(f)
			}
			continue
		case st.complete():
			continue
		case !b.cfg.Restart && !adopted && b.cfg.Args != "" && st.Args == b.cfg.Args && same:
			b.from, b.to, adopted = st.From, st.To, true
			b.log.Info().Str("state", f).Time("from", time.UnixMilli(st.From)).Time("to", time.UnixMilli(st.To)).
				Msg("resuming the unfinished backfill of the same command over its own range")
			continue
		}
		conflicts = append(conflicts, &UnfinishedError{Path: f, From: time.UnixMilli(st.From), To: time.UnixMilli(st.To), Sources: st.Sources, Args: st.Args})
	}
	if len(conflicts) == 0 {
		return nil
	}
	if !b.cfg.Restart {
		return conflicts[0]
	}
	for _, c := range conflicts {
		b.drop(c.Path)
	}
	return nil
}

// drop removes a state file and its durable copy (Restart).
func (b *backfiller) drop(path string) {
	b.log.Info().Str("state", path).Msg("--restart: dropping the progress of this backfill state")
	_ = os.Remove(path)
	_ = os.Remove(path + ".prev")
}

func intersects(a, b []string) bool {
	return slices.ContainsFunc(a, func(s string) bool { return slices.Contains(b, s) })
}

func sameSet(a, b []string) bool {
	return !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) }) &&
		!slices.ContainsFunc(b, func(s string) bool { return !slices.Contains(a, s) })
}

func (b *backfiller) load() error {
	data, fellBack, err := b.file.Read(func(d []byte) error { _, err := b.parse(d); return err })
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &checkpoint.StateError{What: "backfill state", Path: b.path, Err: err}
	}
	st, err := b.parse(data)
	if err != nil {
		return &checkpoint.StateError{What: "backfill state", Path: b.path, Err: err}
	}
	if fellBack != nil {
		b.log.Warn().Str("state", b.path).Err(fellBack).Msg("backfill state damaged (a power loss between fsyncs?); resuming from its last durable copy")
	}
	b.st.Progress = st.Progress
	return nil
}

// parse reads and checks a state file's content against this backfill.
func (b *backfiller) parse(data []byte) (backfillState, error) {
	var st backfillState
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("not valid JSON: %w", err)
	}
	switch {
	case st.Version != StateVersion:
		return st, fmt.Errorf("format version %d, this build reads version %d", st.Version, StateVersion)
	case st.Appliance != b.st.Appliance || st.From != b.from || st.To != b.to:
		return st, errors.New("belongs to another appliance or range")
	}
	for name, c := range st.Progress {
		if c == nil || c.Cursor < b.from || c.Cursor > b.to {
			return st, fmt.Errorf("source %q has a cursor outside the range", name)
		}
		for _, w := range c.Failed {
			if w[0] < b.from || w[1] > b.to || w[0] >= w[1] {
				return st, fmt.Errorf("source %q has an invalid failed window", name)
			}
		}
	}
	if st.Progress == nil {
		st.Progress = map[string]*backfillCursor{}
	}
	return st, nil
}

// save writes the state file (checkpoint.File: atomic always, durable at most every two
// seconds); write with final makes it durable now.
func (b *backfiller) save() error { return b.write(false) }

func (b *backfiller) write(final bool) error {
	if b.cfg.DryRun {
		return nil
	}
	data, err := json.Marshal(b.st)
	if err != nil {
		return err
	}
	return b.file.Write(data, final)
}
