package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/testutil/testtools"
	"github.com/dtforward/dtforward/simulator"
)

// hungReceiverResult is what one live run against a repeatedly hung and killed rsyslog
// delivered.
type hungReceiverResult struct {
	breaches   int // breaches the simulator created (and the filter lets through)
	missing    int // of those, never received by rsyslog
	received   int // messages rsyslog wrote, repeats included
	duplicates int // received more than once
	sinkErrors int // batches dtforward saw fail (and retried)
	log        string
}

// runHungAndKilledReceiver runs "dtforward run" (in-process, 200 ms poll interval) against the
// simulator creating 40 breaches a second, into a real rsyslog over transport ("tcp" or
// "relp"). Four times, rsyslog runs for a second, hangs for 3 s (SIGSTOP: the kernel still
// accepts connections and bytes for it) and is killed (SIGKILL) and started again. Then the
// breaches created so far get settle to arrive. With syncWrites rsyslog writes each message
// before it takes the next one, so what it had acknowledged over RELP is on disk when it
// dies; without, it acknowledges what it has queued in memory (rsyslog's default).
func runHungAndKilledReceiver(tb testing.TB, transport string, syncWrites bool, settle time.Duration) hungReceiverResult {
	tb.Helper()
	rcv := syslogd.StartRsyslog(tb, syslogd.Options{TCP: true, RELP: true, SyncWrites: syncWrites})
	sim, err := simulator.New(simulator.Options{Seed: 12, History: 30 * time.Minute, HistoryCount: 20, Rate: 40,
		PublicToken: "pub-0123456789abcdef", PrivateToken: "priv-fedcba9876543210"})
	if err != nil {
		tb.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sim.Close() })

	vars := baseVars(url, "", filepath.Join(tb.TempDir(), "state"))
	vars["SIEM_TRANSPORT"] = transport
	vars["SIEM_ADDRESS"] = map[string]string{"tcp": rcv.TCP, "relp": rcv.RELP}[transport]
	vars["SIEM_TIMEOUT"] = "1s"
	vars["POLL_SOURCES"] = "modelbreaches"
	// The simulator creates no late breaches here: the shortest overlap keeps each poll small,
	// and a -race build on a loaded machine gets time to answer it.
	vars["POLL_OVERLAP"] = "1m"
	vars["DARKTRACE_TIMEOUT"] = "10s"
	getenv, environ := envFrom(vars)
	cfg, err := config.LoadFor(config.ModeRun, getenv, environ())
	if err != nil {
		tb.Fatalf("test configuration: %v", err)
	}
	cfg.PollInterval = testInterval
	ctx, cancel := context.WithCancel(context.Background())
	var stderr testtools.SyncBuffer
	done := make(chan int, 1)
	e := &env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr, getenv: getenv, environ: environ}
	go func() {
		done <- serve(ctx, e, cfg, daemonOptions{retryMin: 20 * time.Millisecond, retryMax: 300 * time.Millisecond})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				tb.Errorf("run exited %d", code)
			}
		case <-time.After(20 * time.Second):
			tb.Fatalf("run did not stop within 20s; stderr:\n%s", tail(stderr.String(), 3000))
		}
	}
	tb.Cleanup(stop)

	for i := 0; i < 4; i++ {
		time.Sleep(time.Second)
		rcv.Pause(tb)
		time.Sleep(3 * time.Second)
		rcv.Kill(tb)
		rcv.Restart(tb)
	}
	time.Sleep(time.Second)
	var want []string
	for _, br := range sim.BreachInfos() {
		want = append(want, strconv.FormatInt(br.PBID, 10))
	}
	count := func() (map[string]int, int) {
		got := map[string]int{}
		msgs := rcv.Messages(tb)
		for _, m := range msgs {
			var rec struct{ Kind, ID string }
			if i := bytes.IndexByte(m.Raw, '{'); i >= 0 && json.Unmarshal(m.Raw[i:], &rec) == nil && rec.Kind == "modelbreach" {
				got[rec.ID]++
			}
		}
		return got, len(msgs)
	}
	missing := func(got map[string]int) int {
		n := 0
		for _, id := range want {
			if got[id] == 0 {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(settle)
	got, received := count()
	for missing(got) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got, received = count()
	}
	stop()
	res := hungReceiverResult{breaches: len(want), missing: missing(got), received: received,
		sinkErrors: strings.Count(stderr.String(), "sink did not accept the batch"), log: stderr.String()}
	for _, n := range got {
		if n > 1 {
			res.duplicates++
		}
	}
	return res
}

// TestRunRELPSurvivesHungAndKilledReceiver is the case plain TCP loses (issue 12: 236 of 855
// breaches over TCP): the daemon delivers over RELP to an rsyslog that hangs for 3 s and is
// killed, four times during a live run, and every breach arrives. The TCP run of the same
// scenario is a measurement, not a test: BenchmarkHungAndKilledReceiver.
func TestRunRELPSurvivesHungAndKilledReceiver(t *testing.T) {
	// The settle time only bounds a failure: under -race on a loaded 2-core machine the
	// catch-up after the last restart took longer than 30 s.
	res := runHungAndKilledReceiver(t, "relp", true, 2*time.Minute)
	t.Logf("relp: %d breaches, %d missing, %d messages received, %d breaches received more than once, %d failed batches",
		res.breaches, res.missing, res.received, res.duplicates, res.sinkErrors)
	if res.breaches < 400 {
		t.Fatalf("only %d breaches were created; the run proves little", res.breaches)
	}
	if res.sinkErrors == 0 {
		t.Errorf("no batch failed: the receiver's outages did not reach the sink")
	}
	if res.missing != 0 {
		t.Fatalf("%d of %d breaches lost over RELP; dtforward's log:\n%s", res.missing, res.breaches, tail(res.log, 8000))
	}
}

// BenchmarkHungAndKilledReceiver measures what the run above loses over each transport
// (bench/relp-vs-tcp-outage.sh runs it):
//
//	go test ./cmd/dtforward -run '^$' -bench HungAndKilledReceiver -benchtime 1x
//
// The scenario takes ~20 s whatever b.N is, so it runs once per case and reports breaches,
// lost, lost_% and duplicated. "sync" is rsyslog writing each message before it takes the
// next (what the test above uses); "queued" is rsyslog's default in-memory main queue, where
// imrelp acknowledges what is queued, not yet written.
func BenchmarkHungAndKilledReceiver(b *testing.B) {
	for _, c := range []struct {
		transport string
		sync      bool
	}{{"tcp", true}, {"relp", true}, {"tcp", false}, {"relp", false}} {
		b.Run(c.transport+"/"+map[bool]string{true: "sync", false: "queued"}[c.sync], func(b *testing.B) {
			res := runHungAndKilledReceiver(b, c.transport, c.sync, 10*time.Second)
			b.ReportMetric(float64(res.breaches), "breaches")
			b.ReportMetric(float64(res.missing), "lost")
			b.ReportMetric(100*float64(res.missing)/float64(max(res.breaches, 1)), "lost_%")
			b.ReportMetric(float64(res.duplicates), "duplicated")
			b.ReportMetric(float64(res.sinkErrors), "failed_batches")
			b.ReportMetric(0, "ns/op") // one scenario, not an operation to time
		})
	}
}

// TestCheckRELP: "dtforward check" opens a RELP session: it passes against rsyslog's imrelp
// and fails, naming the sink, against a port that speaks plain syslog (imtcp never answers
// the open command).
func TestCheckRELP(t *testing.T) {
	rcv := syslogd.StartRsyslog(t, syslogd.Options{TCP: true, RELP: true})
	_, url := startSim(t, simulator.Options{HistoryCount: 5})
	dir := t.TempDir()
	vars := baseVars(url, "", filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "relp", rcv.RELP
	code, out, stderr := runCmd(t, context.Background(), vars, "check")
	if code != exitOK || !strings.Contains(out, "sink relp "+rcv.RELP+": reachable") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	vars["SIEM_ADDRESS"] = rcv.TCP
	code, out, _ = runCmd(t, context.Background(), vars, "check", "--timeout", "1s")
	if code != exitFailure || !strings.Contains(out, "FAIL sink relp "+rcv.TCP) || !strings.Contains(out, "waiting for the answer to open") {
		t.Fatalf("exit %d, want 1 naming the sink and the unanswered open:\n%s", code, out)
	}
}
