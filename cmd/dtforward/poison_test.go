package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/deadletter"
	"github.com/dtforward/dtforward/internal/testutil/relppeer"
	"github.com/dtforward/dtforward/simulator"
)

// TestRunPoisonMessageIsSetAside: run over RELP to a receiver that answers 500 to one breach
// (every time). After SIEM_POISON_RETRIES refusals the breach is in STATE_DIR's dead-letter
// file with the receiver's answer, the error log names it, and every other breach arrives
// exactly once: the appliance advances past it. Before: the appliance never advanced past the
// refused breach, and every retry re-sent the lines before it.
func TestRunPoisonMessageIsSetAside(t *testing.T) {
	sim, url := startSim(t, simulator.Options{Seed: 31, History: 2 * time.Hour, HistoryCount: 60})
	var want []string
	for _, b := range sim.BreachInfos() {
		want = append(want, strconv.FormatInt(b.PBID, 10))
	}
	poison := want[len(want)/3]
	peer := relppeer.Start(t, func(msg string) string {
		if strings.Contains(msg, `"id":"`+poison+`"`) {
			return "500 rejected by rule 7"
		}
		return ""
	})
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	vars := baseVars(url, "", state)
	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"], vars["SIEM_POISON_RETRIES"] = "relp", peer.Addr(), "2"
	b := startRun(t, vars, testInterval)

	idOf := regexp.MustCompile(`"kind":"modelbreach","id":"([0-9]+)"`)
	count := func(msgs []string) map[string]int {
		n := map[string]int{}
		for _, m := range msgs {
			if s := idOf.FindStringSubmatch(m); s != nil {
				n[s[1]]++
			}
		}
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := count(peer.Accepted())
		missing := 0
		for _, id := range want {
			if id != poison && got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d breaches never accepted (the refused one is %s)\n%s", missing, len(want)-1, poison, tail(b.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := b.stop(t); code != exitOK {
		t.Fatalf("run exited %d, want 0", code)
	}
	for id, n := range count(peer.Accepted()) {
		if n != 1 {
			t.Errorf("breach %s accepted %d times, want once", id, n)
		}
	}
	if n := count(peer.Received())[poison]; n != 2 {
		t.Errorf("the refused breach was sent %d times, want SIEM_POISON_RETRIES=2", n)
	}
	raw, err := os.ReadFile(filepath.Join(state, deadletter.FileName))
	if err != nil {
		t.Fatal(err)
	}
	var rec deadletter.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("dead letter %q: %v", raw, err)
	}
	if rec.ID != poison || rec.Appliance != "sim" || rec.Kind != "modelbreach" || rec.Reason != deadletter.ReasonRefused ||
		rec.Answer != "500 rejected by rule 7" || !strings.Contains(rec.Line, `"id":"`+poison+`"`) {
		t.Errorf("dead letter = %+v", rec)
	}
	if s := b.stderr.String(); !strings.Contains(s, "alert set aside in the dead-letter file") || !strings.Contains(s, `"id":"`+poison+`"`) {
		t.Errorf("no error log naming the refused breach:\n%s", tail(s, 3000))
	}
}
