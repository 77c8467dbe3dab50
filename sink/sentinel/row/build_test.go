package row_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/sink/sentinel/row"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.ndjson from the current output")

// inputs are the project's shared golden records and the real shapes seen on appliances.
func inputs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "golden", "*", "input.json"))
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(p))] = b
	}
	shapes, _ := filepath.Glob(filepath.Join("..", "..", "..", "testdata", "realshapes", "*.ndjson"))
	for _, p := range shapes {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out["realshapes-"+strings.TrimSuffix(filepath.Base(p), ".ndjson")] = b
	}
	if len(out) < 5 {
		t.Fatalf("found only %d input files", len(out))
	}
	return out
}

// TestGolden builds the row of every record of every input and compares the stream and row
// with testdata/golden/<case>.ndjson. Run with -update, then review the diff like code.
func TestGolden(t *testing.T) {
	for name, in := range inputs(t) {
		t.Run(name, func(t *testing.T) {
			recs, err := alert.SplitRecords(in)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for _, raw := range recs {
				a, err := alert.Decode("", raw, "dt-lab", "dt.example.com")
				if err != nil {
					continue // not convertible: the formatter goldens cover these
				}
				r, err := row.Build(a)
				if err != nil {
					t.Fatalf("%s %s: %v", a.Kind, a.ID, err)
				}
				stream := row.StreamOf(a.Kind)
				if err := row.Check(stream, r); err != nil {
					t.Errorf("%s %s: %v", a.Kind, a.ID, err)
				}
				line, err := json.Marshal(map[string]any{"stream": stream, "row": r})
				if err != nil {
					t.Fatal(err)
				}
				got.Write(line)
				got.WriteByte('\n')
			}
			path := filepath.Join("testdata", "golden", name+".ndjson")
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("rows differ from %s (run with -update and review the diff)\ngot:\n%s", path, got.Bytes())
			}
		})
	}
}

// TestRulesRead pins what the solution's analytics rules read: category verbatim for the
// severity, mitreTechniques[].techniqueId, the entity columns, lower-case groupCategory.
func TestRulesRead(t *testing.T) {
	raw := []byte(`{"pbid":95,"time":1700000000000,"score":0.674,"model":{"name":"M","pid":762,"category":"Suspicious","compliance":true,"mitre":{"techniques":["T1041"]}},` +
		`"device":{"did":7,"ip":"10.0.0.7","hostname":"ws-7","sid":3},"triggeredComponents":[{"triggeredFilters":[{"filterType":"Destination IP","trigger":{"value":"81.2.69.144"}},{"filterType":"Connection hostname","trigger":{"value":"rare.example"}}]}]}`)
	a, err := alert.Decode(alert.SourceBreaches, raw, "acme-1", "dt.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r, err := row.Build(a)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"category": "Suspicious", "sourceIp": "10.0.0.7", "destIp": "81.2.69.144", "destHost": "rare.example",
		"sourceHost": "ws-7", "score": int64(67), "deviceId": int64(7), "sid": int64(3), "threatId": int64(95),
		"pid": int64(762), "compliance": true, "customLabel": "acme-1", "alertUrl": "https://dt.example.com/#modelbreach/95",
		"alertTime": "2023-11-14T22:13:20.000Z", "TimeGenerated": "2023-11-14T22:13:20.000Z",
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v (%T), want %#v", k, r[k], r[k], v)
		}
	}
	techs, _ := r["mitreTechniques"].([]map[string]any)
	if len(techs) != 1 || techs[0]["techniqueId"] != "T1041" {
		t.Errorf("mitreTechniques = %#v", r["mitreTechniques"])
	}
	for _, absent := range []string{"latitude", "longitude", "cSensor", "deviceCredentials", "darktraceProduct", "sourcePort"} {
		if _, ok := r[absent]; ok {
			t.Errorf("%s is set to %v; the record has no such value", absent, r[absent])
		}
	}

	ev := []byte(`{"id":"e1","createdAt":1717000500000,"title":"T","summary":"First. Second.","aiaScore":98,"groupScore":72.5,"groupCategory":"critical","currentGroup":"g1","groupPreviousGroups":[],` +
		`"periods":[{"start":1717000000000,"end":1717000400000}],"breachDevices":[{"did":7,"hostname":"ws-7","ip":"10.0.0.7/24","subnet":"10.0.0.0/24","identifier":"ws-7"}],"activityId":"a1","groupByActivity":false}`)
	a, err = alert.Decode(alert.SourceAIAnalyst, ev, "acme-1", "dt.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r, err = row.Build(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := row.Check(row.Incidents, r); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"groupCategory": "critical", "aiaScore": int64(98), "groupScore": int64(73), "deviceIp": "10.0.0.7",
		"deviceSubnet": "10.0.0.0/24", "summaryFirstSentence": "First.", "activityId": "a1", "groupByActivity": false,
		"startTime": "2024-05-29T16:26:40.000Z", "endTime": "2024-05-29T16:33:20.000Z"} {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[k], v)
		}
	}
	if g, ok := r["groupPreviousGroups"].([]string); !ok || len(g) != 0 {
		t.Errorf("groupPreviousGroups = %#v, want the record's empty list", r["groupPreviousGroups"])
	}
}

// TestCheckRejects proves Check can fail: each wrong type is named.
func TestCheckRejects(t *testing.T) {
	for _, c := range []struct {
		stream string
		r      map[string]any
	}{
		{row.ModelAlerts, map[string]any{"score": "67"}},
		{row.ModelAlerts, map[string]any{"score": 0.5}},
		{row.ModelAlerts, map[string]any{"alertTime": "yesterday"}},
		{row.ModelAlerts, map[string]any{"compliance": "true"}},
		{row.ModelAlerts, map[string]any{"mitreTechniques": "T1041"}},
		{row.ModelAlerts, map[string]any{"nope": "x"}},
		{row.Incidents, map[string]any{"aiaScore": int64(1) << 40}},
		{"Custom-Other", map[string]any{}},
	} {
		if err := row.Check(c.stream, c.r); err == nil {
			t.Errorf("Check(%s, %v) = nil, want an error", c.stream, c.r)
		}
	}
	if err := row.Check(row.ModelAlerts, map[string]any{"score": json.Number("67"), "alertTime": time.Unix(0, 0).UTC().Format(row.TimeLayout)}); err != nil {
		t.Error(err)
	}
}

func TestBuildUnknownKind(t *testing.T) {
	if _, err := row.Build(&alert.Alert{Kind: "other"}); err == nil {
		t.Error("want an error for an unknown kind")
	}
}
