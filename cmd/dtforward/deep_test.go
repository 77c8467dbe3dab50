package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunSkipsDeeplyNestedRecord: every modelbreaches answer carries one record nested
// 100,000 levels deep. run delivers every breach of the simulator, and logs the deep record
// (with its id) as malformed and counts it. Before: every answer was rejected whole ("exceeded
// max depth") and retried forever, so none of the breaches around it arrived.
func TestRunSkipsDeeplyNestedRecord(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 5, History: time.Hour, HistoryCount: 40})
	sim.SetFaults([]simulator.Fault{{Endpoint: "modelbreaches", Kind: simulator.FaultDeep, Probability: 1}})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	b := startRun(t, baseVars(url, out, filepath.Join(dir, "state")), testInterval)

	var want []string
	for _, br := range sim.BreachInfos() {
		want = append(want, strconv.FormatInt(br.PBID, 10))
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			seen[id] = true
		}
		var miss []string
		for _, id := range want {
			if !seen[id] {
				miss = append(miss, id)
			}
		}
		return miss
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d breaches never delivered\n%s", len(missing()), len(want), tail(b.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d, want 0", code)
	}
	id := strconv.Itoa(simulator.DeepRecordID)
	s := b.stderr.String()
	if !strings.Contains(s, "malformed record skipped") || !strings.Contains(s, `"id":"`+id+`"`) {
		t.Errorf("the deep record was not reported with its id:\n%s", tail(s, 3000))
	}
	for _, got := range delivered(t, out)["modelbreach"] {
		if got == id {
			t.Errorf("the deep record was delivered")
		}
	}
}
