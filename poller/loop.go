package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/metrics"
)

// Deliverer hands a batch of alerts to the SIEM. cmd composes the formatter and the sink into
// one, so the poller depends on neither.
type Deliverer interface {
	// Deliver sends alerts in order. It returns nil only when the SIEM side accepted every alert
	// (an alert the formatter cannot render at all is logged and skipped, not an error). On
	// error the poller resends the whole batch later (at-least-once). Deliver may be called
	// concurrently by several appliances' goroutines and must honour ctx.
	Deliver(ctx context.Context, alerts []*alert.Alert) error
}

// Defaults for the zero fields of Config.
const (
	DefaultInterval        = 60 * time.Second
	DefaultOverlap         = 10 * time.Minute
	DefaultMaxWindow       = 6 * time.Hour
	DefaultRetryMin        = time.Second
	DefaultRetryMax        = 60 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// Config configures one appliance's poller.
type Config struct {
	Pipeline  *Pipeline // the appliance's fetch path (and its label)
	Sources   []string  // modelbreaches, antigena, aianalyst
	Store     *Store    // the appliance's checkpoint
	Deliverer Deliverer

	Interval time.Duration // time between the starts of two polls (POLL_INTERVAL)
	Overlap  time.Duration // each window re-reads this much before the cursor (POLL_OVERLAP)
	// Start is where a source without a checkpoint begins (now − POLL_START).
	Start time.Time
	// MaxWindow bounds one request's window, so catching up after a long outage is a series of
	// bounded responses (the API does not paginate) rather than one enormous one.
	MaxWindow time.Duration

	// RetryMin and RetryMax bound the exponential backoff of failed fetches and sends.
	RetryMin, RetryMax time.Duration
	// RetryAfter, when set, extracts a server-requested delay (HTTP 429 Retry-After) from a
	// fetch error; a longer one replaces the backoff delay.
	RetryAfter func(error) time.Duration
	// ShutdownTimeout is how long an in-flight send may continue after ctx is cancelled.
	ShutdownTimeout time.Duration
	// SummaryEvery is how often the appliance's poll totals are logged at info
	// (DefaultSummaryEvery when zero); a poll that forwarded nothing is logged at debug.
	SummaryEvery time.Duration

	Now     func() time.Time // default time.Now
	Logger  zerolog.Logger
	Metrics *metrics.Metrics // may be nil

	// Per-source state (state.go); zero values pick the documented defaults.
	AntigenaGrace            time.Duration // keep an absent action's state this long (DefaultAntigenaGrace)
	AIAnalystRefreshHorizon  time.Duration // re-read incident events this far back; <0 = never
	AIAnalystRefreshInterval time.Duration // between two re-reads of the horizon
	AIAnalystMaxTracked      int           // incident events remembered for the refresh at most
	GapRecheck               time.Duration // between two by-id checks of one missing pbid
	GapHorizon               time.Duration // give a missing pbid up after this long
	MaxGaps                  int           // missing pbids tracked at most
}

// Appliance polls one appliance: one goroutine per source, sharing one request slot and one
// checkpoint file.
type Appliance struct {
	cfg     Config
	name    string
	sources []*sourceRun
	summary *pollSummary
}

// sourceRun is one source's loop state; the mutex guards what Status reads.
type sourceRun struct {
	src *Source
	log zerolog.Logger

	mu         sync.Mutex
	cursor     time.Time
	fetchErr   string
	sinkErr    string
	persistErr string
}

// NewAppliance checks cfg, reads each source's checkpoint and returns the poller.
func NewAppliance(cfg Config) (*Appliance, error) {
	if cfg.Pipeline == nil || cfg.Store == nil || cfg.Deliverer == nil {
		return nil, errors.New("poller: Pipeline, Store and Deliverer are required")
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("poller: no sources")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Overlap < 0 {
		return nil, fmt.Errorf("poller: negative overlap %s", cfg.Overlap)
	}
	if cfg.MaxWindow <= 0 {
		cfg.MaxWindow = DefaultMaxWindow
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.setStateDefaults()
	if cfg.Start.IsZero() {
		cfg.Start = cfg.Now().Add(-time.Hour)
	}
	a := &Appliance{cfg: cfg, name: cfg.Pipeline.Appliance(), summary: newPollSummary(cfg.SummaryEvery, time.Now())}
	seen := map[string]bool{}
	for _, name := range cfg.Sources {
		if seen[name] {
			continue
		}
		seen[name] = true
		src, err := cfg.Pipeline.Source(name)
		if err != nil {
			return nil, fmt.Errorf("poller: %w", err)
		}
		r := &sourceRun{src: src, log: cfg.Logger.With().Str("appliance", a.name).Str("source", name).Logger()}
		r.cursor = cfg.Start
		if ss, ok := cfg.Store.Source(name); ok {
			r.cursor = time.UnixMilli(ss.Cursor)
		}
		a.sources = append(a.sources, r)
	}
	cfg.Metrics.AddLagFunc(a.lags)
	return a, nil
}

// Name returns the appliance label.
func (a *Appliance) Name() string { return a.name }

// Run polls until ctx is cancelled, then lets an in-flight send finish for up to
// ShutdownTimeout, persists only what was delivered, and returns nil.
func (a *Appliance) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range a.sources {
		wg.Go(func() { a.runSource(ctx, r) })
	}
	wg.Wait()
	return nil
}

// SourceStatus is a snapshot of one source for /readyz and tests.
type SourceStatus struct {
	Appliance, Source string
	Cursor            time.Time // end of the last delivered window
	FetchError        string    // last appliance error while it persists, else ""
	SinkError         string    // last delivery error while it persists, else ""
	PersistError      string    // last checkpoint write error while it persists, else ""
}

// Status returns a snapshot of every source.
func (a *Appliance) Status() []SourceStatus {
	out := make([]SourceStatus, 0, len(a.sources))
	for _, r := range a.sources {
		r.mu.Lock()
		out = append(out, SourceStatus{Appliance: a.name, Source: r.src.Name(), Cursor: r.cursor,
			FetchError: r.fetchErr, SinkError: r.sinkErr, PersistError: r.persistErr})
		r.mu.Unlock()
	}
	return out
}

// Ready returns nil when every source is healthy: the appliance answers, the sink accepts, the
// checkpoint can be written and lags at most three intervals behind now.
func (a *Appliance) Ready() error {
	var errs []error
	now := a.cfg.Now()
	for _, s := range a.Status() {
		where := a.name + "/" + s.Source
		switch {
		case s.FetchError != "":
			errs = append(errs, fmt.Errorf("%s: appliance failing: %s", where, s.FetchError))
		case s.SinkError != "":
			errs = append(errs, fmt.Errorf("%s: sink failing: %s", where, s.SinkError))
		case s.PersistError != "":
			errs = append(errs, fmt.Errorf("%s: checkpoint not saved: %s", where, s.PersistError))
		}
		if lag := now.Sub(s.Cursor); lag > 3*a.cfg.Interval {
			errs = append(errs, fmt.Errorf("%s: checkpoint lags %s (more than 3 intervals)", where, lag.Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

func (a *Appliance) lags() []metrics.Lag {
	now := a.cfg.Now()
	out := make([]metrics.Lag, 0, len(a.sources))
	for _, s := range a.Status() {
		out = append(out, metrics.Lag{Appliance: a.name, Source: s.Source, Lag: now.Sub(s.Cursor)})
	}
	return out
}

// runSource is one source's loop: window → fetch → dedupe → deliver → persist → wait.
func (a *Appliance) runSource(ctx context.Context, r *sourceRun) {
	name := r.src.Name()
	ss, _ := a.cfg.Store.Source(name)
	seen := ss.Seen
	if seen == nil {
		seen = map[string]Seen{}
	}
	st := a.newSourceState(r, ss)
	m := a.cfg.Metrics
	for ctx.Err() == nil {
		// Windows use cfg.Now (the appliance's clock in production); waiting uses the local
		// monotonic clock, which an offset appliance clock must not stretch or shrink.
		wallStart := time.Now()
		cycleStart := a.cfg.Now()
		r.mu.Lock()
		cursor := r.cursor
		r.mu.Unlock()

		// The window: the cursor minus the overlap (late and slow-to-appear records), up to
		// now, split into MaxWindow pieces when far behind.
		start := cursor.Add(-a.cfg.Overlap)
		end := cycleStart
		caughtUp := true
		if end.Sub(start) > a.cfg.MaxWindow+a.cfg.Overlap {
			end = start.Add(a.cfg.MaxWindow + a.cfg.Overlap)
			caughtUp = false
		}
		if !end.After(cursor) && r.src.Windowed() {
			// The clock went backwards (or the checkpoint is from the future): wait it out
			// rather than re-reading a window that cannot hold anything new.
			end = cursor
		}

		b := a.fetch(ctx, r, start, end)
		if b == nil {
			return // ctx cancelled while fetching or backing off
		}
		m.AddRecords(a.name, name, metrics.OutcomeFetched, b.Stats.Fetched)
		m.AddRecords(a.name, name, metrics.OutcomeMalformed, b.Stats.Malformed)
		m.AddRecords(a.name, name, metrics.OutcomeFiltered, b.Stats.Filtered)

		fresh := make([]*alert.Alert, 0, len(b.Items))
		for _, it := range b.Items {
			if prev, ok := seen[it.Key]; ok && prev.Version == it.Version {
				b.Stats.Deduped++
				continue
			}
			fresh = append(fresh, it.Alert)
		}
		m.AddRecords(a.name, name, metrics.OutcomeDeduped, b.Stats.Deduped)
		if len(fresh) > 0 {
			if !a.deliver(ctx, r, fresh) {
				r.log.Warn().Int("abandoned", len(fresh)).Msg("shutting down: batch not delivered; it will be fetched again on restart")
				return
			}
			b.Stats.Sent = len(fresh)
			m.AddRecords(a.name, name, metrics.OutcomeSent, b.Stats.Sent)
		}

		// Everything up to end is delivered: move the cursor, remember what was sent while it
		// can still come back, forget what cannot (state.go).
		seen = st.afterDelivery(seen, b, end)
		if end.Before(cursor) {
			end = cursor
		}
		r.mu.Lock()
		r.cursor = end
		r.mu.Unlock()
		if err := a.cfg.Store.Commit(name, st.checkpoint(end, seen)); err != nil {
			// Keep polling: the in-memory state is right and the next commit retries the write;
			// /readyz shows the problem, and a crash now costs duplicates, never losses.
			r.setErr(&r.persistErr, err, "checkpoint not saved")
		} else {
			r.clearErr(&r.persistErr, "checkpoint saved again")
		}

		d := a.cfg.Now().Sub(cycleStart)
		m.ObservePoll(a.name, name, d)
		ev := r.log.Info()
		if quiet(b.Stats) {
			ev = r.log.Debug()
		}
		ev.Time("window_start", start).Time("window_end", end).
			Int("fetched", b.Stats.Fetched).Int("sent", b.Stats.Sent).Int("deduped", b.Stats.Deduped).
			Int("filtered", b.Stats.Filtered).Int("malformed", b.Stats.Malformed).
			Dur("duration_ms", d).Msg("poll")
		a.summary.add(a.cfg.Logger, a.name, b.Stats, time.Now())

		if caughtUp {
			a.summary.caughtUp(a.cfg.Logger, a.name, wallStart.Add(a.cfg.Interval), a.cfg.Interval)
		}
		if caughtUp && !st.between(ctx, seen) {
			return
		}
		if caughtUp && !sleep(ctx, time.Until(wallStart.Add(a.cfg.Interval))) {
			return
		}
	}
}

// fetch fetches a window, retrying with backoff until it succeeds; nil means ctx ended.
func (a *Appliance) fetch(ctx context.Context, r *sourceRun, start, end time.Time) *Batch {
	bo := Backoff{Min: a.cfg.RetryMin, Max: a.cfg.RetryMax}
	for {
		b, err := r.src.Fetch(ctx, start, end)
		if err == nil {
			r.clearErr(&r.fetchErr, "appliance answers again")
			return b
		}
		if ctx.Err() != nil {
			return nil
		}
		a.cfg.Metrics.APIError(a.name, r.src.Name())
		delay := bo.Next()
		if a.cfg.RetryAfter != nil {
			if ra := a.cfg.RetryAfter(err); ra > delay {
				delay = min(ra, 10*a.cfg.RetryMax)
			}
		}
		r.setErr(&r.fetchErr, err, "appliance request failed; retrying")
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// deliver sends alerts, retrying the same batch with backoff until the Deliverer accepts it.
// After ctx is cancelled the current attempt may run on for ShutdownTimeout; no new attempt
// starts. It reports whether the batch was delivered.
func (a *Appliance) deliver(ctx context.Context, r *sourceRun, alerts []*alert.Alert) bool {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(a.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-dctx.Done():
		}
	})
	defer stop()

	bo := Backoff{Min: a.cfg.RetryMin, Max: a.cfg.RetryMax}
	for {
		err := a.cfg.Deliverer.Deliver(dctx, alerts)
		if err == nil {
			r.clearErr(&r.sinkErr, "sink accepts again")
			return true
		}
		a.cfg.Metrics.SinkError()
		r.setErr(&r.sinkErr, err, "sink did not accept the batch; keeping it and retrying")
		if ctx.Err() != nil || !sleep(ctx, bo.Next()) {
			return false
		}
	}
}

// setErr records a failure and logs it only when its text changed, so an outage is one warning,
// not one per retry.
func (r *sourceRun) setErr(field *string, err error, msg string) {
	text := err.Error()
	r.mu.Lock()
	changed := *field != text
	*field = text
	r.mu.Unlock()
	if changed {
		r.log.Warn().Str("error", text).Msg(msg)
	} else {
		r.log.Debug().Str("error", text).Msg(msg)
	}
}

func (r *sourceRun) clearErr(field *string, msg string) {
	r.mu.Lock()
	was := *field
	*field = ""
	r.mu.Unlock()
	if was != "" {
		r.log.Info().Msg(msg)
	}
}
