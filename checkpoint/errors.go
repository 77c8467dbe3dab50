package checkpoint

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// StateError reports a state file (a checkpoint, a backfill's state) that exists but cannot be
// used. dtforward never silently restarts from scratch over such a file: that would re-send or
// skip a window of alerts.
type StateError struct {
	// What names the file: "checkpoint" (the default) or "backfill state".
	What string
	Path string
	Err  error
	// Recovery, when set, tells the user how to go on without a gap (the live checkpoint sets
	// it: the exact backfill command and POLL_START).
	Recovery string
}

// Error implements error.
func (e *StateError) Error() string {
	what, advice := "checkpoint", "fix it, or remove it to start again at POLL_START"
	if e.What != "" && e.What != what {
		// A backfill's own state: POLL_START plays no part in it.
		what, advice = e.What, "fix it, or remove it to start this backfill over"
	}
	if e.Recovery != "" {
		return fmt.Sprintf("%s %s is unusable: %v.\n%s", what, e.Path, e.Err, e.Recovery)
	}
	return fmt.Sprintf("%s %s is unusable: %v (%s)", what, e.Path, e.Err, advice)
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
