package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunSurvivesAZeroLengthCheckpoint (issue 18 item 10): a power cut between fsyncs leaves
// the renamed checkpoint empty on XFS. Simulated with the real binary: SIGKILL, then the
// checkpoint truncated to zero bytes. The next run starts (it exited 2 before), says it resumed
// from the last durable copy, and delivers everything without sending anything twice (the copy
// is at most two seconds old, and the overlap's seen keys cover that).
func TestRunSurvivesAZeroLengthCheckpoint(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 23, History: time.Hour, HistoryCount: 60})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	vars := baseVars(url, out, state)
	vars["POLL_SOURCES"] = "modelbreaches"
	want := len(sim.BreachInfos())

	first := startProc(t, bin, vars, "run")
	waitUntil(t, time.Minute, "the history to be delivered", func() bool { return len(delivered(t, out)["modelbreach"]) >= want })
	// Idle polls keep committing; one of them, two seconds on, is durable.
	time.Sleep(5 * time.Second)
	_ = first.cmd.Process.Kill()
	first.wait(t)

	// What the power cut leaves: the name points to a new, empty file (the last rename's data
	// never reached the disk); the durable versions' file is untouched.
	path := filepath.Join(state, "sim.json")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sim.AddBreaches(5)
	want += 5

	second := startProc(t, bin, vars, "run")
	defer func() {
		if t.Failed() {
			t.Logf("second run's log:\n%s", tail(second.stderr.String(), 4000))
		}
	}()
	waitUntil(t, time.Minute, "the new breaches after the restart", func() bool { return len(delivered(t, out)["modelbreach"]) >= want })
	if code := second.stop(t); code != 0 {
		t.Fatalf("run after a zero-length checkpoint exited %d:\n%s", code, tail(second.stderr.String(), 3000))
	}
	log := second.stderr.String()
	if !strings.Contains(log, "resuming from its last durable copy") || !strings.Contains(log, "sim.json.prev") {
		t.Errorf("the restart does not say it fell back to the durable copy:\n%s", tail(log, 3000))
	}
	ids := delivered(t, out)["modelbreach"]
	seen := map[string]int{}
	dups := 0
	for _, id := range ids {
		if seen[id]++; seen[id] > 1 {
			dups++
		}
	}
	if len(seen) != want || dups != 0 {
		t.Fatalf("%d unique of %d breaches, %d duplicates; want all, none twice", len(seen), want, dups)
	}
}
