package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dtforward/dtforward/simulator"
)

// TestRunDeliversOCSF: run with SIEM_FORMAT=ocsf over a simulator serving hostile and odd-shaped
// records delivers every breach, Antigena action and AI Analyst event of the simulator's oracle
// as OCSF events valid against the vendored 1.3.0 schema, each within the line limit.
func TestRunDeliversOCSF(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 31, History: 2 * time.Hour, HistoryCount: 120,
		AckFraction: 0.3, OddFraction: 0.2, HostileFraction: 0.3})
	actions := sim.AddActions(10)
	events := sim.AddIncidentEvents(10)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	vars := baseVars(url, out, filepath.Join(dir, "state"))
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"
	vars["SIEM_FORMAT"] = "ocsf"
	vars["SIEM_MAX_MESSAGE_BYTES"] = "1024"
	b := startRun(t, vars, testInterval)

	want := map[string]bool{}
	for _, br := range sim.BreachInfos() {
		want["2004 sim:"+strconv.FormatInt(br.PBID, 10)] = true
	}
	for _, id := range actions {
		want["7001 sim:"+strconv.FormatInt(id, 10)] = true
	}
	for _, id := range events {
		want["2004 sim:"+id] = true
	}
	missing := func() int {
		got := ocsfDelivered(t, out)
		n := 0
		for k := range want {
			if !got[k] {
				n++
			}
		}
		return n
	}
	waitUntil(t, 30*time.Second, "every record delivered as OCSF", func() bool { return missing() == 0 })
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d, want 0", code)
	}

	path, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "ocsf", "ocsf-1.3.0.schema.json"))
	sch, err := jsonschema.NewCompiler().Compile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		if len(sc.Bytes()) > 1024 {
			t.Errorf("line of %d bytes > 1024", len(sc.Bytes()))
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc.Bytes()))
		if err != nil {
			t.Fatalf("not JSON: %v\n%s", err, sc.Bytes())
		}
		if err := sch.Validate(inst); err != nil {
			t.Fatalf("not valid OCSF 1.3.0: %v\n%s", err, sc.Bytes())
		}
	}
	t.Logf("%d records expected, %d OCSF lines valid", len(want), lines)
}

// ocsfDelivered reads an OCSF output file and returns "<class_uid> <finding or command uid>".
func ocsfDelivered(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		var ev struct {
			ClassUID    int `json:"class_uid"`
			FindingInfo struct {
				UID string `json:"uid"`
			} `json:"finding_info"`
			CommandUID string `json:"command_uid"`
		}
		if json.Unmarshal([]byte(line), &ev) != nil {
			continue // the last line may still be being written
		}
		got[strconv.Itoa(ev.ClassUID)+" "+ev.FindingInfo.UID+ev.CommandUID] = true
	}
	return got
}
