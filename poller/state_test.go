package poller

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// simRig is a simulator on loopback HTTP with what a poller needs around it: the checkpoint
// directory, the recording Deliverer, the logs and the metrics, so that a test can stop the
// poller and start another on the same checkpoint (a restart).
type simRig struct {
	t       *testing.T
	sim     *simulator.Simulator
	client  *darktrace.Client
	dir     string
	rec     *recorder
	logs    *syncBuffer
	metrics *metrics.Metrics
	sources []string
	tune    func(*Config)
	filter  source.Filter // the FILTER_* of the poller's reader
}

func newSimRig(t *testing.T, o simulator.Options, sources []string, tune func(*Config)) *simRig {
	t.Helper()
	sim, c := startSim(t, o, 10*time.Second)
	return &simRig{t: t, sim: sim, client: c, dir: t.TempDir(), rec: &recorder{}, logs: &syncBuffer{},
		metrics: metrics.New(), sources: sources, tune: tune, filter: source.Filter{IncludeAcknowledged: true}}
}

// start runs a poller on the rig's checkpoint and returns the function that stops it.
func (r *simRig) start() (*Poller, func()) {
	r.t.Helper()
	log := zerolog.New(r.logs)
	st, err := checkpoint.Open(r.dir, "dt")
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := Config{
		Reader:    source.NewReader(r.client, "dt", r.client.Host(), r.filter, log),
		Sources:   r.sources,
		Store:     st,
		Deliverer: r.rec,
		Interval:  20 * time.Millisecond, Overlap: 100 * time.Millisecond, Start: time.Now().Add(-time.Hour),
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond,
		Logger:          log,
		Metrics:         r.metrics,
	}
	if r.tune != nil {
		r.tune(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return a, run(r.t, a)
}

// polls waits until the simulator has answered n more requests to endpoint (a path such as
// "/antigena").
func (r *simRig) polls(endpoint string, n int) {
	r.t.Helper()
	count := func() int {
		c := 0
		for _, q := range r.sim.Requests() {
			if q.Path == endpoint {
				c++
			}
		}
		return c
	}
	target := count() + n
	waitFor(r.t, strconv.Itoa(n)+" more requests to "+endpoint, func() bool { return count() >= target })
}

// counter returns the value of a counter series whose labels include all of labels.
func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range s.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			if s.Counter != nil {
				sum += s.GetCounter().GetValue()
			} else if s.Gauge != nil {
				sum += s.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestAntigenaEmptyAnswerResendsNothing: one empty /antigena answer between two full ones,
// with and without a restart after it, must not make the poller send the actions again.
func TestAntigenaEmptyAnswerResendsNothing(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run("restart="+strconv.FormatBool(restart), func(t *testing.T) {
			r := newSimRig(t, simulator.Options{Seed: 51, HistoryCount: -1}, []string{darktrace.SourceAntigena}, nil)
			ids := r.sim.AddActions(50)
			_, stop := r.start()
			waitFor(t, "50 action lines", func() bool { return len(r.rec.ids()) == 50 })

			faults, err := simulator.ParseFaults("antigena:empty*1")
			if err != nil {
				t.Fatal(err)
			}
			r.sim.SetFaults(faults)
			// The empty answer, then one more poll: the state after the empty answer is
			// committed before the next request starts.
			waitFor(t, "the empty answer", func() bool {
				return slices.ContainsFunc(r.sim.Requests(), func(q simulator.Request) bool { return q.Outcome == "fault:empty" })
			})
			r.polls("/antigena", 1)
			if restart {
				stop()
				_, stop = r.start()
			}
			r.polls("/antigena", 5)
			stop()
			if got := r.rec.ids(); len(got) != 50 {
				t.Fatalf("%d action lines after one empty answer, want the 50 sent before it (re-sent %d)", len(got), len(got)-50)
			}
			// The remembered states still work: the next real change is sent, once.
			changed := r.sim.AdvanceActions()
			_, stop = r.start()
			waitFor(t, "one line per change", func() bool { return len(r.rec.ids()) == 50+len(changed) })
			r.polls("/antigena", 3)
			stop()
			if got := len(r.rec.ids()); got != 50+len(changed) || len(changed) != len(ids) {
				t.Fatalf("%d lines after %d changes, want %d", got, len(changed), 50+len(changed))
			}
		})
	}
}

// TestAntigenaVanishedActionIsReported: an action that disappears from /antigena for good
// before it was seen cleared is reported (warning naming it, metric) once its grace period
// is over; one that disappears after its final state is forgotten quietly.
func TestAntigenaVanishedActionIsReported(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 53, HistoryCount: -1}, []string{darktrace.SourceAntigena},
		func(c *Config) { c.AntigenaGrace = 300 * time.Millisecond })
	ids := r.sim.AddActions(4)
	for range 3 { // pending/active → … → cleared: every action reaches its final state
		r.sim.AdvanceActions()
	}
	cleared := ids[0]
	fresh := r.sim.AddActions(1)[0] // pending or active: not final
	a, stop := r.start()
	defer stop()
	// Every state since POLL_START is forwarded, the earlier ones from the actions' history.
	states := len(r.sim.ActionStates())
	waitFor(t, "a line per state", func() bool { return len(r.rec.ids()) == states })
	if r.sim.RemoveActions(cleared, fresh) != 2 {
		t.Fatal("simulator did not remove the actions")
	}
	waitFor(t, "the vanished action reported", func() bool {
		return strings.Contains(r.logs.String(), "Antigena action vanished before its final state was seen")
	})
	r.polls("/antigena", 3)
	logs := r.logs.String()
	if n := countLines(logs, "Antigena action vanished before its final state was seen"); n != 1 {
		t.Fatalf("%d vanish warnings, want 1 (for codeid %d):\n%s", n, fresh, logs)
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "vanished before") && !strings.Contains(l, `"codeid":"`+strconv.FormatInt(fresh, 10)+`"`) {
			t.Fatalf("warning does not name codeid %d: %s", fresh, l)
		}
	}
	if v := counter(t, r.metrics, "dtforward_antigena_vanished_total", map[string]string{"appliance": "dt"}); v != 1 {
		t.Fatalf("dtforward_antigena_vanished_total = %v, want 1", v)
	}
	st, _ := a.cfg.Store.Source(darktrace.SourceAntigena)
	for _, id := range []int64{cleared, fresh} {
		if _, ok := st.Seen[strconv.FormatInt(id, 10)]; ok {
			t.Fatalf("codeid %d still remembered after its grace period", id)
		}
	}
}

// TestAIAnalystRefreshResendsChangedEvents: incident events keep changing (scores rise,
// groups merge) long after they left POLL_OVERLAP; the refresh pass re-reads the horizon and
// sends each changed event once more, and unchanged ones never.
func TestAIAnalystRefreshResendsChangedEvents(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 57, HistoryCount: -1}, []string{darktrace.SourceAIAnalyst},
		func(c *Config) {
			c.AIAnalystRefreshHorizon = time.Hour
			c.AIAnalystRefreshInterval = 50 * time.Millisecond
		})
	ids := r.sim.AddIncidentEvents(6)
	_, stop := r.start()
	defer stop()
	count := func(id string) int { return countIDs(r.rec, alert.KindAIAnalyst)[id] }
	waitFor(t, "one line per event", func() bool { return len(r.rec.ids()) == 6 })
	// Long past the 100 ms overlap: the regular windows no longer reach these events.
	time.Sleep(400 * time.Millisecond)
	changed := r.sim.RaiseIncidentScores()
	if len(changed) != 6 {
		t.Fatalf("simulator raised %d of 6 events", len(changed))
	}
	waitFor(t, "a second line per raised event", func() bool {
		for _, id := range ids {
			if count(id) != 2 {
				return false
			}
		}
		return true
	})
	r.sim.AcknowledgeIncident(ids[2])
	waitFor(t, "a third line for the acknowledged event", func() bool { return count(ids[2]) == 3 })
	r.polls("/aianalyst/incidentevents", 8)
	for i, id := range ids {
		want := 2
		if i == 2 {
			want = 3
		}
		if n := count(id); n != want {
			t.Fatalf("event %s sent %d times, want %d", id, n, want)
		}
	}
}

// TestLateBreachIsFetchedByPBID: a breach that appears only after the windows moved past its
// creation time leaves a hole in the pbids; the hole is counted and reported, and the breach
// is fetched by id and delivered once when it appears.
func TestLateBreachIsFetchedByPBID(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 59, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) { c.GapRecheck = 30 * time.Millisecond })
	before := r.sim.AddBreaches(5)
	held := r.sim.HoldBreaches(3)
	after := r.sim.AddBreaches(5)
	_, stop := r.start()
	defer stop()
	visible := 0
	for _, b := range r.sim.BreachInfos() {
		if !b.Held {
			visible++
		}
	}
	waitFor(t, "the visible breaches", func() bool { return len(r.rec.ids()) == visible })
	gapRange := strconv.FormatInt(held[0], 10) + "-" + strconv.FormatInt(held[2], 10)
	waitFor(t, "the gap reported", func() bool {
		return strings.Contains(r.logs.String(), `"pbids":"`+gapRange+`"`)
	})
	// The windows move far past the held breaches' creation: more than the overlap plus the
	// one second a cursor may trail (it never passes the answer's Date, which has whole seconds).
	time.Sleep(2 * time.Second)
	r.sim.ReleaseBreaches(held...)
	waitFor(t, "the late breaches", func() bool { return len(r.rec.ids()) == visible+3 })
	r.polls("/modelbreaches", 10)
	got := countIDs(r.rec, alert.KindBreach)
	for _, id := range slices.Concat(before, held, after) {
		if n := got[strconv.FormatInt(id, 10)]; n > 1 {
			t.Fatalf("pbid %d delivered %d times", id, n)
		}
	}
	for _, id := range held {
		if got[strconv.FormatInt(id, 10)] != 1 {
			t.Fatalf("late pbid %d not delivered", id)
		}
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_total", map[string]string{"appliance": "dt"}); v < 3 {
		t.Fatalf("dtforward_pbid_gaps_total = %v, want at least the 3 held pbids", v)
	}
	if !strings.Contains(r.logs.String(), "late breach found by pbid") {
		t.Fatalf("late delivery not logged:\n%s", r.logs.String())
	}
}

// TestPBIDGapGivesUp: a pbid that never appears (deleted) is re-checked at a bounded cadence
// and given up after the horizon, with a warning naming it.
func TestPBIDGapGivesUp(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 61, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) {
			c.GapRecheck = 50 * time.Millisecond
			c.GapHorizon = 400 * time.Millisecond
		})
	r.sim.AddBreaches(2)
	held := r.sim.HoldBreaches(1)[0]
	r.sim.AddBreaches(2)
	a, stop := r.start()
	defer stop()
	msg := `"pbids":"` + strconv.FormatInt(held, 10) + `"`
	waitFor(t, "giving up", func() bool {
		for _, l := range strings.Split(r.logs.String(), "\n") {
			if strings.Contains(l, "giving up") && strings.Contains(l, msg) {
				return true
			}
		}
		return false
	})
	st, _ := a.cfg.Store.Source(darktrace.SourceBreaches)
	if st.Gaps == nil || slices.ContainsFunc(st.Gaps.Missing, func(m checkpoint.MissingPBID) bool { return m.PBID == held }) {
		t.Fatalf("pbid %d still tracked after giving up: %+v", held, st.Gaps)
	}
	checks := 0
	for _, q := range r.sim.Requests() {
		if strings.Contains(q.RawQuery, "pbid="+strconv.FormatInt(held, 10)) {
			checks++
		}
	}
	// A 400 ms horizon at one check per 50 ms allows at most 9 checks, however many polls ran.
	if checks < 1 || checks > 9 {
		t.Fatalf("pbid %d checked %d times, want 1..9 (one per 50 ms for 400 ms)", held, checks)
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_total", map[string]string{"appliance": "dt"}); v < 1 {
		t.Fatalf("dtforward_pbid_gaps_total = %v", v)
	}
}

// TestAIAnalystRefreshForgetsOldestBeyondCap: the remembered events are bounded; beyond the
// cap the oldest are forgotten (one warning) and only the newest are re-sent when they change.
func TestAIAnalystRefreshForgetsOldestBeyondCap(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 63, HistoryCount: -1}, []string{darktrace.SourceAIAnalyst},
		func(c *Config) {
			c.AIAnalystRefreshHorizon = time.Hour
			c.AIAnalystRefreshInterval = 50 * time.Millisecond
			c.AIAnalystMaxTracked = 5
		})
	old := r.sim.AddIncidentEvents(3)
	time.Sleep(20 * time.Millisecond)
	newer := r.sim.AddIncidentEvents(5)
	a, stop := r.start()
	defer stop()
	waitFor(t, "one line per event", func() bool { return len(r.rec.ids()) == 8 })
	time.Sleep(400 * time.Millisecond) // all of them far past the overlap
	waitFor(t, "the cap applied", func() bool {
		st, _ := a.cfg.Store.Source(darktrace.SourceAIAnalyst)
		return len(st.Seen) == 5
	})
	r.sim.RaiseIncidentScores()
	count := func(id string) int { return countIDs(r.rec, alert.KindAIAnalyst)[id] }
	waitFor(t, "the newest events re-sent", func() bool {
		for _, id := range newer {
			if count(id) != 2 {
				return false
			}
		}
		return true
	})
	r.polls("/aianalyst/incidentevents", 6)
	for _, id := range old {
		if n := count(id); n != 1 {
			t.Fatalf("forgotten event %s sent %d times, want 1", id, n)
		}
	}
	if n := countLines(r.logs.String(), "than can be tracked"); n != 1 {
		t.Fatalf("%d cap warnings, want 1", n)
	}
}

// TestLateBreachAfterRestart: the missing pbids are part of the checkpoint, so a breach that
// appears late while dtforward is down is still found by id after the restart.
func TestLateBreachAfterRestart(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 65, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) { c.GapRecheck = 30 * time.Millisecond })
	r.sim.AddBreaches(3)
	held := r.sim.HoldBreaches(2)
	r.sim.AddBreaches(3)
	_, stop := r.start()
	gapRange := strconv.FormatInt(held[0], 10) + "-" + strconv.FormatInt(held[1], 10)
	waitFor(t, "the gap reported", func() bool { return strings.Contains(r.logs.String(), `"pbids":"`+gapRange+`"`) })
	stop()
	st, err := checkpoint.Open(r.dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := st.Source(darktrace.SourceBreaches)
	if ss.Gaps == nil || len(ss.Gaps.Missing) < 2 {
		t.Fatalf("checkpoint gaps = %+v, want the held pbids", ss.Gaps)
	}
	time.Sleep(300 * time.Millisecond)
	r.sim.ReleaseBreaches(held...)
	_, stop = r.start()
	defer stop()
	waitFor(t, "the late breaches after the restart", func() bool {
		got := countIDs(r.rec, alert.KindBreach)
		return got[strconv.FormatInt(held[0], 10)] == 1 && got[strconv.FormatInt(held[1], 10)] == 1
	})
	r.polls("/modelbreaches", 5)
	for id, n := range countIDs(r.rec, alert.KindBreach) {
		if n != 1 {
			t.Fatalf("pbid %s delivered %d times", id, n)
		}
	}
}

// TestPBIDGapsBeyondCap: more missing pbids than the cap are counted and named in a warning,
// but not checked by id.
func TestPBIDGapsBeyondCap(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 67, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) { c.MaxGaps = 2 })
	r.sim.AddBreaches(1)
	held := r.sim.HoldBreaches(5)
	r.sim.AddBreaches(1)
	_, stop := r.start()
	defer stop()
	waitFor(t, "the overflow warning", func() bool { return strings.Contains(r.logs.String(), "too many missing pbids to track") })
	r.polls("/modelbreaches", 3)
	stop()
	want := strconv.FormatInt(held[2], 10) + "-" + strconv.FormatInt(held[4], 10)
	if !strings.Contains(r.logs.String(), `"pbids":"`+want+`"`) {
		t.Fatalf("overflow warning does not name %s:\n%s", want, r.logs.String())
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_resolved_total", map[string]string{"outcome": GapDropped}); v != 3 {
		t.Fatalf("dropped = %v, want 3", v)
	}
	for _, q := range r.sim.Requests() {
		for _, id := range held[2:] {
			if strings.Contains(q.RawQuery, "pbid="+strconv.FormatInt(id, 10)+"&") {
				t.Fatalf("untracked pbid %d was checked: %s", id, q.RawQuery)
			}
		}
	}
}

func TestPBIDRangesAndQuery(t *testing.T) {
	tests := []struct {
		ids  []int64
		want string
	}{
		{[]int64{7}, "7"},
		{[]int64{3, 4, 5, 9, 11, 12}, "3-5,9,11-12"},
	}
	for _, tt := range tests {
		if got := pbidRanges(tt.ids); got != tt.want {
			t.Errorf("pbidRanges(%v) = %q, want %q", tt.ids, got, tt.want)
		}
	}
	var many []int64
	for i := int64(0); i < 50; i++ {
		many = append(many, 2*i)
	}
	if got := pbidRanges(many); strings.Count(got, ",") != 20 || !strings.HasSuffix(got, "… (30 more)") {
		t.Errorf("50 single ids: %q, want 20 and a count of the rest", got)
	}
	// The signature covers the query as sent: this exact order.
	if got, want := darktrace.PBIDPath(95), "/modelbreaches?pbid=95&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true"; got != want {
		t.Errorf("PBIDQuery = %s, want %s", got, want)
	}
}

// BenchmarkAIAnalystStateAtCap measures one poll's bookkeeping with the refresh state full
// (DefaultAIAnalystMaxTracked events remembered) and reports the checkpoint size it writes:
//
//	go test -run '^$' -bench AIAnalystStateAtCap -benchmem ./poller
func BenchmarkAIAnalystStateAtCap(b *testing.B) {
	st, err := checkpoint.Open(b.TempDir(), "dt")
	if err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{
		Reader:  source.NewReader(&fakeAPI{}, "dt", "dt.example", source.Filter{}, zerolog.Nop()),
		Sources: []string{darktrace.SourceAIAnalyst}, Store: st, Deliverer: &recorder{},
	})
	if err != nil {
		b.Fatal(err)
	}
	r := a.sources[0]
	s := a.newSourceState(r, checkpoint.Progress{})
	end := time.Now()
	seen := checkpoint.NewDelivered(checkpoint.Progress{})
	for i := range DefaultAIAnalystMaxTracked {
		id := "0b6f3c1e-5d7a-4e2b-9c8d-" + strconv.FormatInt(int64(100000000000+i), 10)
		seen.Add(id, checkpoint.Seen{Version: "9f86d081884c7d65", Time: end.Add(-time.Duration(i) * time.Second).UnixMilli()})
	}
	batch := &source.Batch{Present: map[string]struct{}{}}
	b.ResetTimer()
	for b.Loop() {
		s.afterDelivery(seen, batch, end)
	}
	b.StopTimer()
	if err := st.Commit(darktrace.SourceAIAnalyst, s.checkpoint(end, seen)); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(st.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "checkpoint-bytes")
}

// TestSlowBreachInsideOverlapIsNotCheckedByID: a breach that becomes visible a little after
// the next ones (inside POLL_OVERLAP) is read by the windows: no by-id request, no warning.
func TestSlowBreachInsideOverlapIsNotCheckedByID(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 69, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) {
			c.Overlap = 30 * time.Second // longer than any wait below: no by-id check may be due
			c.GapRecheck = 10 * time.Millisecond
		})
	r.sim.AddBreaches(2)
	held := r.sim.HoldBreaches(1)[0]
	r.sim.AddBreaches(2)
	_, stop := r.start()
	defer stop()
	waitFor(t, "the gap noticed", func() bool { return strings.Contains(r.logs.String(), "pbid gap: breaches missing") })
	r.sim.ReleaseBreaches(held)
	waitFor(t, "the slow breach", func() bool { return countIDs(r.rec, alert.KindBreach)[strconv.FormatInt(held, 10)] == 1 })
	r.polls("/modelbreaches", 3)
	for _, q := range r.sim.Requests() {
		if strings.Contains(q.RawQuery, "pbid=") {
			t.Fatalf("by-id request for a breach the windows still cover: %s", q.RawQuery)
		}
	}
	if strings.Contains(r.logs.String(), `"level":"warn"`) {
		t.Fatalf("warning for a breach that was only slow:\n%s", r.logs.String())
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_resolved_total", map[string]string{"outcome": GapAppeared}); v != 1 {
		t.Fatalf("appeared = %v, want 1", v)
	}
}
