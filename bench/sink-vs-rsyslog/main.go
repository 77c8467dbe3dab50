// Command sink-vs-rsyslog measures how much CPU dtforward's TCP syslog sink spends per line
// compared with rsyslog forwarding the same lines (imfile → omfwd), both sending RFC 5424,
// LF-framed, to the same local receiver. It prints lines per CPU-second for each and the
// ratio dtforward/rsyslog (the bar is ≥ 1.0).
//
// Both forwarders run as their own processes and are charged their whole CPU time (user +
// system, startup included): rsyslogd reads the lines from a file with imfile; the dtforward
// side (this binary re-executed as "send") reads the same file and sends it through
// sink.New("tcp") in batches. The receiver lives in this process and is charged to nobody.
//
// Usage: go run ./bench/sink-vs-rsyslog [-n 200000] [-runs 3] [-batch 500]
// rsyslogd is found via $RSYSLOGD/$RSYSLOG_MODDIR, scripts/install-test-deps' cache, or
// /usr/sbin/rsyslogd.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/sink"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "send" {
		if err := send(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 200000, "lines per run")
	runs := flag.Int("runs", 3, "runs per forwarder; the median is reported")
	batch := flag.Int("batch", 500, "dtforward batch size")
	flag.Parse()
	if err := run(*n, *runs, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "sink-vs-rsyslog:", err)
		os.Exit(1)
	}
}

func run(n, runs, batch int) error {
	rsyslogd, err := benchkit.LocateRsyslog()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sink-vs-rsyslog")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	input := filepath.Join(dir, "input.log")
	if err := writeLines(input, n); err != nil {
		return err
	}
	rcv, err := newReceiver()
	if err != nil {
		return err
	}
	defer rcv.close()

	var dtCPU, rsCPU []time.Duration
	for i := 0; i < runs; i++ {
		d, err := runDtforward(rcv, input, n, batch)
		if err != nil {
			return fmt.Errorf("dtforward run %d: %w", i+1, err)
		}
		r, err := runRsyslog(rcv, rsyslogd.Bin, rsyslogd.ModDir, dir, input, n, i)
		if err != nil {
			return fmt.Errorf("rsyslog run %d: %w", i+1, err)
		}
		fmt.Printf("run %d: dtforward %v CPU, rsyslog %v CPU for %d lines\n", i+1, d.Round(time.Millisecond), r.Round(time.Millisecond), n)
		dtCPU, rsCPU = append(dtCPU, d), append(rsCPU, r)
	}
	dt, rs := median(dtCPU), median(rsCPU)
	dtRate, rsRate := float64(n)/dt.Seconds(), float64(n)/rs.Seconds()
	fmt.Printf("dtforward sink: %.0f lines/CPU-second (median CPU %v)\n", dtRate, dt.Round(time.Millisecond))
	fmt.Printf("rsyslog imfile->omfwd: %.0f lines/CPU-second (median CPU %v)\n", rsRate, rs.Round(time.Millisecond))
	fmt.Printf("ratio dtforward/rsyslog: %.2f (bar >= 1.0)\n", dtRate/rsRate)
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// writeLines writes n realistic CEF lines (~450 bytes), numbered so the receiver could check.
func writeLines(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, `CEF:0|Darktrace|DCIP|6.2.3|%d|Device / Anomalous Connection / Data Sent to Rare Domain|7|rt=1700000000000 start=1699999990000 externalId=%d cat=Suspicious src=10.0.0.%d shost=workstation-%d.corp.example smac=00:0c:29:aa:bb:cc dst=203.0.113.7 dhost=rare.example dpt=443 proto=TCP cs1Label=modelUuid cs1=0f2b7c9e-1d2a-4c5b-9e8f-123456789abc cs4Label=appliance cs4=dt-1 cn1Label=modelPid cn1=%d cfp1Label=score cfp1=0.73 darktraceUrl=https://dt-1/#modelbreach/%d`+"\n",
			100+i%50, i, i%250, i, 100+i%50, i)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// receiver counts LF-terminated lines on any number of TCP connections.
type receiver struct {
	l     net.Listener
	lines atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newReceiver() (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{l: l}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				buf := make([]byte, 256<<10)
				for {
					k, err := c.Read(buf)
					r.lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return r, nil
}

func (r *receiver) close() {
	r.l.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// waitLines waits until want lines arrived in total.
func (r *receiver) waitLines(want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for r.lines.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("receiver got %d of %d lines", r.lines.Load(), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func runDtforward(rcv *receiver, input string, n, batch int) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	base := rcv.lines.Load()
	cmd := exec.Command(self, "send", "-addr", rcv.l.Addr().String(), "-file", input, "-batch", strconv.Itoa(batch))
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, err
	}
	if err := rcv.waitLines(base+int64(n), time.Minute); err != nil {
		return 0, err
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// send is the dtforward side: read the file, send every line through the TCP sink.
func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	addr := fs.String("addr", "", "receiver")
	file := fs.String("file", "", "input lines")
	batch := fs.Int("batch", 500, "batch size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	s, err := sink.New(sink.Config{Transport: "tcp", Address: *addr, Hostname: "bench"})
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := context.Background()
	msgs := make([]sink.Message, 0, *batch)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data)
		}
		msgs = append(msgs, sink.Message{Severity: 7, Kind: "modelbreach", Line: data[:i]})
		data = data[min(i+1, len(data)):]
		if len(msgs) == *batch || len(data) == 0 {
			if err := s.Send(ctx, msgs); err != nil {
				return err
			}
			msgs = msgs[:0]
		}
	}
	return nil
}

func runRsyslog(rcv *receiver, bin, mods, dir, input string, n, run int) (time.Duration, error) {
	work := filepath.Join(dir, "rsyslog-work-"+strconv.Itoa(run))
	if err := os.MkdirAll(work, 0o700); err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(rcv.l.Addr().String())
	conf := filepath.Join(dir, "rsyslog.conf")
	// imfile reads the file from its start; omfwd sends RFC 5424 (the same header dtforward
	// writes) over TCP with LF framing. Both use their default queues.
	cfg := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k")
module(load="imfile" mode="inotify")
input(type="imfile" file=%q tag="dtforward" ruleset="fwd" freshStartTail="off")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" template="RSYSLOG_SyslogProtocol23Format")
}
`, work, input, port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return 0, err
	}
	base := rcv.lines.Load()
	logf, err := os.Create(filepath.Join(dir, "rsyslogd.log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-n", "-f", conf, "-M", mods, "-i", filepath.Join(work, "pid"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := rcv.waitLines(base+int64(n), 2*time.Minute); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return 0, fmt.Errorf("%w; rsyslogd log:\n%s", err, log)
	}
	// Charge rsyslogd its CPU time up to now (it idles afterwards), from /proc/PID/stat.
	return procCPU(cmd.Process.Pid)
}

// procCPU returns utime+stime of a live process.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unparsable /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}
