package main

import (
	"bufio"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestCaughtUpNamesAFutureTime runs the real binary through an appliance outage longer than
// POLL_INTERVAL: the first cycle ends seconds after its interval, and the "caught up; next poll
// at …" line must name the poll that comes next (now), not a time already past.
func TestCaughtUpNamesAFutureTime(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{HistoryCount: 2})
	faults, err := simulator.ParseFaults("modelbreaches:503")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(faults)
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	cmd := exec.Command(bin, "run")
	cmd.Env = processEnv(vars)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitUntil(t, 30*time.Second, "a failed request", func() bool { return strings.Contains(out.String(), "appliance request failed") })
	time.Sleep(4 * time.Second) // the outage outlasts POLL_INTERVAL (1s) several times
	sim.SetFaults(nil)
	var line map[string]any
	waitUntil(t, 60*time.Second, "the caught-up line", func() bool {
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"caught up;`) {
				return json.Unmarshal(sc.Bytes(), &line) == nil
			}
		}
		return false
	})
	logged, err1 := time.Parse(time.RFC3339, line["time"].(string))
	next, err2 := time.Parse(time.RFC3339, line["next_poll"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("times in %v: %v %v", line, err1, err2)
	}
	// Both have whole seconds: the next poll may share the line's second, never precede it.
	if next.Before(logged) {
		t.Errorf("caught up at %s names next_poll %s, already past: %v", logged.Format(time.RFC3339), next.Format(time.RFC3339), line)
	}
}
