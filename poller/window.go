package poller

// window.go is one poll of one source: a window fetched in pieces (halved when too large or too
// slow), each piece delivered in batches with a checkpoint commit after every batch.

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/retry"
	"github.com/dtforward/dtforward/source"
)

// poll is one window of one source: fetched in pieces of at most MaxRecords records, each
// delivered in batches of at most SendBatch alerts with a checkpoint after every batch, so memory
// is bounded by configuration, never by how far behind the poller is.
type poll struct {
	a      *Poller
	r      *sourceRun
	st     *sourceState
	seen   *checkpoint.Delivered
	cursor time.Time
	stats  source.Stats
	pieces int
	// split is set when a piece was halved (slow: because it timed out); the poll then ends
	// after its first piece, partial, and the next window is sized from that piece's density
	// instead of halving blindly again. covered is the span of the pieces delivered; readAt is
	// the earliest answer's Date.
	split, slow, partial bool
	covered              time.Duration
	readAt               time.Time
	// reached is the end (exclusive) of the last piece delivered: a partial poll's successor
	// goes on from there.
	reached time.Time
}

// errEnough ends a poll after the first piece of a split window.
var errEnough = errors.New("enough for this poll")

// nextSpan returns the window span expected to hold 3/4 of MaxRecords, at the density of the
// last window (n records over d).
func (a *Poller) nextSpan(n int, d time.Duration) time.Duration {
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
	// The window is walked in pieces sized from the density of the last one (3/4 of the cap),
	// halving a piece that is too large: one poll catches up on hours in pieces the cap allows
	// without a too-large response at every level of every half.
	err := fetch.Walk(start.UnixMilli(), end.UnixMilli()+1, minSpan, 0, func(s, e int64, canSplit bool) (*source.Batch, bool, error) {
		return p.fetch(ctx, s, e, canSplit)
	}, func(s, e int64, b *source.Batch) error {
		p.pieces++
		p.covered += time.Duration(e-s) * time.Millisecond
		p.reached = time.UnixMilli(e)
		if !b.Date.IsZero() && (p.readAt.IsZero() || b.Date.Before(p.readAt)) {
			p.readAt = b.Date
		}
		if !p.deliver(ctx, time.UnixMilli(e-1), b) {
			return context.Canceled
		}
		if p.slow {
			// A window that timed out: end the poll after this piece and size the next window
			// from its density, rather than spending a timeout on every half again. A window
			// that was only too large goes on with the rest in this poll: the pieces
			// cost a request each, and stopping here made every poll descend the same halves
			// again from the left (a burst took one descent per second of overlap).
			p.partial = true
			return errEnough
		}
		return nil
	}, func(span int64, b *source.Batch) int64 {
		return p.a.nextSpan(b.Stats.Fetched, time.Duration(span)*time.Millisecond).Milliseconds()
	})
	return err == nil || errors.Is(err, errEnough)
}

// fetch requests [s, e) (epoch ms, half-open), retrying with backoff until it succeeds. It asks
// for a split when the response is over MaxRecords or the window timed out twice in a row
// (retrying it identically would time out forever); a window at the minimum size over the cap
// is streamed (stream) instead. err is non-nil only when ctx ended.
func (p *poll) fetch(ctx context.Context, s, e int64, canSplit bool) (*source.Batch, bool, error) {
	a, r := p.a, p.r
	src := r.capped
	if !r.src.Windowed() {
		src = r.src
	}
	var b *source.Batch
	split := false
	timeouts := 0
	policy := retry.Policy{Min: a.cfg.RetryMin, Max: a.cfg.RetryMax, RetryAfter: a.cfg.RetryAfter}
	err := policy.Do(ctx, func() error {
		var err error
		b, err = src.Fetch(ctx, time.UnixMilli(s), time.UnixMilli(e-1))
		if err != nil && ctx.Err() == nil && fetch.Classify(err) == fetch.TooLarge && !canSplit && r.src.Windowed() {
			// The API does not paginate: a window that cannot be halved and holds more than
			// the cap is streamed rather than held whole. Only then: a stream keeps the
			// appliance's request open while the sink takes each batch.
			b, err = p.stream(ctx, s, e)
		}
		if err == nil {
			r.clearErr(&r.fetchErr, "appliance answers again")
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		switch fetch.Classify(err) {
		case fetch.TooLarge:
			split = true
			p.splitting(s, e, err)
			return retry.Stop(err)
		case fetch.TooSlow:
			if timeouts++; timeouts >= splitAfterTimeouts && canSplit {
				a.cfg.Metrics.APIError(a.name, r.src.Name())
				split, p.slow = true, true
				p.splitting(s, e, err)
				return retry.Stop(err)
			}
		}
		a.cfg.Metrics.APIError(a.name, r.src.Name())
		r.setErr(&r.fetchErr, err, "appliance request failed; retrying")
		return err
	}, nil)
	switch {
	case split:
		return nil, true, nil
	case err != nil:
		return nil, false, err
	}
	return b, false, nil
}

func (p *poll) splitting(s, e int64, err error) {
	p.split = true
	p.r.log.Warn().Time("window_start", time.UnixMilli(s)).Time("window_end", time.UnixMilli(e-1)).Str("error", err.Error()).
		Msg("window too large or too slow; fetching it in halves")
}

// stream reads [s, e) (epoch ms, half-open), a window too large for one response that cannot be
// split, without holding it: records go to the Deliverer in batches as the response is read,
// each batch's keys saved with the checkpoint (the cursor stays: the slices are in the order of
// the response, not of time), so memory holds one batch, not the window, and a retry or a
// restart skips what was delivered. The Batch returned has no Items left to deliver.
//
// A read that ends early after delivering part of the response (it reached DARKTRACE_TIMEOUT
// while the sink took the batches: a flood of a million takes longer than a minute) is read
// again at once, skipping what was delivered: it is progress, not a failing appliance, and
// backing off between the pieces of a long flood, each counted and logged as an API error,
// stretched it by the backoff each time.
func (p *poll) stream(ctx context.Context, s, e int64) (*source.Batch, error) {
	for {
		sent := p.stats.Sent
		b, err := p.streamOnce(ctx, s, e)
		if err == nil || ctx.Err() != nil || p.stats.Sent == sent {
			return b, err
		}
		p.r.log.Info().Time("window_start", time.UnixMilli(s)).Int("delivered", p.stats.Sent-sent).Str("error", err.Error()).
			Msg("streamed window ended early after delivering part of it; reading it again, skipping what was delivered")
	}
}

func (p *poll) streamOnce(ctx context.Context, s, e int64) (*source.Batch, error) {
	var st source.Stats
	// listed is every pbid the response lists (delivered now, before, or filtered), kept as
	// compactly as the delivered ones: the gap tracker learns them once the whole response was
	// read (gaps.go observeIDs), as it learns a fetched window from its Present.
	var listed *checkpoint.Delivered
	if p.st.gaps != nil {
		listed = checkpoint.NewDelivered(checkpoint.Progress{})
	}
	delivered := func(key string) bool {
		v, ok := p.seen.Get(key)
		return ok && v.Version == ""
	}
	b, err := p.r.src.Stream(ctx, time.UnixMilli(s), time.UnixMilli(e-1), p.a.cfg.SendBatch, delivered, func(slice *source.Batch) error {
		sent := st.Sent
		if !p.send(ctx, slice.Items, &st, time.Time{}, false) {
			return context.Cause(ctx)
		}
		if listed != nil {
			for k := range slice.Present {
				listed.Add(k, checkpoint.Seen{})
			}
		}
		if st.Sent > sent { // a re-read after a retry sends nothing new: nothing to save
			p.commit(p.cursor, nil, time.Time{})
		}
		return nil
	})
	if err == nil && listed != nil {
		p.st.gaps.observeIDs(p.st, listed.Between(0, math.MaxInt64))
	}
	p.stats.Deduped += st.Deduped
	p.stats.Sent += st.Sent
	if err == nil && b.Stats.Fetched > p.a.cfg.MaxRecords {
		p.r.log.Warn().Time("window_start", time.UnixMilli(s)).Time("window_end", time.UnixMilli(e-1)).
			Int("records", b.Stats.Fetched).Int("max_records", p.a.cfg.MaxRecords).
			Msg("the smallest window held more records than the cap; it was streamed, delivered in batches as it was read")
	}
	return b, err
}

// deliver hands a fetched piece, whose window ends at last, to the Deliverer in batches and
// moves the checkpoint after each; false means ctx ended before everything was delivered.
func (p *poll) deliver(ctx context.Context, last time.Time, b *source.Batch) bool {
	a, m, name := p.a, p.a.cfg.Metrics, p.r.src.Name()
	m.AddRecords(a.name, name, metrics.OutcomeFetched, b.Stats.Fetched)
	m.AddRecords(a.name, name, metrics.OutcomeMalformed, b.Stats.Malformed)
	m.AddRecords(a.name, name, metrics.OutcomeFiltered, b.Stats.Filtered)
	m.AddRecords(a.name, name, metrics.OutcomeDeduped, b.Stats.Deduped) // listed twice in the response; streamed: delivered before
	if !p.send(ctx, b.Items, &b.Stats, b.Date, p.r.src.Windowed()) {
		return false
	}
	p.stats.Fetched += b.Stats.Fetched
	p.stats.Malformed += b.Stats.Malformed
	p.stats.Filtered += b.Stats.Filtered
	p.stats.Deduped += b.Stats.Deduped
	p.stats.Sent += b.Stats.Sent
	p.commit(last, b, b.Date)
	return true
}

// send delivers the items not delivered yet in batches of at most SendBatch, counting into st,
// and saves the checkpoint between batches; with moveCursor (items in time order) the cursor
// moves up to the next item to send. false means ctx ended first.
func (p *poll) send(ctx context.Context, items []source.Item, st *source.Stats, date time.Time, moveCursor bool) bool {
	a, r, m, name := p.a, p.r, p.a.cfg.Metrics, p.r.src.Name()
	fresh := make([]source.Item, 0, len(items))
	for _, it := range items {
		if prev, ok := p.seen.Get(it.Key); ok && prev.Version == it.Version {
			continue
		}
		fresh = append(fresh, it)
	}
	st.Deduped += len(items) - len(fresh)
	m.AddRecords(a.name, name, metrics.OutcomeDeduped, len(items)-len(fresh))
	fresh = p.withEarlierStates(fresh)
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
		st.Sent += n
		m.AddRecords(a.name, name, metrics.OutcomeSent, n)
		for _, it := range fresh[:n] {
			p.seen.Add(it.Key, checkpoint.Seen{Version: it.Version, Time: it.Time})
		}
		fresh = fresh[n:]
		if len(fresh) > 0 && moveCursor {
			// Every record created before the next one to send is delivered (items are in
			// time order); the ones at its millisecond are re-read and deduplicated.
			p.commit(time.UnixMilli(fresh[0].Time-1), nil, date)
		}
	}
	clear(alerts)
	return true
}

// withEarlierStates puts before each changed Antigena action the states its history records
// since the state last delivered (for an action never delivered, since the cursor: what
// happened after the last poll), so that states that came and went between two polls — or
// while the sink was down and the poller could not poll — are each forwarded once. States the
// history cannot give back are counted and logged. Other sources are returned as they are.
func (p *poll) withEarlierStates(fresh []source.Item) []source.Item {
	if p.r.src.Name() != darktrace.SourceAntigena || len(fresh) == 0 {
		return fresh
	}
	out := make([]source.Item, 0, len(fresh))
	var missedIDs []string
	missed := 0
	for _, it := range fresh {
		since := darktrace.ActionVersion{Updated: p.cursor.UnixMilli()}
		if prev, ok := p.seen.Get(it.Key); ok {
			if v, ok := darktrace.ParseActionVersion(prev.Version); ok {
				since = v
			}
		}
		earlier, n := p.r.src.Earlier(it, since)
		out = append(append(out, earlier...), it)
		if n > 0 {
			missed += n
			missedIDs = append(missedIDs, it.Key)
		}
	}
	if missed > 0 {
		p.a.cfg.Metrics.AntigenaStatesMissed(p.a.name, missed)
		p.r.log.Info().Strs("codeids", missedIDs).Int("count", missed).
			Msg("Antigena states that came and went between polls cannot be rebuilt from the action's history (an expiry before a reactivation); not forwarded")
	}
	return out
}

// commit moves the cursor to end and saves the checkpoint. With the piece's batch b (its whole
// window delivered), the source's state also forgets what can no longer come back (state.go);
// between the batches of a piece b is nil and the delivered keys were just added. The cursor never moves back, except to the appliance's clock (date, the answer's Date header):
// nothing after it can have been read yet, so a cursor past it (our clock ahead of the
// appliance's, a checkpoint written by such a clock) would skip what the appliance creates
// until then.
func (p *poll) commit(end time.Time, b *source.Batch, date time.Time) {
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
		p.st.afterDelivery(p.seen, b, end)
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
