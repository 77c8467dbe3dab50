package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// proc is a real dtforward process.
type proc struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	done   chan error
}

func startProc(t *testing.T, bin string, vars map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	for k, v := range vars {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// wait returns the exit code once the process ended (at most a minute: a bound, not a timing).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(time.Minute):
		t.Fatalf("process still running after a minute; stderr:\n%s", tail(p.stderr.String(), 2000))
		return -1
	}
}

func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t)
}

// TestSecondRunOnTheSameStateRefuses (issue 18 item 2): two real processes on one STATE_DIR.
// The second refuses at start with exit 2 and a message naming the first (pid, host, start
// time); once the first stopped, no lock file is left and a new run starts.
func TestSecondRunOnTheSameStateRefuses(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{Seed: 3, History: time.Hour, HistoryCount: 10})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	vars := baseVars(url, filepath.Join(dir, "out.jsonl"), state)
	vars["POLL_SOURCES"] = "modelbreaches"

	first := startProc(t, bin, vars, "run")
	waitUntil(t, time.Minute, "the first run to start", func() bool { return strings.Contains(first.stderr.String(), "dtforward started") })
	second := startProc(t, bin, vars, "run")
	if code := second.wait(t); code != exitUsage {
		t.Fatalf("second run on the same STATE_DIR exited %d, want %d; stderr:\n%s", code, exitUsage, second.stderr.String())
	}
	host, _ := os.Hostname()
	msg := second.stderr.String()
	for _, want := range []string{"STATE_DIR", "pid " + strconv.Itoa(first.cmd.Process.Pid), host, "started "} {
		if !strings.Contains(msg, want) {
			t.Errorf("second run's message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "dtforward started") {
		t.Errorf("the second run started before refusing:\n%s", msg)
	}
	if code := first.stop(t); code != 0 {
		t.Fatalf("first run exited %d; stderr:\n%s", code, tail(first.stderr.String(), 2000))
	}
	if m, _ := filepath.Glob(filepath.Join(state, "*.lock")); len(m) != 0 {
		t.Errorf("lock files left after a clean stop: %v", m)
	}
	third := startProc(t, bin, vars, "run")
	waitUntil(t, time.Minute, "a run after the first stopped", func() bool { return strings.Contains(third.stderr.String(), "dtforward started") })
	if code := third.stop(t); code != 0 {
		t.Fatalf("third run exited %d", code)
	}
}

// TestDuplicateShardIndexRefuses: shards may share a state directory, but a second process
// with the same SHARD_INDEX is refused loudly (exit 2, naming SHARD_INDEX and the holder)
// instead of polling the same appliances twice and nobody the others.
func TestDuplicateShardIndexRefuses(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{Seed: 3, History: time.Hour, HistoryCount: 10})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	vars := func(index string) map[string]string {
		v := baseVars(url, filepath.Join(dir, "out-"+index+".jsonl"), state)
		v["SHARD_COUNT"], v["SHARD_INDEX"] = "2", index
		return v
	}
	s1 := startProc(t, bin, vars("1"), "run")
	waitUntil(t, time.Minute, "shard 1 to start", func() bool { return strings.Contains(s1.stderr.String(), "dtforward started") })
	s0 := startProc(t, bin, vars("0"), "run")
	waitUntil(t, time.Minute, "shard 0 to start next to it", func() bool { return strings.Contains(s0.stderr.String(), "dtforward started") })
	dup := startProc(t, bin, vars("dtforward-1"), "run")
	if code := dup.wait(t); code != exitUsage {
		t.Fatalf("duplicate SHARD_INDEX exited %d, want %d; stderr:\n%s", code, exitUsage, dup.stderr.String())
	}
	msg := dup.stderr.String()
	for _, want := range []string{"SHARD_INDEX", "shard 1 of 2", "pid " + strconv.Itoa(s1.cmd.Process.Pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("duplicate shard's message lacks %q:\n%s", want, msg)
		}
	}
	for _, p := range []*proc{s0, s1} {
		if code := p.stop(t); code != 0 {
			t.Fatalf("shard exited %d; stderr:\n%s", code, tail(p.stderr.String(), 2000))
		}
	}
}
