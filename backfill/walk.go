package backfill

// walk.go walks the range: failed windows first, then chunk by chunk with one window fetched
// ahead, each window halved when too large or failing, each piece delivered and saved.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/retry"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/source"
)

// walk retries earlier failed windows, then goes chunk by chunk from the earliest cursor.
func (b *backfiller) walk(ctx context.Context, sources []*source.Source) error {
	// Progress from the start (a resumed run starts where it stopped), not only after the
	// first chunk, which may take a while.
	b.report(Window{})
	for _, src := range sources {
		c := b.st.Progress[src.Name()]
		for _, w := range slices.Clone(c.Failed) {
			// Failed windows of one source are disjoint, so their end identifies them.
			at := func() int { return slices.IndexFunc(c.Failed, func(x [2]int64) bool { return x[1] == w[1] }) }
			b.dedupe[src.Name()].rotate()
			err := b.window(ctx, src, w[0], w[1], func(end int64) error {
				if i := at(); end >= w[1] {
					c.Failed = slices.Delete(c.Failed, i, i+1)
				} else {
					c.Failed[i][0] = end
				}
				return b.save()
			})
			var we *windowError
			switch {
			case errors.As(err, &we):
				// Still failing: keep the rest of it for the next run and go on.
				c.Failed[at()][0] = we.start
				b.log.Error().Str("source", src.Name()).Str("window", we.window(src.Name()).String()).Str("error", we.err.Error()).
					Msg("previously failed window still fails; kept for the next run")
				if err := b.save(); err != nil {
					return b.stop(src, we.start, w[1], err)
				}
			case err != nil:
				return err
			}
		}
	}

	return b.pipeline(ctx, sources)
}

// pipeline walks the range chunk by chunk with one window fetched ahead: a producer goroutine
// fetches (and splits) the windows in order while this goroutine delivers the previous one and
// saves the state. Fetching and decoding is most of the work, so sending no longer waits for
// it; memory stays at a few windows.
func (b *backfiller) pipeline(ctx context.Context, sources []*source.Source) error {
	type win struct {
		src           *source.Source
		start, cs, ce int64
	}
	var wins []win
	for cs := b.from; cs < b.to; cs += b.chunk {
		ce := min(cs+b.chunk, b.to)
		for _, src := range sources {
			if c := b.st.Progress[src.Name()]; c.Cursor < ce {
				wins = append(wins, win{src: src, start: max(c.Cursor, cs), cs: cs, ce: ce})
			}
		}
	}
	// step is what the producer hands over: a fetched piece, or the end of a window (finished,
	// or failed at failed.start), or a reason to stop.
	type step struct {
		w      win
		p      *piece
		first  bool
		last   bool
		failed *windowError
		stop   error
	}
	pctx, cancel := context.WithCancel(ctx)
	steps := make(chan step, 1)
	go func() {
		defer close(steps)
		send := func(s step) bool {
			select {
			case steps <- s:
				return true
			case <-pctx.Done():
				return false
			}
		}
		for _, w := range wins {
			first := true
			err := b.fetchSplit(pctx, w.src, w.start, w.ce, func(p piece) error {
				if !send(step{w: w, p: &p, first: first}) {
					return context.Cause(pctx)
				}
				first = false
				return nil
			})
			var we *windowError
			switch {
			case errors.As(err, &we):
				if !send(step{w: w, first: first, last: true, failed: we}) {
					return
				}
			case err != nil:
				send(step{stop: err})
				return
			default:
				if !send(step{w: w, last: true}) {
					return
				}
			}
		}
	}()
	defer func() {
		cancel()
		for range steps { // let the producer finish
		}
	}()

	failedInARow := 0
	for s := range steps {
		if s.stop != nil {
			return s.stop
		}
		name := s.w.src.Name()
		c := b.st.Progress[name]
		if s.first {
			b.dedupe[name].rotate()
		}
		if s.p != nil {
			err := b.consume(ctx, *s.p, func(end int64) error {
				c.Cursor = end
				if err := b.save(); err != nil {
					return err
				}
				b.report(Window{Source: name, Start: time.UnixMilli(s.p.start).UTC(), End: time.UnixMilli(end).UTC()})
				return nil
			})
			if err != nil {
				return err
			}
		}
		if we := s.failed; we != nil {
			b.log.Error().Str("source", name).Str("window", we.window(name).String()).Str("error", we.err.Error()).
				Msg("window could not be fetched; recorded as failed, continuing")
			c.Failed = append(c.Failed, [2]int64{we.start, s.w.ce})
			c.Cursor = s.w.ce
			if err := b.save(); err != nil {
				return b.stop(s.w.src, we.start, s.w.ce, err)
			}
			failedInARow++
		} else if s.last {
			failedInARow = 0
		}
		if s.last {
			b.sum.ChunksDone++
			b.report(Window{Source: name, Start: time.UnixMilli(s.w.cs).UTC(), End: time.UnixMilli(s.w.ce).UTC()})
		}
		if we := s.failed; we != nil && failedInARow >= b.cfg.MaxFailedInARow {
			return b.stop(s.w.src, we.start, s.w.ce, fmt.Errorf("%d windows in a row could not be fetched, stopping; the last: %w", failedInARow, we.err))
		}
	}
	if ctx.Err() != nil {
		// The producer saw the cancellation first: name the first window not delivered.
		for _, w := range wins {
			if c := b.st.Progress[w.src.Name()]; c.Cursor < w.ce {
				return b.stop(w.src, max(c.Cursor, w.cs), w.ce, context.Cause(ctx))
			}
		}
	}
	return nil
}

// report calls Config.Progress with where the walk is: chunks, and the share of the range
// (over all sources) walked, which moves with every piece delivered, inside a chunk too.
func (b *backfiller) report(w Window) {
	if b.cfg.Progress == nil {
		return
	}
	pr := Progress{Records: b.records, ChunksDone: b.sum.ChunksDone, ChunksTotal: b.sum.ChunksTotal, Window: w}
	for _, n := range b.st.Sources {
		pr.Total += b.to - b.from
		if c := b.st.Progress[n]; c != nil {
			pr.Walked += min(max(c.Cursor, b.from), b.to) - b.from
		}
	}
	b.cfg.Progress(pr)
}

func (b *backfiller) collectFailed(names []string) {
	b.sum.Failed = nil
	for _, n := range names {
		for _, w := range b.st.Progress[n].Failed {
			b.sum.Failed = append(b.sum.Failed, Window{Source: n, Start: time.UnixMilli(w[0]).UTC(), End: time.UnixMilli(w[1]).UTC()})
		}
	}
	slices.SortStableFunc(b.sum.Failed, func(x, y Window) int { return x.Start.Compare(y.Start) })
}

// windowError is a window that could not be fetched even at the minimum size: the walk records
// [start, end of its chunk) as failed and goes on.
type windowError struct {
	start, end int64
	err        error
}

func (e *windowError) Error() string { return e.err.Error() }

func (e *windowError) window(src string) Window {
	return Window{Source: src, Start: time.UnixMilli(e.start).UTC(), End: time.UnixMilli(e.end).UTC()}
}

func (b *backfiller) stop(src *source.Source, start, end int64, err error) error {
	return &Error{Window: Window{Source: src.Name(), Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC()}, Err: err}
}

// window delivers [start, end) of src in the calling goroutine, halving it on retryable or
// too-large responses; done is called with the end of every piece delivered, in order.
func (b *backfiller) window(ctx context.Context, src *source.Source, start, end int64, done func(end int64) error) error {
	return b.fetchSplit(ctx, src, start, end, func(p piece) error { return b.consume(ctx, p, done) })
}

// piece is one fetched part of a window: [start, end) of src.
type piece struct {
	src        *source.Source
	start, end int64
	batch      *source.Batch
}

// fetchSplit fetches [start, end) of src and hands it to emit, or, when the request keeps
// failing with a retryable error or the response is too large, its two halves in order (down
// to MinChunk). It returns a *windowError for a piece that cannot be fetched, a
// *Error when the backfill must stop, or emit's error.
func (b *backfiller) fetchSplit(ctx context.Context, src *source.Source, start, end int64, emit func(piece) error) error {
	return fetch.Halve(start, end, b.cfg.MinChunk.Milliseconds(), func(start, end int64, canSplit bool) (*source.Batch, bool, error) {
		batch, err := b.fetch(ctx, src, start, end)
		if err == nil {
			return batch, false, nil
		}
		if ctx.Err() != nil {
			return nil, false, b.stop(src, start, end, context.Cause(ctx))
		}
		failure := fetch.Classify(err)
		if failure == fetch.Auth {
			// Every other window would fail the same way: stop and let a person fix it.
			return nil, false, b.stop(src, start, end, err)
		}
		if splittable := failure != fetch.Permanent; splittable && canSplit {
			b.splits.Add(1)
			w := Window{Source: src.Name(), Start: time.UnixMilli(start), End: time.UnixMilli(end)}.String()
			if failure == fetch.TooLarge {
				// Routine: a busy stretch holds more than --max-records; the halves are fetched
				// next. Not an error, so not logged as one.
				b.log.Debug().Str("source", src.Name()).Str("window", w).Int("max_records", b.cfg.MaxRecords).
					Msg("window holds more records than --max-records; fetching it in halves")
			} else {
				b.log.Warn().Str("source", src.Name()).Str("window", w).Str("error", err.Error()).
					Msg("window keeps failing; fetching it in halves")
			}
			return nil, true, nil
		}
		return nil, false, &windowError{start: start, end: end, err: err}
	}, func(start, end int64, batch *source.Batch) error {
		return emit(piece{src: src, start: start, end: end, batch: batch})
	})
}

// consume delivers a fetched piece: drops what the previous or current chunk already
// delivered, hands the rest to the Deliverer in slices, then calls done with the piece's end.
func (b *backfiller) consume(ctx context.Context, p piece, done func(end int64) error) error {
	src, batch := p.src, p.batch
	sum := b.sum.Sources[src.Name()]
	sum.Fetched += batch.Stats.Fetched
	sum.Filtered += batch.Stats.Filtered
	sum.Malformed += batch.Stats.Malformed
	sum.Deduped += batch.Stats.Deduped
	d := b.dedupe[src.Name()]
	fresh := make([]*alert.Alert, 0, len(batch.Items))
	for _, it := range batch.Items {
		if d.seen(it.Key, it.Version) {
			sum.Deduped++
			continue
		}
		fresh = append(fresh, it.Alert)
	}
	for len(fresh) > 0 {
		n := min(len(fresh), sendBatch)
		if err := b.deliver(ctx, fresh[:n]); err != nil {
			return b.stop(src, p.start, p.end, err)
		}
		sum.Sent += n
		b.records += n
		fresh = fresh[n:]
	}
	for _, it := range batch.Items {
		d.cur[it.Key] = it.Version
	}
	if err := done(p.end); err != nil {
		return b.stop(src, p.start, p.end, fmt.Errorf("saving backfill state: %w", err))
	}
	return nil
}

// fetch requests [start, end) (the API's windows include both ends, so end−1 ms), retrying
// retryable failures up to Attempts times. A too-large response is not retried: only a
// smaller window helps.
func (b *backfiller) fetch(ctx context.Context, src *source.Source, start, end int64) (*source.Batch, error) {
	var batch *source.Batch
	policy := retry.Policy{Min: b.cfg.RetryMin, Max: b.cfg.RetryMax, Attempts: b.cfg.Attempts, RetryAfter: darktrace.RetryAfterOf}
	err := policy.Do(ctx, func() error {
		var err error
		batch, err = src.Fetch(ctx, time.UnixMilli(start), time.UnixMilli(end-1))
		if err == nil || ctx.Err() != nil {
			return err
		}
		f := fetch.Classify(err)
		if f == fetch.TooLarge {
			return retry.Stop(err) // the window is split: routine, not an error
		}
		b.errs.Add(1)
		if f != fetch.Retryable && f != fetch.TooSlow {
			return retry.Stop(err)
		}
		return err
	}, func(attempt int, err error, delay time.Duration) {
		b.log.Warn().Str("source", src.Name()).Int("attempt", attempt).Str("error", err.Error()).Dur("retry_in_ms", delay).
			Msg("backfill request failed; retrying")
	})
	return batch, err
}

// deliver hands alerts to the Deliverer, retrying with backoff up to DeliverAttempts times. A
// sink that keeps failing stops the backfill: every later window would fail the same way.
func (b *backfiller) deliver(ctx context.Context, alerts []*alert.Alert) error {
	policy := retry.Policy{Min: b.cfg.RetryMin, Max: b.cfg.RetryMax, Attempts: b.cfg.DeliverAttempts, RetryAfter: sink.RetryAfterOf}
	err := policy.Do(ctx, func() error {
		err := b.cfg.Deliverer.Deliver(ctx, alerts)
		if err != nil && ctx.Err() == nil {
			b.errs.Add(1)
		}
		return err
	}, func(attempt int, err error, delay time.Duration) {
		b.log.Warn().Int("attempt", attempt).Str("error", err.Error()).Dur("retry_in_ms", delay).
			Msg("sink did not accept the batch; retrying")
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("delivery failed %d times: %w", b.cfg.DeliverAttempts, err)
	}
	return err
}
