// Command poll-latency measures dtforward end to end: an in-process simulator generates
// breaches at a fixed rate, the real dtforward binary polls it over HTTPS and forwards JSON
// lines over TCP to a receiver in this process, which timestamps each arrival. The latency of a
// breach is its arrival time minus its creation time in the simulator. A second phase runs the
// daemon against an appliance with nothing new and reports its resident memory.
//
// Run it through bench/poll-latency.sh, which builds both binaries.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (built by the .sh wrapper)")
	duration := flag.Duration("duration", 60*time.Second, "how long to measure under load")
	rate := flag.Float64("rate", 10, "breaches per second")
	interval := flag.Duration("interval", 5*time.Second, "POLL_INTERVAL")
	idle := flag.Duration("idle", 20*time.Second, "how long the idle daemon runs before its RSS is read")
	flag.Parse()
	if *bin == "" {
		fail("-bin is required (use bench/poll-latency.sh)")
	}
	tmp, err := os.MkdirTemp("", "dtforward-poll-latency-")
	check(err)
	defer os.RemoveAll(tmp)

	// Phase 1: latency under load.
	sim, url := startSim(*rate, 0)
	rcv := startReceiver()
	daemon := startDaemon(*bin, url, sim.CAFile(), rcv.addr(), filepath.Join(tmp, "state1"), *interval)
	time.Sleep(*interval + time.Second) // the first cycle reads the (empty) hour before start
	from := time.Now().UnixMilli()
	time.Sleep(*duration)
	to := time.Now().UnixMilli()
	time.Sleep(*interval + 2*time.Second) // let the last breaches of the window arrive
	arrivals := rcv.snapshot()
	loadRSS := rssKB(daemon.Process.Pid)
	stop(daemon)
	sim.Close()

	var lat []time.Duration
	missing := 0
	for _, b := range sim.BreachInfos() {
		if b.Created < from || b.Created > to {
			continue
		}
		at, ok := arrivals[strconv.FormatInt(b.PBID, 10)]
		if !ok {
			missing++
			continue
		}
		lat = append(lat, at.Sub(time.UnixMilli(b.Created)))
	}
	if len(lat) == 0 {
		fail("no breach arrived")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	bar := *interval + time.Second
	fmt.Printf("load: %.0f breaches/s for %s, POLL_INTERVAL=%s: %d breaches measured, %d missing\n", *rate, *duration, *interval, len(lat), missing)
	fmt.Printf("latency creation→arrival: p50 %s  p99 %s  max %s  (bar: p99 <= %s) %s\n",
		pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), bar, benchkit.Verdict(pct(0.99) <= bar && missing == 0))
	fmt.Printf("RSS under load: %.1f MB\n", float64(loadRSS)/1024)

	// Phase 2: idle RSS (nothing new to forward).
	sim2, url2 := startSim(0, 0)
	defer sim2.Close()
	daemon = startDaemon(*bin, url2, sim2.CAFile(), rcv.addr(), filepath.Join(tmp, "state2"), *interval)
	time.Sleep(*idle)
	idleRSS := rssKB(daemon.Process.Pid)
	stop(daemon)
	fmt.Printf("idle RSS after %s: %.1f MB (bar: < 30 MB) %s\n", *idle, float64(idleRSS)/1024, benchkit.Verdict(idleRSS < 30*1024))
}

func startSim(rate float64, history int) (*simulator.Simulator, string) {
	if history == 0 {
		history = -1
	}
	sim, err := simulator.New(simulator.Options{
		PublicToken: "bench-public", PrivateToken: "bench-private",
		Seed: 1, HistoryCount: history, Rate: rate, AckFraction: -1,
	})
	check(err)
	url, err := sim.Start("127.0.0.1:0", true)
	check(err)
	return sim, url
}

func startDaemon(bin, url, ca, sinkAddr, state string, interval time.Duration) *exec.Cmd {
	cmd := exec.Command(bin, "run")
	cmd.Env = []string{
		"DARKTRACE_URL=" + url, "DARKTRACE_CA_FILE=" + ca, "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=bench-public", "DARKTRACE_PRIVATE_TOKEN=bench-private",
		"POLL_SOURCES=modelbreaches", "POLL_INTERVAL=" + interval.String(), "POLL_START=1h",
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=tcp", "SIEM_ADDRESS=" + sinkAddr,
		"STATE_DIR=" + state, "LOG_LEVEL=warn", "LOG_FORMAT=json",
	}
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	return cmd
}

func stop(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(os.Stderr, "dtforward exited: %v\n", err)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		fail("dtforward did not stop within 15s of SIGTERM")
	}
}

// rssKB reads VmRSS of pid; a live process always has some.
func rssKB(pid int) int {
	n := benchkit.StatusKB(pid, "VmRSS")
	if n == 0 {
		fail("no VmRSS in /proc/%d/status", pid)
	}
	return n
}

// receiver is a TCP syslog receiver (LF framing) that records when each breach id arrived.
type receiver struct {
	ln net.Listener
	mu sync.Mutex
	at map[string]time.Time
}

func startReceiver() *receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	r := &receiver{ln: ln, at: map[string]time.Time{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.read(c)
		}
	}()
	return r
}

func (r *receiver) addr() string { return r.ln.Addr().String() }

func (r *receiver) read(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now()
		line := sc.Bytes()
		i := bytes.IndexByte(line, '{')
		if i < 0 {
			continue
		}
		var rec struct{ Kind, ID string }
		if json.Unmarshal(line[i:], &rec) != nil || rec.Kind != "modelbreach" {
			continue
		}
		r.mu.Lock()
		if _, ok := r.at[rec.ID]; !ok {
			r.at[rec.ID] = now
		}
		r.mu.Unlock()
	}
}

func (r *receiver) snapshot() map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.at))
	for k, v := range r.at {
		out[k] = v
	}
	return out
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "poll-latency: "+format+"\n", args...)
	os.Exit(1)
}
