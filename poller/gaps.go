package poller

import (
	"cmp"
	"context"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/source"
)

// pbids grow with creation, so a pbid missing between delivered ones is a breach the windows
// did not return. The windows ask for every breach and filter after decoding (a filtered
// breach still fills its pbid, see darktrace.Sources), so it is one the appliance did not
// return: deleted, not visible yet, or suppressed when FILTER_INCLUDE_SUPPRESSED=false hides
// suppressed breaches at the query. The last is the one that loses alerts: a breach that appears after the windows
// moved past its creation time is never in a window again. The gap tracker remembers missing
// pbids (bounded), checks each by id at a bounded cadence, delivers the ones that appear late,
// and gives the others up after a horizon.

// Defaults for the gap settings of Config.
const (
	DefaultGapRecheck = 10 * time.Minute // between two by-id checks of one missing pbid
	DefaultGapHorizon = 24 * time.Hour   // a missing pbid is given up after this long
	DefaultMaxGaps    = 1000             // missing pbids tracked at most (about 40 bytes each)
	// gapChecksPerPoll bounds the by-id requests made after one poll.
	gapChecksPerPoll = 10
	// gapJump is a hole too large to be missing breaches: the pbid counter jumped.
	gapJump = 1_000_000
)

// Gap outcomes, the values of the outcome label of dtforward_pbid_gaps_resolved_total.
const (
	GapAppeared = "appeared" // listed by a window after all (or by id, still inside the windows)
	GapLate     = "late"     // appeared after its window had passed; fetched and delivered
	GapFiltered = "filtered" // exists, but the filters exclude it (suppressed, score, model, …)
	GapGaveUp   = "gave_up"  // never appeared within the horizon (deleted, or hidden)
	GapDropped  = "dropped"  // not tracked: more gaps than the tracking cap
)

type gapTracker struct {
	max     int64
	missing map[int64]*checkpoint.MissingPBID
	limit   int
	changed bool // since the last checkpoint
}

func newGapTracker(gs *checkpoint.GapState, limit int) *gapTracker {
	g := &gapTracker{missing: map[int64]*checkpoint.MissingPBID{}, limit: limit}
	if gs != nil {
		g.max = gs.MaxPBID
		for _, m := range gs.Missing {
			g.missing[m.PBID] = &m
		}
	}
	return g
}

func (g *gapTracker) state() *checkpoint.GapState {
	gs := &checkpoint.GapState{MaxPBID: g.max, Missing: make([]checkpoint.MissingPBID, 0, len(g.missing))}
	for _, id := range slices.Sorted(maps.Keys(g.missing)) {
		gs.Missing = append(gs.Missing, *g.missing[id])
	}
	g.changed = false
	return gs
}

// observe takes the pbids of a delivered batch (every pbid its response listed): those tracked
// as missing have appeared, and the holes above the previous maximum are new gaps.
func (g *gapTracker) observe(st *sourceState, b *source.Batch) {
	ids := make([]int64, 0, len(b.Present))
	for k := range b.Present {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	g.observeIDs(st, slices.Values(ids))
}

// observeIDs is observe over ids in ascending order. A streamed flood is observed once it was
// read in full (poller/window.go streamOnce): its slices come in the appliance's order, not
// pbid order, and observed one by one every pbid of a later slice would have been counted a gap.
func (g *gapTracker) observeIDs(st *sourceState, ids iter.Seq[int64]) {
	first, last, any := int64(0), int64(0), false
	for id := range ids {
		if !any {
			first, any = id, true
		}
		last = id
	}
	if !any {
		return
	}
	m := st.a.cfg.Metrics
	for id := range ids {
		if _, ok := g.missing[id]; ok {
			delete(g.missing, id)
			g.changed = true
			m.PBIDGapResolved(st.a.name, GapAppeared, 1)
		}
	}
	if g.max > last+gapJump {
		// Far below everything seen: the appliance's pbid counter started again (a rebuilt
		// appliance, a restored backup). Start over from here.
		st.r.log.Warn().Int64("max_seen", g.max).Int64("now_highest", last).
			Msg("pbids restarted far below the highest seen; gap tracking starts over")
		g.max = 0
		clear(g.missing)
		g.changed = true
	}
	if g.max == 0 {
		g.max = first - 1 // the first run: nothing before the first pbid is a gap
	}
	now := st.a.cfg.Now().UnixMilli()
	var found, dropped []int64
	count := 0
	prev := g.max
	for id := range ids {
		if id <= prev {
			continue
		}
		if hole := id - prev - 1; hole > gapJump {
			st.r.log.Warn().Int64("from", prev).Int64("to", id).
				Msg("pbids jumped; the hole is not tracked as missing breaches")
		} else {
			for p := prev + 1; p < id; p++ {
				count++
				if len(g.missing) < g.limit {
					g.missing[p] = &checkpoint.MissingPBID{PBID: p, Since: now}
					found = append(found, p)
				} else if len(dropped) < 2*g.limit {
					dropped = append(dropped, p)
				}
			}
		}
		prev = id
	}
	if prev > g.max {
		g.max = prev
		g.changed = true
	}
	if count == 0 {
		return
	}
	m.PBIDGaps(st.a.name, count)
	if len(found) > 0 {
		st.r.log.Info().Str("pbids", pbidRanges(found)).Int("count", len(found)).
			Msg("pbid gap: breaches missing between delivered ones; checking them by id")
	}
	if n := count - len(found); n > 0 {
		m.PBIDGapResolved(st.a.name, GapDropped, n)
		st.r.log.Warn().Str("pbids", pbidRanges(dropped)).Int("count", n).Int("tracked", g.limit).
			Msg("too many missing pbids to track; these are not checked by id")
	}
}

// check gives up the pbids missing for longer than the horizon and checks up to
// gapChecksPerPoll of the others by id; a breach found late is delivered. It returns false
// when ctx ended during a delivery.
func (g *gapTracker) check(ctx context.Context, st *sourceState, seen *checkpoint.Delivered) bool {
	cfg := &st.a.cfg
	r := st.r
	now := cfg.Now().UnixMilli()
	horizon := cfg.GapHorizon.Milliseconds()
	var gaveUp, due []int64
	for id, m := range g.missing {
		switch {
		case now-m.Since >= horizon && m.Checked != 0:
			// Given up only after one check at least: a busy appliance or a long list must not
			// turn "not checked yet" into "never appeared".
			gaveUp = append(gaveUp, id)
		case m.Checked == 0 && now-m.Since < cfg.Overlap.Milliseconds():
			// Probably just slow to become visible: the windows re-read it for one overlap.
		case m.Checked == 0 || now-m.Checked >= cfg.GapRecheck.Milliseconds():
			due = append(due, id)
		}
	}
	if len(gaveUp) > 0 {
		slices.Sort(gaveUp)
		for _, id := range gaveUp {
			delete(g.missing, id)
		}
		cfg.Metrics.PBIDGapResolved(st.a.name, GapGaveUp, len(gaveUp))
		g.changed = true
		r.log.Warn().Str("pbids", pbidRanges(gaveUp)).Int("count", len(gaveUp)).Dur("after_ms", cfg.GapHorizon).
			Msg("missing pbids never appeared (deleted, or hidden by the appliance); giving up; use backfill if they appear later")
	}
	// Least recently checked first, so a long list is worked through in turn.
	slices.SortFunc(due, func(x, y int64) int {
		return cmp.Or(cmp.Compare(g.missing[x].Checked, g.missing[y].Checked), cmp.Compare(x, y))
	})
	if len(due) > gapChecksPerPoll {
		due = due[:gapChecksPerPoll]
	}
	r.mu.Lock()
	cursor := r.cursor
	r.mu.Unlock()
	inWindows := cursor.Add(-cfg.Overlap).UnixMilli()
	var absent []int64
	var late []source.Item
	for _, id := range due {
		m := g.missing[id]
		first := m.Checked == 0
		m.Checked = now
		g.changed = true
		created, found, err := r.src.FetchPBID(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				cfg.Metrics.APIError(st.a.name, st.name)
				r.log.Warn().Err(err).Int64("pbid", id).Msg("checking a missing pbid failed; retrying later")
			}
			break
		}
		if !found {
			if first {
				absent = append(absent, id)
			}
			continue
		}
		if created == 0 {
			// There, but it did not decode (logged with its id): nothing to fetch.
			delete(g.missing, id)
			cfg.Metrics.PBIDGapResolved(st.a.name, GapFiltered, 1)
			continue
		}
		if created >= inWindows {
			// The next windows cover it: listed if it passes the filters, else filtered.
			delete(g.missing, id)
			cfg.Metrics.PBIDGapResolved(st.a.name, GapAppeared, 1)
			continue
		}
		// Late: ask for it the way the windows do, so the same filters decide, exactly as if
		// it had been in time. (The by-id request includes acknowledged and suppressed
		// breaches, so that it finds every breach the appliance has.)
		t := time.UnixMilli(created)
		b, err := r.src.Fetch(ctx, t, t)
		if err != nil {
			if ctx.Err() == nil {
				cfg.Metrics.APIError(st.a.name, st.name)
				r.log.Warn().Err(err).Int64("pbid", id).Msg("fetching a late breach failed; retrying later")
			}
			break
		}
		delete(g.missing, id)
		key := strconv.FormatInt(id, 10)
		i := slices.IndexFunc(b.Items, func(it source.Item) bool { return it.Key == key })
		if i < 0 || seen.Has(key) {
			cfg.Metrics.PBIDGapResolved(st.a.name, GapFiltered, 1)
			continue
		}
		late = append(late, b.Items[i])
	}
	if len(absent) > 0 {
		slices.Sort(absent)
		r.log.Warn().Str("pbids", pbidRanges(absent)).Int("count", len(absent)).
			Dur("recheck_ms", cfg.GapRecheck).Dur("give_up_after_ms", cfg.GapHorizon).
			Msg("pbids missing between delivered breaches are not on the appliance (yet); re-checking them by id")
	}
	if len(late) > 0 {
		slices.SortFunc(late, func(x, y source.Item) int {
			return cmp.Or(cmp.Compare(x.Time, y.Time), source.CompareKeys(x.Key, y.Key))
		})
		alerts := make([]*alert.Alert, len(late))
		for i := range late {
			alerts[i] = late[i].Alert
		}
		if !st.a.deliver(ctx, r, alerts) {
			return false
		}
		cfg.Metrics.AddRecords(st.a.name, st.name, metrics.OutcomeSent, len(alerts))
		for _, it := range late {
			seen.Add(it.Key, checkpoint.Seen{Version: it.Version, Time: it.Time})
			cfg.Metrics.PBIDGapResolved(st.a.name, GapLate, 1)
			r.log.Warn().Str("pbid", it.Key).Time("created", time.UnixMilli(it.Time)).
				Msg("late breach found by pbid after its window had passed; delivered")
		}
	}
	if g.changed {
		if err := cfg.Store.Commit(st.name, st.checkpoint(cursor, seen)); err != nil {
			r.setErr(&r.persistErr, err, "checkpoint not saved")
		}
	}
	return true
}

// pbidRanges formats sorted pbids as "5-7,9", at most 20 ranges.
func pbidRanges(ids []int64) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if n == 20 {
			b.WriteString(",… (" + strconv.Itoa(len(ids)-i) + " more)")
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(ids[i], 10))
		if j > i {
			b.WriteString("-" + strconv.FormatInt(ids[j], 10))
		}
		n++
		i = j + 1
	}
	return b.String()
}
