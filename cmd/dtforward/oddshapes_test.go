package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunDeliversOddShapes: run over a simulator serving 20% of its records in the other
// shapes real appliances send (acknowledgement objects, label-only devices, placeholder IPs,
// literal \n, absent optional fields, numeric "updated") delivers every breach, Antigena
// action and AI Analyst event of the simulator's oracle, and skips none as malformed.
func TestRunDeliversOddShapes(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 23, History: 2 * time.Hour, HistoryCount: 300,
		AckFraction: 0.3, OddFraction: 0.2})
	actions := sim.AddActions(20)
	events := sim.AddIncidentEvents(20)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"
	b := startRun(t, vars, testInterval)

	want := map[string][]string{}
	for _, br := range sim.BreachInfos() {
		want["modelbreach"] = append(want["modelbreach"], strconv.FormatInt(br.PBID, 10))
	}
	for _, id := range actions {
		want["antigena"] = append(want["antigena"], strconv.FormatInt(id, 10))
	}
	want["aianalyst"] = events
	missing := func() []string {
		got := delivered(t, out)
		var miss []string
		for kind, ids := range want {
			seen := map[string]bool{}
			for _, id := range got[kind] {
				seen[id] = true
			}
			for _, id := range ids {
				if !seen[id] {
					miss = append(miss, kind+" "+id)
				}
			}
		}
		return miss
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 {
		if time.Now().After(deadline) {
			miss := missing()
			t.Fatalf("%d records never delivered, e.g. %v\n%s", len(miss), miss[:min(5, len(miss))], tail(b.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d, want 0", code)
	}
	if s := b.stderr.String(); strings.Contains(s, "malformed record skipped") {
		t.Fatalf("a record was skipped as malformed:\n%s", tail(s, 3000))
	}
	t.Logf("delivered %d breaches, %d actions, %d events", len(want["modelbreach"]), len(actions), len(events))
}
