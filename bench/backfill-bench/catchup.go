package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// catchupBar is issue 11's bar for "run" catching up on 100,000 breaches: the pod example
// limits memory to 128 MiB.
const catchupBar = 96 << 20

// runCatchup measures "dtforward run" starting with POLL_START=<history> on an appliance whose
// last <history> hold n breaches (as "dtforward simulate --history 6h --history-count 100000"
// serves them): the time until every breach reached rsyslog, and the peak RSS of the process.
// Every non-suppressed pbid must arrive exactly once; the process is stopped a few seconds
// after the last one, so duplicates from the polls after catching up would be counted too.
func runCatchup(bin string, rs *rsyslog, counts []int, history time.Duration) error {
	failed := false
	for _, n := range counts {
		sim, err := simulator.New(simulator.Options{PublicToken: pub, PrivateToken: priv, Seed: int64(n), History: history, HistoryCount: n})
		if err != nil {
			return err
		}
		url, err := sim.Start("127.0.0.1:0", false)
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, b := range sim.BreachInfos() {
			if !b.Suppressed {
				want[strconv.FormatInt(b.PBID, 10)] = true
			}
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
		fmt.Printf("  peak RSS of dtforward: %.1f MB (VmHWM; bar <= %.0f MB): %s\n", mb(res.hwm), mb(catchupBar), verdict(ok))
	}
	if failed {
		return fmt.Errorf("a bar was missed")
	}
	return nil
}

func catchup(bin, url string, rs *rsyslog, history time.Duration, want map[string]bool) (result, error) {
	var res result
	state, err := os.MkdirTemp("", "catchup-bench-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	before, err := rs.size()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{
		"DARKTRACE_URL=" + url, "DARKTRACE_ALLOW_HTTP=true", "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=" + pub, "DARKTRACE_PRIVATE_TOKEN=" + priv,
		"POLL_START=" + history.String(), "POLL_SOURCES=modelbreaches", "POLL_INTERVAL=5s",
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=tcp", "SIEM_ADDRESS=" + rs.addr,
		"STATE_DIR=" + state, "LOG_FORMAT=json",
	}
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
		peak = max(peak, vmHWM(cmd.Process.Pid))
		lines, err := rs.lines(before)
		if err != nil {
			return res, err
		}
		if lines >= len(want) {
			break
		}
		select {
		case err := <-exited:
			stopped = true
			return res, fmt.Errorf("dtforward run exited early: %v\n%s", err, tail(stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Minute {
			return res, fmt.Errorf("not every breach arrived within 30 minutes\n%s", tail(stderr.String()))
		}
	}
	res.wall = time.Since(start)
	res.rate = float64(len(want)) / res.wall.Seconds()
	// A few more polls: anything sent twice would show now.
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		peak = max(peak, vmHWM(cmd.Process.Pid))
	}
	res.hwm = peak
	_ = cmd.Process.Signal(syscall.SIGTERM)
	stopped = true
	if err := <-exited; err != nil {
		return res, fmt.Errorf("dtforward run: %v\n%s", err, tail(stderr.String()))
	}
	got, err := rs.ids(before, len(want), 60*time.Second)
	if err != nil {
		return res, err
	}
	for id, n := range got {
		res.lines += n
		if n != 1 || !want[id] {
			return res, fmt.Errorf("pbid %s arrived %d times (expected: %v)", id, n, want[id])
		}
	}
	if len(got) != len(want) {
		return res, fmt.Errorf("rsyslog got %d distinct pbids, oracle %d", len(got), len(want))
	}
	return res, nil
}

// lines counts the messages rsyslog wrote after offset from.
func (r *rsyslog) lines(from int64) (int, error) {
	b, err := os.ReadFile(r.out)
	if err != nil {
		return 0, err
	}
	if int64(len(b)) < from {
		return 0, nil
	}
	return bytes.Count(b[from:], []byte{'\n'}), nil
}
