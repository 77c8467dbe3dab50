// Command backfill-bench measures "dtforward backfill" end to end: the simulator (in this
// process, over real HTTP on 127.0.0.1) holds N breaches spread over D days, 5% of them created
// up to 6 hours after their activity; the real dtforward binary backfills them as JSON over TCP
// into a real rsyslogd, whose output file is checked against the simulator's oracle (every
// non-suppressed pbid exactly once, summary counts equal).
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
//
// Usage (see bench/backfill-memory and bench/backfill-throughput):
//
//	backfill-bench -bin ./dtforward -mode memory -counts 20000,200000
//	backfill-bench -bin ./dtforward -mode throughput -counts 200000 -runs 2
//	backfill-bench -bin ./dtforward -mode catchup -counts 100000 -history 6h
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/dtforward/dtforward/internal/testtools"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/poller"
	"github.com/dtforward/dtforward/simulator"
)

const (
	pub  = "bench-public-token"
	priv = "bench-private-token"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	mode := flag.String("mode", "memory", "memory or throughput")
	counts := flag.String("counts", "20000,200000", "comma-separated breach counts")
	days := flag.Int("days", 30, "days of history the breaches spread over")
	runs := flag.Int("runs", 1, "runs per measurement; the best is reported")
	chunk := flag.Duration("chunk", time.Hour, "backfill --chunk")
	history := flag.Duration("history", 6*time.Hour, "catchup: the span the breaches are spread over, and POLL_START")
	flag.Parse()
	if *bin == "" || (*mode != "memory" && *mode != "throughput" && *mode != "catchup") {
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
	if *mode == "catchup" {
		rs, err := startRsyslog()
		if err == nil {
			err = runCatchup(*bin, rs, ns, *history)
			rs.stop()
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
	rs, err := startRsyslog()
	if err != nil {
		return err
	}
	defer rs.stop()
	failed := false
	var peaks []int64
	for _, n := range counts {
		sim, err := simulator.New(simulator.Options{PublicToken: pub, PrivateToken: priv, Seed: int64(n),
			History: time.Duration(days) * 24 * time.Hour, HistoryCount: n, LateFraction: 0.05, LateDelay: 6 * time.Hour})
		if err != nil {
			return err
		}
		url, err := sim.Start("127.0.0.1:0", false)
		if err != nil {
			return err
		}
		to := sim.Now().Truncate(time.Second)
		from := to.Add(-time.Duration(days)*24*time.Hour - time.Hour)
		want := map[string]bool{}
		for _, b := range sim.BreachInfos() {
			if !b.Suppressed && b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
				want[strconv.FormatInt(b.PBID, 10)] = true
			}
		}
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
			fmt.Printf("  peak RSS of dtforward: %.1f MB (VmHWM)\n", mb(best.hwm))
			peaks = append(peaks, best.hwm)
		case "throughput":
			ratio := best.rate / decodeBest
			ok := ratio >= 0.8
			failed = failed || !ok
			fmt.Printf("  end to end:  %.0f records/s (%.2fs wall, dtforward CPU %.2fs)\n", best.rate, best.wall.Seconds(), best.cpu.Seconds())
			fmt.Printf("  decode only: %.0f records/s (darktrace.Client, same chunk queries)\n", decodeBest)
			fmt.Printf("  each run, end to end/decode only: %s\n", strings.Join(pairs, "  "))
			fmt.Printf("  ratio (best/best): %.2f (bar >= 0.80) %s\n", ratio, verdict(ok))
		}
	}
	if mode == "memory" {
		for i, n := range counts {
			fmt.Printf("peak RSS %7d breaches: %.1f MB\n", n, mb(peaks[i]))
		}
		last := peaks[len(peaks)-1]
		ok := last < 80<<20
		growth := float64(last) / float64(peaks[0])
		flat := growth <= 1.5
		failed = failed || !ok || !flat
		fmt.Printf("bar: < 80 MB at %d breaches: %s; growth %d → %d breaches: %.2fx (bar <= 1.5x): %s\n",
			counts[len(counts)-1], verdict(ok), counts[0], counts[len(counts)-1], growth, verdict(flat))
	}
	if failed {
		return errors.New("a bar was missed")
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

type result struct {
	records, lines int
	wall, cpu      time.Duration
	rate           float64
	hwm            int64 // bytes: VmHWM
}

// backfill runs the binary over [from, to) into rsyslog and checks what arrived.
func backfill(bin, url string, rs *rsyslog, from, to time.Time, chunk time.Duration, want map[string]bool) (result, error) {
	var res result
	state, err := os.MkdirTemp("", "backfill-bench-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	before, err := rs.size()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(bin, "backfill", "--from", from.UTC().Format(time.RFC3339), "--to", to.UTC().Format(time.RFC3339),
		"--sources", "modelbreaches", "--chunk", chunk.String())
	cmd.Env = []string{
		"DARKTRACE_URL=" + url, "DARKTRACE_ALLOW_HTTP=true", "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=" + pub, "DARKTRACE_PRIVATE_TOKEN=" + priv,
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=tcp", "SIEM_ADDRESS=" + rs.addr,
		"STATE_DIR=" + state, "LOG_FORMAT=json",
	}
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
			peak = max(peak, vmHWM(cmd.Process.Pid))
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
		return res, fmt.Errorf("dtforward backfill: %v\n%s", err, tail(stderr.String()))
	}
	// Not ru_maxrss: for a child started with vfork it includes the parent's RSS (this process
	// holds the simulator), which the kernel charges to the child at exec.
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
		return res, fmt.Errorf("summary: complete=%v records=%d, oracle %d\n%s", sum.Complete, sum.Records, len(want), tail(stderr.String()))
	}
	res.records = sum.Records
	res.rate = float64(res.records) / res.wall.Seconds()
	got, err := rs.ids(before, len(want), 60*time.Second)
	if err != nil {
		return res, err
	}
	res.lines = 0
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

// decodeOnly fetches the same chunk windows with the same queries and decodes each record into
// darktrace.Breach: the rate at which records can leave the API client at all.
func decodeOnly(url string, from, to time.Time, chunk time.Duration) (float64, error) {
	c, err := darktrace.New(darktrace.Config{URL: url, PublicToken: pub, PrivateToken: priv, AllowHTTP: true})
	if err != nil {
		return 0, err
	}
	defer c.CloseIdleConnections()
	src, err := poller.NewPipeline(c, "bench", c.Host(), poller.Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(poller.SourceBreaches)
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

func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// rsyslog is a real rsyslogd receiving TCP on 127.0.0.1 and writing each message's MSG part
// on its own line.
type rsyslog struct {
	dir, out, addr string
	cmd            *exec.Cmd
}

func startRsyslog() (*rsyslog, error) {
	bin, mods, err := findRsyslog()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backfill-bench-rsyslog")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &rsyslog{dir: dir, out: filepath.Join(dir, "received.log"), addr: addr}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="256k")
template(name="msg" type="string" string="%%msg%%\n")
module(load="imtcp" maxSessions="100")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="recv")
ruleset(name="recv") {
  action(type="omfile" file=%q template="msg" asyncWriting="on" flushOnTXEnd="off" ioBufferSize="256k")
}
`, dir, port, r.out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.out, nil, 0o600); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(bin, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-M", mods, "-i", filepath.Join(dir, "rsyslogd.pid"))
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.log"))
	if err != nil {
		return nil, err
	}
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return r, nil
		}
		if time.Now().After(deadline) {
			r.stop()
			b, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.log"))
			return nil, fmt.Errorf("rsyslogd did not listen on %s: %s", addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rsyslog) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
	_ = os.RemoveAll(r.dir)
}

func (r *rsyslog) size() (int64, error) {
	st, err := os.Stat(r.out)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// ids waits until n messages arrived after offset from and counts the pbids among them.
func (r *rsyslog) ids(from int64, n int, timeout time.Duration) (map[string]int, error) {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.Open(r.out)
		if err != nil {
			return nil, err
		}
		if _, err := f.Seek(from, 0); err != nil {
			f.Close()
			return nil, err
		}
		got := map[string]int{}
		lines := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines++
			var rec struct{ Kind, ID string }
			if i := bytes.IndexByte(sc.Bytes(), '{'); i >= 0 && json.Unmarshal(sc.Bytes()[i:], &rec) == nil && rec.Kind == "modelbreach" {
				got[rec.ID]++
			}
		}
		f.Close()
		if lines >= n {
			return got, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rsyslog wrote %d of %d messages within %s", lines, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findRsyslog uses the same search as the test suite (internal/testtools).
func findRsyslog() (bin, mods string, err error) {
	r, ok := testtools.LocateRsyslog()
	if !ok {
		return "", "", errors.New("rsyslogd not found; run scripts/install-test-deps (as root) first")
	}
	return r.Bin, r.ModDir, nil
}
