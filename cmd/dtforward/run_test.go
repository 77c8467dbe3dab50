package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
)

func TestRunConfigErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "state")
	if err := os.MkdirAll(corrupt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "sim.json"), []byte(`{"version":1,"appliance":"sim","sources":{`), 0o600); err != nil {
		t.Fatal(err)
	}
	good := baseVars("http://127.0.0.1:1", filepath.Join(dir, "out"), filepath.Join(dir, "ok"))
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"missing URL", with("DARKTRACE_URL", ""), []string{"DARKTRACE_URL"}},
		{"missing tokens", func() map[string]string {
			m := with("DARKTRACE_PUBLIC_TOKEN", "")
			delete(m, "DARKTRACE_PRIVATE_TOKEN")
			return m
		}(), []string{"DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN"}},
		{"misspelled transport", with("SIEM_TRANSPORT", "tcpp"), []string{"SIEM_TRANSPORT", "tcpp"}},
		{"unknown SIEM_ variable", with("SIEM_ADRESS", "x:1"), []string{"SIEM_ADRESS"}},
		{"bad interval", with("POLL_INTERVAL", "often"), []string{"POLL_INTERVAL"}},
		{"corrupt checkpoint", with("STATE_DIR", corrupt), []string{filepath.Join(corrupt, "sim.json"), "not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, context.Background(), tt.vars, "run")
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestRunDeliversEveryBreachOnce is the late-breach proof: 10% of the breaches are created
// minutes after their activity time (up to 50 min), history plus live generation, a compressed
// run with a 200 ms interval. Every pbid the simulator created arrives, none twice.
func TestRunDeliversEveryBreachOnce(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 7, History: 2 * time.Hour, HistoryCount: 400, Rate: 25,
		LateFraction: 0.1, LateDelay: 50 * time.Minute})
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches"
	b := startRun(t, vars, testInterval)
	time.Sleep(3 * time.Second)

	// The oracle: every breach the simulator created, suppressed ones included (the default
	// FILTER_INCLUDE_SUPPRESSED=true).
	var want []simulator.BreachInfo
	late := 0
	for _, br := range sim.BreachInfos() {
		want = append(want, br)
		if br.Created-br.Time >= (5 * time.Minute).Milliseconds() {
			late++
		}
	}
	if late < len(want)/20 {
		t.Fatalf("only %d of %d breaches are late; the test would prove nothing", late, len(want))
	}
	missing := func() []string {
		got := map[string]bool{}
		for _, id := range delivered(t, out)["modelbreach"] {
			got[id] = true
		}
		var miss []string
		for _, br := range want {
			if !got[strconv.FormatInt(br.PBID, 10)] {
				miss = append(miss, fmt.Sprintf("pbid %d time %s created %s", br.PBID,
					time.UnixMilli(br.Time).Format(time.TimeOnly), time.UnixMilli(br.Created).Format(time.TimeOnly)))
			}
		}
		return miss
	}
	deadline := time.Now().Add(2 * time.Minute) // bounds a failure only
	for len(missing()) > 0 {
		if time.Now().After(deadline) {
			miss := missing()
			var warns []string
			for _, l := range strings.Split(b.stderr.String(), "\n") {
				if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
					warns = append(warns, l)
				}
			}
			t.Fatalf("%d of %d breaches never delivered (now %s), e.g. %v\nwarnings:\n%s", len(miss), len(want),
				time.Now().Format(time.TimeOnly), miss[:min(5, len(miss))], tail(strings.Join(warns, "\n"), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d after cancellation, want 0", code)
	}
	ids := delivered(t, out)["modelbreach"]
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("pbid %s delivered twice", id)
		}
		seen[id] = true
	}
	t.Logf("%d breaches delivered (%d in the oracle snapshot, %d late), no duplicates", len(ids), len(want), late)
	if !strings.Contains(b.stderr.String(), `"message":"poll"`) || !strings.Contains(b.stderr.String(), `"window_start"`) {
		t.Fatalf("no per-cycle log line:\n%s", tail(b.stderr.String(), 2000))
	}
}

// TestRunAntigenaLifecycle: an action created, activated, extended and cleared produces four
// lines, in order.
func TestRunAntigenaLifecycle(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 3, HistoryCount: 20})
	added := sim.AddActions(12)
	var codeid int64
	first := map[int64]bool{}
	for _, st := range sim.ActionStates() {
		if !first[st.CodeID] && slices.Contains(added, st.CodeID) {
			first[st.CodeID] = true
			if st.State == "pending" && codeid == 0 {
				codeid = st.CodeID
			}
		}
	}
	if codeid == 0 {
		t.Fatal("simulator created no pending action")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "antigena"
	startRun(t, vars, 100*time.Millisecond)

	id := strconv.FormatInt(codeid, 10)
	count := func() int {
		n := 0
		for _, x := range delivered(t, out)["antigena"] {
			if x == id {
				n++
			}
		}
		return n
	}
	waitUntil(t, 10*time.Second, "the pending line", func() bool { return count() == 1 })
	for step := 2; step <= 4; step++ {
		time.Sleep(300 * time.Millisecond) // several unchanged polls: no new line
		if n := count(); n != step-1 {
			t.Fatalf("%d lines before step %d, want %d", n, step, step-1)
		}
		sim.AdvanceActions()
		waitUntil(t, 10*time.Second, fmt.Sprintf("line %d", step), func() bool { return count() == step })
	}
	time.Sleep(300 * time.Millisecond)

	var states []string
	var expires []string
	forEachLine(t, out, func(m map[string]any) {
		if m["kind"] == "antigena" && m["id"] == id {
			a, _ := m["action"].(map[string]any)
			states = append(states, fmt.Sprint(a["state"]))
			expires = append(expires, fmt.Sprint(a["expires"]))
		}
	})
	if want := []string{"pending", "active", "extended", "cleared"}; !slices.Equal(states, want) {
		t.Fatalf("states %v, want %v", states, want)
	}
	if expires[2] == expires[1] {
		t.Fatalf("the extension line carries the old expiry %s", expires[2])
	}
}

func forEachLine(t *testing.T, path string, fn func(map[string]any)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line is not JSON: %v: %q", err, sc.Text())
		}
		fn(m)
	}
}

func httpGet(url string) (int, string) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunSurvivesOutages: the receiver (a real rsyslog) down then up, the appliance failing
// 30% of requests (5xx, hangs past the timeout, invalid JSON), and the appliance clock 45
// minutes off then fixed. The process keeps running, /readyz follows, nothing is lost.
func TestRunSurvivesOutages(t *testing.T) {
	rcv := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	rcv.Stop(t)
	sim, url := startSim(t, simulator.Options{Seed: 11, History: time.Hour, HistoryCount: 50})
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	vars := baseVars(url, "", filepath.Join(dir, "state"))
	vars["SIEM_TRANSPORT"] = "tcp"
	vars["SIEM_ADDRESS"] = rcv.TCP
	vars["SIEM_TIMEOUT"] = "1s"
	vars["DARKTRACE_TIMEOUT"] = "1s"
	vars["POLL_SOURCES"] = "modelbreaches"
	vars["HTTP_ADDRESS"] = httpAddr
	b := startRun(t, vars, testInterval)
	readyz := "http://" + httpAddr + "/readyz"

	// 1. Receiver down: not ready, says why, keeps the batch.
	waitUntil(t, 10*time.Second, "/readyz red for the sink", func() bool {
		code, body := httpGet(readyz)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "sink failing")
	})
	rcv.Restart(t)
	waitUntil(t, 15*time.Second, "/readyz green after the receiver is back", func() bool {
		code, _ := httpGet(readyz)
		return code == http.StatusOK
	})

	// 2. 30% of appliance requests fail while breaches keep coming.
	faults, err := simulator.ParseFaults("modelbreaches:500=0.1,timeout@1500ms=0.1,invalid=0.1")
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(faults)
	for i := 0; i < 10; i++ {
		sim.AddBreaches(3)
		time.Sleep(250 * time.Millisecond)
	}
	sim.SetFaults(nil)

	// 3. The appliance clock jumps 45 minutes ahead, beyond the ±30 min DTAPI-Date check: the
	// request signed before the jump is refused (clock skew), its answer's Date re-reads the
	// clock and polling goes on at the appliance's time; then it jumps back. (A breach created
	// meanwhile would carry a time 45 minutes ahead and be read when the clock reaches it.)
	sim.SetClockOffset(45 * time.Minute)
	waitUntil(t, time.Minute, "the clock correction in the log", func() bool {
		return strings.Count(b.stderr.String(), "appliance clock differs from ours") >= 1 && strings.Contains(b.stderr.String(), "clock skew")
	})
	sim.SetClockOffset(0)
	sim.AddBreaches(5)
	waitUntil(t, 15*time.Second, "/readyz green after the clock is fixed", func() bool {
		code, _ := httpGet(readyz)
		return code == http.StatusOK
	})

	want := sim.BreachInfos()
	waitUntil(t, 15*time.Second, "every breach at the receiver", func() bool {
		got := map[string]bool{}
		for _, m := range rcv.Messages(t) {
			i := strings.IndexByte(string(m.Raw), '{')
			var rec struct{ Kind, ID string }
			if i < 0 || json.Unmarshal(m.Raw[i:], &rec) != nil {
				continue
			}
			got[rec.ID] = true
		}
		for _, br := range want {
			if !got[strconv.FormatInt(br.PBID, 10)] {
				return false
			}
		}
		return true
	})
	_, metrics := httpGet("http://" + httpAddr + "/metrics")
	for _, series := range []string{`dtforward_sink_errors_total{sink="siem"}`, "dtforward_sink_reconnects_total", `dtforward_api_errors_total{appliance="sim",source="modelbreaches"}`,
		`dtforward_api_requests_total{appliance="sim"}`} {
		if v := metricValue(metrics, series); v < 1 {
			t.Errorf("%s = %v after the outages, want ≥ 1", series, v)
		}
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	logs := b.stderr.String()
	for _, w := range []string{"sink did not accept the batch", "sink accepts again", "appliance request failed", "clock skew", "appliance answers again"} {
		if !strings.Contains(logs, w) {
			t.Errorf("log does not mention %q", w)
		}
	}
}

// TestRunNeverLogsTokens forces authentication failures and scans everything the process
// wrote, and its HTTP endpoints, for either token.
func TestRunNeverLogsTokens(t *testing.T) {
	const pub, priv = "pubTOKEN5b8e77889555766ce22f", "privTOKEN4fcd23a8d464d58028d"
	tests := []struct {
		name     string
		simPub   string
		simPriv  string
		wantText string
	}{
		{"wrong private token", pub, "some-other-private-token", "SIGNATURE"},
		{"unknown public token", "another-public-token", priv, "SIGNATURE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startSim(t, simulator.Options{PublicToken: tt.simPub, PrivateToken: tt.simPriv, HistoryCount: 5})
			dir := t.TempDir()
			vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
			vars["DARKTRACE_PUBLIC_TOKEN"], vars["DARKTRACE_PRIVATE_TOKEN"] = pub, priv
			vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"
			vars["LOG_LEVEL"] = "debug"
			httpAddr := freeAddr(t)
			vars["HTTP_ADDRESS"] = httpAddr
			b := startRun(t, vars, testInterval)
			var ready, metrics string
			waitUntil(t, 10*time.Second, "an auth error on /readyz", func() bool {
				var code int
				code, ready = httpGet("http://" + httpAddr + "/readyz")
				return code == http.StatusServiceUnavailable && strings.Contains(strings.ToUpper(ready), tt.wantText)
			})
			_, metrics = httpGet("http://" + httpAddr + "/metrics")
			b.stop(t)
			_, checkOut, checkErr := runCmd(t, context.Background(), vars, "check")
			all := b.stderr.String() + b.stdout.String() + ready + metrics + checkOut + checkErr
			if !strings.Contains(strings.ToUpper(b.stderr.String()), tt.wantText) {
				t.Fatalf("the auth failure is not logged:\n%s", tail(b.stderr.String(), 2000))
			}
			for _, secret := range []string{pub, priv} {
				if strings.Contains(all, secret) {
					t.Fatalf("token %q leaked into output", secret)
				}
			}
		})
	}
}

// metricValue returns the value of a series in Prometheus text format, or -1.
func metricValue(text, series string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
