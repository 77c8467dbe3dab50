package formatter_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

// firstShape returns the first record of a testdata/realshapes file as a generic map.
func firstShape(t *testing.T, name string) map[string]any {
	t.Helper()
	f, err := os.Open("../testdata/realshapes/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("%s: empty", name)
	}
	var m map[string]any
	if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDarktraceJSONFallbackKeepsIDs: records the field-wise trimming cannot bring under the
// limit (an AI Analyst event with 60 breachDevices, 11.6 KB; a breach with 3,000 model tags)
// are written as a bounded record marked "trimmed" that keeps every id and the triage fields,
// instead of failing (before: "alert cannot be formatted; skipped").
func TestDarktraceJSONFallbackKeepsIDs(t *testing.T) {
	const max = 8192 - 100 - 16 // SIEM_MAX_MESSAGE_BYTES's default less the header reserve

	ev := firstShape(t, "aianalyst.ndjson")
	var devices []any
	for i := range 60 {
		devices = append(devices, map[string]any{"did": 1000 + i, "sid": i, "hostname": fmt.Sprintf("workstation-%03d.corp.example.com", i),
			"ip": fmt.Sprintf("10.20.%d.%d", i/250, i%250), "mac": fmt.Sprintf("aa:bb:cc:dd:%02x:%02x", i/256, i%256),
			"subnet": "10.20.0.0/16", "identifier": fmt.Sprintf("workstation-%03d", i)})
	}
	ev["breachDevices"] = devices
	evRaw, _ := json.Marshal(ev)

	br := firstShape(t, "modelbreaches.ndjson")
	var tags []any
	for i := range 3000 {
		tags = append(tags, fmt.Sprintf("tag-%04d", i))
	}
	br["model"].(map[string]any)["tags"] = tags
	brRaw, _ := json.Marshal(br)

	tests := []struct {
		name string
		a    *alert.Alert
		ids  []string // every one must be in the line
	}{
		{"aianalyst, 60 devices", &alert.Alert{Kind: alert.KindAIAnalyst, ID: ev["id"].(string), Raw: evRaw},
			append([]string{`"id":"` + ev["id"].(string) + `"`, `"currentGroup":"g04a3f36e-4u8w-v9dh-x6lb-894778cf9633"`,
				`"groupCategory":"critical"`, `"aiaScore":98`, `"pbid":101`, `"createdAt":1717000500000`, `"title":"Suspicious Remote Service Control Activity"`,
				`"incidentEventUrl":"https://dt.example.com/#aiaincidentevent/04a3f36e-4u8w-v9dh-x6lb-894778cf9633"`}, dids(60)...)},
		{"breach, 3000 tags", &alert.Alert{Kind: alert.KindBreach, ID: "101", Raw: brRaw},
			[]string{`"pbid":101`, `"time":1717000000000`, `"creationTime":1717000009000`, `"score":0.674`, `"did":7`, `"pid":762`,
				`"uuid":"80010119-6d7f-0000-0305-5e0000000325"`, `"name":"Anomalous Connection::Data Sent to Rare Domain"`,
				`"category":"Suspicious"`, `"priority":4`, `"breachUrl":"https://dt.example.com/#modelbreach/101"`, `"hostname":"ws-7.corp.example"`}},
	}
	f, err := formatter.New("darktrace-json", formatter.Options{MaxBytes: max})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		if len(tc.a.Raw) <= max {
			t.Fatalf("%s: record of %d bytes fits already", tc.name, len(tc.a.Raw))
		}
		line, err := f.Append(nil, tc.a)
		if err != nil {
			t.Errorf("%s (%d bytes): %v", tc.name, len(tc.a.Raw), err)
			continue
		}
		if len(line) > max || !json.Valid(line) || !strings.Contains(string(line), `"trimmed":true`) {
			t.Errorf("%s: %d bytes (max %d), valid %v, marked %v", tc.name, len(line), max, json.Valid(line), strings.Contains(string(line), `"trimmed":true`))
		}
		for _, id := range tc.ids {
			if !strings.Contains(string(line), id) {
				t.Errorf("%s: %s missing from %s", tc.name, id, line)
			}
		}
	}
}

func dids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`"did":%d`, 1000+i))
	}
	return out
}
