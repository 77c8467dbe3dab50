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
	"sync"
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
	sim, err := simulator.New(simulator.Options{PublicToken: pub, PrivateToken: priv, Seed: 7,
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
	cmd := exec.Command(bin, "backfill", "--from", from.UTC().Format(time.RFC3339), "--to", to.UTC().Format(time.RFC3339),
		"--sources", "modelbreaches")
	cmd.Env = []string{
		"DARKTRACE_URL=" + url, "DARKTRACE_ALLOW_HTTP=true", "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=" + pub, "DARKTRACE_PRIVATE_TOKEN=" + priv,
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=tcp", "SIEM_ADDRESS=" + addr,
		"STATE_DIR=" + state, "LOG_FORMAT=json",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(dead)
	l.Close()
	accepted := drops()
	rs, err := startRsyslog(addr)
	if err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	defer rs.stop()
	runErr := cmd.Wait()

	got, err := rs.settledIDs()
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

// rsyslog is a real rsyslogd receiving TCP on addr and writing each message's MSG part on
// its own line.
type rsyslog struct {
	dir, out string
	cmd      *exec.Cmd
}

func startRsyslog(addr string) (*rsyslog, error) {
	loc, ok := testtools.LocateRsyslog()
	if !ok {
		return nil, errors.New("rsyslogd not found; run scripts/install-test-deps (as root) first")
	}
	dir, err := os.MkdirTemp("", "dead-backend-rsyslog")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	r := &rsyslog{dir: dir, out: filepath.Join(dir, "received.log")}
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
template(name="msg" type="string" string="%%msg%%\n")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="recv")
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
	return r, nil
}

func (r *rsyslog) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
	_ = os.RemoveAll(r.dir)
}

// settledIDs waits until the output has not grown for a second, then counts the pbids of
// the model breaches in it.
func (r *rsyslog) settledIDs() (map[string]int, error) {
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
	got := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Kind, ID string }
		if i := bytes.IndexByte(sc.Bytes(), '{'); i >= 0 && json.Unmarshal(sc.Bytes()[i:], &rec) == nil && rec.Kind == "modelbreach" {
			got[rec.ID]++
		}
	}
	return got, sc.Err()
}
