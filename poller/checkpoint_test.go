package poller

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	s, err := OpenStore(dir, "dt1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Source(SourceBreaches); ok {
		t.Fatal("fresh store has a breaches checkpoint")
	}
	want := SourceState{Cursor: 1700000000123, Seen: map[string]Seen{"95": {Time: 1700000000000}, "96": {Time: 1700000000100}}}
	if err := s.Commit(SourceBreaches, want); err != nil {
		t.Fatal(err)
	}
	// The store keeps its own copy: later changes by the caller are not persisted.
	want.Seen["97"] = Seen{Time: 1}
	if err := s.Commit(SourceAntigena, SourceState{Cursor: 5, Seen: map[string]Seen{"7": {Version: "1/true/false/9", Time: 3}}}); err != nil {
		t.Fatal(err)
	}

	s2, err := OpenStore(dir, "dt1")
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
	if len(entries) != 1 || entries[0].Name() != "dt1.json" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("STATE_DIR holds %v, want only dt1.json (no temp files left)", names)
	}
}

func TestOpenStoreRejectsUnusableFiles(t *testing.T) {
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
			_, err := OpenStore(dir, "dt1")
			var se *StateError
			if !errors.As(err, &se) {
				t.Fatalf("OpenStore error = %v, want a *StateError", err)
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
		s, err := OpenStore(dir, "dt1")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.Path(), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Path(), "x"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(SourceBreaches, SourceState{Cursor: 42}); err == nil {
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
