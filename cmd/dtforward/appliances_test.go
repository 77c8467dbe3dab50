package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunSeveralAppliances: two appliances in one process, each with its own checkpoint and
// label; while one hangs on every request, the other's breaches still arrive promptly.
func TestRunSeveralAppliances(t *testing.T) {
	simA, urlA := startSim(t, simulator.Options{Seed: 21, History: time.Hour, HistoryCount: 20, PublicToken: "pub-a", PrivateToken: "priv-a"})
	simB, urlB := startSim(t, simulator.Options{Seed: 22, History: time.Hour, HistoryCount: 20, PublicToken: "pub-b", PrivateToken: "priv-b"})
	// dt-b's requests hang for 20 s each, then answer: far longer than dt-a needs on any
	// machine, so dt-a delivering while dt-b has delivered nothing shows it never waits for dt-b.
	hang, err := simulator.ParseFaults("timeout@20s")
	if err != nil {
		t.Fatal(err)
	}
	simB.SetFaults(hang)

	dir := t.TempDir()
	apps, _ := json.Marshal([]map[string]any{
		{"name": "dt-a", "url": urlA, "public_token": "pub-a", "private_token": "priv-a", "allow_http": true},
		{"name": "dt-b", "url": urlB, "public_token": "pub-b", "private_token": "priv-b", "allow_http": true},
	})
	appsFile := filepath.Join(dir, "appliances.json")
	if err := os.WriteFile(appsFile, apps, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	vars := baseVars("", out, state)
	for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME", "DARKTRACE_ALLOW_HTTP"} {
		delete(vars, k)
	}
	vars["DARKTRACE_APPLIANCES_FILE"] = appsFile
	vars["POLL_SOURCES"] = "modelbreaches"
	b := startRun(t, vars, testInterval)

	byAppliance := func() map[string]map[string]bool {
		m := map[string]map[string]bool{}
		f, err := os.ReadFile(out)
		if err != nil {
			return m
		}
		for _, l := range splitNonEmpty(f) {
			var rec struct{ Appliance, ID string }
			if json.Unmarshal(l, &rec) == nil {
				if m[rec.Appliance] == nil {
					m[rec.Appliance] = map[string]bool{}
				}
				m[rec.Appliance][rec.ID] = true
			}
		}
		return m
	}
	allOf := func(sim *simulator.Simulator, got map[string]bool) bool {
		for _, br := range sim.BreachInfos() {
			if !got[strconv.FormatInt(br.PBID, 10)] {
				return false
			}
		}
		return true
	}
	// dt-a must not wait for dt-b.
	for i := 0; i < 3; i++ {
		simA.AddBreaches(2)
		waitUntil(t, time.Minute, "dt-a's new breaches while dt-b hangs", func() bool { return allOf(simA, byAppliance()["dt-a"]) })
	}
	if len(byAppliance()["dt-b"]) != 0 {
		t.Fatal("dt-b delivered before dt-a's three rounds: dt-a waited for dt-b's hanging requests")
	}
	simB.SetFaults(nil)
	waitUntil(t, 15*time.Second, "dt-b after it recovers", func() bool { return allOf(simB, byAppliance()["dt-b"]) })
	b.stop(t)
	for _, name := range []string{"dt-a.json", "dt-b.json"} {
		if _, err := os.Stat(filepath.Join(state, name)); err != nil {
			t.Errorf("checkpoint %s: %v", name, err)
		}
	}
}

func splitNonEmpty(b []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range b {
		if c == '\n' {
			if i > start {
				out = append(out, b[start:i])
			}
			start = i + 1
		}
	}
	return out
}
