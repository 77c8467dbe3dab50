package main

import (
	"fmt"
	"slices"
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
	res.cpu = run.CPU
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

// runCatchupCompare compares "dtforward run" catching up on n breaches of the last history for
// two binaries, base and bin, on the same simulator in the same run: the runs alternate (base,
// current, base, …) so that a load that varies on a shared machine falls on both alike. It
// prints each run and the medians of the wall time until the last breach arrived, the CPU time
// the process had used by then, and the peak RSS. Bar (issue 19 item 10): the current binary
// no slower than base (median wall time), and at most 96 MB peak in every run.
func runCatchupCompare(base, bin string, rs *benchkit.Rsyslog, n int, history time.Duration, runs int) error {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: int64(n), History: history, HistoryCount: n})
	if err != nil {
		return err
	}
	defer sim.Close()
	want := map[string]bool{}
	for _, b := range sim.BreachInfos() {
		want[strconv.FormatInt(b.PBID, 10)] = true
	}
	fmt.Printf("run catching up on %d breaches of the last %s (%d to deliver), POLL_START=%s; %d runs each, alternating\n",
		n, history, len(want), history, runs)
	bins := []struct{ name, path string }{{"base", base}, {"current", bin}}
	results := make([][]result, len(bins))
	for r := 0; r < runs; r++ {
		for i, b := range bins {
			res, err := catchup(b.path, url, rs, history, want)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			fmt.Printf("  run %d %-7s  wall %5.1fs  CPU %5.1fs  peak RSS %6.1f MB\n", r+1, b.name,
				res.wall.Seconds(), res.cpu.Seconds(), benchkit.MB(res.hwm))
			results[i] = append(results[i], res)
		}
	}
	median := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	wall := func(r result) float64 { return r.wall.Seconds() }
	cpu := func(r result) float64 { return r.cpu.Seconds() }
	hwm := func(r result) float64 { return benchkit.MB(r.hwm) }
	fmt.Printf("  median       wall     CPU   peak RSS  (every pbid arrived exactly once in every run)\n")
	for i, b := range bins {
		fmt.Printf("  %-8s  %5.1fs  %5.1fs  %6.1f MB\n", b.name, median(results[i], wall), median(results[i], cpu), median(results[i], hwm))
	}
	var worst int64
	for _, r := range results[1] {
		worst = max(worst, r.hwm)
	}
	fast := median(results[1], wall) <= median(results[0], wall)
	fmt.Printf("  current no slower than base (median wall time): %s\n", benchkit.Verdict(fast))
	fmt.Printf("  current peak RSS, worst run: %.1f MB (bar <= %.0f MB): %s\n", benchkit.MB(worst), benchkit.MB(catchupBar), benchkit.Verdict(worst <= catchupBar))
	if !fast || worst > catchupBar {
		return fmt.Errorf("a bar was missed")
	}
	return nil
}
