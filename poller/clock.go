package poller

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/source"
)

// SkewWarning is the clock difference from ours worth a warning: beyond it, an appliance is
// about to reject our requests (it accepts 30 minutes) or POLL_OVERLAP no longer covers it.
const SkewWarning = 5 * time.Minute

// clockSyncEvery is how often the appliance clock is re-read from /status; clockRetryEvery is
// how soon after a failed read it is tried again.
const (
	clockSyncEvery  = 10 * time.Minute
	clockRetryEvery = time.Minute
)

// clockTolerance is how far ahead of an answer's Date the estimate may be before it is reset to
// it: Date and /status have one-second resolution, and an answer takes time to arrive. An
// estimate behind the appliance only delays alerts (windows end earlier), so it is reset only
// beyond clockBehindTolerance: a slow answer on a loaded machine must not make it flap, nor
// corrections of a few seconds fill the log.
const (
	clockTolerance       = 2 * time.Second
	clockBehindTolerance = 30 * time.Second
)

// Clock estimates an appliance's clock: its time at the last reading plus the
// monotonic time elapsed since. The poller computes windows with it: a window must end at the
// appliance's "now", not ours, or an appliance whose clock runs behind ours by more than
// POLL_OVERLAP would create records inside windows we have already closed, and they would never
// be fetched. Our wall clock plays no part once the appliance has answered, so a step of it
// (NTP setting the clock after the service started) cannot push windows into the appliance's
// future. Every answer's Date header re-reads the clock when the estimate is off.
type Clock struct {
	mu     sync.Mutex
	synced bool
	at     time.Time // appliance time at the last reading
	mono   time.Time // our time.Now() at that reading: only its monotonic part is used
	log    zerolog.Logger
	// status and statusMono are the last /status reading and our instant of it: a Date header
	// may move the estimate back (an earlier window end only delays), but never beyond what
	// /status confirms, so a proxy whose clock runs ahead cannot push windows and the cursor
	// past records the appliance has not created yet. aheadLogged keeps that to one error per
	// disagreement.
	status, statusMono time.Time
	aheadLogged        bool
}

// NewClock returns the clock of one appliance, logging corrections to log.
func NewClock(log zerolog.Logger) *Clock { return &Clock{log: log} }

// Now returns the estimated appliance time (ours until the appliance first answered).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced {
		return time.Now()
	}
	return c.at.Add(time.Since(c.mono))
}

// set anchors the estimate at appliance time at, read at our (monotonic) instant mono, and logs
// a correction larger than clockTolerance.
func (c *Clock) set(at, mono time.Time, why string) {
	c.mu.Lock()
	wasSynced := c.synced
	before := time.Now()
	if c.synced {
		before = c.at.Add(mono.Sub(c.mono))
	}
	c.at, c.mono, c.synced = at, mono, true
	c.mu.Unlock()
	step := at.Sub(before)
	if step.Abs() < clockTolerance {
		return
	}
	ev := c.log.Info()
	switch {
	case wasSynced && step.Abs() < clockBehindTolerance:
		ev = c.log.Debug() // transit time of one answer, most likely
	case wasSynced || step.Abs() > SkewWarning:
		ev = c.log.Warn()
	}
	// Our wall clock is only for the reader: Now never uses it.
	ev.Dur("correction_ms", step.Round(time.Second)).Dur("offset_from_our_clock_ms", at.Sub(mono.Round(0)).Round(time.Second)).
		Str("appliance_time", at.UTC().Format(time.RFC3339)).Str("from", why).
		Msg("appliance clock differs from ours (or from our last reading of it); windows follow the appliance clock (fix NTP)")
}

// Observe is the darktrace.Config.OnDate hook: an answer's Date header. It re-anchors the
// estimate only when the estimate is off by more than clockTolerance, so the finer /status
// reading is not replaced by a coarse one on every request.
func (c *Clock) Observe(date time.Time) {
	now := time.Now()
	c.mu.Lock()
	synced, est := c.synced, c.at.Add(now.Sub(c.mono))
	c.mu.Unlock()
	if !synced {
		est = now
	}
	c.mu.Lock()
	status, statusMono := c.status, c.statusMono
	c.mu.Unlock()
	if !status.IsZero() {
		if ahead := date.Sub(status.Add(now.Sub(statusMono))); ahead > clockBehindTolerance {
			c.mu.Lock()
			logged := c.aheadLogged
			c.aheadLogged = true
			c.mu.Unlock()
			if !logged {
				c.log.Error().Dur("ahead_ms", ahead.Round(time.Second)).Str("date_header", date.UTC().Format(time.RFC3339)).
					Msg("the answers' Date header is ahead of the appliance clock /status reports (a proxy with a wrong clock?); windows follow /status, the Date is ignored until they agree")
			}
			return
		}
		c.mu.Lock()
		c.aheadLogged = false
		c.mu.Unlock()
	}
	// Date is truncated to the second: the appliance time is in [date, date+1s) plus transit.
	if d := est.Sub(date); d < -clockBehindTolerance || d > clockTolerance+time.Second || !synced {
		c.set(date, now, "response Date header")
	}
}

// Sync reads /status (through status, under r's request slot) and anchors the estimate at its time (taken at the middle of the
// request). A failed reading is logged at warn and leaves the estimate as it is; the caller
// retries sooner. It reports whether the reading succeeded.
func (c *Clock) Sync(ctx context.Context, r *source.Reader, status func(context.Context) (*darktrace.Status, error)) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var st *darktrace.Status
	var before time.Time
	err := r.Exclusive(ctx, func(ctx context.Context) error {
		var err error
		before = time.Now()
		st, err = status(ctx)
		return err
	})
	if ctx.Err() != nil {
		return false
	}
	var at time.Time
	if err == nil {
		at, err = st.ApplianceTime()
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("reading the appliance clock from /status failed; keeping the current estimate (windows still never end after an answer's Date)")
		return false
	}
	after := time.Now()
	mid := before.Add(after.Sub(before) / 2)
	c.mu.Lock()
	c.status, c.statusMono = at, mid
	c.mu.Unlock()
	c.set(at, mid, "/status")
	return true
}

// Run re-syncs every clockSyncEvery (clockRetryEvery after a failure) until ctx ends; ok is
// whether the last Sync succeeded.
func (c *Clock) Run(ctx context.Context, r *source.Reader, status func(context.Context) (*darktrace.Status, error), ok bool) {
	for {
		wait := clockSyncEvery
		if !ok {
			wait = clockRetryEvery
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			ok = c.Sync(ctx, r, status)
		}
	}
}
