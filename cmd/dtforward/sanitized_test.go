package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunCountsSanitizedLines runs the real binary against an appliance whose every record
// carries hostile strings (device hostnames and model names with CR LF and a forged syslog
// header). Every record arrives as exactly one JSON line, and /metrics shows
// dtforward_sink_lines_sanitized_total for the sink from the start, at 0: the formatter
// escaped every CR and LF, so the sink's last line of defence had nothing to replace (the
// counter's increments are tested in route).
func TestRunCountsSanitizedLines(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 17, History: time.Hour, HistoryCount: 40, HostileFraction: 1})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	httpAddr := freeAddr(t)
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	vars["HTTP_ADDRESS"] = httpAddr
	cmd := exec.Command(bin, "run")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	want := len(sim.BreachInfos())
	if want == 0 {
		t.Fatal("the simulator made no visible breach")
	}
	waitUntil(t, 30*time.Second, "every breach in the file sink", func() bool {
		return len(delivered(t, out)["modelbreach"]) >= want
	})
	code, body := httpGet("http://" + httpAddr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if !strings.Contains(body, "\ndtforward_sink_lines_sanitized_total{sink=\"siem\"} 0\n") {
		t.Errorf("/metrics lacks dtforward_sink_lines_sanitized_total{sink=\"siem\"} 0:\n%s", grepLines(body, "sanitized"))
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	stopped = true
	if err != nil {
		t.Fatalf("run after SIGTERM: %v\n%s", err, tail(stderr.String(), 2000))
	}

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	withCRLF := 0
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("line %d of %d is not one JSON record (a CR or LF split it?): %v\n%q", i+1, len(lines), err, l)
		}
		if strings.Contains(string(l), `\r\n`) || strings.Contains(string(l), `\n<`) {
			withCRLF++
		}
	}
	if len(lines) != want {
		t.Errorf("%d lines for %d breaches", len(lines), want)
	}
	// The test must be able to fail: the hostile CR/LF did reach the formatter.
	if withCRLF == 0 {
		t.Fatalf("no delivered record carries an escaped CR or LF: the simulator sent nothing hostile")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
