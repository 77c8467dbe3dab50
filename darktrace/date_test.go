package darktrace_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// TestStreamDatedReportsTheApplianceClock: the Date header of every answer reaches StreamDated
// and the OnDate hook, also when the answer is an error (a request signed with a clock 2 hours
// off is refused, and its Date is how the caller learns the appliance's time).
func TestStreamDatedReportsTheApplianceClock(t *testing.T) {
	var mu sync.Mutex
	var hooked []time.Time
	sim, c := startSim(t, simulator.Options{Seed: 5, HistoryCount: 3, ClockOffset: -2 * time.Hour}, func(cfg *darktrace.Config) {
		cfg.OnDate = func(d time.Time) { mu.Lock(); hooked = append(hooked, d); mu.Unlock() }
	})
	within := func(d time.Time) bool {
		now := sim.Now()
		return !d.Before(now.Add(-time.Minute)) && !d.After(now.Add(time.Second))
	}
	date, err := c.StreamDated(context.Background(), "/status?includechildren=false&fast=true", func([]byte) error { return nil })
	if darktrace.ClassOf(err) != darktrace.ClassAuth || !within(date) {
		t.Fatalf("StreamDated = %s, %v; want the appliance's time (%s) and the date error", date.UTC(), err, sim.Now().UTC())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 1 || !hooked[0].Equal(date) {
		t.Fatalf("OnDate saw %v, want [%s]", hooked, date)
	}
}
