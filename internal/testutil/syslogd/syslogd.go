// Package syslogd starts real third-party syslog receivers (rsyslog and syslog-ng) on
// 127.0.0.1 for end-to-end tests, and reads back exactly what they received.
//
// Each receiver writes every message it accepts, as the raw bytes it received after removing
// the transport framing (rsyslog %rawmsg%, syslog-ng ${RAWMSG} with flags(store-raw-message)),
// as one JSON object per line to an output file. Reading that file back is lossless even for
// messages with embedded LF, CR or TAB, so tests can assert byte for byte what arrived, in
// order, and whether anything was split or merged.
//
// Typical use:
//
//	r := syslogd.StartRsyslog(t, syslogd.Options{TCP: true, TLS: true})
//	... send to r.TCP / r.TLS, trusting r.CA.CAFile ...
//	got := r.Wait(t, 3, 10*time.Second) // []Message{Input, Raw}
//
// Daemons are located with internal/testutil/testtools (skipped locally when missing, fatal in CI) and
// killed in t.Cleanup. Ports are ephemeral: picked by listening on 127.0.0.1:0 and closing,
// retried when the daemon cannot bind. Starting a daemon takes ~100 ms, so start one per test
// group and share it between subtests, using Count/WaitFrom to look only at new messages.
package syslogd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options selects the listeners a receiver opens. At least one must be set.
type Options struct {
	UDP   bool // datagram listener
	TCP   bool // plain TCP, LF-terminated frames (rsyslog also accepts octet-counted frames here)
	Octet bool // plain TCP, octet-counted frames "LEN SP MSG" (syslog-ng syslog() source)
	TLS   bool // TLS, octet-counted frames (RFC 5425); rsyslog also accepts LF frames
	// MTLS makes the TLS listener require a client certificate signed by CA.
	MTLS bool
	// RELP is a RELP listener (rsyslog imrelp only); RELPTLS one with TLS from the first byte
	// (server certificate from CA; with MTLS it also requires a client certificate).
	RELP    bool
	RELPTLS bool
	// SyncWrites makes the receiver write each message to its output file before it takes
	// the next one (rsyslog: direct queues instead of the in-memory main queue). An imrelp
	// "200 OK" then means "written", so a crash right after it loses nothing; with the
	// default queue it means "queued in memory".
	SyncWrites bool
	// CA signs the server (and client) certificates; nil creates a fresh one when TLS is set.
	CA *CA
	// MaxMessageSize is the daemon's message size limit; 0 means 256 KiB, far above the
	// daemons' defaults (rsyslog 8 KiB, syslog-ng 64 KiB), so tests see what was sent. Set
	// 8192 to reproduce rsyslog's default behaviour with oversize messages.
	MaxMessageSize int
}

// Message is one message as the receiver got it.
type Message struct {
	Input string // listener it arrived on: "udp", "tcp", "octet", "tls", "relp" or "relptls"
	Raw   []byte // the message bytes exactly as received, framing removed
}

// Receiver is a running (or stopped) rsyslog or syslog-ng daemon. Addresses are
// "127.0.0.1:port", empty for listeners that were not requested. A Receiver is used from
// one test goroutine.
type Receiver struct {
	Daemon  string // "rsyslog" or "syslog-ng"
	UDP     string
	TCP     string
	Octet   string
	TLS     string
	RELP    string
	RELPTLS string
	CA      *CA    // set when TLS was requested
	Dir     string // config, output and daemon log live here

	out     string                                       // JSON-lines output file
	logFile string                                       // daemon's stdout/stderr
	command func() *exec.Cmd                             // builds the daemon command line
	config  func(r *Receiver, o Options) (string, error) // renders the config for the ports
	opts    Options
	proc    *exec.Cmd
	exited  chan struct{}
}

// startReceiver picks ports, writes the config and starts the daemon, retrying with fresh
// ports when it fails to come up (another process may grab a port between pick and bind).
func startReceiver(t testing.TB, r *Receiver, o Options) *Receiver {
	t.Helper()
	if o.MTLS && !o.RELPTLS {
		o.TLS = true
	}
	if !o.UDP && !o.TCP && !o.Octet && !o.TLS && !o.RELP && !o.RELPTLS {
		t.Fatal("syslogd: Options must enable at least one listener")
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = 256 << 10
	}
	if (o.TLS || o.MTLS || o.RELPTLS) && o.CA == nil {
		o.CA = NewCA(t)
	}
	r.opts = o
	r.CA = o.CA
	r.Dir = t.TempDir()
	r.out = filepath.Join(r.Dir, "received.jsonl")
	r.logFile = filepath.Join(r.Dir, "daemon.log")
	if err := os.WriteFile(r.out, nil, 0o600); err != nil {
		t.Fatalf("syslogd: %v", err)
	}
	t.Cleanup(func() { r.kill(syscall.SIGKILL) })
	var lastErr error
	for attempt := 0; attempt < 4; attempt++ {
		r.UDP, r.TCP, r.Octet, r.TLS, r.RELP, r.RELPTLS = "", "", "", "", "", ""
		if o.UDP {
			r.UDP = freePort(t, "udp")
		}
		if o.TCP {
			r.TCP = freePort(t, "tcp")
		}
		if o.Octet {
			r.Octet = freePort(t, "tcp")
		}
		if o.TLS {
			r.TLS = freePort(t, "tcp")
		}
		if o.RELP {
			r.RELP = freePort(t, "tcp")
		}
		if o.RELPTLS {
			r.RELPTLS = freePort(t, "tcp")
		}
		conf, err := r.config(r, o)
		if err != nil {
			t.Fatalf("syslogd: %v", err)
		}
		if err := os.WriteFile(filepath.Join(r.Dir, "daemon.conf"), []byte(conf), 0o600); err != nil {
			t.Fatalf("syslogd: %v", err)
		}
		if lastErr = r.start(); lastErr == nil {
			return r
		}
	}
	t.Fatalf("syslogd: %s did not start: %v", r.Daemon, lastErr)
	return nil
}

// start runs the daemon with the current config and waits until every listener is bound.
func (r *Receiver) start() error {
	logf, err := os.OpenFile(r.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := r.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a test binary killed mid-run does not take the terminal's
	// signals to the daemon and the daemon never outlives the cleanup that kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.proc = cmd
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(cmd, r.exited)

	deadline := time.Now().Add(10 * time.Second)
	for {
		if r.listening() {
			return nil
		}
		select {
		case <-r.exited:
			r.proc = nil
			return fmt.Errorf("exited early; log:\n%s", r.Log())
		default:
		}
		if time.Now().After(deadline) {
			r.kill(syscall.SIGKILL)
			return fmt.Errorf("listeners not up after 10s; log:\n%s", r.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listening reports whether every configured address is bound, read from /proc/net like ss(8)
// does: probing with a connection would show up as a session in the daemon.
func (r *Receiver) listening() bool {
	check := func(addr, file, state string) bool {
		if addr == "" {
			return true
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		want := fmt.Sprintf("0100007F:%04X", port)
		data, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && f[1] == want && f[3] == state {
				return true
			}
		}
		return false
	}
	return check(r.UDP, "/proc/net/udp", "07") && check(r.TCP, "/proc/net/tcp", "0A") &&
		check(r.Octet, "/proc/net/tcp", "0A") && check(r.TLS, "/proc/net/tcp", "0A") &&
		check(r.RELP, "/proc/net/tcp", "0A") && check(r.RELPTLS, "/proc/net/tcp", "0A")
}

func (r *Receiver) kill(sig syscall.Signal) {
	if r.proc == nil {
		return
	}
	_ = r.proc.Process.Signal(sig)
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		_ = r.proc.Process.Kill()
		<-r.exited
	}
	r.proc = nil
}

// Kill stops the daemon abruptly (SIGKILL), like a crash: messages it had read but not yet
// written are lost, and peers see their connections reset.
func (r *Receiver) Kill(t testing.TB) {
	t.Helper()
	r.kill(syscall.SIGKILL)
}

// Pause stops the daemon (SIGSTOP) without killing it, like a hung collector: the kernel
// still accepts connections and bytes for it until its buffers fill, but nothing is read,
// answered or written. Resume, Kill or Restart ends the pause.
func (r *Receiver) Pause(t testing.TB) {
	t.Helper()
	if r.proc == nil {
		t.Fatalf("syslogd: Pause: %s is not running", r.Daemon)
	}
	if err := r.proc.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("syslogd: Pause: %v", err)
	}
	// The signal is delivered asynchronously: wait until every thread has stopped, or a
	// thread could still answer what a test sends right after Pause.
	deadline := time.Now().Add(5 * time.Second)
	for !stopped(r.proc.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("syslogd: Pause: %s did not stop within 5s", r.Daemon)
		}
		time.Sleep(time.Millisecond)
	}
}

// stopped reports whether every thread of pid is stopped (state T in /proc/PID/task/*/stat).
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// "pid (comm) S ...": the state follows the last ')', since comm may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Resume continues a paused daemon (SIGCONT).
func (r *Receiver) Resume(t testing.TB) {
	t.Helper()
	if r.proc == nil {
		t.Fatalf("syslogd: Resume: %s is not running", r.Daemon)
	}
	if err := r.proc.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("syslogd: Resume: %v", err)
	}
}

// Stop stops the daemon gracefully (SIGTERM), letting it flush what it has queued.
func (r *Receiver) Stop(t testing.TB) {
	t.Helper()
	r.kill(syscall.SIGTERM)
}

// Running reports whether the daemon process is alive.
func (r *Receiver) Running() bool {
	if r.proc == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Restart starts a stopped or killed daemon again on the same ports with the same config;
// its output is appended to what was received before.
func (r *Receiver) Restart(t testing.TB) {
	t.Helper()
	r.kill(syscall.SIGKILL)
	var err error
	// The old listening sockets are gone at once, but give the kernel a few tries in case a
	// port is briefly unavailable.
	for i := 0; i < 20; i++ {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("syslogd: restarting %s: %v", r.Daemon, err)
}

// OutputFile is the file the daemon writes received messages to, one JSON object per line,
// for benchmarks that count lines as they arrive rather than parse them all (Messages).
func (r *Receiver) OutputFile() string { return r.out }

// Log returns the daemon's own stdout/stderr, for failure messages.
func (r *Receiver) Log() string {
	b, _ := os.ReadFile(r.logFile)
	return string(b)
}

// Messages returns every message received so far, in the order the daemon wrote them.
func (r *Receiver) Messages(t testing.TB) []Message {
	t.Helper()
	msgs, err := r.read()
	if err != nil {
		t.Fatalf("syslogd: %v", err)
	}
	return msgs
}

// Count returns how many messages were received so far; pass it to WaitFrom to look only at
// messages that arrive afterwards.
func (r *Receiver) Count(t testing.TB) int {
	t.Helper()
	return len(r.Messages(t))
}

// Wait waits until at least n messages were received in total and returns all of them. It
// fails the test after timeout, showing what did arrive and the daemon's log.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	return r.WaitFrom(t, 0, n, timeout)
}

// WaitFrom waits until at least n messages arrived after the first from (a Count result) and
// returns the messages after from. A short settle period follows, so a message that was
// split into fragments shows up as extra messages instead of going unnoticed.
func (r *Receiver) WaitFrom(t testing.TB, from, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := r.read()
		if err != nil {
			t.Fatalf("syslogd: %v", err)
		}
		if len(msgs)-from >= n {
			time.Sleep(100 * time.Millisecond)
			if more, err := r.read(); err == nil {
				msgs = more
			}
			return msgs[from:]
		}
		if time.Now().After(deadline) {
			got := msgs[min(from, len(msgs)):]
			t.Fatalf("syslogd: %s received %d of %d messages within %v; last: %s\ndaemon log:\n%s",
				r.Daemon, len(got), n, timeout, lastRaw(got), r.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lastRaw(msgs []Message) string {
	if len(msgs) == 0 {
		return "(none)"
	}
	return strconv.Quote(string(msgs[len(msgs)-1].Raw))
}

// read parses the output file. A last line without its newline is still being written and is
// left for the next call.
func (r *Receiver) read() ([]Message, error) {
	data, err := os.ReadFile(r.out)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var msgs []Message
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec struct {
			Input string `json:"input"`
			Raw   string `json:"raw"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s output line %d is not JSON (%v): %q", r.Daemon, len(msgs)+1, err, sc.Bytes())
		}
		msgs = append(msgs, Message{Input: rec.Input, Raw: []byte(rec.Raw)})
	}
	return msgs, sc.Err()
}

// freePort returns a 127.0.0.1 port that was free a moment ago.
func freePort(t testing.TB, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("syslogd: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("syslogd: %v", err)
		}
		defer l.Close()
		return l.Addr().String()
	}
}

// FreeAddr returns a 127.0.0.1 TCP address nobody listens on (at the moment): for tests of
// a receiver that is not there yet.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return freePort(t, "tcp")
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
