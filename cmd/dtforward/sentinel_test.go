package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/sentinelsim"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/sink/sentinel/row"
)

// startSentinel starts a Logs Ingestion receiver for the test.
func startSentinel(t *testing.T, o sentinelsim.Options) *sentinelsim.Server {
	t.Helper()
	srv, err := sentinelsim.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// sentinelVars is baseVars with the SIEM_* sink replaced by the receiver srv.
func sentinelVars(url, state string, srv *sentinelsim.Server) map[string]string {
	vars := baseVars(url, "", state)
	delete(vars, "SIEM_FORMAT")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

// received counts what a receiver holds: breaches by threatId, incident events by the id in
// their url, Antigena states by codeId and alertTime (the state's "updated").
type received struct {
	breaches, incidents, actions map[string]int
}

func receivedBy(srv *sentinelsim.Server) received {
	r := received{breaches: map[string]int{}, incidents: map[string]int{}, actions: map[string]int{}}
	for _, row := range srv.Rows(row.ModelAlerts) {
		r.breaches[fmt.Sprint(row["threatId"])]++
	}
	for _, row := range srv.Rows(row.Incidents) {
		u, _ := row["url"].(string)
		_, id, _ := strings.Cut(u, "#aiaincidentevent/")
		r.incidents[id]++
	}
	for _, row := range srv.Rows(row.ResponseActions) {
		r.actions[fmt.Sprint(row["codeId"], "@", row["alertTime"])]++
	}
	return r
}

// simOracle is what the simulator holds now: every breach that is not suppressed, every incident
// event, every action's current state.
func simOracle(sim *simulator.Simulator) received {
	o := received{breaches: map[string]int{}, incidents: map[string]int{}, actions: map[string]int{}}
	for _, b := range sim.BreachInfos() {
		o.breaches[strconv.FormatInt(b.PBID, 10)] = 1
	}
	for _, e := range sim.IncidentEvents() {
		o.incidents[e.ID] = 1
	}
	for _, a := range sim.Actions() {
		o.actions[fmt.Sprint(a.CodeID, "@", time.UnixMilli(a.Updated.Int64()).UTC().Format(row.TimeLayout))] = 1
	}
	return o
}

// missingFrom lists what of want got lacks, at most 5 per kind.
func missingFrom(want, got received) []string {
	var out []string
	for _, k := range []struct {
		name      string
		want, got map[string]int
	}{{"breach", want.breaches, got.breaches}, {"incident", want.incidents, got.incidents}, {"action", want.actions, got.actions}} {
		n := 0
		for _, id := range slices.Sorted(maps.Keys(k.want)) {
			if k.got[id] == 0 {
				if n++; n <= 5 {
					out = append(out, k.name+" "+id)
				}
			}
		}
		if n > 5 {
			out = append(out, fmt.Sprintf("… %d %ss in all", n, k.name))
		}
	}
	return out
}

// duplicates lists what got holds more than once.
func duplicates(got received) []string {
	var out []string
	for name, m := range map[string]map[string]int{"breach": got.breaches, "incident": got.incidents, "action": got.actions} {
		for id, n := range m {
			if n > 1 {
				out = append(out, fmt.Sprintf("%s %s ×%d", name, id, n))
			}
		}
	}
	slices.Sort(out)
	return out
}

// binaryRun is the real dtforward binary running "run".
type binaryRun struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
}

func startBinary(t *testing.T, bin string, vars map[string]string) *binaryRun {
	t.Helper()
	b := &binaryRun{}
	b.cmd = exec.Command(bin, "run")
	for k, v := range vars {
		b.cmd.Env = append(b.cmd.Env, k+"="+v)
	}
	b.cmd.Stderr = &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			_ = b.cmd.Process.Kill()
			_ = b.cmd.Wait()
		}
	})
	return b
}

// term stops the process with SIGTERM and returns its exit code.
func (b *binaryRun) term(t *testing.T) int {
	t.Helper()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
		t.Fatalf("run did not stop within 30s of SIGTERM")
	}
	return b.cmd.ProcessState.ExitCode()
}

// waitAll waits until srv holds everything sim holds now, failing with what is missing.
func waitAll(t *testing.T, srv *sentinelsim.Server, sim *simulator.Simulator, what string, logs func() string) {
	t.Helper()
	want := simOracle(sim)
	deadline := time.Now().Add(90 * time.Second) // bounds a failure only
	for {
		miss := missingFrom(want, receivedBy(srv))
		if len(miss) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still missing %v\nreceiver: %+v\nlog tail:\n%s", what, miss, srv.Stats(), tail(logs(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRunSentinelDeliversEverythingOnce runs the real binary with a sentinel sink: every
// breach, AI Analyst event and Antigena action state of the simulator reaches the receiver
// exactly once, each row valid for its stream, across a 429 storm, an expired token and a
// restart.
func TestRunSentinelDeliversEverythingOnce(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 20, History: time.Hour, HistoryCount: 150, OddFraction: 0.2, HostileFraction: 0.1})
	sim.AddIncidentEvents(20)
	sim.AddActions(10)
	srv := startSentinel(t, sentinelsim.Options{})
	vars := sentinelVars(url, filepath.Join(t.TempDir(), "state"), srv)
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"

	run := startBinary(t, bin, vars)
	logs := func() string { return run.stderr.String() }
	waitAll(t, srv, sim, "history", logs)

	// A 429 storm: four throttled calls in a row, each asking for a second.
	srv.Inject(sentinelsim.Fault{Status: 429, RetryAfter: "1", Times: 4})
	sim.AddBreaches(20)
	sim.AddIncidentEvents(5)
	sim.AdvanceActions()
	waitAll(t, srv, sim, "after the 429 storm", logs)
	if n := srv.Stats().Statuses[429]; n != 4 {
		t.Errorf("%d throttled calls, want the 4 injected", n)
	}

	// Every token the receiver issued expires at once.
	tokensBefore := srv.Stats().TokenRequests
	srv.ExpireTokens()
	sim.AddBreaches(10)
	sim.AdvanceActions()
	waitAll(t, srv, sim, "after the token expired", logs)
	if srv.Stats().TokenRequests == tokensBefore {
		t.Error("no new token after the old one expired")
	}

	// A restart, with records created while the process is down.
	if code := run.term(t); code != exitOK {
		t.Fatalf("run exited %d on SIGTERM\n%s", code, tail(run.stderr.String(), 3000))
	}
	sim.AddBreaches(15)
	sim.AddIncidentEvents(5)
	sim.AdvanceActions()
	run = startBinary(t, bin, vars)
	waitAll(t, srv, sim, "after the restart", logs)
	time.Sleep(2500 * time.Millisecond) // two more polls: nothing is sent again
	if code := run.term(t); code != exitOK {
		t.Fatalf("run exited %d on SIGTERM", code)
	}

	got := receivedBy(srv)
	if d := duplicates(got); len(d) > 0 {
		t.Errorf("delivered more than once: %v", d[:min(10, len(d))])
	}
	st := srv.Stats()
	if len(st.Refused) > 0 || st.Statuses[400] > 0 {
		t.Errorf("the receiver refused calls: %v", st.Refused)
	}
	for _, stream := range []string{row.ModelAlerts, row.Incidents, row.ResponseActions} {
		for _, r := range srv.Rows(stream) {
			if err := row.Check(stream, r); err != nil {
				t.Fatalf("accepted row fails its declaration: %v", err)
			}
			if r["customLabel"] != "sim" || r["TimeGenerated"] == nil {
				t.Fatalf("%s row without its appliance or time: %v", stream, r)
			}
		}
	}
	t.Logf("%d breaches, %d incident events, %d action states, each once; %d calls, %d tokens, statuses %v",
		len(got.breaches), len(got.incidents), len(got.actions), st.Calls, st.TokenRequests, st.Statuses)
}

// TestRunSentinelSurvivesSIGKILLMidBatch kills the real binary with SIGKILL while its calls
// are in flight (the receiver answers slowly), five times, then lets a last run finish:
// every breach arrives; a killed run repeats at most what it had sent but not checkpointed.
func TestRunSentinelSurvivesSIGKILLMidBatch(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 21, History: time.Hour, HistoryCount: 600, Rate: 20})
	srv := startSentinel(t, sentinelsim.Options{})
	vars := sentinelVars(url, filepath.Join(t.TempDir(), "state"), srv)
	vars["POLL_SOURCES"] = "modelbreaches"

	const kills = 5
	for i := range kills {
		srv.Inject(sentinelsim.Fault{Delay: 400 * time.Millisecond, Times: 3})
		run := startBinary(t, bin, vars)
		// Kill while a call is in flight: the receiver holds each of these for 400 ms.
		before := srv.Stats().Calls
		deadline := time.Now().Add(30 * time.Second)
		for srv.Stats().Calls == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(50+100*i) * time.Millisecond)
		_ = run.cmd.Process.Kill()
		_ = run.cmd.Wait()
	}
	run := startBinary(t, bin, vars)
	time.Sleep(1500 * time.Millisecond)
	want := simOracle(sim)
	want.incidents, want.actions = nil, nil
	deadline := time.Now().Add(60 * time.Second)
	for len(missingFrom(want, receivedBy(srv))) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("missing after the last restart: %v\n%s", missingFrom(want, receivedBy(srv)), tail(run.stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.term(t)
	dups, most := 0, 0
	for _, n := range receivedBy(srv).breaches {
		dups += n - 1
		most = max(most, n)
	}
	// Each run sends a record at most once, and a killed run repeats at most the batch it had
	// sent but not checkpointed: no record more than once per run, no more duplicates than
	// one batch (here at most every breach) per kill.
	if most > kills+1 || dups > kills*len(want.breaches) {
		t.Errorf("%d duplicate rows, one record %d times, after %d kills", dups, most, kills)
	}
	if st := srv.Stats(); len(st.Refused) > 0 {
		t.Errorf("refused: %v", st.Refused)
	}
	t.Logf("%d breaches, %d duplicates after %d SIGKILLs mid-call", len(want.breaches), dups, kills)
}

// TestRunSentinelDownHoldsBackNoOther: one of two sentinel sinks is down (its receiver drops
// every connection) while the other keeps receiving new breaches; when it returns it catches
// up. The outage is a minute in production terms; with a 1s sink timeout and the compressed
// poll interval, a few seconds exercise the same path.
func TestRunSentinelDownHoldsBackNoOther(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 22, History: time.Hour, HistoryCount: 30})
	a := startSentinel(t, sentinelsim.Options{})
	b := startSentinel(t, sentinelsim.Options{})
	// b's short timeout finds it down quickly; a's is long because a request a loaded machine
	// answers after its timeout is sent again, and this test counts a's duplicates.
	entry := func(name string, srv *sentinelsim.Server, timeout string) map[string]any {
		e := srv.SinksEntry()
		e["name"], e["timeout"] = name, timeout
		return e
	}
	vars := sinksVars(t, url, filepath.Join(t.TempDir(), "state"), []map[string]any{entry("ws-a", a, "30s"), entry("ws-b", b, "1s")})
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"
	run := startRun(t, vars, testInterval)
	logs := func() string { return run.stderr.String() }
	waitAll(t, a, sim, "sink a, history", logs)
	waitAll(t, b, sim, "sink b, history", logs)

	b.SetDown(true)
	for range 5 {
		sim.AddBreaches(3)
		sim.AddIncidentEvents(1)
		// A poll interval is 200 ms here; 5 s allows for a loaded machine.
		start := time.Now()
		want := simOracle(sim)
		for len(missingFrom(want, receivedBy(a))) > 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("sink a held back while sink b is down: missing %v", missingFrom(want, receivedBy(a)))
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missingFrom(simOracle(sim), receivedBy(b))) == 0 {
		t.Fatal("sink b received everything although it was down")
	}
	b.SetDown(false)
	waitAll(t, b, sim, "sink b after it returned", logs)
	if d := duplicates(receivedBy(a)); len(d) > 0 {
		t.Errorf("sink a got duplicates: %v", d)
	}
}

// TestRunSentinelRoutesByAppliance: three customers, four appliances (acme has two), three
// sentinel sinks selecting by label, by name and by several labels. The real binary runs one
// process for all; each receiver holds every record of its customer's appliances and nothing
// of the others'.
func TestRunSentinelRoutesByAppliance(t *testing.T) {
	bin := buildBinary(t)
	const perAppliance = 10
	_, file := startSimulateMany(t, 4, "--seed", "23")
	var apps []map[string]any
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &apps); err != nil {
		t.Fatal(err)
	}
	customers := []string{"acme", "acme", "globex", "initech"}
	for i, app := range apps {
		app["labels"] = map[string]string{"customer": customers[i], "tier": "gold"}
	}
	data, _ = json.Marshal(apps)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}

	acme, globex, initech := startSentinel(t, sentinelsim.Options{}), startSentinel(t, sentinelsim.Options{}), startSentinel(t, sentinelsim.Options{})
	sink := func(name string, srv *sentinelsim.Server, sel any) map[string]any {
		e := srv.SinksEntry()
		e["name"], e["appliances"] = name, sel
		return e
	}
	vars := sinksVars(t, "", filepath.Join(t.TempDir(), "state"), []map[string]any{
		sink("acme", acme, map[string]string{"customer": "acme"}),
		sink("globex", globex, []string{"sim-2"}),
		sink("initech", initech, map[string]string{"customer": "initech", "tier": "gold"}),
	})
	for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME", "DARKTRACE_ALLOW_HTTP"} {
		delete(vars, k)
	}
	vars["DARKTRACE_APPLIANCES_FILE"] = file
	vars["POLL_SOURCES"] = "modelbreaches"
	vars["FILTER_INCLUDE_SUPPRESSED"] = "true" // every generated breach is delivered

	run := startBinary(t, bin, vars)
	byAppliance := func(srv *sentinelsim.Server) map[string]int {
		seen := map[string]map[string]bool{}
		for _, r := range srv.Rows(row.ModelAlerts) {
			app, _ := r["customLabel"].(string)
			if seen[app] == nil {
				seen[app] = map[string]bool{}
			}
			seen[app][fmt.Sprint(r["threatId"])] = true
		}
		out := map[string]int{}
		for app, ids := range seen {
			out[app] = len(ids)
		}
		return out
	}
	want := map[*sentinelsim.Server]map[string]int{
		acme:    {"sim-0": perAppliance, "sim-1": perAppliance},
		globex:  {"sim-2": perAppliance},
		initech: {"sim-3": perAppliance},
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for srv, w := range want {
			if !maps.Equal(byAppliance(srv), w) {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme %v, globex %v, initech %v; want %v, %v, %v\n%s",
				byAppliance(acme), byAppliance(globex), byAppliance(initech), want[acme], want[globex], want[initech], tail(run.stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // more polls: nothing of another customer arrives later
	run.term(t)
	for name, srv := range map[string]*sentinelsim.Server{"acme": acme, "globex": globex, "initech": initech} {
		if got := byAppliance(srv); !maps.Equal(got, want[srv]) {
			t.Errorf("sink %s holds records of %v, want only %v", name, got, want[srv])
		}
	}
}

// TestCheckSentinel: check reaches a sentinel sink and names the setting to fix when the
// receiver refuses the credentials or the role.
func TestCheckSentinel(t *testing.T) {
	_, url := startSim(t, simulator.Options{Seed: 24, HistoryCount: 5})
	srv := startSentinel(t, sentinelsim.Options{})
	vars := sentinelVars(url, t.TempDir(), srv)
	code, out, errOut := runCmd(t, t.Context(), vars, "check")
	if code != exitOK || !strings.Contains(out, "sink sentinel "+srv.URL()+": reachable") {
		t.Fatalf("check exited %d:\n%s\n%s", code, out, errOut)
	}
	if srv.Stats().Statuses[204] == 0 || len(srv.Rows(row.ModelAlerts)) != 0 {
		t.Errorf("check did not prove the streams, or sent rows: %+v", srv.Stats())
	}
	// A sentinel sink sends rows, so its sample is a row the stream declares, not a CEF line.
	_, sample, ok := strings.Cut(out, "sample row of "+row.ModelAlerts+" (a built-in example breach, not appliance data):\n")
	if !ok {
		t.Fatalf("check printed no sample row:\n%s", out)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(sample)), &r); err != nil {
		t.Fatalf("sample row is not JSON: %v\n%s", err, sample)
	}
	if err := row.Check(row.ModelAlerts, r); err != nil || r["modelName"] == nil {
		t.Errorf("sample row does not fit %s: %v\n%s", row.ModelAlerts, err, sample)
	}

	vars["SIEM_SENTINEL_CLIENT_SECRET"] = "not-the-secret"
	code, out, _ = runCmd(t, t.Context(), vars, "check")
	if code != exitFailure || !strings.Contains(out, "check SIEM_SENTINEL_CLIENT_SECRET") || strings.Contains(out, "not-the-secret") {
		t.Errorf("wrong secret: exit %d\n%s", code, out)
	}

	norole := startSentinel(t, sentinelsim.Options{NoRole: true})
	vars = sentinelVars(url, t.TempDir(), norole)
	code, out, _ = runCmd(t, t.Context(), vars, "check")
	if code != exitFailure || !strings.Contains(out, "SIEM_SENTINEL_DCR_ID") || !strings.Contains(out, "Monitoring Metrics Publisher") {
		t.Errorf("no role: exit %d\n%s", code, out)
	}

	delete(vars, "SIEM_SENTINEL_DCR_ID")
	code, _, errOut = runCmd(t, t.Context(), vars, "check")
	if code != exitUsage || !strings.Contains(errOut, "SIEM_SENTINEL_DCR_ID") {
		t.Errorf("missing DCR id: exit %d\n%s", code, errOut)
	}
}
