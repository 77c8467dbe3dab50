package darktrace

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
)

// TestPeekIDAgreesWithDecoding: PeekID may decline, but when it answers it must give the key
// decoding gives; a wrong answer would drop a breach never delivered. Every real breach shape
// and a set of hostile ones are checked.
func TestPeekIDAgreesWithDecoding(t *testing.T) {
	src, err := SourceNamed(SourceBreaches)
	if err != nil {
		t.Fatal(err)
	}
	antigena, err := SourceNamed(SourceAntigena)
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	f, err := os.Open(filepath.Join("..", "testdata", "realshapes", "modelbreaches.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		raws = append(raws, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil || len(raws) == 0 {
		t.Fatalf("read %d real shapes: %v", len(raws), err)
	}
	peeked := 0
	for i, raw := range raws {
		rec, err := src.Decode(raw, nil)
		id, ok := src.PeekID(raw)
		if !ok {
			continue
		}
		peeked++
		if err != nil || rec.RecordKey() != id {
			t.Fatalf("real shape %d: peeked %q, decoding gives %v (%v)", i, id, rec, err)
		}
	}
	if peeked == 0 {
		t.Fatal("no real breach shape peeked: the fast path never runs")
	}

	cases := []struct {
		raw  string
		want string // "" when PeekID must decline
	}{
		{`{"pbid":95,"time":1}`, "95"},
		{`{ "time" : 1 , "pbid" : 95 }`, "95"},
		{`{"device":{"pbid":7},"pbid":95}`, "95"},           // a nested pbid is not the record's
		{`{"model":{"then":[{"pbid":7}]},"pbid":95}`, "95"}, // nor one in an array
		{`{"note":"\"pbid\":7","pbid":95}`, "95"},           // nor one inside a string value
		{`{"pbid":95,"pbid":96}`, ""},                       // decoders disagree on a repeat
		{`{"pbid":95,"PBID":96}`, ""},                       // and on case
		{`{"pb\u0069d":96,"pbid":95}`, ""},                  // and on escapes
		{`{"pbid":"95"}`, ""},
		{`{"pbid":95.0}`, ""},
		{`{"pbid":-95}`, ""},
		{`{"pbid":095}`, ""},
		{`{"pbid":1e3}`, ""},
		{`{"pbid":99999999999999999999}`, ""},
		{`{"time":1}`, ""},
		{`{"pbid":null}`, ""},
	}
	for _, c := range cases {
		id, ok := src.PeekID([]byte(c.raw))
		if c.want == "" {
			if ok {
				t.Errorf("%s: peeked %q, want a decline", c.raw, id)
			}
			continue
		}
		if !ok || id != c.want {
			t.Errorf("%s: peeked %q (%v), want %q", c.raw, id, ok, c.want)
			continue
		}
		if rec, err := src.Decode([]byte(c.raw), nil); err != nil || rec.RecordKey() != id {
			t.Errorf("%s: peeked %q, decoding gives %v (%v)", c.raw, id, rec, err)
		}
	}
	if _, ok := antigena.PeekID([]byte(`{"codeid":5}`)); ok {
		t.Error("an Antigena action changes under its codeid: its id alone cannot say it was delivered")
	}
}
