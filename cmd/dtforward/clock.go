package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/poller"
)

// clockSyncEvery is how often the appliance clock is re-read from /status.
const clockSyncEvery = 10 * time.Minute

// applianceClock estimates an appliance's clock as ours plus a measured offset. The poller
// computes windows with it: a window must end at the appliance's "now", not ours, or an
// appliance whose clock runs behind ours by more than POLL_OVERLAP would create records inside
// windows we have already closed, and they would never be fetched. (The appliance accepts
// requests up to ±30 minutes off, well beyond the default 10-minute overlap.)
type applianceClock struct {
	offset atomic.Int64 // nanoseconds to add to time.Now
}

// Now returns the estimated appliance time.
func (c *applianceClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// sync reads /status and updates the offset. /status has one-second resolution, so offsets
// under two seconds are treated as none rather than adding noise to every window.
func (c *applianceClock) sync(ctx context.Context, p *poller.Pipeline, client *darktrace.Client, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var st *darktrace.Status
	var before time.Time
	err := p.Exclusive(ctx, func(ctx context.Context) error {
		var err error
		before = time.Now()
		st, err = client.Status(ctx)
		return err
	})
	if err != nil {
		log.Debug().Err(err).Msg("reading the appliance clock from /status failed; keeping the last estimate")
		return
	}
	at, err := parseApplianceTime(st.Time)
	if err != nil {
		return
	}
	after := time.Now()
	mid := before.Add(after.Sub(before) / 2)
	off := at.Sub(mid.Truncate(time.Second))
	if off.Abs() < 2*time.Second {
		off = 0
	}
	old := time.Duration(c.offset.Swap(int64(off)))
	if (off - old).Abs() >= 2*time.Second {
		ev := log.Info()
		if off.Abs() > skewWarning {
			ev = log.Warn()
		}
		ev.Dur("offset_ms", off).Str("appliance_time", at.Format(time.RFC3339)).
			Msg("appliance clock differs from ours; windows follow the appliance clock (fix NTP)")
	}
}

// run re-syncs every clockSyncEvery until ctx ends.
func (c *applianceClock) run(ctx context.Context, p *poller.Pipeline, client *darktrace.Client, log zerolog.Logger) {
	t := time.NewTicker(clockSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.sync(ctx, p, client, log)
		}
	}
}
