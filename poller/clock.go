package poller

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
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
//
// clockBehindTolerance is also the bound of a disagreement: a Date further than it from the
// estimate (either way) moves nothing until /status confirms it. It is a fixed bound rather
// than POLL_OVERLAP because a check costs one /status request while a wrong jump can cost
// alerts, and because 30 s is well above what a second's resolution and an answer's transit
// explain, yet small enough that a Date ahead within it stays inside any sane POLL_OVERLAP.
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
// future.
//
// One source decides: /status. An answer's Date header corrects the estimate by itself only
// within clockBehindTolerance (and only back, beyond clockTolerance); a larger disagreement is
// checked against /status first (Run), because a reverse proxy in front of the appliance may
// stamp its own, wrong, Date, and following a Date ahead of the appliance would move windows
// and the cursor past records it has not created yet. A jump /status confirms (the appliance's
// clock was set) is taken; one it does not is an error logged once per episode and counted in
// dtforward_clock_disagreements_total, and the estimate stays.
type Clock struct {
	mu     sync.Mutex
	synced bool // some reading anchors the estimate
	// confirmed: /status was read at least once; before that, the Date is all there is and
	// is followed as it always was.
	confirmed bool
	at        time.Time // appliance time at the last reading
	mono      time.Time // our time.Now() at that reading: only its monotonic part is used
	log       zerolog.Logger

	// cand is a Date that disagreed with the estimate, read at our instant candMono, waiting
	// for /status (pending). While probing, requests are signed with it: an appliance whose
	// clock jumped more than 30 minutes rejects a /status signed with the old estimate.
	cand, candMono time.Time
	pending        bool
	probing        bool
	verify         chan struct{}
	// refuted is the Date's offset from /status that the last check found, until refutedAt +
	// clockSyncEvery: the same disagreement is not re-checked on every answer. errLogged is
	// set while an episode of disagreement lasts, so it is one error, not one per answer.
	refuted   time.Duration
	refutedAt time.Time
	errLogged bool

	metrics   *metrics.Metrics
	appliance string
}

// NewClock returns the clock of one appliance, logging corrections to log.
func NewClock(log zerolog.Logger) *Clock {
	return &Clock{log: log, verify: make(chan struct{}, 1)}
}

// Report makes the clock count disagreements and their size in m, labelled appliance. It
// returns c.
func (c *Clock) Report(m *metrics.Metrics, appliance string) *Clock {
	c.metrics, c.appliance = m, appliance
	m.ClockSkew(appliance, 0)
	return c
}

// Now returns the estimated appliance time (ours until the appliance first answered).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.synced {
		return time.Now()
	}
	return c.at.Add(time.Since(c.mono))
}

// SignNow is the time requests are signed with (darktrace.Config.Now): Now, except while a
// /status check signs with the candidate Date it checks.
func (c *Clock) SignNow() time.Time {
	c.mu.Lock()
	if c.probing {
		defer c.mu.Unlock()
		return c.cand.Add(time.Since(c.candMono))
	}
	c.mu.Unlock()
	return c.Now()
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

// Observe is the darktrace.Config.OnDate hook: an answer's Date header. Within
// clockBehindTolerance it re-anchors the estimate only when the estimate is ahead of it by more
// than clockTolerance, so the finer /status reading is not replaced by a coarse one on every
// request. Beyond clockBehindTolerance, either way, it moves nothing: it asks Run to check
// /status, unless that very disagreement was refuted by /status lately.
func (c *Clock) Observe(date time.Time) {
	now := time.Now()
	c.mu.Lock()
	synced, confirmed, est := c.synced, c.confirmed, c.at.Add(now.Sub(c.mono))
	if !synced {
		est = now
	}
	// Date is truncated to the second: the appliance time is in [date, date+1s) plus transit.
	off := date.Sub(est)
	if confirmed {
		c.metrics.ClockSkew(c.appliance, off)
	}
	if !confirmed || off.Abs() <= clockBehindTolerance {
		agree := confirmed && off.Abs() <= clockBehindTolerance
		ended := agree && c.errLogged
		if agree {
			c.errLogged, c.refutedAt = false, time.Time{}
		}
		c.mu.Unlock()
		if ended {
			c.log.Info().Msg("the answers' Date header agrees with the appliance clock /status reports again")
		}
		if d := -off; d < -clockBehindTolerance || d > clockTolerance+time.Second || !synced {
			c.set(date, now, "response Date header")
		}
		return
	}
	if !c.refutedAt.IsZero() && now.Sub(c.refutedAt) < clockSyncEvery && (off-c.refuted).Abs() <= clockBehindTolerance {
		c.mu.Unlock()
		return // the disagreement /status refuted lately: windows follow /status
	}
	if c.pending {
		// Already asked for; a check that failed is retried by Run, not once per answer.
		c.mu.Unlock()
		return
	}
	c.cand, c.candMono, c.pending = date, now, true
	c.mu.Unlock()
	select {
	case c.verify <- struct{}{}:
	default: // a check is already asked for
	}
}

// Sync reads /status (through status, under r's request slot) and anchors the estimate at its
// time (taken at the middle of the request). With a Date waiting for confirmation, the reading
// decides: a Date /status agrees with is taken (the appliance clock jumped); one it does not is
// logged as an error and counted, and the estimate follows /status. When the appliance refuses
// /status signed with the estimate for its date (more than 30 minutes off), the check is signed
// with the candidate Date, which only an appliance whose clock is near that Date accepts.
// A failed reading is logged at warn and leaves the estimate as it is; the caller retries
// sooner. It reports whether the reading succeeded.
func (c *Clock) Sync(ctx context.Context, r *source.Reader, status func(context.Context) (*darktrace.Status, error)) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	at, mid, err := c.read(ctx, r, status)
	c.mu.Lock()
	pending := c.pending
	c.mu.Unlock()
	if errors.Is(err, darktrace.ErrClockSkew) && pending && ctx.Err() == nil {
		c.mu.Lock()
		c.probing = true
		c.mu.Unlock()
		at, mid, err = c.read(ctx, r, status)
		c.mu.Lock()
		c.probing = false
		c.mu.Unlock()
	}
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		c.log.Warn().Err(err).Msg("reading the appliance clock from /status failed; keeping the current estimate (windows still never end after an answer's Date)")
		return false
	}
	c.mu.Lock()
	c.confirmed = true
	cand, candMono := c.cand, c.candMono
	c.pending = false
	c.mu.Unlock()
	c.set(at, mid, "/status")
	if !pending {
		return true
	}
	// The candidate Date, carried to the instant /status was read, against /status.
	off := cand.Add(mid.Sub(candMono)).Sub(at)
	if off.Abs() <= clockBehindTolerance+time.Second {
		c.log.Info().Str("appliance_time", at.UTC().Format(time.RFC3339)).
			Msg("/status confirms the jump the answers' Date header showed; windows follow it")
		return true
	}
	c.metrics.ClockDisagreement(c.appliance)
	c.metrics.ClockSkew(c.appliance, off)
	c.mu.Lock()
	c.refuted, c.refutedAt = off, time.Now()
	logged := c.errLogged
	c.errLogged = true
	c.mu.Unlock()
	ev := c.log.Error()
	if logged {
		ev = c.log.Debug()
	}
	ev.Dur("date_ahead_of_status_ms", off.Round(time.Second)).Str("date_header", cand.UTC().Format(time.RFC3339)).
		Str("status_time", at.UTC().Format(time.RFC3339)).
		Msg("the answers' Date header disagrees with the appliance clock /status reports (a proxy with a wrong clock?); windows and the checkpoint follow /status, never the Date, until they agree")
	return true
}

// read is one /status reading under r's request slot: the appliance time and our instant of it.
func (c *Clock) read(ctx context.Context, r *source.Reader, status func(context.Context) (*darktrace.Status, error)) (at, mid time.Time, err error) {
	var st *darktrace.Status
	var before time.Time
	err = r.Exclusive(ctx, func(ctx context.Context) error {
		var err error
		before = time.Now()
		st, err = status(ctx)
		return err
	})
	if err == nil {
		at, err = st.ApplianceTime()
	}
	after := time.Now()
	return at, before.Add(after.Sub(before) / 2), err
}

// Run re-syncs every clockSyncEvery (clockRetryEvery after a failure), and at once when an
// answer's Date asks for a check, until ctx ends; ok is whether the last Sync succeeded.
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
		case <-c.verify:
			t.Stop()
		}
		ok = c.Sync(ctx, r, status)
	}
}
