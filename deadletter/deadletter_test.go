package deadletter

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestWriteBoundAndReopen: records are whole JSON lines; a record past the bound is refused
// with ErrFull and leaves the file as it was; once the operator moves the file away, the next
// record starts a new one.
func TestWriteBoundAndReopen(t *testing.T) {
	dir := t.TempDir()
	rec := Record{Time: time.Unix(1700000000, 0).UTC(), Sink: "siem", Appliance: "dt", Kind: "modelbreach", ID: "42",
		Reason: ReasonRefused, Answer: "500 no", Line: `{"pbid":42}`}
	one, _ := json.Marshal(rec)
	d := New(dir, int64(2*(len(one)+1)))
	defer d.Close()
	for range 2 {
		if err := d.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Write(rec); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), d.Path()) {
		t.Fatalf("third record = %v, want ErrFull naming the file", err)
	}
	raw, err := os.ReadFile(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), raw)
	}
	for _, l := range lines {
		var got Record
		if err := json.Unmarshal(l, &got); err != nil || got.ID != "42" || got.Answer != "500 no" {
			t.Errorf("line %s: %+v %v", l, got, err)
		}
	}
	if err := os.Rename(d.Path(), d.Path()+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(rec); err != nil {
		t.Fatalf("after moving the full file away: %v", err)
	}
	if raw, _ := os.ReadFile(d.Path()); !bytes.Equal(raw, append(one, '\n')) {
		t.Errorf("new file = %q", raw)
	}
}

// TestRecordTextForInvalidJSON: a raw record encoding/json cannot carry is kept as text.
func TestRecordTextForInvalidJSON(t *testing.T) {
	d := New(t.TempDir(), 0)
	defer d.Close()
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	if err := d.Write(Record{ID: "1", RecordText: deep}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(d.Path())
	var got Record
	if err := json.Unmarshal(raw, &got); err != nil || got.RecordText != deep {
		t.Errorf("record_text not kept: %v", err)
	}
}
