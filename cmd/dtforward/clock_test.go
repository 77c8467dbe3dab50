package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// TestRunFollowsASlowApplianceClock: an appliance clock 20 minutes behind ours is accepted by
// the appliance (±30 min) but is more than POLL_OVERLAP (10 min). Windows ending at our "now"
// would reach 20 minutes into the appliance's future and the next window would start after
// records created in between; following the appliance clock, every breach arrives.
func TestRunFollowsASlowApplianceClock(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 31, History: time.Hour, HistoryCount: 30, Rate: 20, ClockOffset: -20 * time.Minute})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	b := startRun(t, vars, testInterval)
	time.Sleep(2 * time.Second)
	var want []string
	for _, br := range sim.BreachInfos() {
		want = append(want, strconv.FormatInt(br.PBID, 10))
	}
	missing := func() []string {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		var m []string
		for _, id := range want {
			if !got[id] {
				m = append(m, id)
			}
		}
		return m
	}
	deadline := time.Now().Add(time.Minute) // bounds a failure only
	for len(missing()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d breaches never delivered: %v", len(missing()), len(want), missing()[:min(5, len(missing()))])
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.stop(t)
	if !strings.Contains(b.stderr.String(), "appliance clock differs from ours") {
		t.Fatalf("the offset was not logged:\n%s", tail(b.stderr.String(), 1500))
	}
	// Every window ended at the appliance's time, not ours.
	for _, r := range sim.Requests() {
		if r.Path != "/modelbreaches" {
			continue
		}
		_, end := parseWindow(r.RawQuery)
		if d := end.Sub(r.Time); d > 2*time.Second {
			t.Fatalf("window ends %s after the appliance's clock: %s", d, r.RawQuery)
		}
	}
}

func parseWindow(q string) (start, end time.Time) {
	for _, kv := range strings.Split(q, "&") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "starttime":
			start = time.UnixMilli(n)
		case "endtime":
			end = time.UnixMilli(n)
		}
	}
	return start, end
}

// TestRunSurvivesAForwardStepOfOurClock: our clock steps two hours ahead of the appliance's
// while run polls (as when NTP sets the clock after the service started, seen from the
// appliance). The windows must stay at the appliance's "now": a cursor two hours in the
// appliance's future would skip every breach created in the next two hours. Requests keep being
// signed with the appliance's time, which the ±30 min DTAPI-Date check demands.
func TestRunSurvivesAForwardStepOfOurClock(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 32, History: time.Hour, HistoryCount: 30})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	vars := baseVars(url, out, state)
	vars["POLL_SOURCES"] = "modelbreaches"
	b := startRun(t, vars, testInterval)
	missing := func() []string {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		var m []string
		for _, br := range sim.BreachInfos() {
			if id := strconv.FormatInt(br.PBID, 10); !got[id] {
				m = append(m, id)
			}
		}
		return m
	}
	waitUntil(t, time.Minute, "the history", func() bool { return len(missing()) == 0 })

	stepped := time.Now()
	sim.SetClockOffset(-2 * time.Hour)
	for range 5 {
		sim.AddBreaches(3)
		time.Sleep(3 * testInterval)
	}
	for deadline := time.Now().Add(time.Minute); len(missing()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d breaches created after the step never delivered, e.g. %v; log:\n%s", len(missing()), missing()[:min(3, len(missing()))], tail(b.stderr.String(), 4000))
		}
	}
	b.stop(t)

	// The checkpoint is not ahead of the appliance.
	st, err := checkpoint.Open(state, "sim")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := st.Source(darktrace.SourceBreaches)
	if cur := time.UnixMilli(ss.Cursor); cur.After(sim.Now()) {
		t.Fatalf("cursor %s is ahead of the appliance clock %s", cur.UTC(), sim.Now().UTC())
	}
	// Only the window computed before the first answer after the step (refused for its
	// DTAPI-Date, then retried as it was) can have used our clock.
	future := map[string]bool{}
	for _, r := range sim.Requests() {
		if r.Path != "/modelbreaches" || r.Time.Before(stepped.Add(-2*time.Hour)) {
			continue
		}
		if _, end := parseWindow(r.RawQuery); end.Sub(r.Time) > 2*time.Second {
			future[r.RawQuery] = true
		}
	}
	if len(future) > 1 {
		t.Errorf("%d windows after the step ended in the appliance's future; the first answer's Date should correct the clock: %v", len(future), future)
	}
	if !strings.Contains(b.stderr.String(), "appliance clock") {
		t.Errorf("the clock correction was not logged:\n%s", tail(b.stderr.String(), 1500))
	}
}

// TestRunWarnsWhenTheClockCannotBeRead: /status fails, so the appliance clock is not read at
// start; that is a warning (windows may follow our clock until an answer's Date corrects it),
// and polling goes on.
func TestRunWarnsWhenTheClockCannotBeRead(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 33, History: time.Hour, HistoryCount: 10})
	faults, err := simulator.ParseFaults("status:500")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(faults)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	b := startRun(t, vars, testInterval)
	waitUntil(t, time.Minute, "breaches despite the failing /status", func() bool { return len(delivered(t, out)["modelbreach"]) > 0 })
	b.stop(t)
	for _, l := range strings.Split(b.stderr.String(), "\n") {
		if strings.Contains(l, "reading the appliance clock from /status failed") {
			if !strings.Contains(l, `"level":"warn"`) {
				t.Fatalf("a failed clock reading is not a warning: %s", l)
			}
			return
		}
	}
	t.Fatalf("the failed clock reading is not logged:\n%s", tail(b.stderr.String(), 2000))
}

// TestRunIgnoresADateAheadOfStatus (issue 18 item 3): the appliance sits behind a reverse proxy
// whose clock runs 15 minutes fast and which stamps its own Date on every answer; /status
// reports the appliance's true time. Following the Date moved windows and the cursor 15
// minutes into the appliance's future, more than POLL_OVERLAP, and every breach created in
// between was skipped. Windows follow /status; the disagreement is logged as an error.
func TestRunIgnoresADateAheadOfStatus(t *testing.T) {
	sim, simURL := startSim(t, simulator.Options{Seed: 33, History: time.Hour, HistoryCount: 20})
	target, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if d, err := http.ParseTime(r.Header.Get("Date")); err == nil {
			r.Header.Set("Date", d.Add(15*time.Minute).UTC().Format(http.TimeFormat))
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	vars := baseVars(front.URL, out, state)
	vars["POLL_SOURCES"] = "modelbreaches"
	httpAddr := freeAddr(t)
	vars["HTTP_ADDRESS"] = httpAddr
	b := startRun(t, vars, testInterval)
	missing := func() []string {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		var m []string
		for _, br := range sim.BreachInfos() {
			if id := strconv.FormatInt(br.PBID, 10); !got[id] {
				m = append(m, id)
			}
		}
		return m
	}
	waitUntil(t, time.Minute, "the history", func() bool { return len(missing()) == 0 })
	for range 5 {
		sim.AddBreaches(3)
		time.Sleep(3 * testInterval)
	}
	for deadline := time.Now().Add(30 * time.Second); len(missing()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d breaches created while the Date ran ahead never delivered, e.g. %v; log:\n%s", len(missing()), missing()[:min(3, len(missing()))], tail(b.stderr.String(), 3000))
		}
	}
	_, metrics := httpGet("http://" + httpAddr + "/metrics")
	if v := metricValue(metrics, `dtforward_clock_disagreements_total{appliance="sim"}`); v < 1 {
		t.Errorf("dtforward_clock_disagreements_total = %v, want ≥ 1", v)
	}
	if v := metricValue(metrics, `dtforward_clock_date_skew_seconds{appliance="sim"}`); v < 14*60 || v > 16*60 {
		t.Errorf("dtforward_clock_date_skew_seconds = %v, want about 900", v)
	}
	b.stop(t)
	// The cursor never went past the appliance's own clock.
	st, err := checkpoint.Open(state, "sim")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := st.Source(darktrace.SourceBreaches)
	if cur := time.UnixMilli(ss.Cursor); cur.After(sim.Now()) {
		t.Fatalf("cursor %s is ahead of the appliance clock %s", cur.UTC(), sim.Now().UTC())
	}
	logs := b.stderr.String()
	errs := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "Date header disagrees with the appliance clock /status reports") && strings.Contains(l, `"level":"error"`) {
			errs++
		}
	}
	if errs != 1 {
		t.Errorf("the disagreement was logged as an error %d times, want once:\n%s", errs, tail(logs, 3000))
	}
}
