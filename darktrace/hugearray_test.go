package darktrace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// hugeRecords is a response whose second record is a breach whose model has n tags and whose
// third holds n small objects in details, each with every triage field (ids, model name and
// pid, score, device, url) around the huge array, between two plain records.
func hugeRecords(n int) string {
	var tags, details strings.Builder
	for i := range n {
		if i > 0 {
			tags.WriteByte(',')
			details.WriteByte(',')
		}
		fmt.Fprintf(&tags, `"tag%d"`, i)
		fmt.Fprintf(&details, `{"header":"h%d","contents":[{"key":"k","value":%d}]}`, i, i)
	}
	return `[{"pbid":1,"time":1},` +
		`{"pbid":2,"time":1,"model":{"name":"Anomalous::Tagged","pid":7,"tags":[` + tags.String() + `]},"score":0.9,"device":{"did":3,"ip":"10.0.0.3"},"breachUrl":"https://dt/2"},` +
		`{"pbid":3,"time":1,"model":{"name":"Anomalous::Detailed","pid":8},"details":[` + details.String() + `],"score":0.8,"device":{"did":4},"breachUrl":"https://dt/3"},` +
		`{"pbid":4,"time":1}]`
}

// TestStreamCutsHugeArrays: a breach whose model has 300,000 tags (3 MB) and one whose details
// hold 300,000 small objects (18 MB) are forwarded with those arrays cut to the budget, keeping
// a prefix of whole elements and every triage field; the cut is reported with the record's id
// and position. Before, each record was held and handed on whole, however large.
func TestStreamCutsHugeArrays(t *testing.T) {
	body := hugeRecords(300_000)
	var cut []MalformedRecord
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(body))
	}), func(cfg *Config) { cfg.OnTrimmed = func(m MalformedRecord) { cut = append(cut, m) } })
	type rec struct {
		PBID  int64 `json:"pbid"`
		Model struct {
			Name string   `json:"name"`
			PID  int      `json:"pid"`
			Tags []string `json:"tags"`
		} `json:"model"`
		Details []struct {
			Header string `json:"header"`
		} `json:"details"`
		Score  float64 `json:"score"`
		Device struct {
			DID int `json:"did"`
		} `json:"device"`
		URL string `json:"breachUrl"`
	}
	var got []rec
	err := c.Stream(context.Background(), "/modelbreaches?starttime=1", func(raw []byte) error {
		if len(raw) > 2<<20 {
			t.Errorf("record %s handed on with %d bytes, want at most 2 MiB", RecordID(raw), len(raw))
		}
		var r rec
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("record %s is not valid JSON: %v", RecordID(raw), err)
		}
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if len(got) != 4 || got[0].PBID != 1 || got[3].PBID != 4 {
		t.Fatalf("delivered %d records, want the 4 of the answer", len(got))
	}
	tags, det := got[1], got[2]
	if tags.PBID != 2 || tags.Model.Name != "Anomalous::Tagged" || tags.Model.PID != 7 || tags.Score != 0.9 ||
		tags.Device.DID != 3 || tags.URL != "https://dt/2" {
		t.Errorf("record 2 lost a triage field: %+v", tags)
	}
	if det.PBID != 3 || det.Model.Name != "Anomalous::Detailed" || det.Model.PID != 8 || det.Score != 0.8 ||
		det.Device.DID != 4 || det.URL != "https://dt/3" {
		t.Errorf("record 3 lost a triage field: %+v", det.PBID)
	}
	// The kept elements are the first ones, whole.
	if n := len(tags.Model.Tags); n == 0 || n == 300_000 || tags.Model.Tags[n-1] != fmt.Sprintf("tag%d", n-1) {
		t.Errorf("record 2 kept %d tags, want a prefix cut short", n)
	}
	if n := len(det.Details); n == 0 || n == 300_000 || det.Details[n-1].Header != fmt.Sprintf("h%d", n-1) {
		t.Errorf("record 3 kept %d details, want a prefix cut short", n)
	}
	if len(cut) != 2 || cut[0].Index != 1 || cut[0].ID != "2" || cut[1].Index != 2 || cut[1].ID != "3" {
		t.Fatalf("trimmed %+v, want records 2 and 3 at indexes 1 and 2", cut)
	}
	for _, m := range cut {
		if fmt.Sprint(m.Cuts) != "[array over 1 MiB]" || !strings.Contains(m.Err.Error(), "elements of arrays longer than 1048576 bytes dropped") {
			t.Errorf("record %s reported as %q (%v), want one array over 1 MiB", m.ID, m.Cuts, m.Err)
		}
	}
}

// arrLimit is where the tests below cut arrays.
const arrLimit = 40

// triage is a record with every triage field around arr, its model's tags.
func triage(pbid int, arr string) string {
	return fmt.Sprintf(`{"pbid":%d,"model":{"name":"M","pid":5,"tags":%s},"score":1,"device":{"did":3},"url":"u"}`, pbid, arr)
}

// TestLongArraysAreCut: an array over the limit, at any depth, keeps its first elements whole
// up to the limit (its first one always) and is closed after them; everything around it (every
// triage field) is kept and the elements dropped are reported with the record's position. Read
// whole and a byte at a time; the neighbours are delivered as they are.
func TestLongArraysAreCut(t *testing.T) {
	list := func(n int, f string) []string {
		var els []string
		for i := range n {
			els = append(els, fmt.Sprintf(f, i))
		}
		return els
	}
	// cut is what the splitter must keep of the elements els written with sep between them:
	// the longest prefix within arrLimit, at least one element.
	cut := func(els []string, sep string) (string, int) {
		kept := els[0]
		n := 1
		for ; n < len(els) && len(kept+sep+els[n]) <= arrLimit; n++ {
			kept += sep + els[n]
		}
		return kept, len(els) - n
	}
	tags, objs := list(1000, `"t%d"`), list(1000, `{"a":%d,"b":"x"}`)
	tagsKept, tagsDropped := cut(tags, ",")
	objsKept, objsDropped := cut(objs, ",")
	spaced, spacedDropped := cut(tags, " ,\n ")
	inner, _ := cut(tags, ",")
	tests := []struct {
		name, arr, want string
		dropped         int64
	}{
		{"short strings", "[" + strings.Join(tags, ",") + "]", "[" + tagsKept + "]", int64(tagsDropped)},
		{"small objects", "[" + strings.Join(objs, ",") + "]", "[" + objsKept + "]", int64(objsDropped)},
		{"whitespace", "[ " + strings.Join(tags, " ,\n ") + " ]", "[ " + spaced + " ]", int64(spacedDropped)},
		// The inner array is cut first; the outer keeps it (its first element) and drops the rest.
		{"nested", `[[` + strings.Join(tags, ",") + `],"z",[1]]`, `[[` + inner + `]]`, int64(tagsDropped) + 2},
		{"deep in objects", `[{"a":{"b":[` + strings.Join(tags, ",") + `]}}]`, `[{"a":{"b":[` + inner + `]}}]`, int64(tagsDropped)},
		{"first element over the limit", `["` + strings.Repeat("x", 100) + `","y"]`, `["` + strings.Repeat("x", 100) + `"]`, 1},
		{"at the limit", `["` + strings.Repeat("x", arrLimit-2) + `"]`, `["` + strings.Repeat("x", arrLimit-2) + `"]`, 0},
	}
	for _, tc := range tests {
		body := "[" + triage(1, `["a"]`) + "," + triage(2, tc.arr) + "," + triage(3, `[]`) + "]"
		want := []string{triage(1, `["a"]`), triage(2, tc.want), triage(3, `[]`)}
		for _, oneByte := range []bool{false, true} {
			got, bad, cuts, err := splitAll(body, 0, arrLimit, oneByte)
			if err != nil || len(bad) != 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s (one byte a read %v): err %v, malformed %v, delivered\n%s\nwant\n%s",
					tc.name, oneByte, err, bad, strings.Join(got, "\n"), strings.Join(want, "\n"))
				continue
			}
			wantCuts := map[int]cutCount{}
			if tc.dropped > 0 {
				wantCuts[1] = cutCount{arrayElements: tc.dropped}
			}
			if fmt.Sprint(cuts) != fmt.Sprint(wantCuts) {
				t.Errorf("%s (one byte a read %v): cuts %v, want %v", tc.name, oneByte, cuts, wantCuts)
			}
		}
	}
}

// TestCutArraysAreChecked: the elements dropped past the cut obey the rules of the elements
// kept, so a record is malformed or not whether or not one of its arrays was cut. Each invalid
// tail below lies past the cut: json.Valid rejects the record, and so must the splitter, cut
// or not, skipping it alone and delivering its neighbours. Valid tails are delivered, cut.
func TestCutArraysAreChecked(t *testing.T) {
	prefix := strings.Repeat(`"aaaa",`, 10) + `"aaaa"` // past arrLimit
	invalid := []struct{ name, arr string }{
		{"trailing comma", "[" + prefix + ",]"},
		{"comma before the first element", `[ ,"` + strings.Repeat("x", arrLimit) + `"]`},
		{"missing comma", "[" + prefix + `,1 2]`},
		{"two commas", "[" + prefix + `,,1]`},
		{"comma in an object", "[" + prefix + `,{"a":1,}]`},
		{"missing colon", "[" + prefix + `,{"a" 1}]`},
		{"member in an array", "[" + prefix + `,"a":1]`},
		{"invalid escape", "[" + prefix + `,"\q"]`},
		{"control byte", "[" + prefix + ",\"x\x01\"]"},
		{"cut literal", "[" + prefix + `,tru]`},
		{"bare word", "[" + prefix + `,x]`},
		{"bad number", "[" + prefix + `,01]`},
		{"mismatched bracket inside", "[" + prefix + `,[1}]`},
		{"closed by a brace", "[" + prefix + `}`},
		{"invalid far past the cut", "[" + prefix + strings.Repeat(`,{"k":[1,2,"v"]}`, 200) + `,{"k":[1,2,]}` + `,3]`},
		{"deeper than encoding/json allows", "[" + prefix + "," + strings.Repeat("[", maxNesting) + strings.Repeat("]", maxNesting) + "]"},
	}
	for _, tc := range invalid {
		record := triage(2, tc.arr)
		if json.Valid([]byte(record)) {
			t.Fatalf("%s: the table is wrong, json.Valid accepts %q", tc.name, record)
		}
		body := "[" + triage(1, `["a"]`) + "," + record + "," + triage(3, `["c"]`) + "]"
		for _, limits := range [][2]int{{0, 0}, {0, arrLimit}, {cutLimit, arrLimit}} {
			for _, oneByte := range []bool{false, true} {
				got, bad, cuts, err := splitAll(body, limits[0], limits[1], oneByte)
				if err != nil || len(got) != 2 || got[0] != triage(1, `["a"]`) || got[1] != triage(3, `["c"]`) ||
					len(bad) != 1 || bad[0] != 1 || len(cuts) != 0 {
					t.Errorf("%s (limits %v, one byte a read %v): err %v, delivered %q, malformed %v, cut %v; want the neighbours delivered and element 1 malformed",
						tc.name, limits, oneByte, err, got, bad, cuts)
				}
			}
		}
	}

	valid := []struct{ name, tail string }{
		{"values of every kind", ` , 1.5e3 , true,null,false, -0 ,"\u00e9\"\\" ,{},[] `},
		{"nested containers", `,{"a":[1,{"b":"c","d":[[],[{}]]}]},[[1,2],[3]]`},
		{"a long array past the cut", `,[` + strings.Repeat(`"t",`, 1000) + `"t"]`},
		{"a long string past the cut", `,"` + strings.Repeat("é", 1000) + `"`},
		{"as deep as allowed", `,` + strings.Repeat("[", maxNesting-3) + strings.Repeat("]", maxNesting-3)},
	}
	for _, tc := range valid {
		arr := "[" + prefix + tc.tail + "]"
		record := triage(2, arr)
		if !json.Valid([]byte(record)) {
			t.Fatalf("%s: the table is wrong, json.Valid rejects %q", tc.name, record)
		}
		body := "[" + triage(1, `["a"]`) + "," + record + "," + triage(3, `["c"]`) + "]"
		for _, oneByte := range []bool{false, true} {
			got, bad, cuts, err := splitAll(body, cutLimit, arrLimit, oneByte)
			if err != nil || len(got) != 3 || len(bad) != 0 || got[0] != triage(1, `["a"]`) || got[2] != triage(3, `["c"]`) {
				t.Errorf("%s (one byte a read %v): err %v, delivered %q, malformed %v; want all three delivered",
					tc.name, oneByte, err, got, bad)
				continue
			}
			// What is kept of the array is its first elements, whole, within the limit.
			kept, ok := strings.CutSuffix(strings.TrimPrefix(got[1], `{"pbid":2,"model":{"name":"M","pid":5,"tags":`), `},"score":1,"device":{"did":3},"url":"u"}`)
			if !ok || !json.Valid([]byte(kept)) || len(kept) > arrLimit+2 || !strings.HasPrefix(arr, kept[:len(kept)-1]) {
				t.Errorf("%s (one byte a read %v): delivered %q, want the tags cut within %d bytes", tc.name, oneByte, got[1], arrLimit)
			}
			if c := cuts[1]; c.arrayElements == 0 || len(cuts) != 1 {
				t.Errorf("%s (one byte a read %v): cuts %v, want element 1 cut", tc.name, oneByte, cuts)
			}
		}
	}
}
