package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/simulator"
)

// startSimulateMany runs "dtforward simulate --appliances n" in-process and returns the
// appliances file it wrote, once it has announced it.
func startSimulateMany(t *testing.T, n int, extra ...string) (*background, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "appliances.json")
	args := append([]string{"simulate", "--listen", "127.0.0.1:0", "--appliances", fmt.Sprint(n), "--appliances-file", file,
		"--history", "1h", "--history-count", "10"}, extra...)
	bg := startCmd(t, simTokens, args...)
	waitUntil(t, 20*time.Second, "the DARKTRACE_APPLIANCES_FILE line", func() bool {
		return strings.Contains(bg.stdout.String(), "DARKTRACE_APPLIANCES_FILE="+file+"\n")
	})
	return bg, file
}

// TestSimulateManyAppliancesFeedShardedRuns (issue 13 items 1 and 4): simulate --appliances 6
// writes an appliances file that run accepts as is; three runs with SHARD_COUNT=3 and the pod
// names dtforward-0..2 as SHARD_INDEX poll every appliance exactly once between them, and each
// appliance serves its own records.
func TestSimulateManyAppliancesFeedShardedRuns(t *testing.T) {
	const n, shards, perAppliance = 6, 3, 10
	_, file := startSimulateMany(t, n, "--seed", "40")
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("appliances file: %v, mode %v; want 0600 (it holds tokens)", err, fi.Mode())
	}

	dir := t.TempDir()
	outs := make([]string, shards)
	for i := range shards {
		outs[i] = filepath.Join(dir, fmt.Sprintf("out-%d.jsonl", i))
		vars := baseVars("", outs[i], filepath.Join(dir, fmt.Sprintf("state-%d", i)))
		for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME", "DARKTRACE_ALLOW_HTTP"} {
			delete(vars, k)
		}
		vars["DARKTRACE_APPLIANCES_FILE"] = file
		vars["POLL_SOURCES"] = "modelbreaches"
		vars["FILTER_INCLUDE_SUPPRESSED"] = "true" // every generated breach is delivered
		vars["SHARD_COUNT"] = fmt.Sprint(shards)
		vars["SHARD_INDEX"] = fmt.Sprintf("dtforward-%d", i)
		vars["DARKTRACE_MAX_CONCURRENT_REQUESTS"] = "2"
		if i == 0 {
			getenv, environ := envFrom(vars)
			cfg, err := config.LoadFor(config.ModeRun, getenv, environ())
			if err != nil {
				t.Fatalf("run does not accept the simulator's appliances file: %v", err)
			}
			apps, err := cfg.Appliances()
			if err != nil || len(apps) != n {
				t.Fatalf("Appliances() = %d, %v; want %d", len(apps), err, n)
			}
			urls := map[string]bool{}
			for j, a := range apps {
				if a.Name != fmt.Sprintf("sim-%d", j) || a.Labels["customer"] != fmt.Sprintf("customer-%d", j) || !a.AllowHTTP {
					t.Errorf("appliance %d = %s %v allow_http=%t", j, a.Name, a.Labels, a.AllowHTTP)
				}
				urls[a.URL] = true
			}
			if len(urls) != n {
				t.Errorf("%d distinct URLs for %d appliances; each needs its own listener", len(urls), n)
			}
		}
		startRun(t, vars, testInterval)
	}

	// Which output holds each appliance's breaches, and how often each id appears overall.
	collect := func() (map[string][]int, map[string]map[string]int) {
		where := map[string][]int{}
		ids := map[string]map[string]int{}
		for i, out := range outs {
			for app, got := range linesByAppliance(out) {
				where[app] = append(where[app], i)
				if ids[app] == nil {
					ids[app] = map[string]int{}
				}
				for id, c := range got {
					ids[app][id] += c
				}
			}
		}
		return where, ids
	}
	waitUntil(t, 60*time.Second, "every appliance's breaches across the shards", func() bool {
		_, ids := collect()
		if len(ids) != n {
			return false
		}
		for _, got := range ids {
			if len(got) != perAppliance {
				return false
			}
		}
		return true
	})
	where, ids := collect()
	for app, shardsSeen := range where {
		if len(shardsSeen) != 1 {
			t.Errorf("%s was polled by shards %v; want exactly one", app, shardsSeen)
		} else if want := config.ShardOf(app, shards); shardsSeen[0] != want {
			t.Errorf("%s was polled by shard %d; its hash puts it on shard %d", app, shardsSeen[0], want)
		}
		for id, c := range ids[app] {
			if c != 1 {
				t.Errorf("%s breach %s delivered %d times", app, id, c)
			}
		}
	}
	// Every line carries its appliance's labels from the appliances file (JSON applianceLabels).
	for _, path := range outs {
		data, _ := os.ReadFile(path)
		for _, l := range splitNonEmpty(data) {
			var r struct {
				Appliance       string
				ApplianceLabels map[string]string `json:"applianceLabels"`
			}
			if err := json.Unmarshal(l, &r); err != nil {
				t.Fatal(err)
			}
			if want := "customer-" + strings.TrimPrefix(r.Appliance, "sim-"); r.ApplianceLabels["customer"] != want || len(r.ApplianceLabels) != 1 {
				t.Fatalf("%s line has labels %v, want {customer: %s}: %s", r.Appliance, r.ApplianceLabels, want, l)
			}
		}
	}
	// Appliances are independent: their model names differ (seed + index).
	names := func(app string) []string {
		var out []string
		for _, path := range outs {
			data, _ := os.ReadFile(path)
			for _, l := range splitNonEmpty(data) {
				var r struct{ Appliance, Name string }
				if json.Unmarshal(l, &r) == nil && r.Appliance == app {
					out = append(out, r.Name)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if a, b := names("sim-0"), names("sim-1"); slices.Equal(a, b) {
		t.Errorf("sim-0 and sim-1 served the same records %v", a)
	}
}

// TestSimulateManyTLS: with --tls every entry names its appliance's CA file, which exists while
// the simulator runs and is removed when it stops.
func TestSimulateManyTLS(t *testing.T) {
	bg, file := startSimulateMany(t, 2, "--tls")
	getenv, environ := envFrom(map[string]string{"DARKTRACE_APPLIANCES_FILE": file, "STATE_DIR": t.TempDir()})
	cfg, err := config.LoadFor(config.ModeRun, getenv, environ())
	if err != nil {
		t.Fatalf("run does not accept the --tls appliances file: %v", err)
	}
	apps, err := cfg.Appliances()
	if err != nil || len(apps) != 2 {
		t.Fatalf("Appliances() = %v, %v", apps, err)
	}
	for _, a := range apps {
		if !strings.HasPrefix(a.URL, "https://127.0.0.1:") || a.AllowHTTP || a.CAFile == "" {
			t.Errorf("%s: url %s allow_http %t ca_file %q; want https with a CA file", a.Name, a.URL, a.AllowHTTP, a.CAFile)
		}
	}
	if code := bg.stop(t); code != exitOK {
		t.Fatalf("simulate exited %d: %s", code, bg.stderr.String())
	}
	for _, a := range apps {
		if _, err := os.Stat(a.CAFile); !os.IsNotExist(err) {
			t.Errorf("CA file %s left behind: %v", a.CAFile, err)
		}
	}
}

func TestSimulateManyUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--appliances", "3"}, "--appliances 3 needs --appliances-file FILE"},
		{[]string{"--appliances", "0", "--appliances-file", "x.json"}, "--appliances 0: want 1 to 5000"},
	} {
		code, _, stderr := runCmd(t, t.Context(), simTokens, append([]string{"simulate"}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("simulate %v = %d %q; want exit 2 with %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestRunEmptyShardIdles: a shard that owns no appliance (more replicas than appliances) keeps
// running and reports ready instead of exiting (which Kubernetes would restart forever).
func TestRunEmptyShardIdles(t *testing.T) {
	_, url := startSim(t, simulator.Options{Seed: 80, History: time.Hour, HistoryCount: 2})
	dir := t.TempDir()
	vars := appliancesVars(t, dir, filepath.Join(dir, "state"), []map[string]any{
		{"name": "dt-a", "url": url, "public_token": "pub-0123456789abcdef", "private_token": "priv-fedcba9876543210", "allow_http": true},
	})
	vars["SHARD_COUNT"] = "2"
	vars["SHARD_INDEX"] = fmt.Sprint(1 - config.ShardOf("dt-a", 2))
	httpAddr := freeAddr(t)
	vars["HTTP_ADDRESS"] = httpAddr
	b := startRun(t, vars, testInterval)
	waitUntil(t, 10*time.Second, "/readyz of the empty shard", func() bool {
		code, body := httpGet("http://" + httpAddr + "/readyz")
		return code == http.StatusOK && strings.HasPrefix(body, "ready")
	})
	time.Sleep(3 * testInterval)
	if code, body := httpGet("http://" + httpAddr + "/readyz"); code != http.StatusOK {
		t.Fatalf("the empty shard stopped serving: %d %q; stderr:\n%s", code, body, tail(b.stderr.String(), 2000))
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(b.stderr.String(), "no appliance hashes to this shard") {
		t.Errorf("no warning about the empty shard")
	}
	if _, err := os.Stat(vars["SIEM_ADDRESS"]); err == nil {
		if got := linesByAppliance(vars["SIEM_ADDRESS"]); len(got) != 0 {
			t.Errorf("the empty shard delivered %v", got)
		}
	}
}
