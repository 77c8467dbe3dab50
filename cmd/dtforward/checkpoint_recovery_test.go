package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestCorruptCheckpointRecoveryLeavesNoGap follows the advice of the error for a corrupt
// checkpoint to the letter: the backfill command it prints runs, and with run started at the
// POLL_START it names, every breach after the last readable position is forwarded.
func TestCorruptCheckpointRecoveryLeavesNoGap(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 41, History: 3 * time.Hour, HistoryCount: 90})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	// A checkpoint cut short mid-write: the cursor (90 minutes ago) is readable, the rest not.
	cursor := sim.Now().Add(-90 * time.Minute)
	bad := `{"version":1,"appliance":"sim","sources":{"modelbreaches":{"cursor":` + strconv.FormatInt(cursor.UnixMilli(), 10) + `,"seen":{"1`
	if err := os.WriteFile(filepath.Join(state, "sim.json"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, state)
	vars["POLL_SOURCES"] = "modelbreaches"

	code, _, stderr := runCmd(t, t.Context(), vars, "run")
	if code != exitUsage {
		t.Fatalf("run over a corrupt checkpoint: exit %d, want 2; stderr:\n%s", code, stderr)
	}
	m := regexp.MustCompile(`dtforward backfill (--appliance \S+ --from \S+ --to \S+)\n`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no backfill command in:\n%s", stderr)
	}
	args := strings.Fields(m[1])
	to := args[len(args)-1]
	if !strings.Contains(stderr, "POLL_START="+to) {
		t.Fatalf("no POLL_START=%s in:\n%s", to, stderr)
	}
	if err := os.Rename(filepath.Join(state, "sim.json"), filepath.Join(dir, "sim.json.corrupt")); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd(t, t.Context(), vars, append([]string{"backfill"}, args...)...); code != exitOK {
		t.Fatalf("the suggested backfill %v: exit %d; stderr:\n%s", args, code, tail(stderr, 2000))
	}
	fresh := sim.AddBreaches(5)
	vars["POLL_START"] = to
	b := startRun(t, vars, testInterval)
	want := map[string]bool{}
	for _, br := range sim.BreachInfos() {
		if !time.UnixMilli(br.Created).Before(cursor) {
			want[strconv.FormatInt(br.PBID, 10)] = true
		}
	}
	if len(want) < 40 || !want[strconv.FormatInt(fresh[4], 10)] {
		t.Fatalf("test setup: %d breaches after the cursor", len(want))
	}
	missing := func() int {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		n := 0
		for id := range want {
			if !got[id] {
				n++
			}
		}
		return n
	}
	waitUntil(t, time.Minute, "every breach after the last known position", func() bool { return missing() == 0 })
	b.stop(t)
}
