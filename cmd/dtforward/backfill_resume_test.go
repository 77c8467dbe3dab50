package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
)

// TestBackfillResumesTheSameRelativeCommand (issue 19 item 1): "backfill --from 2h --to 10m",
// Ctrl-C (SIGINT) mid-run, then the same command again, as the up-arrow gives it. The second
// run resumes the first run's range (the range it resolved is kept in its state) instead of
// fixing a new one and sending everything again: at the real receiver every breach of that
// range arrives, and none more than once beyond the one chunk in flight at the interrupt. No
// lock file is left after either run. A different range over the unfinished one is refused
// (exit 2) naming the state file and --restart.
func TestBackfillResumesTheSameRelativeCommand(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 31, History: 3 * time.Hour, HistoryCount: 6000})
	rcv := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	vars := baseVars(url, "", state)
	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "tcp", rcv.TCP
	args := []string{"backfill", "--from", "2h", "--to", "10m", "--sources", "modelbreaches", "--chunk", "5m"}
	start := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, args...)
		cmd.Env = backfillEnv(vars)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, &stderr
	}
	lines := func() int {
		b, err := os.ReadFile(filepath.Join(rcv.Dir, "received.jsonl"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte{'\n'})
	}
	noLocks := func(when string) {
		t.Helper()
		if m, _ := filepath.Glob(filepath.Join(state, "*.lock")); len(m) != 0 {
			t.Errorf("lock files left %s: %v", when, m)
		}
	}

	first, stderr1 := start(args...)
	deadline := time.Now().Add(time.Minute)
	for lines() < 1000 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	_ = first.Process.Signal(syscall.SIGINT)
	if err := first.Wait(); err == nil {
		t.Fatalf("the first run completed before the interrupt; make the history larger\n%s", tail(stderr1.String(), 2000))
	}
	r1 := rangeOf(t, stderr1.String())
	sent1 := lines()
	want := oracle(sim, r1.From, r1.To)
	t.Logf("interrupted at %d of %d lines, range [%s, %s)", sent1, len(want), r1.From.Format(time.RFC3339), r1.To.Format(time.RFC3339))
	noLocks("by an interrupted backfill")

	// Another range over the unfinished one is refused, naming the state file and --restart.
	other := exec.Command(bin, "backfill", "--from", "3h", "--to", "1h", "--sources", "modelbreaches")
	other.Env = backfillEnv(vars)
	out, err := other.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "--restart") || !strings.Contains(string(out), filepath.Join(state, "backfill-sim-")) {
		t.Fatalf("a different range over an unfinished backfill: %v\n%s", err, out)
	}

	time.Sleep(1100 * time.Millisecond) // "2h" and "10m" now name other times
	second, stderr2 := start(args...)
	if err := second.Wait(); err != nil {
		t.Fatalf("the same command again: %v\n%s", err, tail(stderr2.String(), 3000))
	}
	r2 := rangeOf(t, stderr2.String())
	if !r2.From.Equal(r1.From) || !r2.To.Equal(r1.To) || !r2.Complete || !r2.Resumed {
		t.Fatalf("second run walked [%s, %s) complete %v resumed %v; want the first run's range [%s, %s), resumed and complete",
			r2.From, r2.To, r2.Complete, r2.Resumed, r1.From, r1.To)
	}
	noLocks("by a finished backfill")

	// The largest chunk bounds what the interrupt may repeat.
	perChunk := map[int64]int{}
	maxChunk := 0
	for _, b := range sim.BreachInfos() {
		if b.Created >= r1.From.UnixMilli() && b.Created < r1.To.UnixMilli() {
			k := (b.Created - r1.From.UnixMilli()) / (5 * time.Minute).Milliseconds()
			perChunk[k]++
			maxChunk = max(maxChunk, perChunk[k])
		}
	}
	ids, _ := receivedIDs(rcv.Wait(t, len(want), 30*time.Second))
	missing, extra := 0, 0
	for _, id := range want {
		if n := ids["modelbreach"][id]; n == 0 {
			missing++
		} else {
			extra += n - 1
		}
	}
	t.Logf("%d breaches in range, %d delivered before the interrupt, %d duplicates (largest chunk %d)", len(want), sent1, extra, maxChunk)
	if missing != 0 || len(ids["modelbreach"]) != len(want) {
		t.Fatalf("%d of %d breaches missing, %d distinct delivered", missing, len(want), len(ids["modelbreach"]))
	}
	if extra > maxChunk {
		t.Fatalf("%d duplicates after one interrupt; at most the chunk in flight (%d) allowed", extra, maxChunk)
	}
}

type backfillRange struct {
	From, To          time.Time
	Complete, Resumed bool
	Message           string
}

// rangeOf reads the range walked from the "backfill finished" log line.
func rangeOf(t *testing.T, stderr string) backfillRange {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r backfillRange
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Message == "backfill finished" {
			return r
		}
	}
	t.Fatalf("no \"backfill finished\" line:\n%s", tail(stderr, 3000))
	return backfillRange{}
}
