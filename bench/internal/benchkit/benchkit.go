// Package benchkit holds what the programs under bench/ share: a real rsyslogd receiving on
// 127.0.0.1 into a file, the count of the model breaches that reached it, the simulator's
// oracle of what a backfill must deliver, and the dtforward process's peak RSS. It is for
// benchmark programs, not tests: errors are returned, nothing is skipped.
package benchkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
	"github.com/dtforward/dtforward/simulator"
)

// The simulator's API tokens; the benchmarks pass them to dtforward too.
const (
	PublicToken  = "bench-public-token"
	PrivateToken = "bench-private-token"
)

// Env is the environment of a dtforward process reading the simulator at url and sending JSON
// over transport to addr, with its checkpoint in state; extra entries ("KEY=value") follow.
func Env(url, transport, addr, state string, extra ...string) []string {
	return append([]string{
		"DARKTRACE_URL=" + url, "DARKTRACE_ALLOW_HTTP=true", "DARKTRACE_NAME=bench",
		"DARKTRACE_PUBLIC_TOKEN=" + PublicToken, "DARKTRACE_PRIVATE_TOKEN=" + PrivateToken,
		"SIEM_FORMAT=json", "SIEM_TRANSPORT=" + transport, "SIEM_ADDRESS=" + addr,
		"STATE_DIR=" + state, "LOG_FORMAT=json",
	}, extra...)
}

// BackfillArgs are the arguments of "dtforward backfill" over [from, to) for model breaches.
func BackfillArgs(from, to time.Time) []string {
	return []string{"backfill", "--from", from.UTC().Format(time.RFC3339), "--to", to.UTC().Format(time.RFC3339),
		"--sources", "modelbreaches"}
}

// WantedPBIDs is the oracle of a backfill over [from, to): the pbids of the simulator's
// breaches created in that span (suppressed ones too: FILTER_INCLUDE_SUPPRESSED defaults to true).
func WantedPBIDs(sim *simulator.Simulator, from, to time.Time) map[string]bool {
	want := map[string]bool{}
	for _, b := range sim.BreachInfos() {
		if b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
			want[strconv.FormatInt(b.PBID, 10)] = true
		}
	}
	return want
}

// Tail is the end of a process's stderr, short enough for an error message.
func Tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// Verdict reads a bar's outcome.
func Verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// MB is b bytes in MiB.
func MB(b int64) float64 { return float64(b) / (1 << 20) }

// VmHWM is the peak RSS in bytes of process pid (VmHWM of /proc/<pid>/status), 0 when it
// cannot be read. Not ru_maxrss: for a child started with vfork that includes the parent's
// RSS, which the kernel charges to the child at exec.
func VmHWM(pid int) int64 { return int64(StatusKB(pid, "VmHWM")) << 10 }

// CPUTime is the user+system CPU time process pid has used so far (utime and stime of
// /proc/<pid>/stat, in clock ticks of 1/100 s on Linux), 0 when it cannot be read. Read while
// the process runs, so a benchmark can take it at the moment it measures the wall time.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; the fields after its ')' are fixed.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// StatusKB reads a "Vm…:  N kB" field of /proc/<pid>/status (Linux); 0 when the process, or
// the field, is gone.
func StatusKB(pid int, field string) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// LocateRsyslog finds rsyslogd and its modules with the test suite's search
// (internal/testutil/testtools).
func LocateRsyslog() (testtools.Rsyslog, error) {
	loc, ok := testtools.LocateRsyslog()
	if !ok {
		return loc, errors.New("rsyslogd not found; run scripts/install-test-deps (as root) first")
	}
	return loc, nil
}

// RsyslogOptions shape the rsyslogd a benchmark sends to.
type RsyslogOptions struct {
	// UDP listens with imudp (at its defaults), otherwise imtcp.
	UDP bool
	// Addr is the 127.0.0.1 address to listen on; empty picks a free port.
	Addr string
	// Global, TCPModule and Action are extra parameters of the global(), module(load="imtcp")
	// and omfile action() statements, e.g. `maxMessageSize="64k"`.
	Global, TCPModule, Action string
	// Wait makes Start return only once rsyslogd listens: a TCP connect for TCP, the port
	// in /proc/net/udp for UDP (a probe datagram would be counted).
	Wait bool
}

// Rsyslog is a real rsyslogd writing each message's MSG part on its own line to Out.
type Rsyslog struct {
	Dir, Out, Addr string
	cmd            *exec.Cmd
}

// StartRsyslog starts rsyslogd as o says, with its files in a fresh temporary directory
// named after prefix.
func StartRsyslog(prefix string, o RsyslogOptions) (*Rsyslog, error) {
	loc, err := LocateRsyslog()
	if err != nil {
		return nil, err
	}
	addr := o.Addr
	if addr == "" {
		if addr, err = freeAddr(o.UDP); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	r := &Rsyslog{Dir: dir, Out: filepath.Join(dir, "received.log"), Addr: addr}
	input := fmt.Sprintf(`module(load="imtcp"%s)
input(type="imtcp" address="127.0.0.1" port=%q ruleset="recv")`, prefixed(o.TCPModule), port)
	if o.UDP {
		input = fmt.Sprintf(`module(load="imudp")
input(type="imudp" address="127.0.0.1" port=%q ruleset="recv")`, port)
	}
	conf := fmt.Sprintf(`global(workDirectory=%q%s)
template(name="msg" type="string" string="%%msg%%\n")
%s
ruleset(name="recv") {
  action(type="omfile" file=%q template="msg"%s)
}
`, dir, prefixed(o.Global), input, r.Out, prefixed(o.Action))
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.Out, nil, 0o600); err != nil {
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
	if !o.Wait {
		return r, nil
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if r.listening(o.UDP, port) {
			return r, nil
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.log"))
			r.Stop()
			return nil, fmt.Errorf("rsyslogd did not listen on %s: %s", addr, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func prefixed(params string) string {
	if params == "" {
		return ""
	}
	return " " + params
}

func freeAddr(udp bool) (string, error) {
	if udp {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (r *Rsyslog) listening(udp bool, port string) bool {
	if udp {
		n, _ := strconv.Atoi(port)
		b, err := os.ReadFile("/proc/net/udp")
		return err == nil && bytes.Contains(b, []byte(fmt.Sprintf("0100007F:%04X", n)))
	}
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Stop ends rsyslogd and removes its directory.
func (r *Rsyslog) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
	}
	_ = os.RemoveAll(r.Dir)
}

// Size is how many bytes rsyslogd has written so far: an offset for IDs and Lines.
func (r *Rsyslog) Size() (int64, error) {
	st, err := os.Stat(r.Out)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Lines counts the messages rsyslogd wrote after offset from.
func (r *Rsyslog) Lines(from int64) (int, error) {
	b, err := os.ReadFile(r.Out)
	if err != nil {
		return 0, err
	}
	if int64(len(b)) < from {
		return 0, nil
	}
	return bytes.Count(b[from:], []byte{'\n'}), nil
}

// LineCounter counts the messages rsyslogd writes after an offset, reading only what was
// added since its last call: Lines reads the whole file, which for a benchmark polling every
// 20 ms over a growing file costs more CPU than the process it measures.
type LineCounter struct {
	f *os.File
	n int
}

// NewLineCounter counts the messages written after offset from (Close it).
func (r *Rsyslog) NewLineCounter(from int64) (*LineCounter, error) {
	f, err := os.Open(r.Out)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, err
	}
	return &LineCounter{f: f}, nil
}

// Lines is how many messages were written after the offset so far.
func (c *LineCounter) Lines() (int, error) {
	buf := make([]byte, 1<<20)
	for {
		k, err := c.f.Read(buf)
		c.n += bytes.Count(buf[:k], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return c.n, nil
		}
		if err != nil {
			return c.n, err
		}
	}
}

// Close closes the output file.
func (c *LineCounter) Close() error { return c.f.Close() }

// Settle waits until the output has not grown for a second: for a sender that may have lost
// messages, where no count says when all arrived.
func (r *Rsyslog) Settle() error {
	var last int64 = -1
	for stable := 0; stable < 5; {
		size, err := r.Size()
		if err != nil {
			return err
		}
		if size == last {
			stable++
		} else {
			stable, last = 0, size
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// IDs counts, per pbid, the model breaches in the messages written after offset from, and
// how many messages (lines) that is in all.
func (r *Rsyslog) IDs(from int64) (got map[string]int, lines int, err error) {
	f, err := os.Open(r.Out)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		return nil, 0, err
	}
	got = map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines++
		var rec struct{ Kind, ID string }
		if i := bytes.IndexByte(sc.Bytes(), '{'); i >= 0 && json.Unmarshal(sc.Bytes()[i:], &rec) == nil && rec.Kind == "modelbreach" {
			got[rec.ID]++
		}
	}
	return got, lines, sc.Err()
}

// WaitIDs waits until n messages arrived after offset from, then counts the pbids as IDs.
func (r *Rsyslog) WaitIDs(from int64, n int, timeout time.Duration) (map[string]int, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, lines, err := r.IDs(from)
		if err != nil {
			return nil, err
		}
		if lines >= n {
			return got, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("rsyslog wrote %d of %d messages within %s", lines, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// StartSimulator starts the simulator that o describes, with the bench tokens, serving plain
// HTTP on 127.0.0.1; it returns the simulator (Close it) and its URL.
func StartSimulator(o simulator.Options) (*simulator.Simulator, string, error) {
	o.PublicToken, o.PrivateToken = PublicToken, PrivateToken
	sim, err := simulator.New(o)
	if err != nil {
		return nil, "", err
	}
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		_ = sim.Close()
		return nil, "", err
	}
	return sim, url, nil
}

// ExactlyOnce checks that every wanted pbid, and nothing else, arrived once, and returns how
// many breach messages arrived.
func ExactlyOnce(got map[string]int, want map[string]bool) (lines int, err error) {
	for id, n := range got {
		lines += n
		if n != 1 || !want[id] {
			return lines, fmt.Errorf("pbid %s arrived %d times (expected: %v)", id, n, want[id])
		}
	}
	if len(got) != len(want) {
		return lines, fmt.Errorf("rsyslog got %d distinct pbids, oracle %d", len(got), len(want))
	}
	return lines, nil
}

// Run is "dtforward run" started by StartRun: the process, its stderr, and the size of the
// rsyslog output file when it started (breach lines are counted from there).
type Run struct {
	Cmd    *exec.Cmd
	Stderr bytes.Buffer
	Before int64
	Peak   int64 // the highest VmHWM seen by Wait and Watch, bytes
	// CPU is the CPU time the process had used when Wait saw the last breach arrive: its
	// total at exit would add the idle polls that follow.
	CPU time.Duration

	state  string
	rs     *Rsyslog
	exited chan error
	done   bool
}

// StartRun starts bin's "run" reading the simulator at url and sending JSON over TCP to rs,
// with a temporary state directory and the extra settings ("KEY=value"); GOGC and GOMEMLIMIT
// are passed through, to compare GC settings.
func StartRun(bin, url string, rs *Rsyslog, extra ...string) (*Run, error) {
	state, err := os.MkdirTemp("", "dtforward-bench-state")
	if err != nil {
		return nil, err
	}
	r := &Run{state: state, rs: rs, exited: make(chan error, 1)}
	if r.Before, err = rs.Size(); err != nil {
		_ = os.RemoveAll(state)
		return nil, err
	}
	r.Cmd = exec.Command(bin, "run")
	r.Cmd.Env = Env(url, "tcp", rs.Addr, state, extra...)
	for _, k := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(k); ok {
			r.Cmd.Env = append(r.Cmd.Env, k+"="+v)
		}
	}
	r.Cmd.Stderr = &r.Stderr
	if err := r.Cmd.Start(); err != nil {
		_ = os.RemoveAll(state)
		return nil, err
	}
	go func() { r.exited <- r.Cmd.Wait() }()
	return r, nil
}

// Wait waits until rsyslog holds n breach lines from this run, watching the peak RSS; it fails
// when the process exits first or limit passes.
func (r *Run) Wait(n int, limit time.Duration) error {
	counter, err := r.rs.NewLineCounter(r.Before)
	if err != nil {
		return err
	}
	defer counter.Close()
	for start := time.Now(); ; {
		r.Peak = max(r.Peak, VmHWM(r.Cmd.Process.Pid))
		lines, err := counter.Lines()
		if err != nil {
			return err
		}
		if lines >= n {
			r.CPU = CPUTime(r.Cmd.Process.Pid)
			return nil
		}
		select {
		case err := <-r.exited:
			r.done = true
			return fmt.Errorf("dtforward run exited early: %v\n%s", err, Tail(r.Stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > limit {
			return fmt.Errorf("%d of %d breaches arrived within %s\n%s", lines, n, limit, Tail(r.Stderr.String()))
		}
	}
}

// Watch keeps watching the peak RSS for d (a few more polls: anything sent twice shows then).
func (r *Run) Watch(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		r.Peak = max(r.Peak, VmHWM(r.Cmd.Process.Pid))
	}
}

// Stop ends the process with SIGTERM (it must exit cleanly) and removes its state; safe to
// call again.
func (r *Run) Stop() error {
	defer os.RemoveAll(r.state)
	if r.done {
		return nil
	}
	r.done = true
	_ = r.Cmd.Process.Signal(syscall.SIGTERM)
	if err := <-r.exited; err != nil {
		return fmt.Errorf("dtforward run: %v\n%s", err, Tail(r.Stderr.String()))
	}
	return nil
}
