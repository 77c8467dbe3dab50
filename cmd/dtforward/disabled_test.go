package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunOneApplianceCorruptCheckpoint runs the real binary with one appliance whose
// checkpoint is unusable: it exits 2 with the checkpoint's error and does not claim that
// "the others go on" (there are none).
func TestRunOneApplianceCorruptCheckpoint(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 1})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "sim.json"), []byte(`{"version":1,"appliance":"sim","sources":{`), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := baseVars(url, filepath.Join(dir, "out"), state)
	code, out := runBinary(t, bin, vars, "run")
	if code != exitUsage || !strings.Contains(out, "sim.json") {
		t.Fatalf("run over a corrupt checkpoint: exit %d, want 2 naming the file:\n%s", code, out)
	}
	if strings.Contains(out, "the others go on") {
		t.Errorf("with one appliance, run says \"the others go on\" before exiting 2:\n%s", out)
	}
}

// TestRunOtherAppliancesGoOn: with a second appliance whose checkpoint is fine, the unusable
// one is disabled with the message that the others go on, and run starts.
func TestRunOtherAppliancesGoOn(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 1})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "sim.json"), []byte(`{"version":1,"appliance":"sim","sources":{`), 0o600); err != nil {
		t.Fatal(err)
	}
	apps := filepath.Join(dir, "appliances.yaml")
	entry := "  url: " + url + "\n  public_token: pub-0123456789abcdef\n  private_token: priv-fedcba9876543210\n  allow_http: true\n"
	if err := os.WriteFile(apps, []byte("- name: sim\n"+entry+"- name: sim2\n"+entry), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := baseVars(url, filepath.Join(dir, "out"), state)
	for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME"} {
		delete(vars, k)
	}
	vars["DARKTRACE_APPLIANCES_FILE"] = apps
	code, out := startAndStop(t, bin, vars)
	if code != exitOK || !strings.Contains(out, "the others go on") {
		t.Errorf("one of two checkpoints unusable: exit %d, want run to start (0 after SIGTERM) saying the others go on:\n%s", code, tail(out, 3000))
	}
}
