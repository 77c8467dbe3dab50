// Command dead-backend measures what a collector address that accepts connections and drops
// them (a load balancer with no healthy backend, a collector at its session limit) costs a
// "dtforward backfill" over TCP: for -dead the address accepts every connection and closes it
// (or resets it, -reset) without reading; then a real rsyslogd takes the port. The
// simulator (in this process, over real HTTP on 127.0.0.1) holds -count breaches; the real
// dtforward binary backfills them as JSON. It prints how many distinct pbids reached
// rsyslogd, how many were lost, and the duplicates. Bar: 0 lost.
//
// Usage (see bench/dead-backend.sh; pass an older binary with -bin to see the loss):
//
//	dead-backend -bin ./dtforward -count 500 -dead 10s [-reset]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	count := flag.Int("count", 500, "breaches to backfill")
	dead := flag.Duration("dead", 10*time.Second, "how long the address accepts and drops connections")
	reset := flag.Bool("reset", false, "reset dropped connections (SO_LINGER 0) instead of closing them")
	flag.Parse()
	if *bin == "" || *count < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *count, *dead, *reset); err != nil {
		fmt.Fprintln(os.Stderr, "dead-backend:", err)
		os.Exit(1)
	}
}

func run(bin string, count int, dead time.Duration, reset bool) error {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: 7, History: 24 * time.Hour, HistoryCount: count})
	if err != nil {
		return err
	}
	defer sim.Close()
	to := sim.Now().Truncate(time.Second)
	from := to.Add(-25 * time.Hour)
	want := benchkit.WantedPBIDs(sim, from, to)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	drops := dropAll(l, reset)

	state, err := os.MkdirTemp("", "dead-backend-state")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	cmd := exec.Command(bin, benchkit.BackfillArgs(from, to)...)
	cmd.Env = benchkit.Env(url, "tcp", addr, state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(dead)
	l.Close()
	accepted := drops()
	// No wait for rsyslogd to listen: the backfill retries until it does.
	rs, err := benchkit.StartRsyslog("dead-backend-rsyslog", benchkit.RsyslogOptions{Addr: addr, Global: `maxMessageSize="64k"`})
	if err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	defer rs.Stop()
	runErr := cmd.Wait()

	if err := rs.Settle(); err != nil {
		return err
	}
	got, _, err := rs.IDs(0)
	if err != nil {
		return err
	}
	lost, dups, lines := 0, 0, 0
	for id := range want {
		if got[id] == 0 {
			lost++
		}
	}
	for _, n := range got {
		lines += n
		dups += n - 1
	}
	how := "closed"
	if reset {
		how = "reset"
	}
	fmt.Printf("%d breaches to deliver by backfill over TCP; for %s the address accepted %d connections and %s them unread, then rsyslogd took the port\n",
		len(want), dead, accepted, how)
	fmt.Printf("  dtforward backfill: %s\n", exitText(runErr))
	fmt.Printf("  rsyslogd received %d lines: %d of %d breaches, lost %d, duplicates %d\n", lines, len(want)-lost, len(want), lost, dups)
	if lost > 0 || runErr != nil {
		fmt.Printf("  bar (0 lost, backfill exit 0): FAIL\n")
		return errors.New("breaches lost")
	}
	fmt.Printf("  bar (0 lost, backfill exit 0): PASS\n")
	return nil
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// dropAll accepts connections on l and drops each at once; the returned func waits for the
// accept loop to end (after l is closed) and returns how many connections were dropped.
func dropAll(l net.Listener, reset bool) func() int {
	var wg sync.WaitGroup
	n := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n++
			if reset {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			_ = c.Close()
		}
	}()
	return func() int { wg.Wait(); return n }
}
