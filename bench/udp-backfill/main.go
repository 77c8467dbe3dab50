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
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/internal/testtools"
	"github.com/dtforward/dtforward/simulator"
)

const (
	pub  = "bench-public-token"
	priv = "bench-private-token"
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
	sim, err := simulator.New(simulator.Options{PublicToken: pub, PrivateToken: priv, Seed: 12,
		History: 24 * time.Hour, HistoryCount: count})
	if err != nil {
		return err
	}
	defer sim.Close()
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		return err
	}
	to := sim.Now().Truncate(time.Second)
	from := to.Add(-25 * time.Hour)
	want := map[string]bool{}
	for _, b := range sim.BreachInfos() {
		if !b.Suppressed && b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
			want[strconv.FormatInt(b.PBID, 10)] = true
		}
	}
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
			label = fmt.Sprintf("SIEM_UDP_RATE unset (default) [bar ≥ 99.5%%: %s]", verdict(ok))
		}
		fmt.Printf("%s\n  worst arrival %.2f%%; runs: %s\n", label, worst, strings.Join(line, "; "))
	}
	if failed {
		return errors.New("the bar was missed")
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
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
	rs, err := startRsyslog()
	if err != nil {
		return res, err
	}
	defer rs.stop()
	state, err := os.MkdirTemp("", "udp-backfill-state")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(state)
	cmd := exec.Command(bin, "backfill", "--from", from.UTC().Format(time.RFC3339), "--to", to.UTC().Format(time.RFC3339),
		"--sources", "modelbreaches")
	cmd.Env = []string{
		"DARKTRACE_URL=" + url, "DARKTRACE_ALLOW_HTTP=true", "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=" + pub, "DARKTRACE_PRIVATE_TOKEN=" + priv,
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=udp", "SIEM_ADDRESS=" + rs.addr,
		"STATE_DIR=" + state, "LOG_FORMAT=json",
	}
	if rate != "default" {
		cmd.Env = append(cmd.Env, "SIEM_UDP_RATE="+rate)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("dtforward backfill: %v\n%s", err, tail(stderr.String()))
	}
	res.wall = time.Since(start)
	got, err := rs.settledIDs()
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

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// rsyslog is a real rsyslogd receiving UDP on 127.0.0.1 with imudp's defaults and writing
// each message's MSG part on its own line.
type rsyslog struct {
	dir, out, addr string
	cmd            *exec.Cmd
}

func startRsyslog() (*rsyslog, error) {
	loc, ok := testtools.LocateRsyslog()
	if !ok {
		return nil, errors.New("rsyslogd not found; run scripts/install-test-deps (as root) first")
	}
	dir, err := os.MkdirTemp("", "udp-backfill-rsyslog")
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	_, port, _ := net.SplitHostPort(addr)
	r := &rsyslog{dir: dir, out: filepath.Join(dir, "received.log"), addr: addr}
	conf := fmt.Sprintf(`global(workDirectory=%q)
template(name="msg" type="string" string="%%msg%%\n")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port=%q ruleset="recv")
ruleset(name="recv") {
  action(type="omfile" file=%q template="msg")
}
`, dir, port, r.out)
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.out, nil, 0o600); err != nil {
		return nil, err
	}
	r.cmd = exec.Command(loc.Bin, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-M", loc.ModDir, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	// Bound when /proc/net/udp lists the port: a probe datagram would be counted.
	want := fmt.Sprintf("0100007F:%04X", mustAtoi(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile("/proc/net/udp"); err == nil && bytes.Contains(b, []byte(want)) {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("rsyslogd did not bind %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func (r *rsyslog) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
	_ = os.RemoveAll(r.dir)
}

// settledIDs waits until the output has not grown for a second, then returns the pbids of
// the model breaches in it.
func (r *rsyslog) settledIDs() (map[string]bool, error) {
	var last int64 = -1
	for stable := 0; stable < 5; {
		st, err := os.Stat(r.out)
		if err != nil {
			return nil, err
		}
		if st.Size() == last {
			stable++
		} else {
			stable, last = 0, st.Size()
		}
		time.Sleep(200 * time.Millisecond)
	}
	f, err := os.Open(r.out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	got := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Kind, ID string }
		if i := bytes.IndexByte(sc.Bytes(), '{'); i >= 0 && json.Unmarshal(sc.Bytes()[i:], &rec) == nil && rec.Kind == "modelbreach" {
			got[rec.ID] = true
		}
	}
	return got, sc.Err()
}
