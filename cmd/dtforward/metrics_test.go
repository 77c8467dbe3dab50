package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// TestMetricsFromStart runs the real binary and reads /metrics as soon as it answers: the build
// is identified (dtforward_build_info), every counter an operator alerts on is there at 0
// before its first event (rate() and increase() cannot see a series that does not exist yet),
// and batches a sink failed to accept have one counter, by sink.
func TestMetricsFromStart(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 2})
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"
	addr := freeAddr(t)
	vars["HTTP_ADDRESS"] = addr
	cmd := exec.Command(bin, "run")
	cmd.Env = processEnv(vars)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var text string
	waitUntil(t, 30*time.Second, "/metrics to answer", func() bool {
		code, body := httpGet("http://" + addr + "/metrics")
		text = body
		return code == 200
	})
	build := regexp.MustCompile(`(?m)^dtforward_build_info\{commit="([^"]*)",goversion="([^"]*)",version="([^"]*)"\} 1$`).FindStringSubmatch(text)
	if build == nil || build[2] != runtime.Version() || build[3] == "" || build[1] == "" {
		t.Errorf("no dtforward_build_info{commit,goversion,version} 1 (goversion %s):\n%s", runtime.Version(), grepLines(text, "build_info"))
	}
	var want []string
	for _, src := range []string{"modelbreaches", "antigena", "aianalyst"} {
		want = append(want, `dtforward_api_errors_total{appliance="sim",source="`+src+`"}`)
		for _, o := range []string{"fetched", "sent", "deduped", "filtered", "malformed"} {
			want = append(want, `dtforward_records_total{appliance="sim",outcome="`+o+`",source="`+src+`"}`)
		}
	}
	want = append(want, `dtforward_sink_errors_total{sink="siem"}`, `dtforward_sink_alerts_total{sink="siem"}`,
		`dtforward_sink_lines_sanitized_total{sink="siem"}`, `dtforward_sink_bytes_total{sink="siem"}`, `dtforward_antigena_vanished_total{appliance="sim"}`,
		`dtforward_pbid_gaps_total{appliance="sim"}`, "dtforward_sink_reconnects_total")
	for _, series := range want {
		if metricValue(text, series) < 0 {
			t.Errorf("%s is not there from the start", series)
		}
	}
	for _, series := range []string{`dtforward_api_errors_total{appliance="sim",source="modelbreaches"}`, `dtforward_sink_errors_total{sink="siem"}`} {
		if v := metricValue(text, series); v != 0 {
			t.Errorf("%s = %v at start against a healthy appliance and sink, want 0", series, v)
		}
	}
	if strings.Contains(text, "dtforward_sink_failures_total") || strings.Contains(text, "\ndtforward_sink_errors_total ") {
		t.Errorf("sink failures counted twice (dtforward_sink_failures_total, or an unlabelled dtforward_sink_errors_total):\n%s", grepLines(text, "dtforward_sink_"))
	}
}
