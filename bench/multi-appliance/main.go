// Command multi-appliance measures one dtforward process polling many appliances, with the real
// binaries only: "dtforward simulate --appliances N --history-count B" serves N appliances
// (each on its own port) and writes their appliances file; "dtforward run" polls them all with
// SIEM_TRANSPORT=file. It reports the time until every breach of every appliance is in the
// output file, the lines and unique (appliance, id) pairs written, the peak RSS (VmHWM) of the
// run process, and its RSS once idle (nothing new to deliver) after a few more polls.
//
// Run it through bench/multi-appliance.sh, which builds both.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (built by the .sh wrapper)")
	n := flag.Int("appliances", 300, "number of simulated appliances")
	breaches := flag.Int("breaches", 20, "breaches of history per appliance (--history-count)")
	interval := flag.Duration("interval", 10*time.Second, "POLL_INTERVAL")
	limit := flag.Int("max-requests", 16, "DARKTRACE_MAX_CONCURRENT_REQUESTS")
	idle := flag.Int("idle-polls", 3, "polls to wait once everything is delivered before reading the idle RSS")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *bin == "" {
		fail("-bin is required (use bench/multi-appliance.sh)")
	}
	tmp, err := os.MkdirTemp("", "dtforward-multi-")
	check(err)
	defer os.RemoveAll(tmp)
	tokens := []string{"DARKTRACE_PUBLIC_TOKEN=bench-public", "DARKTRACE_PRIVATE_TOKEN=bench-private"}

	appsFile := filepath.Join(tmp, "appliances.json")
	sim := exec.Command(*bin, "simulate", "--listen", "127.0.0.1:0", "--appliances", strconv.Itoa(*n),
		"--appliances-file", appsFile, "--seed", "1", "--history", "30m", "--history-count", strconv.Itoa(*breaches))
	sim.Env = append(os.Environ(), tokens...)
	simOut, err := sim.StdoutPipe()
	check(err)
	sim.Stderr = os.Stderr
	check(sim.Start())
	defer stop(sim)
	line, err := bufio.NewReader(simOut).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "DARKTRACE_APPLIANCES_FILE=") {
		fail(fmt.Sprintf("simulate did not announce its appliances file: %q %v", line, err))
	}
	go func() { _, _ = io.Copy(io.Discard, simOut) }()

	out := filepath.Join(tmp, "out.jsonl")
	run := exec.Command(*bin, "run")
	run.Env = append(os.Environ(),
		"DARKTRACE_APPLIANCES_FILE="+appsFile,
		"DARKTRACE_MAX_CONCURRENT_REQUESTS="+strconv.Itoa(*limit),
		"POLL_SOURCES=modelbreaches",
		"FILTER_INCLUDE_SUPPRESSED=true", // every generated breach counts
		"POLL_START=1h",
		"POLL_INTERVAL="+interval.String(),
		"SIEM_FORMAT=json",
		"SIEM_TRANSPORT=file",
		"SIEM_ADDRESS="+out,
		"STATE_DIR="+filepath.Join(tmp, "state"),
		"LOG_LEVEL=warn",
		"LOG_FORMAT=json",
	)
	var runErr bytes.Buffer
	run.Stderr = &runErr
	start := time.Now()
	check(run.Start())
	defer stop(run)

	want := *n * *breaches
	var lines, unique int
	seen := map[string]bool{}
	var offset int64
	var peakSampled int
	deadline := start.Add(*timeout)
	for {
		offset = readNew(out, offset, func(l []byte) {
			var r struct{ Appliance, ID string }
			if json.Unmarshal(l, &r) != nil {
				return
			}
			lines++
			k := r.Appliance + "/" + r.ID
			if !seen[k] {
				seen[k] = true
				unique++
			}
		})
		peakSampled = max(peakSampled, benchkit.StatusKB(run.Process.Pid, "VmRSS"))
		if unique >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	peak := benchkit.StatusKB(run.Process.Pid, "VmHWM")
	// Idle: a few more polls that find nothing new.
	time.Sleep(time.Duration(*idle) * *interval)
	readNew(out, offset, func([]byte) { lines++ })
	idleRSS := benchkit.StatusKB(run.Process.Pid, "VmRSS")
	peak = max(peak, benchkit.StatusKB(run.Process.Pid, "VmHWM"))

	fmt.Printf("appliances %d × %d breaches, POLL_INTERVAL=%s, DARKTRACE_MAX_CONCURRENT_REQUESTS=%d\n", *n, *breaches, *interval, *limit)
	fmt.Printf("  delivered: %d unique of %d expected, %d lines (%d duplicates) in %s\n",
		unique, want, lines, lines-unique, took.Round(10*time.Millisecond))
	fmt.Printf("  run peak RSS (VmHWM): %.1f MB; idle RSS after %d more polls: %.1f MB\n",
		float64(peak)/1024, *idle, float64(idleRSS)/1024)
	if unique < want {
		fmt.Printf("  INCOMPLETE after %s; run's stderr tail:\n%s\n", *timeout, tail(runErr.String(), 2000))
		os.Exit(1)
	}
}

// readNew calls fn for each complete line of path after offset and returns the new offset.
func readNew(path string, offset int64, fn func([]byte)) int64 {
	f, err := os.Open(path)
	if err != nil {
		return offset
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return offset
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		l, err := r.ReadBytes('\n')
		if err != nil {
			return offset // a partial last line is read again next time
		}
		offset += int64(len(l))
		fn(l)
	}
}

func stop(c *exec.Cmd) {
	if c.Process == nil || c.ProcessState != nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "multi-appliance:", msg)
	os.Exit(1)
}
