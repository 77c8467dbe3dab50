package poller

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/metrics"
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

// setStateDefaults fills in the zero per-source state settings.
func (cfg *Config) setStateDefaults() {
	if cfg.AntigenaGrace <= 0 {
		cfg.AntigenaGrace = DefaultAntigenaGrace
	}
	if cfg.AIAnalystRefreshHorizon == 0 {
		cfg.AIAnalystRefreshHorizon = DefaultAIAnalystRefreshHorizon
	}
	if cfg.AIAnalystRefreshInterval <= 0 {
		cfg.AIAnalystRefreshInterval = DefaultAIAnalystRefreshInterval
	}
	if cfg.AIAnalystMaxTracked <= 0 {
		cfg.AIAnalystMaxTracked = DefaultAIAnalystMaxTracked
	}
	if cfg.GapRecheck <= 0 {
		cfg.GapRecheck = DefaultGapRecheck
	}
	if cfg.GapHorizon <= 0 {
		cfg.GapHorizon = DefaultGapHorizon
	}
	if cfg.MaxGaps <= 0 {
		cfg.MaxGaps = DefaultMaxGaps
	}
}

// sourceState is what one source remembers beyond its cursor and delivered versions: when
// an Antigena action went missing, when AI Analyst events were last re-read, which pbids are
// missing. It belongs to the source's goroutine.
type sourceState struct {
	a    *Appliance
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

func (a *Appliance) newSourceState(r *sourceRun, ss SourceState) *sourceState {
	st := &sourceState{a: a, r: r, name: r.src.Name()}
	switch st.name {
	case SourceAntigena:
		st.absentSince = map[string]int64{}
	case SourceBreaches:
		st.gaps = newGapTracker(ss.Gaps, a.cfg.MaxGaps)
	}
	return st
}

// checkpoint returns the state to commit with cursor and seen.
func (st *sourceState) checkpoint(cursor time.Time, seen map[string]Seen) SourceState {
	out := SourceState{Cursor: cursor.UnixMilli(), Seen: seen}
	if st.gaps != nil {
		out.Gaps = st.gaps.state()
	}
	return out
}

// afterDelivery returns the versions to remember once everything up to end is delivered:
// what can still come back in a future window (or refresh), plus the batch just sent.
func (st *sourceState) afterDelivery(seen map[string]Seen, b *Batch, end time.Time) map[string]Seen {
	cfg := &st.a.cfg
	next := make(map[string]Seen, len(seen)+len(b.Items))
	switch st.name {
	case SourceAntigena:
		st.retainActions(seen, b, next)
	case SourceAIAnalyst:
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
		next[it.Key] = Seen{Version: it.Version, Time: it.Time}
	}
	if st.name == SourceAIAnalyst {
		st.capEvents(next, end)
	}
	return next
}

// retainActions keeps the state of every action in the response, and of an absent one until
// its grace period is over; an action forgotten before its final state was seen is reported.
func (st *sourceState) retainActions(seen map[string]Seen, b *Batch, next map[string]Seen) {
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
		if av, ok := parseActionVersion(v.Version); ok && !av.final(since) {
			st.r.log.Warn().Str("codeid", k).Bool("active", av.active).
				Time("updated", time.UnixMilli(av.updated)).Time("expires", time.UnixMilli(av.expires)).
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

// actionVersion is the parsed Item.Version of an Antigena action.
type actionVersion struct {
	updated, expires int64
	active, cleared  bool
}

func actionVersionOf(updated int64, active, cleared bool, expires int64) string {
	return strconv.FormatInt(updated, 10) + "/" + strconv.FormatBool(active) + "/" +
		strconv.FormatBool(cleared) + "/" + strconv.FormatInt(expires, 10)
}

func parseActionVersion(v string) (actionVersion, bool) {
	f := strings.Split(v, "/")
	if len(f) != 4 {
		return actionVersion{}, false
	}
	var av actionVersion
	var e1, e2, e3, e4 error
	av.updated, e1 = strconv.ParseInt(f[0], 10, 64)
	av.active, e2 = strconv.ParseBool(f[1])
	av.cleared, e3 = strconv.ParseBool(f[2])
	av.expires, e4 = strconv.ParseInt(f[3], 10, 64)
	return av, e1 == nil && e2 == nil && e3 == nil && e4 == nil
}

// final reports whether the state was the action's last: cleared, or already expired when
// the action went missing at since.
func (av actionVersion) final(since int64) bool {
	return av.cleared || (av.expires > 0 && av.expires <= since)
}

// capEvents forgets the oldest remembered incident events beyond AIAnalystMaxTracked. Events
// inside the overlap stay whatever their number: the next windows read them again, and
// forgetting one would send it twice.
func (st *sourceState) capEvents(seen map[string]Seen, end time.Time) {
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
func (st *sourceState) between(ctx context.Context, seen map[string]Seen) bool {
	switch st.name {
	case SourceAIAnalyst:
		return st.refresh(ctx, seen)
	case SourceBreaches:
		return st.gaps.check(ctx, st, seen)
	}
	return true
}

// refresh re-reads the incident events of the refresh horizon (the part the windows no
// longer reach) every AIAnalystRefreshInterval and sends again each known event whose
// version changed. Events it never delivered are left alone: they lie before POLL_START or
// were filtered.
func (st *sourceState) refresh(ctx context.Context, seen map[string]Seen) bool {
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
		var items []Item
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
				seen[it.Key] = Seen{Version: it.Version, Time: it.Time}
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
