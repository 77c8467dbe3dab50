package simulator

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// TestOddShapes: with OddFraction 0.2, about a fifth of the breaches come in the other real
// shapes, every shape occurs, the same seed gives the same bytes, and the simulator's own
// expansion (Breaches) agrees with what it serves.
func TestOddShapes(t *testing.T) {
	clk := &fixedClock{t: base}
	// A fixed Hostname: by default URLs name the listener's port, which differs between the two
	// simulators compared below.
	o := Options{Seed: 11, HistoryCount: 400, AckFraction: 0.3, OddFraction: 0.2, Now: clk.now, Hostname: "dt.example.com"}
	s, c := start(t, o)
	q := "/modelbreaches?" + window(base.Add(-48*time.Hour), base) + "&includeacknowledged=true&includesuppressed=true" +
		"&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"
	body := c.get(q).body
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(body, &recs); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	odd := 0
	for _, r := range recs {
		var dev map[string]json.RawMessage
		_ = json.Unmarshal(r["device"], &dev)
		var model map[string]json.RawMessage
		_ = json.Unmarshal(r["model"], &model)
		shapes := map[string]bool{
			"ack object":  bytes.HasPrefix(r["acknowledged"], []byte("{")),
			"label only":  dev["devicelabel"] != nil && dev["hostname"] == nil && dev["ip"] == nil,
			"placeholder": bytes.Contains(dev["ip"], []byte("#")),
			"literal \\n": bytes.Contains(model["description"], []byte(`\\n`)),
			"no priority": model["priority"] == nil,
			"no URL":      r["breachUrl"] == nil,
			"no comments": r["commentCount"] == nil && r["mitreTechniques"] == nil,
		}
		any := false
		for k, v := range shapes {
			if v {
				counts[k]++
				any = true
			}
		}
		if any {
			odd++
		}
	}
	t.Logf("%d of %d breaches odd: %v", odd, len(recs), counts)
	if odd < len(recs)/10 || odd > len(recs)*3/10 {
		t.Errorf("%d of %d breaches odd, want about 20%%", odd, len(recs))
	}
	for _, k := range []string{"ack object", "label only", "placeholder", "literal \\n", "no priority", "no URL", "no comments"} {
		if counts[k] == 0 {
			t.Errorf("no breach with shape %q", k)
		}
	}
	// Deterministic from the seed.
	_, c2 := start(t, o)
	if !bytes.Equal(c2.get(q).body, body) {
		t.Error("the same seed served different bytes")
	}
	// Breaches() (the oracle) matches what is served, shape included.
	var served []darktrace.Breach
	for _, r := range recs {
		raw, _ := json.Marshal(r)
		b, err := darktrace.DecodeBreach(raw, nil)
		if err != nil {
			t.Fatal(err)
		}
		served = append(served, b)
	}
	oracle := s.Breaches()
	byID := map[int64]darktrace.Breach{}
	for _, b := range oracle {
		byID[b.PBID] = b
	}
	for _, b := range served {
		w := byID[b.PBID]
		if b.Acknowledged != w.Acknowledged || b.Device.DeviceLabel != w.Device.DeviceLabel || b.Device.IP != w.Device.IP ||
			(b.Model.Priority == nil) != (w.Model.Priority == nil) || b.Model.Description != w.Model.Description {
			t.Fatalf("pbid %d served %+v\noracle %+v", b.PBID, b, w)
		}
	}
	// Off by default: no odd shapes.
	_, c3 := start(t, Options{Seed: 11, HistoryCount: 100, AckFraction: 0.3, Now: clk.now})
	if b := c3.get(q).body; bytes.Contains(b, []byte(`"devicelabel"`)) || strings.Contains(string(b), `"acknowledged":{`) {
		t.Error("odd shapes served with OddFraction 0")
	}
	if !slices.ContainsFunc(recs, func(r map[string]json.RawMessage) bool { return string(r["acknowledged"]) == "true" }) {
		t.Error("no acknowledged breach as a plain bool")
	}
}
