package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"encoding/json"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/simulator"
)

// TestRunSkipsApplianceWithCorruptCheckpoint (issue 11 item 4): one appliance's checkpoint is
// corrupt; the other still delivers everything, and /readyz names the broken one.
func TestRunSkipsApplianceWithCorruptCheckpoint(t *testing.T) {
	simA, urlA := startSim(t, simulator.Options{Seed: 31, History: time.Hour, HistoryCount: 30, PublicToken: "pub-a", PrivateToken: "priv-a"})
	_, urlB := startSim(t, simulator.Options{Seed: 32, History: time.Hour, HistoryCount: 30, PublicToken: "pub-b", PrivateToken: "priv-b"})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "dt-b.json"), []byte(`{"version":1,"appliance":"dt-b","sour`), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := appliancesVars(t, dir, state, []map[string]any{
		{"name": "dt-a", "url": urlA, "public_token": "pub-a", "private_token": "priv-a", "allow_http": true},
		{"name": "dt-b", "url": urlB, "public_token": "pub-b", "private_token": "priv-b", "allow_http": true},
	})
	httpAddr := freeAddr(t)
	vars["HTTP_ADDRESS"] = httpAddr
	out := vars["SIEM_ADDRESS"]
	b := startRun(t, vars, testInterval)

	want := map[string]bool{}
	for _, br := range simA.BreachInfos() {
		want[strconv.FormatInt(br.PBID, 10)] = true
	}
	waitUntil(t, 30*time.Second, "dt-a's breaches while dt-b's checkpoint is corrupt", func() bool {
		got := linesByAppliance(out)["dt-a"]
		for id := range want {
			if got[id] == 0 {
				return false
			}
		}
		return true
	})
	waitUntil(t, 15*time.Second, "/readyz and dtforward_appliance_up to name dt-b's checkpoint, and only dt-b", func() bool {
		code, body := httpGet("http://" + httpAddr + "/readyz")
		_, m := httpGet("http://" + httpAddr + "/metrics")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "dt-b: disabled: checkpoint") &&
			strings.Contains(body, "dt-b.json") && !strings.Contains(body, "dt-a") &&
			strings.Contains(m, `dtforward_appliance_up{appliance="dt-b"} 0`) && strings.Contains(m, `dtforward_appliance_up{appliance="dt-a"} 1`)
	})
	// ?verbose lists every appliance, the healthy ones too.
	waitUntil(t, 15*time.Second, "/readyz?verbose to list both appliances", func() bool {
		_, body := httpGet("http://" + httpAddr + "/readyz?verbose")
		return strings.Contains(body, "\ndt-b: disabled\n") && strings.Contains(body, "\ndt-a: ready\n")
	})
	if got := linesByAppliance(out)["dt-b"]; len(got) != 0 {
		t.Errorf("dt-b delivered %d records without a usable checkpoint", len(got))
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d; stderr:\n%s", code, tail(b.stderr.String(), 3000))
	}
	if !strings.Contains(b.stderr.String(), "dt-b.json") {
		t.Errorf("the log does not name the corrupt checkpoint file")
	}
	// The corrupt file is left alone for the operator.
	if raw, _ := os.ReadFile(filepath.Join(state, "dt-b.json")); !strings.HasSuffix(string(raw), `"sour`) {
		t.Errorf("the corrupt checkpoint was rewritten: %q", raw)
	}
}

// TestRunEveryCheckpointCorruptExits2: with nothing left to poll, a corrupt checkpoint is still
// a start-up error, as documented for a single appliance.
func TestRunEveryCheckpointCorruptExits2(t *testing.T) {
	_, url := startSim(t, simulator.Options{Seed: 33, History: time.Hour, HistoryCount: 5})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "sim.json"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := baseVars(url, filepath.Join(dir, "out.jsonl"), state)
	code, _, stderr := runCmd(t, context.Background(), vars, "run")
	if code != exitUsage || !strings.Contains(stderr, "sim.json") {
		t.Fatalf("run = %d, stderr %q; want exit 2 naming sim.json", code, stderr)
	}
}

// appliancesVars writes apps as an appliances file in dir and returns run's variables for it
// with a JSON file sink at dir/out.jsonl.
func appliancesVars(t *testing.T, dir, state string, apps []map[string]any) map[string]string {
	t.Helper()
	data, err := json.Marshal(apps)
	if err != nil {
		t.Fatal(err)
	}
	appsFile := filepath.Join(dir, "appliances.json")
	if err := os.WriteFile(appsFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	vars := baseVars("", filepath.Join(dir, "out.jsonl"), state)
	for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME", "DARKTRACE_ALLOW_HTTP"} {
		delete(vars, k)
	}
	vars["DARKTRACE_APPLIANCES_FILE"] = appsFile
	vars["POLL_SOURCES"] = "modelbreaches"
	return vars
}

// linesByAppliance counts the breach lines of each appliance per id in a JSON-lines file.
func linesByAppliance(path string) map[string]map[string]int {
	m := map[string]map[string]int{}
	data, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, l := range splitNonEmpty(data) {
		var rec struct{ Appliance, Kind, ID string }
		if json.Unmarshal(l, &rec) != nil || rec.Kind != alert.KindBreach {
			continue
		}
		if m[rec.Appliance] == nil {
			m[rec.Appliance] = map[string]int{}
		}
		m[rec.Appliance][rec.ID]++
	}
	return m
}

// TestRunApplianceAuthFailureIsReported: an appliance whose token is refused keeps failing and
// is named in /readyz and dtforward_appliance_up, while the other delivers everything.
func TestRunApplianceAuthFailureIsReported(t *testing.T) {
	simA, urlA := startSim(t, simulator.Options{Seed: 34, History: time.Hour, HistoryCount: 20, PublicToken: "pub-a", PrivateToken: "priv-a"})
	_, urlB := startSim(t, simulator.Options{Seed: 35, History: time.Hour, HistoryCount: 20, PublicToken: "pub-b", PrivateToken: "priv-b"})
	dir := t.TempDir()
	vars := appliancesVars(t, dir, filepath.Join(dir, "state"), []map[string]any{
		{"name": "dt-a", "url": urlA, "public_token": "pub-a", "private_token": "priv-a", "allow_http": true},
		{"name": "dt-b", "url": urlB, "public_token": "pub-b", "private_token": "wrong-private-token", "allow_http": true},
	})
	httpAddr := freeAddr(t)
	vars["HTTP_ADDRESS"] = httpAddr
	startRun(t, vars, testInterval)
	want := len(simA.BreachInfos())
	waitUntil(t, 30*time.Second, "dt-a's breaches while dt-b's token is refused", func() bool {
		return len(linesByAppliance(vars["SIEM_ADDRESS"])["dt-a"]) == want
	})
	// dt-a's readiness includes a lag of at most 3 compressed intervals, which a loaded
	// machine can exceed for a moment: wait for a scrape where both agree.
	waitUntil(t, 15*time.Second, "/readyz and dtforward_appliance_up to blame dt-b only", func() bool {
		code, body := httpGet("http://" + httpAddr + "/readyz")
		_, m := httpGet("http://" + httpAddr + "/metrics")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "dt-b/modelbreaches: appliance failing") &&
			strings.Contains(body, "1 of 2 appliances not ready") && !strings.Contains(body, "dt-a/") &&
			strings.Contains(m, `dtforward_appliance_up{appliance="dt-a"} 1`) && strings.Contains(m, `dtforward_appliance_up{appliance="dt-b"} 0`)
	})
}
