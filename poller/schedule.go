package poller

import (
	"context"
	"sync"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/retry"
	"github.com/dtforward/dtforward/source"
)

// MaxStagger bounds how far the first polls are spread, so a long POLL_INTERVAL does not delay
// the last appliance's first poll by as much.
const MaxStagger = time.Minute

// StaggerDelay is appliance i of n's delay before its first poll: the starts are spread evenly
// over min(POLL_INTERVAL, MaxStagger), so hundreds of appliances do not all request (and
// deliver) at the same instant at boot, nor in every interval after it, since each keeps its
// phase.
func StaggerDelay(i, n int, interval time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(interval, MaxStagger) / time.Duration(n) * time.Duration(i)
}

// Grid returns the function that rounds a time down to the grid of interval offset by phase
// from the Unix epoch.
func Grid(phase, interval time.Duration) func(time.Time) time.Time {
	base := time.Unix(0, 0).Add(phase)
	return func(t time.Time) time.Time {
		return base.Add(t.Sub(base) / interval * interval)
	}
}

// Set is one appliance's pollers, one per destination, with the appliance's clock and the
// schedule they start on.
type Set struct {
	Appliance string
	Pollers   []*Poller
	Sinks     []string // each poller's destination label ("" for the SIEM_* sink)

	// Clock, when set, is synced from Status under Reader's request slot before the first
	// poll and every few minutes after (nil when the time source is overridden).
	Clock  *Clock
	Status func(context.Context) (*darktrace.Status, error)
	Reader *source.Reader

	Interval time.Duration
	// Phase delays the first poll (StaggerDelay). With several destinations, window ends lie on
	// Grid(Phase, Interval) of ExactNow instead: every destination's poller asks for the very
	// same windows, whatever its phase after an outage, and the shared fetch serves them from
	// one request.
	Phase    time.Duration
	Gridded  bool
	ExactNow func() time.Time
}

// Now returns the time source of the set's pollers: the appliance clock, on the grid when
// Gridded.
func (s *Set) Now() func() time.Time {
	if !s.Gridded {
		return s.ExactNow
	}
	grid := Grid(s.Phase, s.Interval)
	return func() time.Time { return grid(s.ExactNow()) }
}

// Start starts the set's goroutines in wg: after the stagger, the clock (synced once first, so
// windows follow the appliance clock from the very first poll), then every poller together, so
// that while caught up they ask for the same windows at the same moments and share the
// requests.
func (s *Set) Start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() {
		if !s.Gridded && !retry.Sleep(ctx, s.Phase) {
			return
		}
		if c := s.Clock; c != nil {
			ok := c.Sync(ctx, s.Reader, s.Status)
			wg.Go(func() { c.Run(ctx, s.Reader, s.Status, ok) })
		}
		if s.Gridded {
			// Start on a grid point of the appliance clock, so that the window ends (on the
			// grid) are as fresh as they can be. This waits at most one interval, once.
			now := s.ExactNow()
			if !retry.Sleep(ctx, Grid(s.Phase, s.Interval)(now).Add(s.Interval).Sub(now)) {
				return
			}
		}
		for _, p := range s.Pollers {
			wg.Go(func() { _ = p.Run(ctx) })
		}
	})
}
