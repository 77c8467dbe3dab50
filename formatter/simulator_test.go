package formatter_test

import (
	"encoding/json"
	"testing"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/simulator"
)

// simulatorAlerts converts the simulator's generated records (half of them hostile: pipes,
// '=', backslashes, CR/LF, tabs, NUL, invalid UTF-8, forged headers, very long values) the way
// the poller does: raw JSON as served, then the converters.
func simulatorAlerts(t *testing.T) []*alert.Alert {
	t.Helper()
	sim, err := simulator.New(simulator.Options{
		PublicToken: "pub", PrivateToken: "priv", Seed: 7, HistoryCount: 150,
		HostileFraction: 0.5, SystemFraction: 0.1, MissingCreationFraction: 0.1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.AddActions(20)
	sim.AdvanceActions()
	sim.AddIncidentEvents(20)
	var as []*alert.Alert
	add := func(a *alert.Alert, err error) {
		if err != nil {
			t.Errorf("simulator record: %v", err)
			return
		}
		as = append(as, a)
	}
	for _, b := range sim.Breaches() {
		raw, _ := json.Marshal(b)
		add(alert.FromBreach(&b, raw, "sim", "dt.example.com"))
	}
	for _, a := range sim.Actions() {
		raw, _ := json.Marshal(a)
		add(alert.FromAction(&a, raw, "sim", "dt.example.com"))
	}
	for _, e := range sim.IncidentEvents() {
		raw, _ := json.Marshal(e)
		add(alert.FromIncident(&e, raw, "sim", "dt.example.com"))
	}
	if len(as) < 150 {
		t.Fatalf("only %d simulator alerts", len(as))
	}
	return as
}
