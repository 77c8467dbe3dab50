package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

func window(from, to time.Time) string {
	return fmt.Sprintf("starttime=%d&endtime=%d", ms(from), ms(to))
}

func pbids(bs []darktrace.Breach) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.PBID
	}
	slices.Sort(out)
	return out
}

// expect returns the oracle's pbids that pass keep.
func expect(s *Simulator, keep func(BreachInfo) bool) []int64 {
	var out []int64
	for _, b := range s.BreachInfos() {
		if keep(b) {
			out = append(out, b.PBID)
		}
	}
	return out
}

func TestBreachesHappyPath(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 7, HistoryCount: 150, LateFraction: 0.3, LateDelay: 2 * time.Hour, Now: clk.now})
	var got []darktrace.Breach
	c.get("/modelbreaches?"+window(base.Add(-48*time.Hour), base)+"&includeacknowledged=true&includesuppressed=true").ok(t, &got)
	want := expect(s, func(BreachInfo) bool { return true })
	if !slices.Equal(pbids(got), want) {
		t.Fatalf("got %d breaches, want all %d", len(got), len(want))
	}
	if !slices.IsSortedFunc(got, func(a, b darktrace.Breach) int { return int(a.Time - b.Time) }) {
		t.Error("response is not sorted by time")
	}
	// Late records make creation order differ from time order: clients must sort themselves.
	inversions := 0
	for i := 1; i < len(got); i++ {
		if got[i].CreationTime < got[i-1].CreationTime {
			inversions++
		}
	}
	if inversions == 0 {
		t.Error("no creationTime inversions in a time-sorted response with 30% late records")
	}
	for _, b := range got {
		if b.CreationTime < b.Time+1000 || b.Model.Name == "" || b.Device.DID == 0 {
			t.Fatalf("implausible record %+v", b)
		}
	}
}

func TestBreachWindowOnCreationTime(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 3, HistoryCount: -1, LateFraction: 1, LateDelay: 2 * time.Hour, Now: clk.now})
	ids := s.AddBreaches(5)
	if !slices.IsSorted(ids) || len(ids) != 5 {
		t.Fatalf("AddBreaches ids %v", ids)
	}
	q := "/modelbreaches?includeacknowledged=true&includesuppressed=true&" + window(base.Add(-30*time.Second), base)
	var byTime, byCreation []darktrace.Breach
	c.get(q).ok(t, &byTime)
	c.get(q+"&creationtime=true").ok(t, &byCreation)
	if len(byTime) != 0 {
		t.Errorf("time window caught %d late breaches; their activity is over a minute old", len(byTime))
	}
	if !slices.Equal(pbids(byCreation), ids) {
		t.Errorf("creationtime window got %v, want %v", pbids(byCreation), ids)
	}
	for _, b := range byCreation {
		if lag := b.CreationTime - b.Time; lag < 60_000 || lag > 2*3600_000 {
			t.Errorf("pbid %d: creation lags activity by %d ms, want 1m..2h", b.PBID, lag)
		}
	}
}

func TestBreachParameters(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 11, HistoryCount: 150, AckFraction: 0.2, SystemFraction: 0.05, Now: clk.now})
	all := "/modelbreaches?" + window(base.Add(-25*time.Hour), base)
	visible := func(b BreachInfo) bool { return !b.Acknowledged && !b.Suppressed }
	list := func(t *testing.T, q string) []darktrace.Breach {
		var got []darktrace.Breach
		c.get(q).ok(t, &got)
		return got
	}
	raw := func(t *testing.T, q string) []map[string]json.RawMessage {
		var got []map[string]json.RawMessage
		c.get(q).ok(t, &got)
		if len(got) == 0 {
			t.Fatal("empty response")
		}
		return got
	}
	t.Run("defaults hide acknowledged and suppressed", func(t *testing.T) {
		want := expect(s, visible)
		if got := pbids(list(t, all)); !slices.Equal(got, want) {
			t.Errorf("got %d, want %d", len(got), len(want))
		}
	})
	t.Run("includeacknowledged", func(t *testing.T) {
		want := expect(s, func(b BreachInfo) bool { return !b.Suppressed })
		got := list(t, all+"&includeacknowledged=true")
		if !slices.Equal(pbids(got), want) || !slices.ContainsFunc(got, func(b darktrace.Breach) bool { return b.Acknowledged.Acked }) {
			t.Errorf("got %d, want %d including acknowledged ones", len(got), len(want))
		}
	})
	t.Run("includesuppressed", func(t *testing.T) {
		want := expect(s, func(b BreachInfo) bool { return !b.Acknowledged })
		if got := pbids(list(t, all+"&includesuppressed=true")); !slices.Equal(got, want) || len(want) == len(expect(s, visible)) {
			t.Errorf("got %d, want %d (more than without)", len(got), len(want))
		}
	})
	t.Run("AcknowledgeBreach hides a record", func(t *testing.T) {
		id := expect(s, visible)[0]
		if !s.AcknowledgeBreach(id) || s.AcknowledgeBreach(1<<50) {
			t.Fatal("AcknowledgeBreach result")
		}
		if slices.Contains(pbids(list(t, all)), id) {
			t.Errorf("acknowledged pbid %d still returned", id)
		}
	})
	t.Run("minscore", func(t *testing.T) {
		got := list(t, all+"&minscore=0.7")
		want := expect(s, func(b BreachInfo) bool { return visible(b) && b.Score >= 0.7 })
		if !slices.Equal(pbids(got), want) || len(want) == 0 {
			t.Errorf("got %d, want %d", len(got), len(want))
		}
	})
	t.Run("bad minscore", func(t *testing.T) {
		r := c.get(all + "&minscore=7")
		if r.code != 400 || !bytes.Contains(r.body, []byte(`"error"`)) {
			t.Errorf("status %d body %s, want 400 {\"error\": …}", r.code, r.body)
		}
	})
	t.Run("pbid returns one object", func(t *testing.T) {
		id := expect(s, visible)[3]
		var got darktrace.Breach
		c.get(fmt.Sprintf("/modelbreaches?pbid=%d", id)).ok(t, &got)
		if got.PBID != id {
			t.Errorf("pbid %d, want %d", got.PBID, id)
		}
		var empty map[string]any
		c.get("/modelbreaches?pbid=999999999").ok(t, &empty)
		if len(empty) != 0 {
			t.Errorf("unknown pbid gave %v", empty)
		}
	})
	t.Run("pbid honours the filters", func(t *testing.T) {
		// A suppressed or acknowledged breach is found by id only when the query includes
		// it, as in a list; the same for minscore.
		byID := func(q string) int64 {
			var got darktrace.Breach
			c.get(q).ok(t, &got)
			return got.PBID
		}
		cases := []struct {
			name  string
			pick  func(BreachInfo) bool
			param string
		}{
			{"suppressed", func(b BreachInfo) bool { return b.Suppressed && !b.Acknowledged }, "&includesuppressed=true"},
			{"acknowledged", func(b BreachInfo) bool { return b.Acknowledged && !b.Suppressed }, "&includeacknowledged=true"},
		}
		for _, tc := range cases {
			ids := expect(s, tc.pick)
			if len(ids) == 0 {
				t.Fatalf("no %s breach in the store", tc.name)
			}
			q := fmt.Sprintf("/modelbreaches?pbid=%d", ids[0])
			if got := byID(q); got != 0 {
				t.Errorf("%s pbid %d found without %s", tc.name, ids[0], tc.param)
			}
			if got := byID(q + tc.param); got != ids[0] {
				t.Errorf("%s pbid %d not found with %s (got %d)", tc.name, ids[0], tc.param, got)
			}
		}
		low := expect(s, func(b BreachInfo) bool { return visible(b) && b.Score < 0.5 })[0]
		if got := byID(fmt.Sprintf("/modelbreaches?pbid=%d&minscore=0.5", low)); got != 0 {
			t.Errorf("pbid %d below minscore found", low)
		}
	})
	t.Run("historicmodelonly shapes", func(t *testing.T) {
		flat := raw(t, all+"&historicmodelonly=true")[0]["model"]
		nested := raw(t, all)[0]["model"]
		var f, n map[string]json.RawMessage
		json.Unmarshal(flat, &f)
		json.Unmarshal(nested, &n)
		if f["name"] == nil || f["then"] != nil {
			t.Errorf("historicmodelonly=true model %s, want flat", flat)
		}
		if n["then"] == nil || n["now"] == nil || n["name"] != nil {
			t.Errorf("default model %.200s, want {then, now}", nested)
		}
	})
	t.Run("deviceattop", func(t *testing.T) {
		top := raw(t, all)[0]
		flat := raw(t, all+"&deviceattop=false")[0]
		if top["device"] == nil || flat["device"] != nil || flat["did"] == nil {
			t.Errorf("deviceattop=true keys %v / false keys %v", keys(top), keys(flat))
		}
	})
	t.Run("includebreachurl", func(t *testing.T) {
		with := list(t, all+"&includebreachurl=true")
		without := raw(t, all)
		// Without Options.Hostname, URLs name the address the simulator serves on.
		if want := fmt.Sprintf("https://%s/#modelbreach/%d", strings.TrimPrefix(c.base, "http://"), with[0].PBID); with[0].BreachURL != want {
			t.Errorf("breachUrl %q, want %q", with[0].BreachURL, want)
		}
		if without[0]["breachUrl"] != nil {
			t.Error("breachUrl sent without includebreachurl=true")
		}
	})
	t.Run("minimal", func(t *testing.T) {
		if got := raw(t, all+"&minimal=true")[0]; got["triggeredComponents"] != nil || got["model"] == nil {
			t.Errorf("minimal=true keys %v", keys(got))
		}
	})
	t.Run("no window means the last year", func(t *testing.T) {
		if got, want := pbids(list(t, "/modelbreaches")), expect(s, visible); !slices.Equal(got, want) {
			t.Errorf("got %d, want %d", len(got), len(want))
		}
	})
	t.Run("window bounds are inclusive", func(t *testing.T) {
		b := s.BreachInfos()[10]
		got := list(t, fmt.Sprintf("/modelbreaches?starttime=%d&endtime=%d&includeacknowledged=true&includesuppressed=true", b.Time, b.Time))
		if !slices.Contains(pbids(got), b.PBID) {
			t.Errorf("breach at exactly [%d, %d] not returned", b.Time, b.Time)
		}
	})
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRealisticRecords checks the messy shapes clients must cope with are all present.
func TestRealisticRecords(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 5, HistoryCount: 300, SystemFraction: 0.05, Now: clk.now})
	var got []darktrace.Breach
	c.get("/modelbreaches?historicmodelonly=true&includeacknowledged=true&includesuppressed=true&includebreachurl=true").ok(t, &got)
	seen := map[string]bool{}
	for _, b := range got {
		if b.Device.DID == -1 {
			seen["system"] = b.Model.Name == "System::System" && b.Device.IP == ""
		}
		if strings.Contains(b.Device.IP, "#") {
			seen["placeholder ip"] = true
		}
		if b.Device.Hostname != "" && b.Device.Hostname == b.Device.IP {
			seen["hostname is ip"] = true
		}
		if slices.Contains(b.Model.Tags, "") {
			seen["empty tag"] = true
		}
		if strings.Contains(b.Model.Description, "\n") {
			seen["multi-line description"] = true
		}
		if len(b.MitreTechniques) > 0 {
			seen["mitre"] = true
		}
		for _, tc := range b.TriggeredComponents {
			for _, f := range tc.TriggeredFilters {
				seen["filter "+f.FilterType] = true
			}
			if bytes.Count(tc.Logic, []byte(`"left"`)) >= 15 {
				seen["deep logic"] = true
			}
		}
	}
	for _, k := range []string{"system", "placeholder ip", "hostname is ip", "empty tag", "multi-line description", "mitre",
		"filter Destination IP", "filter Connection hostname", "filter Destination port", "filter Protocol", "deep logic"} {
		if !seen[k] {
			t.Errorf("no %s in %d records", k, len(got))
		}
	}
	if oracle := s.Breaches(); len(oracle) != len(got) || oracle[0].Model.Name == "" {
		t.Errorf("oracle has %d breaches, API %d", len(oracle), len(got))
	}
}

func TestMissingCreationTime(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 5, HistoryCount: 50, MissingCreationFraction: 1, Now: clk.now})
	var got []map[string]json.RawMessage
	c.get("/modelbreaches?creationtime=true&"+window(base.Add(-25*time.Hour), base)).ok(t, &got)
	if len(got) != len(expect(s, func(b BreachInfo) bool { return !b.Acknowledged && !b.Suppressed })) {
		t.Fatalf("creationtime window on records without creationTime returned %d", len(got))
	}
	for _, r := range got {
		if r["creationTime"] != nil {
			t.Fatal("creationTime sent although MissingCreationFraction=1")
		}
	}
}

// TestHostileStrings checks hostile values arrive intact inside valid JSON framing: escaped
// control characters, raw invalid UTF-8, and nothing that breaks the response itself.
func TestHostileStrings(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 9, HistoryCount: 60, HostileFraction: 1, Now: clk.now})
	s.AddActions(30)
	s.AddIncidentEvents(10)
	for _, p := range []string{"/modelbreaches?historicmodelonly=true&includeacknowledged=true", "/antigena?includehistory=true", "/aianalyst/incidentevents"} {
		r := c.get(p)
		if r.code != 200 {
			t.Fatalf("%s: status %d", p, r.code)
		}
		if bytes.ContainsAny(r.body, "\r\n\t\x00") {
			t.Errorf("%s: raw control character in the JSON body", p)
		}
		var v []map[string]any
		if err := json.Unmarshal(r.body, &v); err != nil || len(v) == 0 {
			t.Fatalf("%s: %d records, %v", p, len(v), err)
		}
	}
	body := c.get("/modelbreaches?historicmodelonly=true").body
	for _, want := range []string{`\r\n<13>1`, `|CEF:0|`, `\\=`, `\t`, "\xff\xfe", `\u0000`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("no %q in hostile breaches", want)
		}
	}
	var got []darktrace.Breach
	c.get("/modelbreaches?historicmodelonly=true").ok(t, &got)
	long := false
	for _, b := range got {
		long = long || len(b.Model.Name) > 8000 || len(b.Device.Hostname) > 8000
	}
	if !long {
		t.Error("no very long hostile value")
	}
}

// TestNoHostileStringsByDefault: with HostileFraction 0 no endpoint may carry hostile values
// ("dtforward demo" promises clean records).
func TestNoHostileStringsByDefault(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 9, HistoryCount: 300, Now: clk.now})
	s.AddActions(60)
	s.AdvanceActions()
	s.AdvanceActions()
	s.AddIncidentEvents(60)
	for _, p := range []string{"/modelbreaches?includeacknowledged=true&includesuppressed=true", "/antigena?includecleared=true&includehistory=true",
		"/aianalyst/incidentevents?includeacknowledged=true"} {
		body := c.get(p).body
		for _, bad := range []string{"|CEF:0|", `\r`, `\u0000`, "\xff", "${jndi", "LEEF:", "A|=\\"} {
			if bytes.Contains(body, []byte(bad)) {
				t.Errorf("%s: hostile %q with HostileFraction 0", p, bad)
			}
		}
	}
}

func TestNewestFirst(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 7, HistoryCount: 40, NewestFirst: true, Now: clk.now})
	s.AddIncidentEvents(5)
	var got []darktrace.Breach
	c.get("/modelbreaches?minimal=true").ok(t, &got)
	if len(got) < 20 || !slices.IsSortedFunc(got, func(a, b darktrace.Breach) int { return int(b.Time - a.Time) }) {
		t.Errorf("%d breaches not sorted newest first", len(got))
	}
	var ev []darktrace.IncidentEvent
	c.get("/aianalyst/incidentevents?includeallpinned=false").ok(t, &ev)
	if len(ev) < 2 || !slices.IsSortedFunc(ev, func(a, b darktrace.IncidentEvent) int { return int(b.CreatedAt - a.CreatedAt) }) {
		t.Errorf("%d events not sorted newest first", len(ev))
	}
}

func TestNoURLs(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 7, HistoryCount: 20, NoURLs: true, Now: clk.now})
	s.AddIncidentEvents(3)
	for _, p := range []string{"/modelbreaches?includebreachurl=true", "/aianalyst/incidentevents?includeincidenteventurl=true"} {
		if body := c.get(p).body; bytes.Contains(body, []byte("Url")) || len(body) < 100 {
			t.Errorf("%s: URL sent by an appliance without an FQDN (%d bytes)", p, len(body))
		}
	}
}
