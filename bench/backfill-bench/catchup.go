package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

// catchupBar is issue 11's bar for "run" catching up on 100,000 breaches: the pod example
// limits memory to 128 MiB.
const catchupBar = 96 << 20

// runCatchup measures "dtforward run" starting with POLL_START=<history> on an appliance whose
// last <history> hold n breaches (as "dtforward simulate --history 6h --history-count 100000"
// serves them): the time until every breach reached rsyslog, and the peak RSS of the process.
// Every pbid (suppressed ones too) must arrive exactly once; the process is stopped a few seconds
// after the last one, so duplicates from the polls after catching up would be counted too.
func runCatchup(bin string, rs *benchkit.Rsyslog, counts []int, history time.Duration) error {
	failed := false
	for _, n := range counts {
		sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: int64(n), History: history, HistoryCount: n})
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, b := range sim.BreachInfos() {
			want[strconv.FormatInt(b.PBID, 10)] = true
		}
		fmt.Printf("run catching up on %d breaches of the last %s (%d to deliver), POLL_START=%s\n", n, history, len(want), history)
		res, err := catchup(bin, url, rs, history, want)
		_ = sim.Close()
		if err != nil {
			return err
		}
		ok := res.hwm <= catchupBar
		failed = failed || !ok
		fmt.Printf("  delivered: %d lines to rsyslog, every pbid exactly once, none lost\n", res.lines)
		fmt.Printf("  time until the last breach arrived: %.1fs (%.0f records/s)\n", res.wall.Seconds(), res.rate)
		fmt.Printf("  peak RSS of dtforward: %.1f MB (VmHWM; bar <= %.0f MB): %s\n", benchkit.MB(res.hwm), benchkit.MB(catchupBar), benchkit.Verdict(ok))
	}
	if failed {
		return fmt.Errorf("a bar was missed")
	}
	return nil
}

func catchup(bin, url string, rs *benchkit.Rsyslog, history time.Duration, want map[string]bool) (result, error) {
	var res result
	state, err := os.MkdirTemp("", "catchup-bench-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	before, err := rs.Size()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = benchkit.Env(url, "tcp", rs.Addr, state,
		"POLL_START="+history.String(), "POLL_SOURCES=modelbreaches", "POLL_INTERVAL=5s",
		// Every breach, also from a binary older than the current defaults (bench/catchup-compare).
		"FILTER_INCLUDE_SUPPRESSED=true", "FILTER_INCLUDE_ACKNOWLEDGED=true")
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} { // to compare GC settings
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // killed on purpose: its exit status says nothing
		}
	}()
	var peak int64
	for {
		peak = max(peak, benchkit.VmHWM(cmd.Process.Pid))
		lines, err := rs.Lines(before)
		if err != nil {
			return res, err
		}
		if lines >= len(want) {
			break
		}
		select {
		case err := <-exited:
			stopped = true
			return res, fmt.Errorf("dtforward run exited early: %v\n%s", err, benchkit.Tail(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Minute {
			return res, fmt.Errorf("not every breach arrived within 30 minutes\n%s", benchkit.Tail(stderr.String()))
		}
	}
	res.wall = time.Since(start)
	res.rate = float64(len(want)) / res.wall.Seconds()
	// A few more polls: anything sent twice would show now.
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		peak = max(peak, benchkit.VmHWM(cmd.Process.Pid))
	}
	res.hwm = peak
	_ = cmd.Process.Signal(syscall.SIGTERM)
	stopped = true
	if err := <-exited; err != nil {
		return res, fmt.Errorf("dtforward run: %v\n%s", err, benchkit.Tail(stderr.String()))
	}
	got, err := rs.WaitIDs(before, len(want), 60*time.Second)
	if err != nil {
		return res, err
	}
	res.lines, err = benchkit.ExactlyOnce(got, want)
	return res, err
}
