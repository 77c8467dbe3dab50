package main

import (
	"fmt"
	"strconv"
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
	start := time.Now()
	run, err := benchkit.StartRun(bin, url, rs,
		"POLL_START="+history.String(), "POLL_SOURCES=modelbreaches", "POLL_INTERVAL=5s",
		// Every breach, also from a binary older than the current defaults (bench/catchup-compare).
		"FILTER_INCLUDE_SUPPRESSED=true", "FILTER_INCLUDE_ACKNOWLEDGED=true")
	if err != nil {
		return res, err
	}
	defer run.Stop() //nolint:errcheck // the error path only: Stop is checked below
	if err := run.Wait(len(want), 30*time.Minute); err != nil {
		return res, err
	}
	res.wall = time.Since(start)
	res.rate = float64(len(want)) / res.wall.Seconds()
	run.Watch(12 * time.Second)
	res.hwm = run.Peak
	if err := run.Stop(); err != nil {
		return res, err
	}
	got, err := rs.WaitIDs(run.Before, len(want), 60*time.Second)
	if err != nil {
		return res, err
	}
	res.lines, err = benchkit.ExactlyOnce(got, want)
	return res, err
}
