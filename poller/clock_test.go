package poller

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// clockedSim is a simulator and a client signing with, and observing for, a Clock whose Run
// goroutine lives as long as the test.
func clockedSim(t *testing.T) (*simulator.Simulator, *darktrace.Client, *Clock, *metrics.Metrics, *syncBuffer) {
	t.Helper()
	sim, err := simulator.New(simulator.Options{Seed: 5, HistoryCount: 5, PublicToken: "pub", PrivateToken: "priv"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	m := metrics.New()
	clk := NewClock(zerolog.New(logs)).Report(m, "sim")
	c, err := darktrace.New(darktrace.Config{URL: u, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true,
		Timeout: 30 * time.Second, Now: clk.SignNow, OnDate: clk.Observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	r := source.NewReader(c, "sim", "sim", source.Filter{}, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if !clk.Sync(ctx, r, c.Status) {
		t.Fatal("first /status reading failed")
	}
	wg.Go(func() { clk.Run(ctx, r, c.Status, true) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return sim, c, clk, m, logs
}

func statusRequests(sim *simulator.Simulator) int {
	n := 0
	for _, r := range sim.Requests() {
		if r.Path == "/status" {
			n++
		}
	}
	return n
}

// TestClockRefusesADateStatusDoesNotConfirm: a Date 15 minutes ahead of the estimate (a proxy
// stamping its own clock) is checked against /status once, refuted, logged once as an error
// and counted; the estimate stays at the appliance's time, and the same Date again neither
// moves it nor costs another /status request.
func TestClockRefusesADateStatusDoesNotConfirm(t *testing.T) {
	sim, _, clk, m, logs := clockedSim(t)
	before := statusRequests(sim)
	clk.Observe(sim.Now().Add(15 * time.Minute))
	disagreements := func() float64 {
		return metricSum(t, m, "dtforward_clock_disagreements_total")
	}
	for deadline := time.Now().Add(20 * time.Second); disagreements() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no disagreement counted; log:\n%s", logs.String())
		}
	}
	for range 20 {
		clk.Observe(sim.Now().Add(15 * time.Minute))
	}
	time.Sleep(100 * time.Millisecond)
	if d := clk.Now().Sub(sim.Now()); d.Abs() > 3*time.Second {
		t.Fatalf("the estimate is %s off the appliance clock after a refuted Date", d)
	}
	if n := statusRequests(sim) - before; n != 1 {
		t.Errorf("%d /status checks for one disagreement, want 1", n)
	}
	if n := disagreements(); n != 1 {
		t.Errorf("%v disagreements counted, want 1", n)
	}
	if n := strings.Count(logs.String(), `"level":"error"`); n != 1 {
		t.Errorf("%d errors logged, want 1:\n%s", n, logs.String())
	}
	// Agreement again ends the episode.
	clk.Observe(sim.Now())
	if !strings.Contains(logs.String(), "agrees with the appliance clock /status reports again") {
		t.Errorf("the end of the disagreement is not logged:\n%s", logs.String())
	}
}

// TestClockTakesAJumpStatusConfirms: the appliance clock jumps 45 minutes ahead, beyond the
// ±30 min it accepts in DTAPI-Date: requests signed with the old estimate are refused, and so is
// /status, until it is read signed with the Date the refusal carried. The estimate then follows
// the appliance, and requests are accepted again.
func TestClockTakesAJumpStatusConfirms(t *testing.T) {
	sim, c, clk, m, logs := clockedSim(t)
	sim.SetClockOffset(45 * time.Minute)
	if _, err := c.Status(context.Background()); err == nil {
		t.Fatal("a request signed 45 minutes off was accepted; the test does not test the jump")
	}
	for deadline := time.Now().Add(20 * time.Second); clk.Now().Sub(sim.Now()).Abs() > 3*time.Second; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the estimate is %s off the appliance clock; log:\n%s", clk.Now().Sub(sim.Now()), logs.String())
		}
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("after the jump was confirmed: %v", err)
	}
	if n := metricSum(t, m, "dtforward_clock_disagreements_total"); n != 0 {
		t.Errorf("a confirmed jump counted as %v disagreements", n)
	}
	if !strings.Contains(logs.String(), "/status confirms the jump") {
		t.Errorf("the confirmation is not logged:\n%s", logs.String())
	}
}

// metricSum adds up every series of the metric name in m.
func metricSum(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			sum += s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return sum
}
