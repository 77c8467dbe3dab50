package poller

import (
	"context"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/source"
)

// Defaults for the per-source state settings of Config.
const (
	// DefaultAntigenaGrace is how long the last delivered state of an action that is missing
	// from /antigena is kept: an action comes back from a one-off empty or partial answer
	// without being sent again. The clock starts at the later of its "updated" time and the
	// first poll that missed it; the grace is at least three poll intervals.
	DefaultAntigenaGrace = 24 * time.Hour
	// DefaultAIAnalystRefreshHorizon is how far back incident events are re-read for changes
	// (AI Analyst raises scores and merges groups for hours after creating an event).
	DefaultAIAnalystRefreshHorizon = 24 * time.Hour
	// DefaultAIAnalystRefreshInterval is the time between two re-reads of the horizon.
	DefaultAIAnalystRefreshInterval = 10 * time.Minute
	// DefaultAIAnalystMaxTracked bounds the incident events whose delivered version is
	// remembered for the refresh (about 100 bytes each in memory and in the checkpoint). Beyond
	// it the oldest are forgotten first, and a change to them is no longer sent.
	DefaultAIAnalystMaxTracked = 10_000
)

// sourceState is what one source remembers in memory beyond its cursor and delivered versions
// (the part saved on disk is its checkpoint.Progress): when
// an Antigena action went missing, when AI Analyst events were last re-read, which pbids are
// missing. It belongs to the source's goroutine.
type sourceState struct {
	a    *Poller
	r    *sourceRun
	name string

	// antigena: first time (epoch ms) a remembered action was missing from a response.
	absentSince map[string]int64
	// aianalyst: when the horizon was last re-read (monotonic), and whether the cap warned.
	lastRefresh time.Time
	capWarned   bool
	// modelbreaches: pbid gap tracking.
	gaps *gapTracker
}

func (a *Poller) newSourceState(r *sourceRun, ss checkpoint.Progress) *sourceState {
	st := &sourceState{a: a, r: r, name: r.src.Name()}
	switch st.name {
	case darktrace.SourceAntigena:
		st.absentSince = map[string]int64{}
	case darktrace.SourceBreaches:
		st.gaps = newGapTracker(ss.Gaps, a.cfg.MaxGaps)
	}
	return st
}

// checkpoint returns the state to commit with cursor and seen.
func (st *sourceState) checkpoint(cursor time.Time, seen *checkpoint.Delivered) checkpoint.Progress {
	out := checkpoint.Progress{Cursor: cursor.UnixMilli()}
	seen.Into(&out)
	if st.gaps != nil {
		out.Gaps = st.gaps.state()
	}
	return out
}

// afterDelivery updates seen once everything up to end is delivered: it forgets what can no
// longer come back in a future window (or refresh) and adds the batch just sent.
func (st *sourceState) afterDelivery(seen *checkpoint.Delivered, b *source.Batch, end time.Time) {
	cfg := &st.a.cfg
	switch st.name {
	case darktrace.SourceAntigena:
		st.retainActions(seen, b)
	case darktrace.SourceAIAnalyst:
		seen.ForgetBefore(end.Add(-max(cfg.Overlap, cfg.AIAnalystRefreshHorizon)).UnixMilli())
	default:
		seen.ForgetBefore(end.Add(-cfg.Overlap).UnixMilli())
	}
	for _, it := range b.Items {
		seen.Add(it.Key, checkpoint.Seen{Version: it.Version, Time: it.Time})
	}
	if st.gaps != nil {
		st.gaps.observe(st, b)
	}
	if st.name == darktrace.SourceAIAnalyst {
		st.capEvents(seen, end)
	}
}

// retainActions keeps the state of every action in the response, and of an absent one until
// its grace period is over; an action forgotten before its final state was seen is reported.
func (st *sourceState) retainActions(seen *checkpoint.Delivered, b *source.Batch) {
	cfg := &st.a.cfg
	now := cfg.Now().UnixMilli()
	grace := max(cfg.AntigenaGrace, 3*cfg.Interval).Milliseconds()
	seen.Retain(func(k string, v checkpoint.Seen) bool {
		if _, ok := b.Present[k]; ok {
			delete(st.absentSince, k)
			return true
		}
		since, ok := st.absentSince[k]
		if !ok {
			since = now
			st.absentSince[k] = now
		}
		if now-max(v.Time, since) < grace {
			return true
		}
		delete(st.absentSince, k)
		if av, ok := darktrace.ParseActionVersion(v.Version); ok && !av.Final(since) {
			st.r.log.Warn().Str("codeid", k).Bool("active", av.Active).
				Time("updated", time.UnixMilli(av.Updated)).Time("expires", time.UnixMilli(av.Expires)).
				Time("missing_since", time.UnixMilli(since)).
				Msg("Antigena action vanished before its final state was seen; its later states (cleared, expired) were never forwarded")
			cfg.Metrics.AntigenaVanished(st.a.name)
		}
		return false
	})
	// An absent action forgotten some other way leaves nothing behind.
	for k := range st.absentSince {
		if !seen.Has(k) {
			delete(st.absentSince, k)
		}
	}
}

// capEvents forgets the oldest remembered incident events beyond AIAnalystMaxTracked. Events
// inside the overlap stay whatever their number: the next windows read them again, and
// forgetting one would send it twice.
func (st *sourceState) capEvents(seen *checkpoint.Delivered, end time.Time) {
	dropped := seen.TrimOldest(st.a.cfg.AIAnalystMaxTracked, end.Add(-st.a.cfg.Overlap).UnixMilli())
	if dropped > 0 && !st.capWarned {
		st.capWarned = true
		st.r.log.Warn().Int("tracked", st.a.cfg.AIAnalystMaxTracked).
			Msg("more AI Analyst events inside the refresh horizon than can be tracked; changes to the oldest are not re-sent")
	}
}

// between runs the source's work that is not a window: the AI Analyst refresh and the pbid
// gap checks. It returns false when ctx ended during a delivery.
func (st *sourceState) between(ctx context.Context, seen *checkpoint.Delivered) bool {
	switch st.name {
	case darktrace.SourceAIAnalyst:
		return st.refresh(ctx, seen)
	case darktrace.SourceBreaches:
		return st.gaps.check(ctx, st, seen)
	}
	return true
}

// refresh re-reads the incident events of the refresh horizon (the part the windows no
// longer reach) every AIAnalystRefreshInterval and sends again each known event whose
// version changed. Events it never delivered are left alone: they lie before POLL_START or
// were filtered.
func (st *sourceState) refresh(ctx context.Context, seen *checkpoint.Delivered) bool {
	cfg := &st.a.cfg
	if cfg.AIAnalystRefreshHorizon <= 0 || (!st.lastRefresh.IsZero() && time.Since(st.lastRefresh) < cfg.AIAnalystRefreshInterval) {
		return true
	}
	st.lastRefresh = time.Now()
	r := st.r
	r.mu.Lock()
	cursor := r.cursor
	r.mu.Unlock()
	from, to := cursor.Add(-cfg.AIAnalystRefreshHorizon), cursor.Add(-cfg.Overlap)
	fetched, sent := 0, 0
	for s := from; s.Before(to); {
		e := s.Add(cfg.MaxWindow)
		if e.After(to) {
			e = to
		}
		b, err := r.src.Fetch(ctx, s, e)
		if err != nil {
			if ctx.Err() == nil {
				cfg.Metrics.APIError(st.a.name, st.name)
				r.log.Warn().Err(err).Msg("AI Analyst refresh failed; retrying at the next refresh")
			}
			return ctx.Err() == nil
		}
		fetched += b.Stats.Fetched
		var changed []*alert.Alert
		var items []source.Item
		for _, it := range b.Items {
			if prev, ok := seen.Get(it.Key); ok && prev.Version != it.Version {
				changed = append(changed, it.Alert)
				items = append(items, it)
			}
		}
		if len(changed) > 0 {
			if !st.a.deliver(ctx, r, changed) {
				return false
			}
			for _, it := range items {
				seen.Add(it.Key, checkpoint.Seen{Version: it.Version, Time: it.Time})
			}
			sent += len(changed)
			cfg.Metrics.AddRecords(st.a.name, st.name, metrics.OutcomeSent, len(changed))
			if err := cfg.Store.Commit(st.name, st.checkpoint(cursor, seen)); err != nil {
				r.setErr(&r.persistErr, err, "checkpoint not saved")
			}
		}
		s = e.Add(time.Millisecond)
	}
	ev := r.log.Debug()
	if sent > 0 {
		ev = r.log.Info()
	}
	ev.Time("from", from).Time("to", to).Int("fetched", fetched).Int("resent", sent).
		Msg("AI Analyst refresh: changed events sent again")
	return true
}
