package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

var (
	binOnce sync.Once
	binDir  string // removed by TestMain
	binPath string
	binErr  error
)

// buildBinary compiles dtforward once per test run, for the tests that need a real process
// (SIGKILL, SIGTERM, SIGHUP).
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "dtforward-test-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dtforward")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// TestRunSurvivesSIGKILL kills the real binary at random moments 20 times while the simulator
// generates 40 breaches a second, then lets a last run finish. Every breach arrives, and each
// restart repeats at most its first batch (the one the killed process had sent but not yet
// checkpointed).
func TestRunSurvivesSIGKILL(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 5, History: time.Hour, HistoryCount: 200, Rate: 40})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	environ := func() []string {
		var env []string
		for k, v := range vars {
			env = append(env, k+"="+v)
		}
		return env
	}()

	const kills = 20
	type segment struct {
		from   int64 // output file size when the run started
		stderr bytes.Buffer
	}
	var segs []*segment
	size := func() int64 {
		st, err := os.Stat(out)
		if err != nil {
			return 0
		}
		return st.Size()
	}
	start := func() (*exec.Cmd, *segment) {
		s := &segment{from: size()}
		cmd := exec.Command(bin, "run")
		cmd.Env = environ
		cmd.Stderr = &s.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s)
		return cmd, s
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := 0; i < kills; i++ {
		cmd, _ := start()
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	cmd, last := start()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	time.Sleep(1500 * time.Millisecond)

	var want []int64
	for _, br := range sim.BreachInfos() {
		want = append(want, br.PBID)
	}
	waitUntil(t, 20*time.Second, "every breach after the last restart", func() bool {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		for _, p := range want {
			if !got[strconv.FormatInt(p, 10)] {
				return false
			}
		}
		return true
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last run after SIGTERM: %v\n%s", err, tail(last.stderr.String(), 2000))
	}

	// Per restart: duplicates only within the run's first batch.
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	totalDup := 0
	for k, s := range segs {
		end := int64(len(data))
		if k+1 < len(segs) {
			end = segs[k+1].from
		}
		var ids []string
		sc := bufio.NewScanner(bytes.NewReader(data[s.from:end]))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct{ ID string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("run %d wrote a broken line: %q", k, sc.Text())
			}
			ids = append(ids, rec.ID)
		}
		firstBatch := len(ids) // killed before logging its first cycle: all it wrote is one batch
		sc = bufio.NewScanner(bytes.NewReader(s.stderr.Bytes()))
		for sc.Scan() {
			var l struct {
				Message string
				Sent    *int
			}
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Message == "poll" && l.Sent != nil {
				firstBatch = *l.Sent
				break
			}
		}
		for i, id := range ids {
			if seen[id] {
				totalDup++
				if i >= firstBatch {
					t.Fatalf("run %d re-sent pbid %s at line %d, after its first batch of %d", k, id, i, firstBatch)
				}
			}
			seen[id] = true
		}
	}
	t.Logf("%d kills, %d breaches, %d duplicate lines in total", kills, len(seen), totalDup)
}

// TestRunReopensFileOnSIGHUP: after logrotate renames the output file, SIGHUP makes the daemon
// write to a new file at the configured path, and nothing is lost across the rotation.
func TestRunReopensFileOnSIGHUP(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 9, History: time.Hour, HistoryCount: 30})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	cmd := exec.Command(bin, "run")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	waitUntil(t, 10*time.Second, "first lines", func() bool { return len(delivered(t, out)["modelbreach"]) > 0 })
	rotated := out + ".1"
	if err := os.Rename(out, rotated); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sim.AddBreaches(5)
	var want []string
	for _, b := range sim.BreachInfos() {
		want = append(want, strconv.FormatInt(b.PBID, 10))
	}
	waitUntil(t, 10*time.Second, "lines in the new file", func() bool { return len(delivered(t, out)["modelbreach"]) > 0 })
	waitUntil(t, 10*time.Second, "every breach in one of the two files", func() bool {
		got := map[string]bool{}
		for _, f := range []string{rotated, out} {
			for _, id := range delivered(t, f)["modelbreach"] {
				got[id] = true
			}
		}
		for _, id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	})
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(stderr.String(), 2000))
	}
	if !bytes.Contains(stderr.Bytes(), []byte("output file reopened")) {
		t.Fatalf("SIGHUP not logged:\n%s", tail(stderr.String(), 2000))
	}
}
