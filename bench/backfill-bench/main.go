// Command backfill-bench measures "dtforward backfill" end to end: the simulator (in this
// process, over real HTTP on 127.0.0.1) holds N breaches spread over D days, 5% of them created
// up to 6 hours after their activity; the real dtforward binary backfills them as JSON over TCP
// into a real rsyslogd, whose output file is checked against the simulator's oracle (every
// pbid exactly once, summary counts equal).
//
// Modes:
//
//	memory      peak RSS (VmHWM of /proc/<pid>/status) of the dtforward process for each
//	            -counts value; bar: < 80 MB at 200,000 and flat (the largest count within 1.5x
//	            of the smallest).
//	throughput  records/s end to end (simulator → dtforward → rsyslog, the process's wall time)
//	            and the decode-only rate of darktrace.Client for the same responses (the same
//	            chunk queries, each record json-decoded into darktrace.Breach, nothing else),
//	            measured in the same run, best of -runs each; bar: ratio ≥ 0.8.
//	catchup     "dtforward run" with POLL_START=-history on an appliance holding -counts
//	            breaches in that span: time until all arrived and peak RSS; bar: <= 96 MB.
//	catchup-compare  catchup for -base-bin and -bin alternately, -runs each, one -counts
//	            value: the median wall time, CPU time and peak RSS of each; bar: -bin no
//	            slower than -base-bin (median wall time) and <= 96 MB.
//
// Usage (see bench/backfill-memory and bench/backfill-throughput):
//
//	backfill-bench -bin ./dtforward -mode memory -counts 20000,200000
//	backfill-bench -bin ./dtforward -mode throughput -counts 200000 -runs 2
//	backfill-bench -bin ./dtforward -mode catchup -counts 100000 -history 6h
//	backfill-bench -bin ./dtforward -base-bin ./dtforward-base -mode catchup-compare -counts 100000 -runs 3
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// rsyslogOptions: TCP with room for large records and a fast file writer, so rsyslogd keeps
// up with the backfill being measured.
var rsyslogOptions = benchkit.RsyslogOptions{
	Global:    `maxMessageSize="256k"`,
	TCPModule: `maxSessions="100"`,
	Action:    `asyncWriting="on" flushOnTXEnd="off" ioBufferSize="256k"`,
	Wait:      true,
}

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	mode := flag.String("mode", "memory", "memory, throughput, catchup or catchup-compare")
	counts := flag.String("counts", "20000,200000", "comma-separated breach counts")
	days := flag.Int("days", 30, "days of history the breaches spread over")
	runs := flag.Int("runs", 1, "runs per measurement: throughput reports the best, catchup-compare the median of each binary")
	chunk := flag.Duration("chunk", time.Hour, "backfill --chunk")
	history := flag.Duration("history", 6*time.Hour, "catchup: the span the breaches are spread over, and POLL_START")
	base := flag.String("base-bin", "", "catchup-compare: the dtforward binary to compare -bin with")
	flag.Parse()
	if *bin == "" || (*mode != "memory" && *mode != "throughput" && *mode != "catchup" && *mode != "catchup-compare") ||
		(*mode == "catchup-compare" && (*base == "" || strings.Contains(*counts, ","))) {
		flag.Usage()
		os.Exit(2)
	}
	var ns []int
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-counts: %q is not a positive number\n", s)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if *mode == "catchup" || *mode == "catchup-compare" {
		rs, err := benchkit.StartRsyslog("backfill-bench-rsyslog", rsyslogOptions)
		if err == nil {
			if *mode == "catchup" {
				err = runCatchup(*bin, rs, ns, *history)
			} else {
				err = runCatchupCompare(*base, *bin, rs, ns[0], *history, *runs)
			}
			rs.Stop()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "backfill-bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *mode, ns, *days, *runs, *chunk); err != nil {
		fmt.Fprintln(os.Stderr, "backfill-bench:", err)
		os.Exit(1)
	}
}

func run(bin, mode string, counts []int, days, runs int, chunk time.Duration) error {
	rs, err := benchkit.StartRsyslog("backfill-bench-rsyslog", rsyslogOptions)
	if err != nil {
		return err
	}
	defer rs.Stop()
	failed := false
	var peaks []int64
	for _, n := range counts {
		sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: int64(n),
			History: time.Duration(days) * 24 * time.Hour, HistoryCount: n, LateFraction: 0.05, LateDelay: 6 * time.Hour})
		if err != nil {
			return err
		}
		to := sim.Now().Truncate(time.Second)
		from := to.Add(-time.Duration(days)*24*time.Hour - time.Hour)
		want := benchkit.WantedPBIDs(sim, from, to)
		fmt.Printf("%d breaches over %d days (%d to deliver; late ones included), chunk %s\n", n, days, len(want), chunk)

		var best result
		var decodeBest float64
		var pairs []string
		for r := 0; r < runs; r++ {
			var rate float64
			if mode == "throughput" {
				// Measured right before the end-to-end run, so each pair shares the machine's
				// load of the moment (other processes share these cores).
				if rate, err = decodeOnly(url, from, to, chunk); err != nil {
					return err
				}
				decodeBest = max(decodeBest, rate)
			}
			res, err := backfill(bin, url, rs, from, to, chunk, want)
			if err != nil {
				_ = sim.Close()
				return err
			}
			if res.rate > best.rate {
				best = res
			}
			if mode == "throughput" {
				pairs = append(pairs, fmt.Sprintf("%.0f/%.0f=%.2f", res.rate, rate, res.rate/rate))
			}
		}
		_ = sim.Close()
		fmt.Printf("  delivered: %d lines to rsyslog, every pbid exactly once; summary records %d = oracle %d\n", best.lines, best.records, len(want))
		switch mode {
		case "memory":
			fmt.Printf("  peak RSS of dtforward: %.1f MB (VmHWM)\n", benchkit.MB(best.hwm))
			peaks = append(peaks, best.hwm)
		case "throughput":
			ratio := best.rate / decodeBest
			ok := ratio >= 0.8
			failed = failed || !ok
			fmt.Printf("  end to end:  %.0f records/s (%.2fs wall, dtforward CPU %.2fs)\n", best.rate, best.wall.Seconds(), best.cpu.Seconds())
			fmt.Printf("  decode only: %.0f records/s (darktrace.Client, same chunk queries)\n", decodeBest)
			fmt.Printf("  each run, end to end/decode only: %s\n", strings.Join(pairs, "  "))
			fmt.Printf("  ratio (best/best): %.2f (bar >= 0.80) %s\n", ratio, benchkit.Verdict(ok))
		}
	}
	if mode == "memory" {
		for i, n := range counts {
			fmt.Printf("peak RSS %7d breaches: %.1f MB\n", n, benchkit.MB(peaks[i]))
		}
		last := peaks[len(peaks)-1]
		ok := last < 80<<20
		growth := float64(last) / float64(peaks[0])
		flat := growth <= 1.5
		failed = failed || !ok || !flat
		fmt.Printf("bar: < 80 MB at %d breaches: %s; growth %d → %d breaches: %.2fx (bar <= 1.5x): %s\n",
			counts[len(counts)-1], benchkit.Verdict(ok), counts[0], counts[len(counts)-1], growth, benchkit.Verdict(flat))
	}
	if failed {
		return errors.New("a bar was missed")
	}
	return nil
}

type result struct {
	records, lines int
	wall, cpu      time.Duration
	rate           float64
	hwm            int64 // bytes: VmHWM
}

// backfill runs the binary over [from, to) into rsyslog and checks what arrived.
func backfill(bin, url string, rs *benchkit.Rsyslog, from, to time.Time, chunk time.Duration, want map[string]bool) (result, error) {
	var res result
	state, err := os.MkdirTemp("", "backfill-bench-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	before, err := rs.Size()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(bin, append(benchkit.BackfillArgs(from, to), "--chunk", chunk.String())...)
	cmd.Env = benchkit.Env(url, "tcp", rs.Addr, state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	done := make(chan struct{})
	hwm := make(chan int64, 1)
	go func() {
		// VmHWM is the kernel's own high-water mark, so the last sample before exit covers the
		// whole run up to then; sampling often keeps that sample close to the end.
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var peak int64
		for {
			peak = max(peak, benchkit.VmHWM(cmd.Process.Pid))
			select {
			case <-done:
				hwm <- peak
				return
			case <-t.C:
			}
		}
	}()
	err = cmd.Wait()
	res.wall = time.Since(start)
	close(done)
	res.hwm = <-hwm
	if err != nil {
		return res, fmt.Errorf("dtforward backfill: %v\n%s", err, benchkit.Tail(stderr.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	var sum struct {
		Message  string
		Complete bool
		Records  int
	}
	sc := bufio.NewScanner(&stderr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &sum) == nil && sum.Message == "backfill finished" {
			break
		}
	}
	if !sum.Complete || sum.Records != len(want) {
		return res, fmt.Errorf("summary: complete=%v records=%d, oracle %d\n%s", sum.Complete, sum.Records, len(want), benchkit.Tail(stderr.String()))
	}
	res.records = sum.Records
	res.rate = float64(res.records) / res.wall.Seconds()
	got, err := rs.WaitIDs(before, len(want), 60*time.Second)
	if err != nil {
		return res, err
	}
	res.lines, err = benchkit.ExactlyOnce(got, want)
	return res, err
}

// decodeOnly fetches the same chunk windows with the same queries and decodes each record into
// darktrace.Breach: the rate at which records can leave the API client at all.
func decodeOnly(url string, from, to time.Time, chunk time.Duration) (float64, error) {
	c, err := darktrace.New(darktrace.Config{URL: url, PublicToken: benchkit.PublicToken, PrivateToken: benchkit.PrivateToken, AllowHTTP: true})
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	src, err := source.NewReader(c, "bench", c.Host(), source.Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(darktrace.SourceBreaches)
	if err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for s := from; s.Before(to); s = s.Add(chunk) {
		e := s.Add(chunk)
		if e.After(to) {
			e = to
		}
		err := c.Stream(context.Background(), src.Query(s, e.Add(-time.Millisecond)), func(raw []byte) error {
			var b darktrace.Breach
			if err := json.Unmarshal(raw, &b); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
