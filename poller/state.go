package poller

import (
	"cmp"
	"context"
	"slices"
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
func (st *sourceState) checkpoint(cursor time.Time, seen map[string]checkpoint.Seen) checkpoint.Progress {
	out := checkpoint.Progress{Cursor: cursor.UnixMilli(), Seen: seen}
	if st.gaps != nil {
		out.Gaps = st.gaps.state()
	}
	return out
}

// afterDelivery returns the versions to remember once everything up to end is delivered:
// what can still come back in a future window (or refresh), plus the batch just sent.
func (st *sourceState) afterDelivery(seen map[string]checkpoint.Seen, b *source.Batch, end time.Time) map[string]checkpoint.Seen {
	cfg := &st.a.cfg
	next := make(map[string]checkpoint.Seen, len(seen)+len(b.Items))
	switch st.name {
	case darktrace.SourceAntigena:
		st.retainActions(seen, b, next)
	case darktrace.SourceAIAnalyst:
		keep := max(cfg.Overlap, cfg.AIAnalystRefreshHorizon)
		horizon := end.Add(-keep).UnixMilli()
		for k, v := range seen {
			if v.Time >= horizon {
				next[k] = v
			}
		}
	default:
		horizon := end.Add(-cfg.Overlap).UnixMilli()
		for k, v := range seen {
			if v.Time >= horizon {
				next[k] = v
			}
		}
		st.gaps.observe(st, b)
	}
	for _, it := range b.Items {
		next[it.Key] = checkpoint.Seen{Version: it.Version, Time: it.Time}
	}
	if st.name == darktrace.SourceAIAnalyst {
		st.capEvents(next, end)
	}
	return next
}

// retainActions keeps the state of every action in the response, and of an absent one until
// its grace period is over; an action forgotten before its final state was seen is reported.
func (st *sourceState) retainActions(seen map[string]checkpoint.Seen, b *source.Batch, next map[string]checkpoint.Seen) {
	cfg := &st.a.cfg
	now := cfg.Now().UnixMilli()
	grace := max(cfg.AntigenaGrace, 3*cfg.Interval).Milliseconds()
	for k, v := range seen {
		if _, ok := b.Present[k]; ok {
			next[k] = v
			delete(st.absentSince, k)
			continue
		}
		since, ok := st.absentSince[k]
		if !ok {
			since = now
			st.absentSince[k] = now
		}
		if now-max(v.Time, since) < grace {
			next[k] = v
			continue
		}
		delete(st.absentSince, k)
		if av, ok := darktrace.ParseActionVersion(v.Version); ok && !av.Final(since) {
			st.r.log.Warn().Str("codeid", k).Bool("active", av.Active).
				Time("updated", time.UnixMilli(av.Updated)).Time("expires", time.UnixMilli(av.Expires)).
				Time("missing_since", time.UnixMilli(since)).
				Msg("Antigena action vanished before its final state was seen; its later states (cleared, expired) were never forwarded")
			cfg.Metrics.AntigenaVanished(st.a.name)
		}
	}
	// An absent action forgotten some other way leaves nothing behind.
	for k := range st.absentSince {
		if _, ok := next[k]; !ok {
			delete(st.absentSince, k)
		}
	}
}

// capEvents forgets the oldest remembered incident events beyond AIAnalystMaxTracked. Events
// inside the overlap stay whatever their number: the next windows read them again, and
// forgetting one would send it twice.
func (st *sourceState) capEvents(seen map[string]checkpoint.Seen, end time.Time) {
	limit := st.a.cfg.AIAnalystMaxTracked
	if len(seen) <= limit {
		return
	}
	overlap := end.Add(-st.a.cfg.Overlap).UnixMilli()
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int { return cmp.Compare(seen[y].Time, seen[x].Time) })
	dropped := 0
	for _, k := range keys[limit:] {
		if seen[k].Time < overlap {
			delete(seen, k)
			dropped++
		}
	}
	if dropped > 0 && !st.capWarned {
		st.capWarned = true
		st.r.log.Warn().Int("tracked", limit).
			Msg("more AI Analyst events inside the refresh horizon than can be tracked; changes to the oldest are not re-sent")
	}
}

// between runs the source's work that is not a window: the AI Analyst refresh and the pbid
// gap checks. It returns false when ctx ended during a delivery.
func (st *sourceState) between(ctx context.Context, seen map[string]checkpoint.Seen) bool {
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
func (st *sourceState) refresh(ctx context.Context, seen map[string]checkpoint.Seen) bool {
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
			if prev, ok := seen[it.Key]; ok && prev.Version != it.Version {
				changed = append(changed, it.Alert)
				items = append(items, it)
			}
		}
		if len(changed) > 0 {
			if !st.a.deliver(ctx, r, changed) {
				return false
			}
			for _, it := range items {
				seen[it.Key] = checkpoint.Seen{Version: it.Version, Time: it.Time}
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
