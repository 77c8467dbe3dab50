package poller

import (
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// startSim starts a simulator on loopback HTTP and a client of it with the given timeout,
// both stopped when the test ends.
func startSim(t *testing.T, o simulator.Options, timeout time.Duration) (*simulator.Simulator, *darktrace.Client) {
	t.Helper()
	o.PublicToken, o.PrivateToken = "pub", "priv"
	sim, err := simulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := darktrace.New(darktrace.Config{URL: u, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return sim, c
}

// countIDs returns how often each id of kind was delivered.
func countIDs(r *recorder, kind string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, a := range r.got {
		if a.Kind == kind {
			out[a.ID]++
		}
	}
	return out
}
