package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/testtools"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/simulator"
)

// lockedBuffer is shared with the other packages that run commands in tests.
type lockedBuffer = testtools.SyncBuffer

func envFrom(vars map[string]string) (func(string) string, func() []string) {
	return func(k string) string { return vars[k] }, func() []string {
		out := make([]string, 0, len(vars))
		for k, v := range vars {
			out = append(out, k+"="+v)
		}
		return out
	}
}

// runCmd runs a command in-process to completion.
func runCmd(t *testing.T, ctx context.Context, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb lockedBuffer
	getenv, environ := envFrom(vars)
	code = dispatch(ctx, args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv, environ: environ})
	return code, out.String(), errb.String()
}

// background runs a command in-process until the returned stop is called (or the test ends),
// and returns its exit code from stop.
type background struct {
	stdout, stderr lockedBuffer
	cancel         context.CancelFunc
	done           chan int
	code           int
	stopped        bool
}

func startCmd(t *testing.T, vars map[string]string, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan int, 1)}
	getenv, environ := envFrom(vars)
	go func() {
		b.done <- dispatch(ctx, args, &env{stdin: strings.NewReader(""), stdout: &b.stdout, stderr: &b.stderr, getenv: getenv, environ: environ})
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// testInterval compresses time: POLL_INTERVAL's documented minimum is 1s, so tests load a valid
// configuration and then shorten the interval and the retry backoff in-process.
const testInterval = 200 * time.Millisecond

// startRun is "dtforward run" in-process with the interval and backoff compressed.
func startRun(t *testing.T, vars map[string]string, interval time.Duration) *background {
	t.Helper()
	getenv, environ := envFrom(vars)
	cfg, err := config.LoadFor(config.ModeRun, getenv, environ())
	if err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	cfg.PollInterval = interval
	if _, set := vars["DARKTRACE_MAX_REQUESTS_PER_MINUTE"]; !set {
		// The compressed interval asks for many times the requests a minute of a real one;
		// the bound is compressed with it unless the test is about the bound.
		cfg.DarktraceMaxRequestsPerMinute = config.MaxRequestsPerMinute
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan int, 1)}
	e := &env{stdin: strings.NewReader(""), stdout: &b.stdout, stderr: &b.stderr, getenv: getenv, environ: environ}
	go func() {
		b.done <- serve(ctx, e, cfg, daemonOptions{retryMin: 20 * time.Millisecond, retryMax: 300 * time.Millisecond})
	}()
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *background) stop(t *testing.T) int {
	t.Helper()
	if b.stopped {
		return b.code
	}
	b.stopped = true
	b.cancel()
	select {
	case b.code = <-b.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("command did not stop within 20s of cancellation; stderr:\n%s", tail(b.stderr.String(), 3000))
	}
	return b.code
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// startSim starts the simulator over plain HTTP on 127.0.0.1.
func startSim(t *testing.T, o simulator.Options) (*simulator.Simulator, string) {
	t.Helper()
	if o.PublicToken == "" {
		o.PublicToken, o.PrivateToken = "pub-0123456789abcdef", "priv-fedcba9876543210"
	}
	sim, err := simulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim, url
}

// baseVars configures run against sim with a JSON file sink at out.
func baseVars(url, out, state string) map[string]string {
	return map[string]string{
		"DARKTRACE_URL":           url,
		"DARKTRACE_ALLOW_HTTP":    "true",
		"DARKTRACE_PUBLIC_TOKEN":  "pub-0123456789abcdef",
		"DARKTRACE_PRIVATE_TOKEN": "priv-fedcba9876543210",
		"DARKTRACE_NAME":          "sim",
		"DARKTRACE_TIMEOUT":       "60s", // bounds a failure only: a loaded machine is slow, not broken
		"POLL_INTERVAL":           "1s",
		"POLL_START":              "3h",
		"SIEM_FORMAT":             "json",
		"SIEM_TRANSPORT":          "file",
		"SIEM_ADDRESS":            out,
		"STATE_DIR":               state,
		"LOG_FORMAT":              "json",
	}
}

// delivered reads a JSON-lines output file and returns the ids of each kind in order.
func delivered(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct{ Kind, ID string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			// A SIGKILL can cut the last line short; anything else is a bug.
			continue
		}
		out[rec.Kind] = append(out[rec.Kind], rec.ID)
	}
	return out
}

// waitUntil waits for cond. timeout only bounds a failure, so it is at least waitFloor: no test
// may depend on an idle machine.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, waitFloor)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const waitFloor = time.Minute

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
