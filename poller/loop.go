package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/retry"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/source"
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
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxRecords bounds the records of one response (and so the memory one poll holds):
	// a window holding more is fetched in halves.
	DefaultMaxRecords = 5000
	// DefaultMinWindow is the smallest piece a window is split into.
	DefaultMinWindow = time.Second
	// DefaultSendBatch bounds one Deliver call; the checkpoint moves after each, so a crash
	// repeats at most one.
	DefaultSendBatch = 1000
	// splitAfterTimeouts is how many timeouts in a row of one window make it be fetched in
	// halves instead of identically again.
	splitAfterTimeouts = 2
)

// Config configures one appliance's poller.
type Config struct {
	Reader    *source.Reader    // the appliance's read path (and its label)
	Sources   []string          // modelbreaches, antigena, aianalyst
	Store     *checkpoint.Store // the appliance's checkpoint
	Deliverer Deliverer

	Interval time.Duration // time between the starts of two polls (POLL_INTERVAL)
	Overlap  time.Duration // each window re-reads this much before the cursor (POLL_OVERLAP)
	// Start is where a source without a checkpoint begins (now − POLL_START).
	Start time.Time
	// MaxWindow bounds one request's window, so catching up after a long outage is a series of
	// bounded responses (the API does not paginate) rather than one enormous one.
	MaxWindow time.Duration
	// MaxRecords caps the records one response may carry (default DefaultMaxRecords): a window
	// holding more, or timing out twice, is fetched in halves, down to MinWindow (default
	// DefaultMinWindow), where a window is fetched whole rather than never. Windows after a
	// split start at the size that worked and grow back by doubling.
	MaxRecords int
	MinWindow  time.Duration
	// SendBatch bounds the alerts of one Deliver call (default DefaultSendBatch); the
	// checkpoint moves after each delivered batch, so a crash repeats at most one.
	SendBatch int

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

// Poller polls one appliance for one destination: one goroutine per source, sharing one
// request slot and one checkpoint file.
type Poller struct {
	cfg     Config
	name    string
	sources []*sourceRun
	summary *pollSummary
}

// sourceRun is one source's loop state; the mutex guards what Status reads.
type sourceRun struct {
	src    *source.Source
	capped *source.Source // src with at most Config.MaxRecords records per response
	log    zerolog.Logger

	mu         sync.Mutex
	cursor     time.Time
	fetchErr   string
	sinkErr    string
	persistErr string
}

// New checks cfg, reads each source's checkpoint and returns the poller.
func New(cfg Config) (*Poller, error) {
	if cfg.Reader == nil || cfg.Store == nil || cfg.Deliverer == nil {
		return nil, errors.New("poller: Reader, Store and Deliverer are required")
	}
	if len(cfg.Sources) == 0 {
		return nil, errors.New("poller: no sources")
	}
	cfg.Interval = positive(cfg.Interval, DefaultInterval)
	if cfg.Overlap < 0 {
		return nil, fmt.Errorf("poller: negative overlap %s", cfg.Overlap)
	}
	cfg.MaxWindow = positive(cfg.MaxWindow, DefaultMaxWindow)
	cfg.MaxRecords = positive(cfg.MaxRecords, DefaultMaxRecords)
	cfg.MinWindow = positive(cfg.MinWindow, DefaultMinWindow)
	cfg.MinWindow = max(min(cfg.MinWindow, cfg.MaxWindow), time.Millisecond)
	cfg.SendBatch = positive(cfg.SendBatch, DefaultSendBatch)
	cfg.RetryMin, cfg.RetryMax = retry.Bounds(cfg.RetryMin, cfg.RetryMax)
	cfg.ShutdownTimeout = positive(cfg.ShutdownTimeout, DefaultShutdownTimeout)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.AntigenaGrace = positive(cfg.AntigenaGrace, DefaultAntigenaGrace)
	if cfg.AIAnalystRefreshHorizon == 0 {
		cfg.AIAnalystRefreshHorizon = DefaultAIAnalystRefreshHorizon
	}
	cfg.AIAnalystRefreshInterval = positive(cfg.AIAnalystRefreshInterval, DefaultAIAnalystRefreshInterval)
	cfg.AIAnalystMaxTracked = positive(cfg.AIAnalystMaxTracked, DefaultAIAnalystMaxTracked)
	cfg.GapRecheck = positive(cfg.GapRecheck, DefaultGapRecheck)
	cfg.GapHorizon = positive(cfg.GapHorizon, DefaultGapHorizon)
	cfg.MaxGaps = positive(cfg.MaxGaps, DefaultMaxGaps)
	if cfg.Start.IsZero() {
		cfg.Start = cfg.Now().Add(-time.Hour)
	}
	a := &Poller{cfg: cfg, name: cfg.Reader.Appliance(), summary: newPollSummary(cfg.SummaryEvery, time.Now())}
	// The same reader (and request slot), its responses cut off past MaxRecords.
	capped := cfg.Reader.With(func(f fetch.Fetcher) fetch.Fetcher { return fetch.Capped{Next: f, Max: cfg.MaxRecords} }, false, cfg.Logger)
	seen := map[string]bool{}
	for _, name := range cfg.Sources {
		if seen[name] {
			continue
		}
		seen[name] = true
		src, err := cfg.Reader.Source(name)
		if err != nil {
			return nil, fmt.Errorf("poller: %w", err)
		}
		r := &sourceRun{src: src, log: cfg.Logger.With().Str("appliance", a.name).Str("source", name).Logger()}
		r.capped, _ = capped.Source(name)
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
func (a *Poller) Name() string { return a.name }

// Run polls until ctx is cancelled, then lets an in-flight send finish for up to
// ShutdownTimeout, persists only what was delivered, and returns nil.
func (a *Poller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range a.sources {
		wg.Go(func() { a.runSource(ctx, r) })
	}
	wg.Wait()
	if err := a.cfg.Store.Flush(); err != nil {
		a.cfg.Logger.Warn().Str("appliance", a.name).Err(err).Msg("checkpoint not saved durably at shutdown; a power loss now would repeat recent alerts")
	}
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
func (a *Poller) Status() []SourceStatus {
	out := make([]SourceStatus, 0, len(a.sources))
	for _, r := range a.sources {
		r.mu.Lock()
		out = append(out, SourceStatus{Appliance: a.name, Source: r.src.Name(), Cursor: r.cursor,
			FetchError: r.fetchErr, SinkError: r.sinkErr, PersistError: r.persistErr})
		r.mu.Unlock()
	}
	return out
}

// dateResolution is how far a caught-up cursor may trail now by design: no window ends past the
// appliance's Date header, which has whole seconds.
const dateResolution = time.Second

// Ready returns nil when every source is healthy: the appliance answers, the sink accepts, the
// checkpoint can be written and lags at most three intervals (plus dateResolution) behind now.
func (a *Poller) Ready() error {
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
		if lag := now.Sub(s.Cursor); lag > 3*a.cfg.Interval+dateResolution {
			errs = append(errs, fmt.Errorf("%s: checkpoint lags %s (more than 3 intervals)", where, lag.Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

// lags reports each source's lag from the cursor on disk (what a restart resumes from), not
// the one in memory: while the checkpoint cannot be written the lag keeps growing.
func (a *Poller) lags() []metrics.Lag {
	now := a.cfg.Now()
	out := make([]metrics.Lag, 0, len(a.sources))
	for _, s := range a.Status() {
		cursor := s.Cursor
		if ms, ok := a.cfg.Store.Written(s.Source); ok {
			cursor = time.UnixMilli(ms)
		}
		out = append(out, metrics.Lag{Appliance: a.name, Source: s.Source, Lag: now.Sub(cursor)})
	}
	return out
}

// runSource is one source's loop: window → fetch (in pieces) → dedupe → deliver in batches →
// persist after each → wait.
func (a *Poller) runSource(ctx context.Context, r *sourceRun) {
	name := r.src.Name()
	ss, _ := a.cfg.Store.Source(name)
	seen := checkpoint.NewDelivered(ss)
	st := a.newSourceState(r, ss)
	m := a.cfg.Metrics
	// span is the window size expected to hold about 3/4 of MaxRecords, from the density of
	// the last window: a catch-up is not a split and a wasted capped response every time.
	span := a.cfg.MaxWindow
	// visible is the appliance time the last window was read at (zero after a start): every
	// record created before visible − overlap had appeared by then.
	var visible time.Time
	// resume is where a partial poll stopped (zero otherwise): the next window goes on from
	// there, as the split window's next half would have, instead of starting again at
	// cursor − overlap. Without it a window over the cap inside the overlap (a burst) was
	// split, its first half delivered (behind the cursor, so the cursor did not move), and the
	// same first half fetched again, poll after poll.
	var resume time.Time
	for ctx.Err() == nil {
		// Windows use cfg.Now (the appliance's clock in production); waiting uses the local
		// monotonic clock, which an offset appliance clock must not stretch or shrink.
		wallStart := time.Now()
		cycleStart := a.cfg.Now()
		r.mu.Lock()
		cursor := r.cursor
		r.mu.Unlock()

		// The window: the cursor minus the overlap (late and slow-to-appear records), up to
		// now, split into span pieces when far behind. Re-reading the overlap is needless
		// when the last window was read long after its end (catching up): what it holds had
		// appeared by then.
		start := cursor.Add(-a.cfg.Overlap)
		if v := visible.Add(-a.cfg.Overlap); v.After(start) {
			start = v
			if start.After(cursor) {
				start = cursor
			}
		}
		if resume.After(start) {
			start = resume
		}
		end := cycleStart
		caughtUp := true
		if end.Sub(start) > span+a.cfg.Overlap {
			end = start.Add(span + a.cfg.Overlap)
			caughtUp = false
		}
		if !end.After(cursor) && r.src.Windowed() {
			// The clock went backwards (or the checkpoint is from the future): wait it out
			// rather than re-reading a window that cannot hold anything new.
			end = cursor
		}

		p := &poll{a: a, r: r, st: st, seen: seen, cursor: cursor}
		ok := p.window(ctx, start, end)
		if !ok {
			return // ctx cancelled while fetching, backing off or delivering
		}
		resume = time.Time{}
		if p.partial {
			caughtUp = false
			resume = p.reached
		}
		visible = p.readAt
		if visible.IsZero() || visible.After(cycleStart) {
			visible = cycleStart
		}
		if !caughtUp || p.split {
			span = a.nextSpan(p.stats.Fetched, p.covered)
			if p.slow {
				span = min(span, p.covered)
			}
		}

		d := a.cfg.Now().Sub(cycleStart)
		m.ObservePoll(a.name, name, d)
		ev := r.log.Info()
		if quiet(p.stats) {
			ev = r.log.Debug()
		}
		ev.Time("window_start", start).Time("window_end", p.cursor).
			Int("fetched", p.stats.Fetched).Int("sent", p.stats.Sent).Int("deduped", p.stats.Deduped).
			Int("filtered", p.stats.Filtered).Int("malformed", p.stats.Malformed).Int("pieces", p.pieces).
			Dur("duration_ms", d).Msg("poll")
		a.summary.add(a.cfg.Logger, a.name, p.stats, time.Now())

		if caughtUp {
			// After an outage the cycle outlasted the interval: the next poll is now, not at a
			// time already past.
			a.summary.caughtUp(a.cfg.Logger, a.name, later(wallStart.Add(a.cfg.Interval), time.Now()), a.cfg.Interval)
		}
		if caughtUp && !st.between(ctx, seen) {
			return
		}
		if caughtUp && !retry.Sleep(ctx, time.Until(wallStart.Add(a.cfg.Interval))) {
			return
		}
	}
}

// deliver sends alerts, retrying the same batch with backoff until the Deliverer accepts it.
// After ctx is cancelled the current attempt may run on for ShutdownTimeout; no new attempt
// starts. It reports whether the batch was delivered.
func (a *Poller) deliver(ctx context.Context, r *sourceRun, alerts []*alert.Alert) bool {
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

	// A collector that asked us to wait (HTTP 429/503 Retry-After) is given that long, not
	// hammered at the backoff's pace.
	policy := retry.Policy{Min: a.cfg.RetryMin, Max: a.cfg.RetryMax, RetryAfter: sink.RetryAfterOf}
	err := policy.Do(ctx, func() error {
		err := a.cfg.Deliverer.Deliver(dctx, alerts)
		if err == nil {
			r.clearErr(&r.sinkErr, "sink accepts again")
			return nil
		}
		r.setErr(&r.sinkErr, err, "sink did not accept the batch; keeping it and retrying")
		return err
	}, nil)
	return err == nil
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

// positive returns v when it is positive, else the default d: the zero fields of a Config.
func positive[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
