package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

func TestActionLifecycle(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 21, HistoryCount: -1, Now: clk.now})
	s.AddBreaches(20)
	ids := s.AddActions(40)
	const q = "/antigena?includecleared=true&includehistory=true"
	var sawPending, sawManual bool
	for step := 0; step < 4; step++ {
		var raw []map[string]json.RawMessage
		c.get(q).ok(t, &raw)
		var got []darktrace.Action
		c.get(q).ok(t, &got)
		oracle := s.Actions()
		if len(got) != len(ids) || len(oracle) != len(ids) {
			t.Fatalf("step %d: %d actions via API, %d in oracle, want %d", step, len(got), len(oracle), len(ids))
		}
		for i, a := range got {
			if !bytes.HasPrefix(raw[i]["updated"], []byte(`"`)) {
				t.Fatalf("updated %s is not a string", raw[i]["updated"])
			}
			o := oracle[i]
			if a.CodeID != o.CodeID || a.Updated != o.Updated || a.Active != o.Active || a.Cleared != o.Cleared ||
				a.Expires != o.Expires || len(a.History) != len(o.History) {
				t.Fatalf("step %d: API %+v, oracle %+v", step, a, o)
			}
			if a.Manual && (a.Model != "" || a.Score != 0 || a.Triggerer == nil || a.Triggerer.Username == "") {
				t.Errorf("manual action %d: model %q score %v triggerer %v", a.CodeID, a.Model, a.Score, a.Triggerer)
			}
			if !a.Manual && (a.Triggerer != nil || a.Model == "") {
				t.Errorf("automatic action %d: model %q triggerer %v", a.CodeID, a.Model, a.Triggerer)
			}
			sawManual = sawManual || a.Manual
			sawPending = sawPending || a.State() == "pending"
		}
		clk.t = clk.t.Add(time.Minute)
		s.AdvanceActions()
	}
	if !sawManual || !sawPending {
		t.Errorf("saw manual=%v pending=%v; want both in 40 actions", sawManual, sawPending)
	}
	// After three steps every action is cleared; the default view hides them.
	var current []darktrace.Action
	c.get("/antigena").ok(t, &current)
	if len(current) != 0 {
		t.Errorf("%d actions without includecleared after all were cleared", len(current))
	}
	// Each action's states are emitted in order with strictly increasing "updated".
	last := map[int64]ActionState{}
	for _, st := range s.ActionStates() {
		if p, ok := last[st.CodeID]; ok && st.Updated <= p.Updated {
			t.Errorf("codeid %d: updated %d after %d", st.CodeID, st.Updated, p.Updated)
		}
		last[st.CodeID] = st
	}
	for _, id := range ids {
		if st := last[id]; st.State != "cleared" || !st.Cleared || st.Active {
			t.Errorf("codeid %d ends %+v, want cleared", id, st)
		}
	}
}

func TestActionSummaryAndFilters(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 22, HistoryCount: 50, Now: clk.now})
	s.AddActions(20)
	s.AdvanceActions()
	var sum darktrace.ActionSummary
	c.get("/antigena/summary").ok(t, &sum)
	var pending, active int
	for _, a := range s.Actions() {
		switch {
		case a.Cleared:
		case !a.Active:
			pending++
		case a.Expires > ms(base):
			active++
		}
	}
	if sum.PendingCount != pending || sum.ActiveCount != active || len(sum.ActiveActionDevices) == 0 {
		t.Errorf("summary %+v, want pending %d active %d", sum, pending, active)
	}
	all := s.Actions()
	var noHistory []map[string]json.RawMessage
	c.get("/antigena?includecleared=true").ok(t, &noHistory)
	if len(noHistory) != len(all) || noHistory[0]["history"] != nil {
		t.Errorf("without includehistory: %d actions, history %s", len(noHistory), noHistory[0]["history"])
	}
	target := all[len(all)-1]
	var byPBID []darktrace.Action
	c.get("/antigena?includecleared=true&pbid="+strconv.FormatInt(target.PBID, 10)).ok(t, &byPBID)
	if len(byPBID) == 0 || slices.ContainsFunc(byPBID, func(a darktrace.Action) bool { return a.PBID != target.PBID }) {
		t.Errorf("pbid filter returned %d actions", len(byPBID))
	}
	var wrapped struct {
		Actions []darktrace.Action `json:"actions"`
		Devices []darktrace.Device `json:"devices"`
	}
	c.get("/antigena?includecleared=true&fulldevicedetails=true").ok(t, &wrapped)
	if len(wrapped.Actions) != len(all) || len(wrapped.Devices) == 0 {
		t.Errorf("fulldevicedetails: %d actions %d devices", len(wrapped.Actions), len(wrapped.Devices))
	}
}

func TestIncidentEvents(t *testing.T) {
	clk := &fixedClock{t: base.Add(-10 * 24 * time.Hour)}
	s, c := start(t, Options{Seed: 1, HistoryCount: -1, AckFraction: -1, Now: clk.now})
	old := s.AddIncidentEvents(40) // outside the default 7-day window
	clk.t = base
	recent := s.AddIncidentEvents(10)
	var oldPinned []string
	for _, e := range s.IncidentEvents() {
		if e.Pinned && slices.Contains(old, e.ID) {
			oldPinned = append(oldPinned, e.ID)
		}
	}
	if len(oldPinned) == 0 {
		t.Fatal("seed gives no pinned old event; pick another")
	}
	ids := func(es []darktrace.IncidentEvent) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(v ...[]string) []string { out := slices.Concat(v...); slices.Sort(out); return out }
	var def, noPinned []darktrace.IncidentEvent
	c.get("/aianalyst/incidentevents").ok(t, &def)
	c.get("/aianalyst/incidentevents?includeallpinned=false").ok(t, &noPinned)
	if got, want := ids(def), sorted(recent, oldPinned); !slices.Equal(got, want) {
		t.Errorf("default (includeallpinned=true): %d events, want %d recent + %d old pinned", len(got), len(recent), len(oldPinned))
	}
	if got, want := ids(noPinned), sorted(recent); !slices.Equal(got, want) {
		t.Errorf("includeallpinned=false: %d events, want the %d recent", len(got), len(want))
	}
	q := "/aianalyst/incidentevents?" + window(base.Add(-time.Hour), base) + "&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true"
	var before, after []darktrace.IncidentEvent
	c.get(q).ok(t, &before)
	if before[0].IncidentEventURL != "https://"+strings.TrimPrefix(c.base, "http://")+"/#aiaincidentevent/"+before[0].ID {
		t.Errorf("incidentEventUrl %q", before[0].IncidentEventURL)
	}
	raw := c.get(q).body
	if !bytes.Contains(raw, []byte(`"groupScore":"`)) || !bytes.Contains(raw, []byte(`"ip":"10.`)) || !bytes.Contains(raw, []byte(`/24"`)) {
		t.Error("want some string groupScores and /24 device ips")
	}
	changed := s.RaiseIncidentScores()
	c.get(q).ok(t, &after)
	regrouped := 0
	for i := range after {
		if after[i].ID != before[i].ID || after[i].GroupScore < before[i].GroupScore {
			t.Fatalf("event %s: score %v → %v", after[i].ID, before[i].GroupScore, after[i].GroupScore)
		}
		if after[i].CurrentGroup != before[i].CurrentGroup {
			regrouped++
			if !slices.Contains(after[i].GroupPreviousGroups, before[i].CurrentGroup) {
				t.Errorf("event %s left group %s without recording it", after[i].ID, before[i].CurrentGroup)
			}
		}
	}
	if len(changed) != len(s.IncidentEvents()) || regrouped == 0 {
		t.Errorf("RaiseIncidentScores changed %d of %d, regrouped %d", len(changed), len(s.IncidentEvents()), regrouped)
	}
	var scored []darktrace.IncidentEvent
	c.get("/aianalyst/incidentevents?minscore=50&includeallpinned=false").ok(t, &scored)
	for _, e := range scored {
		if e.AIAScore < 50 {
			t.Errorf("minscore=50 returned aiaScore %v", e.AIAScore)
		}
	}
	if !s.AcknowledgeIncident(recent[0]) {
		t.Fatal("AcknowledgeIncident")
	}
	c.get("/aianalyst/incidentevents?includeallpinned=false").ok(t, &noPinned)
	if slices.Contains(ids(noPinned), recent[0]) {
		t.Error("acknowledged event returned without includeacknowledged=true")
	}
}

func TestStatus(t *testing.T) {
	clk := &fixedClock{t: base}
	_, c := start(t, Options{Seed: 1, HistoryCount: 10, Hostname: "appliance.corp.example", Now: clk.now})
	var st darktrace.Status
	c.get("/status?includechildren=false&fast=true").ok(t, &st)
	if st.Version == "" || st.Time != "2026-01-15 12:00:00" || st.Hostname != "appliance.corp.example" || st.UUID == "" {
		t.Errorf("status %+v", st)
	}
}

// TestDeterminism: the same seed and the same calls give byte-identical responses; another
// seed gives different records.
func TestDeterminism(t *testing.T) {
	run := func(seed int64) [][]byte {
		clk := &fixedClock{t: base}
		// A fixed Hostname: by default URLs name the listening port, which differs per run.
		s, c := start(t, Options{Seed: seed, HistoryCount: 60, LateFraction: 0.2, HostileFraction: 0.2, SystemFraction: 0.1,
			Hostname: "dt.example.com", Now: clk.now})
		clk.t = clk.t.Add(time.Second)
		s.AddBreaches(5)
		s.AddActions(5)
		s.AdvanceActions()
		s.AddIncidentEvents(3)
		s.RaiseIncidentScores()
		var out [][]byte
		for _, p := range []string{
			"/modelbreaches?includeacknowledged=true&includesuppressed=true",
			"/modelbreaches?historicmodelonly=true&includebreachurl=true&creationtime=true&" + window(base.Add(-2*time.Hour), clk.t),
			"/antigena?includecleared=true&includehistory=true",
			"/antigena/summary",
			"/aianalyst/incidentevents?includeacknowledged=true&includeincidenteventurl=true",
		} {
			r := c.get(p)
			if r.code != 200 {
				t.Fatalf("%s: %d", p, r.code)
			}
			out = append(out, r.body)
		}
		return out
	}
	a, b, other := run(42), run(42), run(43)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Errorf("response %d differs between two runs with seed 42", i)
		}
	}
	if bytes.Equal(a[0], other[0]) || bytes.Equal(a[2], other[2]) {
		t.Error("seeds 42 and 43 give the same records")
	}
}

func TestLiveGeneration(t *testing.T) {
	s, c := start(t, Options{Seed: 1, HistoryCount: 10, Rate: 400})
	deadline := time.Now().Add(20 * time.Second)
	for len(s.BreachInfos()) < 150 || len(s.ActionStates()) <= 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d breaches, %d action states", len(s.BreachInfos()), len(s.ActionStates()))
		}
		// Query while the generator writes, for the race detector.
		var got []darktrace.Breach
		c.get(fmt.Sprintf("/modelbreaches?minimal=true&starttime=%d", ms(time.Now().Add(-time.Minute)))).ok(t, &got)
		time.Sleep(20 * time.Millisecond)
	}
	infos := s.BreachInfos()
	for i := 1; i < len(infos); i++ {
		if infos[i].PBID <= infos[i-1].PBID || infos[i].Created < infos[i-1].Created {
			t.Fatalf("pbids/creation not increasing at %d: %+v then %+v", i, infos[i-1], infos[i])
		}
	}
}

func TestActionExpiry(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 23, HistoryCount: -1, Now: clk.now})
	s.AddBreaches(10)
	s.AddActions(12)
	clk.t = clk.t.Add(time.Minute)
	expired := s.ExpireActions()
	if len(expired) == 0 {
		t.Fatal("no active action to expire")
	}
	byID := func() map[int64]darktrace.Action {
		var got []darktrace.Action
		c.get("/antigena?includehistory=true").ok(t, &got)
		m := map[int64]darktrace.Action{}
		for _, a := range got {
			m[a.CodeID] = a
		}
		return m
	}
	got := byID()
	for _, st := range expired {
		a, ok := got[st.CodeID]
		if !ok || a.State() != "expired" || !a.Active || a.Cleared || st.State != "expired" {
			t.Errorf("codeid %d after expiry: %+v (state %q), log %+v", st.CodeID, a, a.State(), st)
		}
	}
	clk.t = clk.t.Add(time.Minute)
	s.AdvanceActions()
	got = byID()
	for _, st := range expired {
		a := got[st.CodeID]
		if a.State() != "active" || a.History[len(a.History)-1].Action != "reactivated (expired)" {
			t.Errorf("codeid %d after AdvanceActions: state %q, last history %+v", st.CodeID, a.State(), a.History[len(a.History)-1])
		}
	}
}
