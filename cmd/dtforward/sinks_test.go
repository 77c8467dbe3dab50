package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
)

// sinksVars is baseVars with the SIEM_* variables replaced by a sinks file holding sinks.
func sinksVars(t *testing.T, url, state string, sinks []map[string]any) map[string]string {
	t.Helper()
	vars := baseVars(url, "", state)
	for _, k := range []string{"SIEM_FORMAT", "SIEM_TRANSPORT", "SIEM_ADDRESS"} {
		delete(vars, k)
	}
	b, err := json.Marshal(sinks)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sinks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	vars["SIEM_SINKS_FILE"] = path
	return vars
}

// breachIDs returns the model breach ids a receiver got (duplicates allowed).
func breachIDs(t *testing.T, r *syslogd.Receiver) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for _, m := range r.Messages(t) {
		var rec struct{ Kind, ID string }
		if i := bytes.IndexByte(m.Raw, '{'); i >= 0 && json.Unmarshal(m.Raw[i:], &rec) == nil && rec.Kind == "modelbreach" {
			got[rec.ID] = true
		}
	}
	return got
}

// missing lists the simulator's forwardable breaches not in got.
func missing(sim *simulator.Simulator, got map[string]bool) []string {
	var out []string
	for _, br := range sim.BreachInfos() {
		if id := strconv.FormatInt(br.PBID, 10); !got[id] {
			out = append(out, id)
		}
	}
	return out
}

// TestRunSinkDownHoldsBackNoOther is issue 12's proof for several sinks, with two real rsyslog
// receivers (RELP, so that what a receiver acknowledged is what it holds): while one is down
// (stopped for ~6 s here, not the 20 s, to keep the suite fast; the mechanism does not
// depend on the length), the other keeps receiving new breaches within a couple of poll
// intervals; when it comes back on the same port it catches up from the appliance, and both
// end with every breach of the simulator's oracle. Each sink has its own checkpoint directory,
// /readyz names the sink that is down, and caught-up sinks share the appliance's requests.
func TestRunSinkDownHoldsBackNoOther(t *testing.T) {
	rcvA := syslogd.StartRsyslog(t, syslogd.Options{RELP: true})
	rcvB := syslogd.StartRsyslog(t, syslogd.Options{RELP: true})
	var polls atomic.Int64
	sim, url := startSim(t, simulator.Options{Seed: 81, History: time.Hour, HistoryCount: 20,
		OnRequest: func(r simulator.Request) {
			if r.Path == "/modelbreaches" && strings.Contains(r.RawQuery, "starttime=") {
				polls.Add(1)
			}
		}})
	state := filepath.Join(t.TempDir(), "state")
	vars := sinksVars(t, url, state, []map[string]any{
		{"name": "siem-a", "format": "json", "transport": "relp", "address": rcvA.RELP, "timeout": "1s"},
		{"name": "siem-b", "format": "json", "transport": "relp", "address": rcvB.RELP, "timeout": "1s", "app_name": "dt-b"},
	})
	vars["POLL_SOURCES"] = "modelbreaches"
	httpAddr := freeAddr(t)
	vars["HTTP_ADDRESS"] = httpAddr
	b := startRun(t, vars, testInterval)

	waitUntil(t, 15*time.Second, "both sinks to get the history", func() bool {
		return len(missing(sim, breachIDs(t, rcvA))) == 0 && len(missing(sim, breachIDs(t, rcvB))) == 0
	})
	if msgs := rcvB.Messages(t); len(msgs) == 0 || !strings.Contains(string(msgs[0].Raw), " dt-b ") {
		t.Errorf("sink b's app_name not in its messages: %q", msgs[0].Raw)
	}

	rcvB.Stop(t)
	outage := time.Now()
	sawReadyz := false
	for time.Since(outage) < 6*time.Second {
		sim.AddBreaches(2)
		// One poll interval is 200 ms here; 2 s allows for a loaded machine.
		waitUntil(t, 2*time.Second, "sink a to get new breaches while sink b is down", func() bool {
			return len(missing(sim, breachIDs(t, rcvA))) == 0
		})
		if code, body := httpGet("http://" + httpAddr + "/readyz"); code == 503 && strings.Contains(body, "sink siem-b: sim/modelbreaches: sink failing") {
			if strings.Contains(body, "sink siem-a") {
				t.Errorf("/readyz blames sink a too:\n%s", body)
			}
			sawReadyz = true
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !sawReadyz {
		t.Error("/readyz never named sink siem-b as failing during its outage")
	}
	if n := len(missing(sim, breachIDs(t, rcvB))); n == 0 {
		t.Fatal("sink b has every breach although it was down while they were created")
	}
	rcvB.Restart(t)
	waitUntil(t, 20*time.Second, "sink b to catch up after it returns", func() bool {
		return len(missing(sim, breachIDs(t, rcvB))) == 0
	})
	if m := missing(sim, breachIDs(t, rcvA)); len(m) > 0 {
		t.Errorf("sink a is missing %v", m)
	}

	// Both caught up again, b at whatever phase its retries left it: the appliance is polled
	// once per window for both, not once per sink. Unshared, 2 s of 200 ms intervals would be
	// 20 window requests; allow for polls a loaded machine delays past the recording's TTL.
	time.Sleep(time.Second)
	before, since := polls.Load(), time.Now()
	time.Sleep(2 * time.Second)
	intervals := float64(time.Since(since)) / float64(testInterval)
	if n := float64(polls.Load() - before); n > 1.5*intervals {
		t.Errorf("%.0f window requests in %.0f intervals with both sinks caught up: the sinks do not share them", n, intervals)
	} else {
		t.Logf("%.0f window requests in %.0f intervals for 2 sinks", n, intervals)
	}

	_, metricsText := httpGet("http://" + httpAddr + "/metrics")
	if v := metricValue(metricsText, `dtforward_api_requests_shared_total`); v < 1 {
		t.Errorf("no poll request was shared by the two sinks (dtforward_api_requests_shared_total %v)", v)
	}
	if v := metricValue(metricsText, `dtforward_sink_errors_total{sink="siem-b"}`); v < 1 {
		t.Errorf("sink b's outage not counted: %v", v)
	}
	alertsA := metricValue(metricsText, `dtforward_sink_alerts_total{sink="siem-a"}`)
	if alertsA < 20 {
		t.Errorf("sink a's alerts counted %v", alertsA)
	}
	// Every line is a syslog header and a CEF record: well over 100 bytes.
	if v := metricValue(metricsText, `dtforward_sink_bytes_total{sink="siem-a"}`); v < 100*alertsA {
		t.Errorf("sink a's bytes counted %v for %v alerts", v, alertsA)
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d", code)
	}
	for _, name := range []string{"siem-a", "siem-b"} {
		if _, err := os.Stat(filepath.Join(state, name, "sim.json")); err != nil {
			t.Errorf("sink %s checkpoint: %v", name, err)
		}
	}
}

// TestRunSinkSources: a sink with sources gets only those; one without gets every polled source.
func TestRunSinkSources(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 82, History: time.Hour, HistoryCount: 10})
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name+".jsonl") }
	vars := sinksVars(t, url, filepath.Join(dir, "state"), []map[string]any{
		{"name": "ai", "sources": []string{"aianalyst"}, "format": "json", "transport": "file", "address": out("ai")},
		{"name": "breaches", "sources": []string{"modelbreaches"}, "format": "json", "transport": "file", "address": out("breaches")},
		{"name": "all", "format": "json", "transport": "file", "address": out("all")},
	})
	vars["POLL_SOURCES"] = "modelbreaches,aianalyst"
	startRun(t, vars, testInterval)
	events := sim.AddIncidentEvents(3)
	waitUntil(t, 15*time.Second, "every sink to receive its sources", func() bool {
		ai, all, br := delivered(t, out("ai")), delivered(t, out("all")), delivered(t, out("breaches"))
		return len(ai["aianalyst"]) >= len(events) && len(all["aianalyst"]) >= len(events) &&
			len(missing(sim, toSet(all["modelbreach"]))) == 0 && len(missing(sim, toSet(br["modelbreach"]))) == 0
	})
	if ai := delivered(t, out("ai")); len(ai["modelbreach"]) != 0 {
		t.Errorf("the aianalyst-only sink got %d model breaches", len(ai["modelbreach"]))
	}
	if br := delivered(t, out("breaches")); len(br["aianalyst"]) != 0 {
		t.Errorf("the modelbreaches-only sink got %d AI Analyst events", len(br["aianalyst"]))
	}
}

func toSet(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// TestSinksFileWithSIEMVariables: setting both is exit 2 naming each variable.
func TestSinksFileWithSIEMVariables(t *testing.T) {
	vars := sinksVars(t, "http://127.0.0.1:1", t.TempDir(), []map[string]any{{"name": "a", "transport": "stdout"}})
	vars["SIEM_TRANSPORT"] = "tcp"
	vars["SIEM_APP_NAME"] = "x"
	code, _, stderr := runCmd(t, t.Context(), vars, "run")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
	}
	for _, want := range []string{
		"dtforward run: SIEM_TRANSPORT: cannot be combined with SIEM_SINKS_FILE; set transport per sink in ",
		"dtforward run: SIEM_APP_NAME: cannot be combined with SIEM_SINKS_FILE; set app_name per sink in ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestBackfillRefusesSinksFile: a backfill fills one sink; with a sinks file it says how to
// pick one instead of guessing.
func TestBackfillRefusesSinksFile(t *testing.T) {
	vars := sinksVars(t, "http://127.0.0.1:1", t.TempDir(), []map[string]any{{"name": "a", "transport": "stdout"}})
	code, _, stderr := runCmd(t, t.Context(), vars, "backfill", "--from", "2026-01-01", "--to", "2026-01-02")
	if code != exitUsage || !strings.Contains(stderr, "dtforward backfill: SIEM_SINKS_FILE: backfill sends to one sink") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCheckEverySink: check reaches every sink of the file and prints each one's sample line.
func TestCheckEverySink(t *testing.T) {
	_, url := startSim(t, simulator.Options{HistoryCount: 3})
	dir := t.TempDir()
	closed := freeAddr(t) // nothing listens there
	vars := sinksVars(t, url, filepath.Join(dir, "state"), []map[string]any{
		{"name": "archive", "format": "darktrace-json", "transport": "file", "address": filepath.Join(dir, "archive.jsonl")},
		{"name": "siem", "format": "cef", "transport": "tcp", "address": closed},
	})
	vars["POLL_SOURCES"] = "modelbreaches"
	code, out, stderr := runCmd(t, t.Context(), vars, "check")
	if code != exitFailure {
		t.Fatalf("exit %d with an unreachable sink, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailure, out, stderr)
	}
	for _, w := range []string{
		"\nsink archive (file " + filepath.Join(dir, "archive.jsonl") + "): reachable\n",
		"\nsample darktrace-json line (a built-in example breach, not appliance data):\n{",
		"sink siem (tcp " + closed + "): ",
		"\nsample cef line (a built-in example breach, not appliance data):\nCEF:0|Darktrace|DCIP|",
	} {
		if !strings.Contains(out+stderr, w) {
			t.Errorf("output lacks %q:\nstdout:\n%s\nstderr:\n%s", w, out, stderr)
		}
	}
	if strings.Contains(out, "sink siem (tcp "+closed+"): reachable") {
		t.Errorf("an unreachable sink reported reachable:\n%s", out)
	}
}
