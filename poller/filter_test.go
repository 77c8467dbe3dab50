package poller

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// byIDRequests counts the by-id checks the simulator answered.
func byIDRequests(sim *simulator.Simulator) int {
	n := 0
	for _, q := range sim.Requests() {
		if strings.Contains(q.RawQuery, "pbid=") {
			n++
		}
	}
	return n
}

// TestFilteredBreachesLeaveNoPBIDGaps: with FILTER_MIN_SCORE the windows still ask for every
// breach (no minscore) and the filter drops the low ones after decoding, so a filtered breach
// fills its pbid: no gap is counted or logged, nothing is checked by id, no filtered breach is
// delivered and every breach at or above the score is, suppressed and acknowledged ones too.
func TestFilteredBreachesLeaveNoPBIDGaps(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 71, HistoryCount: -1}, []string{darktrace.SourceBreaches}, nil)
	r.filter.MinScore = 0.5
	r.sim.AddBreaches(300)
	want := map[string]bool{}
	suppressed, below := 0, 0
	for _, b := range r.sim.BreachInfos() {
		if b.Score < 0.5 {
			below++
			continue
		}
		want[strconv.FormatInt(b.PBID, 10)] = true
		if b.Suppressed {
			suppressed++
		}
	}
	if below < 50 || suppressed == 0 {
		t.Fatalf("test setup: %d breaches below 0.5, %d suppressed above it", below, suppressed)
	}
	_, stop := r.start()
	defer stop()
	waitFor(t, "every breach at or above the score", func() bool { return len(countIDs(r.rec, alert.KindBreach)) >= len(want) })
	// More than one POLL_OVERLAP (100 ms) of further polls: a tracked gap would be due for its
	// by-id check by then.
	r.polls("/modelbreaches", 15)
	stop()
	got := countIDs(r.rec, alert.KindBreach)
	for id, n := range got {
		if !want[id] || n != 1 {
			t.Fatalf("pbid %s delivered %d times (below the score: %v)", id, n, !want[id])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d breaches delivered, want %d", len(got), len(want))
	}
	if n := byIDRequests(r.sim); n != 0 {
		t.Fatalf("%d by-id requests for breaches the filter dropped", n)
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_total", nil); v != 0 {
		t.Fatalf("dtforward_pbid_gaps_total = %v, want 0", v)
	}
	if n := countLines(r.logs.String(), "pbid gap"); n != 0 {
		t.Fatalf("%d pbid gap lines:\n%s", n, r.logs.String())
	}
}

// TestHiddenSuppressedBreachesAreFoundByID: with FILTER_INCLUDE_SUPPRESSED=false the windows
// leave suppressed breaches out (the record cannot say it is suppressed), so each leaves a
// pbid gap. The by-id check asks with includesuppressed, finds it and resolves it as
// filtered; none is given up or delivered.
func TestHiddenSuppressedBreachesAreFoundByID(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 73, HistoryCount: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) {
			c.GapRecheck = 10 * time.Millisecond
			c.GapHorizon = 300 * time.Millisecond
		})
	r.filter.HideSuppressed = true
	r.sim.AddBreaches(300)
	infos := r.sim.BreachInfos()
	want := map[string]bool{}
	var shown []int64
	for _, b := range infos {
		if !b.Suppressed {
			want[strconv.FormatInt(b.PBID, 10)] = true
			shown = append(shown, b.PBID)
		}
	}
	gaps := 0 // suppressed pbids between two listed ones
	for _, b := range infos {
		if b.Suppressed && b.PBID > shown[0] && b.PBID < shown[len(shown)-1] {
			gaps++
		}
	}
	if gaps == 0 {
		t.Fatal("test setup: no suppressed breach between listed ones")
	}
	_, stop := r.start()
	defer stop()
	resolved := func() float64 {
		return counter(t, r.metrics, "dtforward_pbid_gaps_resolved_total", map[string]string{"appliance": "dt"})
	}
	waitFor(t, "every gap resolved", func() bool { return resolved() >= float64(gaps) })
	r.polls("/modelbreaches", 5)
	stop()
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_total", nil); v != float64(gaps) {
		t.Fatalf("dtforward_pbid_gaps_total = %v, want the %d suppressed pbids", v, gaps)
	}
	if v := counter(t, r.metrics, "dtforward_pbid_gaps_resolved_total", map[string]string{"outcome": GapGaveUp}); v != 0 {
		t.Fatalf("%v suppressed breaches given up: the by-id check did not find them:\n%s", v, r.logs.String())
	}
	if strings.Contains(r.logs.String(), "giving up") || strings.Contains(r.logs.String(), "not on the appliance") {
		t.Fatalf("suppressed breaches reported missing:\n%s", r.logs.String())
	}
	got := countIDs(r.rec, alert.KindBreach)
	for id, n := range got {
		if !want[id] || n != 1 {
			t.Fatalf("pbid %s delivered %d times (suppressed: %v)", id, n, !want[id])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d breaches delivered, want the %d not suppressed", len(got), len(want))
	}
}

// TestReopenedBreachInsideOverlapIsSent: with acknowledged breaches filtered out, a breach read
// while acknowledged and reopened (unacknowledged) while still inside the overlap is sent when
// the windows read it again. Acknowledgement is the one filter input that changes, so a pbid a
// filter dropped must not be remembered as delivered (it was, for a while, to keep runs of
// pbids unbroken).
func TestReopenedBreachInsideOverlapIsSent(t *testing.T) {
	r := newSimRig(t, simulator.Options{Seed: 71, HistoryCount: -1, AckFraction: -1}, []string{darktrace.SourceBreaches},
		func(c *Config) { c.Overlap = time.Minute }) // every read below stays inside it
	r.filter = source.Filter{}
	ids := r.sim.AddBreaches(3)
	r.sim.AcknowledgeBreach(ids[1])
	_, stop := r.start()
	defer stop()
	waitFor(t, "the unacknowledged breaches", func() bool { return len(countIDs(r.rec, alert.KindBreach)) == 2 })
	r.polls("/modelbreaches", 2) // read again while acknowledged: still filtered
	reopened := strconv.FormatInt(ids[1], 10)
	if n := countIDs(r.rec, alert.KindBreach)[reopened]; n != 0 {
		t.Fatalf("acknowledged breach %s sent %d times with acknowledged breaches filtered out", reopened, n)
	}
	r.sim.UnacknowledgeBreach(ids[1])
	waitFor(t, "the reopened breach", func() bool { return countIDs(r.rec, alert.KindBreach)[reopened] == 1 })
}
