package poller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
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
	// DefaultMaxRecords bounds the records of one response (and so the memory one poll holds):
	// a window holding more is fetched in halves.
	DefaultMaxRecords = 5000
	// DefaultMinWindow is the smallest piece a window is split into.
	DefaultMinWindow = time.Second
	// DefaultSendBatch bounds one Deliver call; the checkpoint moves after each.
	DefaultSendBatch = backfillBatch
	// splitAfterTimeouts is how many timeouts in a row of one window make it be fetched in
	// halves instead of identically again.
	splitAfterTimeouts = 2
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
	src    *Source
	capped *Source // src with at most Config.MaxRecords records per response
	log    zerolog.Logger

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
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = DefaultMaxRecords
	}
	if cfg.MinWindow <= 0 {
		cfg.MinWindow = DefaultMinWindow
	}
	cfg.MinWindow = max(min(cfg.MinWindow, cfg.MaxWindow), time.Millisecond)
	if cfg.SendBatch <= 0 {
		cfg.SendBatch = DefaultSendBatch
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
	// The same pipeline (and request slot), its responses cut off past MaxRecords.
	capped := *cfg.Pipeline
	capped.fetcher = cappedFetcher{f: cfg.Pipeline.fetcher, max: cfg.MaxRecords}
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
func (a *Appliance) Name() string { return a.name }

// Run polls until ctx is cancelled, then lets an in-flight send finish for up to
// ShutdownTimeout, persists only what was delivered, and returns nil.
func (a *Appliance) Run(ctx context.Context) error {
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

// dateResolution is how far a caught-up cursor may trail now by design: no window ends past the
// appliance's Date header, which has whole seconds.
const dateResolution = time.Second

// Ready returns nil when every source is healthy: the appliance answers, the sink accepts, the
// checkpoint can be written and lags at most three intervals (plus dateResolution) behind now.
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
		if lag := now.Sub(s.Cursor); lag > 3*a.cfg.Interval+dateResolution {
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

// runSource is one source's loop: window → fetch (in pieces) → dedupe → deliver in batches →
// persist after each → wait.
func (a *Appliance) runSource(ctx context.Context, r *sourceRun) {
	name := r.src.Name()
	ss, _ := a.cfg.Store.Source(name)
	seen := ss.Seen
	if seen == nil {
		seen = map[string]Seen{}
	}
	st := a.newSourceState(r, ss)
	m := a.cfg.Metrics
	// span is the window size expected to hold about 3/4 of MaxRecords, from the density of
	// the last window: a catch-up is not a split and a wasted capped response every time.
	span := a.cfg.MaxWindow
	// visible is the appliance time the last window was read at (zero after a start): every
	// record created before visible − overlap had appeared by then.
	var visible time.Time
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
		seen = p.seen
		if !ok {
			return // ctx cancelled while fetching, backing off or delivering
		}
		if p.partial {
			caughtUp = false
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

// poll is one window of one source: fetched in pieces of at most MaxRecords records, each
// delivered in batches of at most SendBatch alerts with a checkpoint after every batch, so memory
// is bounded by configuration, never by how far behind the poller is.
type poll struct {
	a      *Appliance
	r      *sourceRun
	st     *sourceState
	seen   map[string]Seen
	cursor time.Time
	stats  Stats
	pieces int
	// split is set when a piece was halved (slow: because it timed out); the poll then ends
	// after its first piece, partial, and the next window is sized from that piece's density
	// instead of halving blindly again. covered is the span of the pieces delivered; readAt is
	// the earliest answer's Date.
	split, slow, partial bool
	covered              time.Duration
	readAt               time.Time
}

// errEnough ends a poll after the first piece of a split window.
var errEnough = errors.New("enough for this poll")

// nextSpan returns the window span expected to hold 3/4 of MaxRecords, at the density of the
// last window (n records over d).
func (a *Appliance) nextSpan(n int, d time.Duration) time.Duration {
	if n <= 0 || d <= 0 {
		return a.cfg.MaxWindow
	}
	span := time.Duration(float64(d) * float64(a.cfg.MaxRecords) * 0.75 / float64(n))
	return min(max(span, a.cfg.MinWindow), a.cfg.MaxWindow)
}

// window fetches and delivers [start, end] (both inclusive); false means ctx ended first.
func (p *poll) window(ctx context.Context, start, end time.Time) bool {
	minSpan := p.a.cfg.MinWindow.Milliseconds()
	if !p.r.src.Windowed() {
		minSpan = math.MaxInt64 // no window to halve: the response is what it is
	}
	err := halve(start.UnixMilli(), end.UnixMilli()+1, minSpan, func(s, e int64, canSplit bool) (*Batch, bool, error) {
		return p.fetch(ctx, s, e, canSplit)
	}, func(s, e int64, b *Batch) error {
		p.pieces++
		p.covered += time.Duration(e-s) * time.Millisecond
		if !b.Date.IsZero() && (p.readAt.IsZero() || b.Date.Before(p.readAt)) {
			p.readAt = b.Date
		}
		if !p.deliver(ctx, time.UnixMilli(e-1), b) {
			return context.Canceled
		}
		if p.split {
			p.partial = true
			return errEnough
		}
		return nil
	})
	return err == nil || errors.Is(err, errEnough)
}

// fetch requests [s, e) (epoch ms, half-open), retrying with backoff until it succeeds. It asks
// for a split when the response is over MaxRecords or the window timed out twice in a row
// (retrying it identically would time out forever); at the minimum size a too-large window is
// fetched whole instead. err is non-nil only when ctx ended.
func (p *poll) fetch(ctx context.Context, s, e int64, canSplit bool) (*Batch, bool, error) {
	a, r := p.a, p.r
	src := r.capped
	if !r.src.Windowed() {
		src = r.src
	}
	bo := Backoff{Min: a.cfg.RetryMin, Max: a.cfg.RetryMax}
	timeouts := 0
	for {
		b, err := src.Fetch(ctx, time.UnixMilli(s), time.UnixMilli(e-1))
		if err == nil {
			r.clearErr(&r.fetchErr, "appliance answers again")
			return b, false, nil
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if errors.Is(err, errTooLarge) {
			if canSplit {
				p.splitting(s, e, err)
				return nil, true, nil
			}
			r.log.Warn().Time("window_start", time.UnixMilli(s)).Time("window_end", time.UnixMilli(e-1)).Int("max_records", a.cfg.MaxRecords).
				Msg("the smallest window holds more records than the cap; fetching it whole")
			src = r.src
			continue
		}
		a.cfg.Metrics.APIError(a.name, r.src.Name())
		if tooSlow(err) {
			if timeouts++; timeouts >= splitAfterTimeouts && canSplit {
				p.slow = true
				p.splitting(s, e, err)
				return nil, true, nil
			}
		}
		delay := bo.Next()
		if a.cfg.RetryAfter != nil {
			if ra := a.cfg.RetryAfter(err); ra > delay {
				delay = min(ra, 10*a.cfg.RetryMax)
			}
		}
		r.setErr(&r.fetchErr, err, "appliance request failed; retrying")
		if !sleep(ctx, delay) {
			return nil, false, ctx.Err()
		}
	}
}

// tooSlow reports a failure a smaller window may avoid: our timeout, or a proxy's.
func tooSlow(err error) bool {
	var de *darktrace.Error
	return errors.Is(err, darktrace.ErrTimeout) ||
		(errors.As(err, &de) && (de.StatusCode == http.StatusGatewayTimeout || de.StatusCode == http.StatusRequestTimeout))
}

func (p *poll) splitting(s, e int64, err error) {
	p.split = true
	p.r.log.Warn().Time("window_start", time.UnixMilli(s)).Time("window_end", time.UnixMilli(e-1)).Str("error", err.Error()).
		Msg("window too large or too slow; fetching it in halves")
}

// deliver hands a fetched piece, whose window ends at last, to the Deliverer in batches and
// moves the checkpoint after each; false means ctx ended before everything was delivered.
func (p *poll) deliver(ctx context.Context, last time.Time, b *Batch) bool {
	a, r, m, name := p.a, p.r, p.a.cfg.Metrics, p.r.src.Name()
	m.AddRecords(a.name, name, metrics.OutcomeFetched, b.Stats.Fetched)
	m.AddRecords(a.name, name, metrics.OutcomeMalformed, b.Stats.Malformed)
	m.AddRecords(a.name, name, metrics.OutcomeFiltered, b.Stats.Filtered)

	fresh := make([]Item, 0, len(b.Items))
	for _, it := range b.Items {
		if prev, ok := p.seen[it.Key]; ok && prev.Version == it.Version {
			b.Stats.Deduped++
			continue
		}
		fresh = append(fresh, it)
	}
	m.AddRecords(a.name, name, metrics.OutcomeDeduped, b.Stats.Deduped)
	alerts := make([]*alert.Alert, 0, min(len(fresh), a.cfg.SendBatch))
	for len(fresh) > 0 {
		n := min(len(fresh), a.cfg.SendBatch)
		alerts = alerts[:0]
		for _, it := range fresh[:n] {
			alerts = append(alerts, it.Alert)
		}
		if !a.deliver(ctx, r, alerts) {
			r.log.Warn().Int("abandoned", n).Msg("shutting down: batch not delivered; it will be fetched again on restart")
			return false
		}
		b.Stats.Sent += n
		m.AddRecords(a.name, name, metrics.OutcomeSent, n)
		for _, it := range fresh[:n] {
			p.seen[it.Key] = Seen{Version: it.Version, Time: it.Time}
		}
		fresh = fresh[n:]
		if len(fresh) > 0 && r.src.Windowed() {
			// Every record created before the next one to send is delivered (items are in
			// time order); the ones at its millisecond are re-read and deduplicated.
			p.commit(time.UnixMilli(fresh[0].Time-1), nil, b.Date)
		}
	}
	clear(alerts)
	p.stats.Fetched += b.Stats.Fetched
	p.stats.Malformed += b.Stats.Malformed
	p.stats.Filtered += b.Stats.Filtered
	p.stats.Deduped += b.Stats.Deduped
	p.stats.Sent += b.Stats.Sent
	p.commit(last, b, b.Date)
	return true
}

// commit moves the cursor to end and saves the checkpoint. With the piece's batch b (its whole
// window delivered), the source's state also forgets what can no longer come back (state.go);
// between the batches of a piece b is nil and the delivered keys were just added. The cursor never moves back, except to the appliance's clock (date, the answer's Date header):
// nothing after it can have been read yet, so a cursor past it (our clock ahead of the
// appliance's, a checkpoint written by such a clock) would skip what the appliance creates
// until then.
func (p *poll) commit(end time.Time, b *Batch, date time.Time) {
	r, name := p.r, p.r.src.Name()
	if end.Before(p.cursor) {
		end = p.cursor
	}
	if !date.IsZero() && end.After(date) {
		if p.cursor.After(date) {
			r.log.Warn().Time("cursor", p.cursor).Time("appliance_time", date).
				Msg("checkpoint is ahead of the appliance clock; moving it back so nothing created meanwhile is skipped")
		}
		end = date
	}
	p.cursor = end
	if b != nil {
		p.seen = p.st.afterDelivery(p.seen, b, end)
	}
	if err := p.a.cfg.Store.Commit(name, p.st.checkpoint(end, p.seen)); err != nil {
		// Keep polling: the in-memory state is right and the next commit retries the write;
		// /readyz shows the problem, and a crash now costs duplicates, never losses.
		r.setErr(&r.persistErr, err, "checkpoint not saved")
	} else {
		r.clearErr(&r.persistErr, "checkpoint saved again")
	}
	// Status (and so /readyz and the lag metric) sees the cursor only once the checkpoint
	// holding it was written, or its failure reported.
	r.mu.Lock()
	r.cursor = end
	r.mu.Unlock()
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
