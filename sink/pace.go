package sink

import (
	"context"
	"fmt"
	"time"
)

// DefaultUDPRate is the UDP send rate dtforward uses unless SIEM_UDP_RATE says otherwise:
// slow enough that a collector on the same host, briefly descheduled while the socket
// buffer fills, does not drop a backfill's burst (bench/udp-backfill measures it), and far
// above the alert rate of a live appliance.
const DefaultUDPRate = 1000

// pacer spaces messages at most rate per second, with a burst of up to pacerBurst of
// schedule credit (so a timer that wakes late is caught up without falling below the rate,
// and an idle sink may send a short burst at once). It is a token bucket in its virtual
// scheduling form (GCRA): next is when the next message is due.
type pacer struct {
	interval time.Duration
	burst    time.Duration
	next     time.Time
	now      func() time.Time
}

// pacerBurst is the credit an idle sink accumulates: 10 ms of messages.
const pacerBurst = 10 * time.Millisecond

// newPacer returns nil (no pacing) for rate 0.
func newPacer(rate int) *pacer {
	if rate <= 0 {
		return nil
	}
	iv := time.Second / time.Duration(rate)
	return &pacer{interval: iv, burst: max(pacerBurst, iv), now: time.Now}
}

// wait blocks until the next message may go, or until ctx is done: a paced batch never
// outlives a cancellation.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	now := p.now()
	if earliest := now.Add(-p.burst); p.next.Before(earliest) {
		p.next = earliest
	}
	due := p.next
	d := due.Sub(now)
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("paced send abandoned: %w", context.Cause(ctx))
		}
	} else if err := ctx.Err(); err != nil {
		return fmt.Errorf("paced send abandoned: %w", context.Cause(ctx))
	}
	p.next = due.Add(p.interval) // from the schedule, not the wake-up: late timers do not lower the rate
	return nil
}
