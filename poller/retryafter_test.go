package poller

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// waitingDeliverer refuses its first batches with a collector's "busy, retry after" answer
// and records when each attempt came.
type waitingDeliverer struct {
	mu       sync.Mutex
	refusals int
	wait     time.Duration
	calls    []time.Time
	got      int
}

func (d *waitingDeliverer) Deliver(_ context.Context, alerts []*alert.Alert) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, time.Now())
	if len(d.calls) <= d.refusals {
		return &httpsink.StatusError{Service: "test collector", Code: 503, Wait: d.wait}
	}
	d.got += len(alerts)
	return nil
}

// TestLoopHonoursTheSinksRetryAfter: a collector answering 503 with Retry-After was retried at
// the backoff's pace (here every 5–20 ms) instead of after the wait it asked for.
func TestLoopHonoursTheSinksRetryAfter(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	api.addBreach(breach(1, now.Add(-time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli()))
	// The loop caps a requested wait at 10 × RetryMax (200 ms in these tests).
	d := &waitingDeliverer{refusals: 2, wait: 150 * time.Millisecond}
	a := newTestAppliance(t, api, d, loopOpts{})
	run(t, a)
	waitFor(t, "delivery after the busy spell", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.got == 1 })
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := 1; i < len(d.calls); i++ {
		// A lower bound only: a loaded machine can make the gap longer, never shorter.
		if gap := d.calls[i].Sub(d.calls[i-1]); gap < d.wait {
			t.Errorf("attempt %d came %s after the previous one; the collector asked for %s", i+1, gap, d.wait)
		}
	}
}
