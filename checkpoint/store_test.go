package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Source names as the poller commits them.
const (
	SourceBreaches = "modelbreaches"
	SourceAntigena = "antigena"
)

func TestFileName(t *testing.T) {
	tests := []struct{ name, appliance, want string }{
		{"plain", "dt-prod", "dt-prod.json"},
		{"host and port", "10.0.0.1:443", "10.0.0.1_443.json"},
		{"path traversal", "../../etc/passwd", ".._.._etc_passwd.json"},
		{"only dots", "..", "appliance.json"},
		{"empty", "", "appliance.json"},
		{"unicode", "dt–ü", "dt__.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FileName(tt.appliance)
			if got != tt.want {
				t.Fatalf("FileName(%q) = %q, want %q", tt.appliance, got, tt.want)
			}
			if strings.ContainsRune(got, '/') {
				t.Fatalf("FileName(%q) = %q contains a path separator", tt.appliance, got)
			}
		})
	}
}

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "dt1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Source(SourceBreaches); ok {
		t.Fatal("fresh store has a breaches checkpoint")
	}
	want := Progress{Cursor: 1700000000123, Seen: map[string]Seen{"95": {Time: 1700000000000}, "96": {Time: 1700000000100}}}
	if err := s.Commit(SourceBreaches, want); err != nil {
		t.Fatal(err)
	}
	// The store keeps its own copy: later changes by the caller are not persisted.
	want.Seen["97"] = Seen{Time: 1}
	if err := s.Commit(SourceAntigena, Progress{Cursor: 5, Seen: map[string]Seen{"7": {Version: "1/true/false/9", Time: 3}}}); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(dir, "dt1")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Source(SourceBreaches)
	if !ok || got.Cursor != 1700000000123 || len(got.Seen) != 2 || got.Seen["96"].Time != 1700000000100 {
		t.Fatalf("reloaded breaches state = %+v, %v", got, ok)
	}
	ag, _ := s2.Source(SourceAntigena)
	if ag.Seen["7"].Version != "1/true/false/9" {
		t.Fatalf("reloaded antigena state = %+v", ag)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 || entries[0].Name() != "dt1.json" || entries[1].Name() != "dt1.json.prev" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("STATE_DIR holds %v, want only dt1.json and its durable copy dt1.json.prev (no temp files left)", names)
	}
}

func TestOpenRejectsUnusableFiles(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantMsg string
	}{
		{"truncated", `{"version":1,"appliance":"dt1","sour`, "not valid JSON"},
		{"garbage", "\x00\x01binary", "not valid JSON"},
		{"future version", `{"version":2,"appliance":"dt1","sources":{}}`, "format version 2"},
		{"no version", `{"appliance":"dt1","sources":{}}`, "format version 0"},
		{"other appliance", `{"version":1,"appliance":"dt2","sources":{}}`, `belongs to appliance "dt2"`},
		{"negative cursor", `{"version":1,"appliance":"dt1","sources":{"modelbreaches":{"cursor":-5}}}`, "no valid cursor"},
		{"null source", `{"version":1,"appliance":"dt1","sources":{"modelbreaches":null}}`, "no valid cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "dt1.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(dir, "dt1")
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("Open error = %v, want a *StateError", err)
			}
			if se.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q should name %s and say %q", err, path, tt.wantMsg)
			}
		})
	}
}

func TestStoreCommitFailureKeepsMemoryState(t *testing.T) {
	if os.Geteuid() == 0 {
		// root ignores directory permissions; make the target a directory instead.
		dir := t.TempDir()
		s, err := Open(dir, "dt1")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.Path(), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Path(), "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(SourceBreaches, Progress{Cursor: 42}); err == nil {
			t.Fatal("Commit over a non-empty directory succeeded")
		}
		if got, _ := s.Source(SourceBreaches); got.Cursor != 42 {
			t.Fatalf("in-memory cursor = %d after a failed write, want 42", got.Cursor)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Fatalf("a failed commit left %d entries in STATE_DIR, want only the blocking directory", len(entries))
		}
		return
	}
	t.Skip("needs root to build the failure case portably")
}

// TestOpenRefusesCursorZero: a cursor of 0 (1970) is what a zeroed or hand-edited file
// holds, never a position dtforward wrote; starting there would re-send everything or, worse,
// hide that the real position is lost.
func TestOpenRefusesCursorZero(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dt1.json")
	content := `{"version":1,"appliance":"dt1","sources":{"aianalyst":{"cursor":1700000000000},"modelbreaches":{"cursor":0}}}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, "dt1")
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `source "modelbreaches" has no valid cursor`) {
		t.Fatalf("Open = %v, want a StateError for the zero cursor", err)
	}
	// The other source's cursor is the best known position: the backfill starts an hour
	// before it.
	if want := "--from 2023-11-14T21:13:20Z"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error does not suggest %q:\n%s", want, err)
	}
}

// TestStateErrorTellsHowToCoverTheGap: the error for an unusable checkpoint gives the exact
// backfill command and the POLL_START that continues where the backfill ends.
func TestStateErrorTellsHowToCoverTheGap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dt_1.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"appliance":"dt 1","sour`), 0o600); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(path, written, written); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC().Truncate(time.Second)
	_, err := Open(dir, "dt 1")
	after := time.Now().UTC()
	if err == nil {
		t.Fatal("a truncated checkpoint was accepted")
	}
	msg := err.Error()
	cmd := regexp.MustCompile(`dtforward backfill --appliance 'dt 1' --from (\S+) --to (\S+)\n`).FindStringSubmatch(msg)
	if cmd == nil {
		t.Fatalf("no backfill command in:\n%s", msg)
	}
	// Without a readable cursor the file's last write is the best estimate, an hour earlier.
	if cmd[1] != "2026-03-04T04:06:07Z" {
		t.Errorf("--from %s, want an hour before the file's last write (2026-03-04T04:06:07Z)", cmd[1])
	}
	to, perr := time.Parse(time.RFC3339, cmd[2])
	if perr != nil || to.Before(before) || to.After(after) {
		t.Errorf("--to %s, want the time of the error (%s..%s)", cmd[2], before, after)
	}
	if !strings.Contains(msg, "POLL_START="+cmd[2]) {
		t.Errorf("the message does not tell run to start at the backfill's end (POLL_START=%s):\n%s", cmd[2], msg)
	}
}

// TestOpenRemovesLeftoverTempFiles: a process killed between creating the temp file and
// renaming it leaves ".<name>.tmp-*" behind; the next start removes its own, and only its own.
func TestOpenRemovesLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	leftovers := []string{".dt1.json.tmp-123", ".dt1.json.tmp-456"}
	keep := []string{".dt2.json.tmp-789", "dt1.json.tmp-1", "notes.txt"}
	for _, n := range append(slices.Clone(leftovers), keep...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir, "dt1"); err != nil {
		t.Fatal(err)
	}
	for _, n := range leftovers {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed: %v", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, which is not this appliance's temp file, was removed: %v", n, err)
		}
	}
}
