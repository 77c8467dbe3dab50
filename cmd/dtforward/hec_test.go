package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/hecsim"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/sink/hec"
)

const hecTestToken = "0d3b9a52-6f1e-4c2a-9b7d-5e8f1a2b3c4d"

// startHECSim serves the test HEC over HTTPS with a throwaway CA and returns it with the CA
// file the sink must trust (SIEM_TLS_CA_FILE).
func startHECSim(t *testing.T, o hecsim.Options) (*hecsim.HEC, string, string) {
	t.Helper()
	ca := syslogd.NewCA(t)
	o.CertFile, o.KeyFile = ca.ServerCert, ca.ServerKey
	if o.Tokens == nil {
		o.Tokens = map[string]hecsim.Token{hecTestToken: {Ack: true}}
	}
	h, err := hecsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	url, err := h.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, url, ca.CAFile
}

// hecVars is baseVars sending to a HEC with acknowledgement on.
func hecVars(simURL, hecURL, caFile, state string) map[string]string {
	vars := baseVars(simURL, "", state)
	vars["SIEM_TRANSPORT"] = "hec"
	vars["SIEM_ADDRESS"] = hecURL
	vars["SIEM_TLS_CA_FILE"] = caFile
	vars["SIEM_HEC_TOKEN"] = hecTestToken
	vars["SIEM_HEC_ACK_TIMEOUT"] = "1s" // an acknowledgement that never comes costs 1 s here, not a minute
	vars["SIEM_TIMEOUT"] = "2s"
	return vars
}

// hecRecord is one indexed event's record (the json format).
type hecRecord struct {
	Kind, ID string
	State    string `json:"action_state"`
}

func hecRecords(t *testing.T, h *hecsim.HEC) ([]hecRecord, []hecsim.Event) {
	t.Helper()
	evs := h.Events()
	out := make([]hecRecord, len(evs))
	for i, e := range evs {
		if err := json.Unmarshal(e.Event, &out[i]); err != nil {
			t.Fatalf("event %d is not the record's JSON: %s", i, e.Event)
		}
	}
	return out, evs
}

// hecBreaches counts the model breaches indexed, by pbid.
func hecBreaches(t *testing.T, h *hecsim.HEC) map[string]int {
	t.Helper()
	recs, _ := hecRecords(t, h)
	got := map[string]int{}
	for _, r := range recs {
		if r.Kind == "modelbreach" {
			got[r.ID]++
		}
	}
	return got
}

func countsToSet(m map[string]int) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// TestRunHECExactlyOnce: run into a HEC with indexer acknowledgement delivers every breach
// exactly once through a busy spell, an indexer that loses accepted requests before indexing
// them, acknowledgements that come late, and a restart; each event has its sourcetype, the
// record's time and the appliance as host and indexed field.
func TestRunHECExactlyOnce(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 121, History: time.Hour, HistoryCount: 60})
	h, hecURL, caFile := startHECSim(t, hecsim.Options{IndexDelay: 50 * time.Millisecond})
	state := filepath.Join(t.TempDir(), "state")
	vars := hecVars(url, hecURL, caFile, state)
	vars["POLL_SOURCES"] = "modelbreaches,aianalyst,antigena"
	sim.AddIncidentEvents(3)
	sim.AddActions(2)
	b := startRun(t, vars, testInterval)
	waitUntil(t, 20*time.Second, "the history in Splunk", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0
	})

	h.SetBusy(4)
	sim.AddBreaches(5)
	waitUntil(t, 20*time.Second, "the breaches of the busy spell", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0
	})
	if h.Stats().ByStatus[503] == 0 {
		t.Fatal("no busy answer was given: the busy spell was not tested")
	}

	h.LoseNext(2)
	sim.AddBreaches(5)
	waitUntil(t, 20*time.Second, "the breaches the indexer lost once", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0
	})
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d:\n%s", code, tail(b.stderr.String(), 2000))
	}
	if !strings.Contains(b.stderr.String(), "did not acknowledge") {
		t.Errorf("the lost requests were not reported:\n%s", tail(b.stderr.String(), 3000))
	}

	sim.AddBreaches(5)
	startRun(t, vars, testInterval)
	waitUntil(t, 20*time.Second, "the breaches created while dtforward was stopped", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0
	})
	time.Sleep(3 * testInterval) // a few more polls: a repeat would show now

	for id, n := range hecBreaches(t, h) {
		if n != 1 {
			t.Errorf("breach %s indexed %d times", id, n)
		}
	}
	recs, evs := hecRecords(t, h)
	breachTime := map[string]int64{}
	for _, br := range sim.BreachInfos() {
		breachTime[strconv.FormatInt(br.PBID, 10)] = br.Time
	}
	seen := map[string]bool{}
	kinds := map[string]bool{}
	for i, r := range recs {
		e := evs[i]
		kinds[r.Kind] = true
		if want := "darktrace:" + r.Kind; e.Sourcetype != want {
			t.Errorf("%s %s: sourcetype %q, want %q", r.Kind, r.ID, e.Sourcetype, want)
		}
		if e.Host != "sim" || e.Source != "dtforward" || e.Fields["appliance"] != "sim" {
			t.Errorf("%s %s: host %q source %q fields %v", r.Kind, r.ID, e.Host, e.Source, e.Fields)
		}
		if r.Kind == "modelbreach" {
			if want := float64(breachTime[r.ID]) / 1000; !e.HasTime || e.Time != want {
				t.Errorf("breach %s: time %v, want %v (the breach's time)", r.ID, e.Time, want)
			}
		}
		if key := string(e.Event); seen[key] {
			t.Errorf("%s %s indexed twice with the same content", r.Kind, r.ID)
		} else {
			seen[key] = true
		}
	}
	for _, k := range []string{"modelbreach", "aianalyst", "antigena"} {
		if !kinds[k] {
			t.Errorf("no %s event indexed", k)
		}
	}
	if ch, err := os.ReadFile(filepath.Join(state, hec.ChannelFileName)); err != nil || evs[0].Channel != strings.TrimSpace(string(ch)) {
		t.Errorf("events on channel %q; the kept channel is %q (%v)", evs[0].Channel, ch, err)
	}
	if ch := evs[len(evs)-1].Channel; ch != evs[0].Channel {
		t.Errorf("the channel changed across the restart: %q, then %q", evs[0].Channel, ch)
	}
}

// TestRunHECKill9 kills the real binary at random moments while it sends into a HEC whose
// acknowledgements take a while, then lets a last run finish: every breach is indexed, and
// the duplicates are what the killed processes had sent but not seen acknowledged.
func TestRunHECKill9(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 122, History: time.Hour, HistoryCount: 300})
	h, hecURL, caFile := startHECSim(t, hecsim.Options{IndexDelay: 200 * time.Millisecond})
	dir := t.TempDir()
	vars := hecVars(url, hecURL, caFile, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	var environ []string
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	const kills = 8
	for i := 0; i < kills; i++ {
		sim.AddBreaches(20 + rng.IntN(40)) // new breaches while it runs, killed mid-batch or mid-acknowledgement
		cmd := exec.Command(bin, "run")
		cmd.Env = environ
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = environ
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(90 * time.Second)
	for len(missing(sim, countsToSet(hecBreaches(t, h)))) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("breaches missing after the last restart: %v\n%s", missing(sim, countsToSet(hecBreaches(t, h))), tail(stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last run after SIGTERM: %v\n%s", err, tail(stderr.String(), 2000))
	}
	got := hecBreaches(t, h)
	dup := 0
	for _, n := range got {
		dup += n - 1
	}
	// Each killed run can repeat at most what it had in flight: one group of slices.
	if limit := kills * 500; dup > limit {
		t.Errorf("%d duplicates over %d kills (more than one batch per kill)", dup, kills)
	}
	t.Logf("%d kills, %d breaches, %d duplicates", kills, len(got), dup)
}

// TestRunHECDownHoldsBackNoOther: with a second sink in SIEM_SINKS_FILE, a HEC that is down
// (its port closed) holds back only its own sink; the file sink keeps receiving new breaches,
// and the HEC catches up when it returns. The outage is seconds here, not a minute: what
// bounds the wait is the sink's timeout (1 s), a setting, not the outage's length.
func TestRunHECDownHoldsBackNoOther(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 123, History: time.Hour, HistoryCount: 20})
	h, hecURL, caFile := startHECSim(t, hecsim.Options{})
	dir := t.TempDir()
	out := filepath.Join(dir, "archive.jsonl")
	vars := sinksVars(t, url, filepath.Join(dir, "state"), []map[string]any{
		{"name": "splunk", "format": "json", "transport": "hec", "address": hecURL, "tls_ca_file": caFile,
			"hec_token": hecTestToken, "hec_ack_timeout": "1s", "timeout": "1s"},
		{"name": "archive", "format": "json", "transport": "file", "address": out},
	})
	vars["POLL_SOURCES"] = "modelbreaches"
	startRun(t, vars, testInterval)
	waitUntil(t, 15*time.Second, "both sinks to get the history", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0 && len(missing(sim, toSet(delivered(t, out)["modelbreach"]))) == 0
	})
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	for time.Since(outage) < 5*time.Second {
		sim.AddBreaches(2)
		waitUntil(t, 3*time.Second, "the file sink to get new breaches while the HEC is down", func() bool {
			return len(missing(sim, toSet(delivered(t, out)["modelbreach"]))) == 0
		})
		time.Sleep(300 * time.Millisecond)
	}
	if len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0 {
		t.Fatal("the HEC has every breach although it was down while they were created")
	}
	if err := h.Resume(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the HEC to catch up", func() bool {
		return len(missing(sim, countsToSet(hecBreaches(t, h)))) == 0
	})
}

// TestCheckHEC: check verifies the collector's health and the token, sends no event, and names
// the setting to fix.
func TestCheckHEC(t *testing.T) {
	_, url := startSim(t, simulator.Options{Seed: 124, History: time.Hour, HistoryCount: 2})
	h, hecURL, caFile := startHECSim(t, hecsim.Options{Tokens: map[string]hecsim.Token{hecTestToken: {Ack: true}, "no-ack": {}}})
	vars := hecVars(url, hecURL, caFile, t.TempDir())
	vars["POLL_SOURCES"] = "modelbreaches"
	code, stdout, stderr := runCmd(t, context.Background(), vars, "check", "--timeout", "10s")
	if code != exitOK || !strings.Contains(stdout, "sink hec "+hecURL+": reachable") {
		t.Fatalf("check exited %d:\n%s\n%s", code, stdout, stderr)
	}
	for token, want := range map[string]string{"wrong": "check SIEM_HEC_TOKEN", "no-ack": "check SIEM_HEC_ACK"} {
		vars["SIEM_HEC_TOKEN"] = token
		code, stdout, _ = runCmd(t, context.Background(), vars, "check", "--timeout", "10s")
		if code != exitFailure || !strings.Contains(stdout, "FAIL sink hec") || !strings.Contains(stdout, want) {
			t.Errorf("token %s: check exited %d:\n%s", token, code, stdout)
		}
		if strings.Contains(stdout, token+" ") && token == "wrong" {
			t.Errorf("the token is in check's output:\n%s", stdout)
		}
	}
	if n := len(h.Events()); n != 0 {
		t.Errorf("check indexed %d events", n)
	}
}
