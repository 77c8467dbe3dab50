package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// buildBinary compiles dtforward once into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "dtforward")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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
		if !br.Suppressed {
			want = append(want, br.PBID)
		}
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
