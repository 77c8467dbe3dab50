package alert_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/testutil/shapes"
)

func corpusRecord(t *testing.T, source, id string) []byte {
	t.Helper()
	recs, err := shapes.Corpus(source)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte(`"` + shapes.Keys[source] + `":` + id + `,`)
	for _, r := range recs {
		if bytes.Contains(r, key) {
			return r
		}
	}
	t.Fatalf("no %s record with %s", source, key)
	return nil
}

// TestRealShapesBreach: what the real-shaped variations of a breach become.
func TestRealShapesBreach(t *testing.T) {
	conv := func(id string) *alert.Alert {
		t.Helper()
		a, err := alert.Decode(alert.SourceBreaches, corpusRecord(t, alert.SourceBreaches, id), "dt", "dt.example.com")
		if err != nil {
			t.Fatalf("pbid %s: %v", id, err)
		}
		return a
	}
	if a := conv("101"); a.Ack != nil || a.Priority != 4 || a.SignatureID != "762" || a.Device.Placeholder != "" {
		t.Errorf("complete record: %+v", a)
	}
	if a := conv("102"); a.Ack == nil || a.Ack.User != "analyst@example.com" || !a.Ack.Time.Equal(time.UnixMilli(1717000100000)) {
		t.Errorf("ack object: %+v", a.Ack)
	}
	if a := conv("103"); a.Ack == nil || a.Ack.User != "analyst@example.com" || !a.Ack.Time.IsZero() {
		t.Errorf("ack object without time: %+v", a.Ack)
	}
	if a := conv("104"); a.Ack == nil || *a.Ack != (alert.Acknowledgement{}) {
		t.Errorf("ack true: %+v", a.Ack)
	}
	if a := conv("105"); a.Message != "An issue with the system has been detected." || a.Device.DID != -1 {
		t.Errorf("literal \\n description: message %q, device %+v", a.Message, a.Device)
	}
	if a := conv("106"); a.Device.Label != "test_device" || a.Device.Hostname != "" || a.Ack == nil || a.Ack.User != "soc@example.com" {
		t.Errorf("label-only device: %+v, ack %+v", a.Device, a.Ack)
	}
	if a := conv("107"); a.Device.IP != "" || a.Device.Placeholder != "10.0.0.#36859" || a.Device.Hostname != "10.0.0.12" {
		t.Errorf("placeholder IP: %+v", a.Device)
	}
	if a := conv("108"); a.Priority != alert.NoPriority || a.URL != "https://dt.example.com/#modelbreach/108" || !a.Created.Equal(a.Time) {
		t.Errorf("absent optional fields: priority %d url %q", a.Priority, a.URL)
	}
	if a := conv("109"); a.Priority != 4 || a.Model.Name != "Anomalous Connection::Data Sent to Rare Domain" {
		t.Errorf("then/now model: %+v", a)
	}
	if a := conv("112"); a.Score != 0.52 || a.Severity != 5 {
		t.Errorf("score as a string: %v", a.Score)
	}
	if a := conv("114"); a.Priority != alert.NoPriority || a.Device.Hostname != "" {
		t.Errorf("nulls: %+v", a)
	}
	// No pid: no fake signature "0".
	a, err := alert.Decode(alert.SourceBreaches, []byte(`{"pbid":5,"model":{"name":"X"}}`), "dt", "")
	if err != nil || a.SignatureID != "" || a.Model.PID != 0 || a.Priority != alert.NoPriority {
		t.Errorf("no pid: %+v, %v", a, err)
	}
}

func TestRealShapesAntigena(t *testing.T) {
	raw := corpusRecord(t, alert.SourceAntigena, "5006")
	a, err := alert.Decode(alert.SourceAntigena, raw, "dt", "dt.example.com")
	if err != nil || a.Device.Placeholder != "192.168.16.#54818" || a.Device.IP != "" || a.Priority != alert.NoPriority {
		t.Errorf("antigena placeholder: %+v, %v", a, err)
	}
}

// TestMutationsNeverDropARecord is the property issue 10 asks for: thousands of variants of
// each real-shaped record, each with one non-key value replaced by another JSON type or
// removed, all go through decode, conversion and every formatter with their id; the
// darktrace-json line carries the record's own members.
func TestMutationsNeverDropARecord(t *testing.T) {
	var fs []formatter.Formatter
	for _, name := range formatter.Names() {
		f, err := formatter.New(name, formatter.Options{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	dtjson, err := formatter.New("darktrace-json", formatter.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range alert.Sources() {
		recs, err := shapes.Corpus(source)
		if err != nil {
			t.Fatal(err)
		}
		variants := 0
		var line []byte
		for _, raw := range recs {
			var top map[string]json.RawMessage
			if err := json.Unmarshal(raw, &top); err != nil {
				t.Fatal(err)
			}
			wantID := strings.Trim(string(top[shapes.Keys[source]]), `"`)
			err := shapes.Mutate(raw, shapes.Keys[source], shapes.PerPath[source], func(path string, v []byte) {
				variants++
				a, err := alert.DecodeReporting(source, v, "dt", "dt.example.com", func(darktrace.Anomaly) {})
				if err != nil || a.ID != wantID {
					t.Fatalf("%s %s, %s mutated: %v (alert %+v)\n%s", source, wantID, path, err, a, v)
				}
				for i, f := range fs {
					if line, err = f.Append(line[:0], a); err != nil || len(line) == 0 {
						t.Fatalf("%s %s, %s mutated: %s: %v\n%s", source, wantID, path, formatter.Names()[i], err, v)
					}
				}
				line, err = dtjson.Append(line[:0], a)
				if err != nil {
					t.Fatal(err)
				}
				// The record's own bytes, compacted; the formatter may add breachUrl at the end.
				var compact bytes.Buffer
				if err := json.Compact(&compact, v); err != nil {
					t.Fatal(err)
				}
				if own := compact.Bytes(); !bytes.HasPrefix(line, own[:len(own)-1]) {
					t.Fatalf("%s %s, %s mutated: darktrace-json does not carry the record's bytes:\n%s\n%s", source, wantID, path, line, own)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d variants, none dropped", source, variants)
		if variants < shapes.MinVariants {
			t.Errorf("%s: only %d variants", source, variants)
		}
	}
}
