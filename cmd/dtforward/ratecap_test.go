package main

import (
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunBoundsRequestsPerMinute (issue 18 item 1): with DARKTRACE_MAX_REQUESTS_PER_MINUTE=6 and
// polls every 200 ms over two sources (about 600 requests a minute unbounded), the appliance
// sees at most 6 requests in any 60 seconds, counted at the simulator; the waiting shows in
// dtforward_api_throttled_seconds_total, and breaches created once the bound is reached are
// still delivered, in the next minute. Without the bound the simulator counted hundreds.
func TestRunBoundsRequestsPerMinute(t *testing.T) {
	const perMinute = 6
	sim, url := startSim(t, simulator.Options{Seed: 18, History: time.Hour, HistoryCount: 40})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	httpAddr := freeAddr(t)
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches,antigena"
	vars["HTTP_ADDRESS"] = httpAddr
	vars["DARKTRACE_MAX_REQUESTS_PER_MINUTE"] = strconv.Itoa(perMinute)
	b := startRun(t, vars, testInterval)
	metrics := "http://" + httpAddr + "/metrics"
	throttled := func() float64 {
		_, text := httpGet(metrics)
		return metricValue(text, `dtforward_api_throttled_seconds_total{appliance="sim"}`)
	}
	waitUntil(t, 2*time.Minute, "a request held back by the bound", func() bool { return throttled() > 0 })

	sim.AddBreaches(5)
	want := map[string]bool{}
	for _, br := range sim.BreachInfos() {
		if !br.Suppressed {
			want[strconv.FormatInt(br.PBID, 10)] = true
		}
	}
	waitUntil(t, 3*time.Minute, "every breach delivered, the last ones after the bound was reached", func() bool {
		got := delivered(t, out)["modelbreach"]
		n := 0
		for _, id := range got {
			if want[id] {
				n++
			}
		}
		return n >= len(want)
	})
	if code := b.stop(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}

	// /status (the clock check, once at start and every 10 minutes) does not go through the
	// bound; every other request does.
	var at []time.Time
	for _, r := range sim.Requests() {
		if r.Path != "/status" {
			at = append(at, r.Time)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Minute {
			j++
		}
		most = max(most, j-i)
	}
	t.Logf("%d requests in %s, at most %d in any 60 s", len(at), at[len(at)-1].Sub(at[0]).Round(time.Second), most)
	if most > perMinute {
		t.Errorf("the appliance saw %d requests within 60 s, want at most %d", most, perMinute)
	}
	if len(at) <= perMinute {
		t.Errorf("only %d requests: the delivery after the bound was reached was not exercised", len(at))
	}
}
