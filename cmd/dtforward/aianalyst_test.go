package main

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunAIAnalystReemitsChanges: an incident event is sent once, again when its group score
// (or group) changes, again when it is acknowledged, and not otherwise.
func TestRunAIAnalystReemitsChanges(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 41, HistoryCount: 10})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "aianalyst"
	startRun(t, vars, 100*time.Millisecond)

	ids := sim.AddIncidentEvents(4)
	count := func(id string) int {
		n := 0
		for _, x := range delivered(t, out)["aianalyst"] {
			if x == id {
				n++
			}
		}
		return n
	}
	all := func(n int) func() bool {
		return func() bool {
			for _, id := range ids {
				if count(id) != n {
					return false
				}
			}
			return true
		}
	}
	waitUntil(t, 10*time.Second, "one line per new event", all(1))
	time.Sleep(400 * time.Millisecond)
	if !all(1)() {
		t.Fatal("unchanged events sent again")
	}
	changed := sim.RaiseIncidentScores()
	for _, id := range ids {
		if !slices.Contains(changed, id) {
			t.Fatalf("simulator did not raise %s", id)
		}
	}
	waitUntil(t, 10*time.Second, "a second line per raised event", all(2))
	sim.AcknowledgeIncident(ids[0])
	waitUntil(t, 10*time.Second, "a third line for the acknowledged event", func() bool { return count(ids[0]) == 3 })
	time.Sleep(400 * time.Millisecond)
	for _, id := range ids[1:] {
		if n := count(id); n != 2 {
			t.Fatalf("event %s sent %d times, want 2", id, n)
		}
	}
}
