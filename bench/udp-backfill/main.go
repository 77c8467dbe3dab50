// Command udp-backfill measures how many alerts survive a backfill over UDP to an rsyslogd on
// the same host, and what the UDP pacing (SIEM_UDP_RATE) costs in throughput. The simulator
// (in this process, over real HTTP on 127.0.0.1) holds N breaches; the real dtforward binary
// backfills them as JSON over UDP into a real rsyslogd with imudp at its default settings
// (default socket buffer, no rate limit of its own), once per -rates value. For each run it
// prints the distinct pbids that arrived, as a percentage of the breaches to deliver, and
// the backfill's records/s. Bar: ≥ 99.5% arrive with the default rate.
//
// Usage (see bench/udp-backfill.sh):
//
//	udp-backfill -bin ./dtforward -count 5000 -rates default,0 -runs 3
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	count := flag.Int("count", 5000, "breaches to backfill")
	rates := flag.String("rates", "default,0", `comma-separated SIEM_UDP_RATE values; "default" leaves it unset`)
	runs := flag.Int("runs", 3, "runs per rate (reported each, and the worst arrival)")
	flag.Parse()
	if *bin == "" || *count < 1 || *runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *count, strings.Split(*rates, ","), *runs); err != nil {
		fmt.Fprintln(os.Stderr, "udp-backfill:", err)
		os.Exit(1)
	}
}

func run(bin string, count int, rates []string, runs int) error {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: 12, History: 24 * time.Hour, HistoryCount: count})
	if err != nil {
		return err
	}
	defer sim.Close()
	to := sim.Now().Truncate(time.Second)
	from := to.Add(-25 * time.Hour)
	want := benchkit.WantedPBIDs(sim, from, to)
	fmt.Printf("%d breaches (%d to deliver) backfilled as JSON over UDP to rsyslogd (imudp defaults) on 127.0.0.1\n", count, len(want))
	failed := false
	for _, rate := range rates {
		rate = strings.TrimSpace(rate)
		worst := 100.0
		var line []string
		for r := 0; r < runs; r++ {
			res, err := backfill(bin, url, rate, from, to, want)
			if err != nil {
				return err
			}
			worst = min(worst, res.pct)
			line = append(line, fmt.Sprintf("%d/%d=%.2f%% in %.2fs (%.0f rec/s)", res.arrived, len(want), res.pct, res.wall.Seconds(), float64(len(want))/res.wall.Seconds()))
		}
		label := "SIEM_UDP_RATE=" + rate
		if rate == "default" {
			ok := worst >= 99.5
			failed = failed || !ok
			label = fmt.Sprintf("SIEM_UDP_RATE unset (default) [bar ≥ 99.5%%: %s]", benchkit.Verdict(ok))
		}
		fmt.Printf("%s\n  worst arrival %.2f%%; runs: %s\n", label, worst, strings.Join(line, "; "))
	}
	if failed {
		return errors.New("the bar was missed")
	}
	return nil
}

type result struct {
	arrived int
	pct     float64
	wall    time.Duration
}

// backfill starts a fresh rsyslogd, runs the binary into it and counts the distinct pbids
// that arrived once the output stopped growing.
func backfill(bin, url, rate string, from, to time.Time, want map[string]bool) (result, error) {
	var res result
	rs, err := benchkit.StartRsyslog("udp-backfill-rsyslog", benchkit.RsyslogOptions{UDP: true, Wait: true})
	if err != nil {
		return res, err
	}
	defer rs.Stop()
	state, err := os.MkdirTemp("", "udp-backfill-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	cmd := exec.Command(bin, benchkit.BackfillArgs(from, to)...)
	cmd.Env = benchkit.Env(url, "udp", rs.Addr, state)
	if rate != "default" {
		cmd.Env = append(cmd.Env, "SIEM_UDP_RATE="+rate)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("dtforward backfill: %v\n%s", err, benchkit.Tail(stderr.String()))
	}
	res.wall = time.Since(start)
	if err := rs.Settle(); err != nil {
		return res, err
	}
	got, _, err := rs.IDs(0)
	if err != nil {
		return res, err
	}
	for id := range got {
		if want[id] {
			res.arrived++
		}
	}
	res.pct = 100 * float64(res.arrived) / float64(len(want))
	return res, nil
}
