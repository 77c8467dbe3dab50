package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A power cut between fsyncs can leave the renamed checkpoint empty (XFS) or torn. Open then
// resumes from the last durable copy and says so, instead of refusing to start (run exited 2,
// or disabled the appliance): at most durableEvery of progress is repeated, nothing skipped.
func TestOpenFallsBackToTheLastDurableCopy(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(path string) error
	}{
		// What a power cut leaves at the name: a new file (the last rename's) whose data did
		// not reach the disk; the fsynced file of the durable copy is untouched.
		{"zero-length", func(p string) error { return replace(p, func([]byte) []byte { return nil }) }},
		{"torn", func(p string) error { return replace(p, func(b []byte) []byte { return b[:len(b)/2] }) }},
		{"zeroed", func(p string) error { return replace(p, func(b []byte) []byte { return make([]byte, len(b)) }) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, "dt1")
			if err != nil {
				t.Fatal(err)
			}
			// The first write is durable; the next ones, within durableEvery, are not.
			if err := s.Commit(SourceBreaches, Progress{Cursor: 1000}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(SourceBreaches, Progress{Cursor: 2000}); err != nil {
				t.Fatal(err)
			}
			if err := tt.damage(s.Path()); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(dir, "dt1")
			if err != nil {
				t.Fatalf("Open after a power cut between fsyncs: %v", err)
			}
			if got, _ := s2.Source(SourceBreaches); got.Cursor != 1000 {
				t.Fatalf("resumed at cursor %d, want the durable 1000", got.Cursor)
			}
			fb := s2.FellBack()
			if fb == nil || !strings.Contains(fb.Error(), "dt1.json.prev") || !strings.Contains(fb.Error(), s.Path()) {
				t.Fatalf("FellBack() = %v, want it to name the file and its durable copy", fb)
			}
			// The next write replaces the damaged file.
			if err := s2.Commit(SourceBreaches, Progress{Cursor: 3000}); err != nil {
				t.Fatal(err)
			}
			s3, err := Open(dir, "dt1")
			if err != nil || s3.FellBack() != nil {
				t.Fatalf("Open after the next write: %v, fell back: %v", err, s3.FellBack())
			}
			if got, _ := s3.Source(SourceBreaches); got.Cursor != 3000 {
				t.Fatalf("cursor %d after the repair, want 3000", got.Cursor)
			}
		})
	}
}

// Without a usable durable copy a damaged checkpoint is still refused (never started over).
func TestOpenWithoutDurableCopyStillRefuses(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "dt1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(SourceBreaches, Progress{Cursor: 1000}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Path(), s.Path() + ".prev"} {
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(dir, "dt1"); err == nil {
		t.Fatal("Open accepted an empty checkpoint with an empty copy")
	}
	// Deleting the checkpoint means starting over: its old copy goes too.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "dt1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path() + ".prev"); !os.IsNotExist(err) {
		t.Fatalf("the copy of a deleted checkpoint survived: %v", err)
	}
}

// While the checkpoint cannot be written, every failure reads the same (the temporary file's
// name used to make each one new, so the poller warned on every poll), and Written keeps the
// cursor that is on disk, which the lag metric reports.
func TestFailingWritesReadTheSameAndWrittenStays(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "dt1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(SourceBreaches, Progress{Cursor: 1000}); err != nil {
		t.Fatal(err)
	}
	// Replace the file with a non-empty directory: every rename over it fails.
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Path(), "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for c := int64(2000); c <= 4000; c += 1000 {
		err := s.Commit(SourceBreaches, Progress{Cursor: c})
		if err == nil {
			t.Fatal("Commit over a directory succeeded")
		}
		texts = append(texts, err.Error())
		if got, _ := s.Source(SourceBreaches); got.Cursor != c {
			t.Fatalf("committed cursor %d, want %d", got.Cursor, c)
		}
		if w, ok := s.Written(SourceBreaches); !ok || w != 1000 {
			t.Fatalf("Written = %d, %v while writes fail, want 1000 (what is on disk)", w, ok)
		}
	}
	for _, txt := range texts[1:] {
		if txt != texts[0] {
			t.Fatalf("the same failure reads differently each time:\n%s\n%s", texts[0], txt)
		}
	}
	if strings.Contains(texts[0], ".tmp-") {
		t.Errorf("the error names the temporary file: %s", texts[0])
	}
	if err := os.RemoveAll(s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(SourceBreaches, Progress{Cursor: 5000}); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Written(SourceBreaches); w != 5000 {
		t.Fatalf("Written = %d after a successful write, want 5000", w)
	}
}

// replace puts f(content) at path as a new file, as a rename does.
func replace(path string, f func([]byte) []byte) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return os.WriteFile(path, f(b), 0o600)
}
