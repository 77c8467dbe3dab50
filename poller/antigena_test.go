package poller

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// TestAntigenaStatesWhileSinkDown (issue 18 item 9): a sink that is down while actions are
// created, confirmed, extended, expire, are reactivated and cleared still gets every state
// once it is back — with or without a restart while it was down — rebuilt from the actions'
// history. The one kind of state the history cannot give back, an expiry followed by a
// reactivation, is counted in dtforward_antigena_states_missed_total.
func TestAntigenaStatesWhileSinkDown(t *testing.T) {
	for _, restart := range []bool{false, true} {
		t.Run("restart="+strconv.FormatBool(restart), func(t *testing.T) {
			r := newSimRig(t, simulator.Options{Seed: 77, HistoryCount: -1}, []string{darktrace.SourceAntigena}, nil)
			r.sim.AddActions(20)
			_, stop := r.start()
			defer func() { stop() }()
			waitFor(t, "the first states", func() bool { return len(r.rec.ids()) == 20 })

			// The sink goes down; the next change is fetched and its delivery retried.
			r.rec.mu.Lock()
			r.rec.failNext, r.rec.failErr = math.MaxInt, errors.New("sink down")
			calls := r.rec.calls
			r.rec.mu.Unlock()
			r.sim.AddActions(10)
			waitFor(t, "a failed delivery", func() bool {
				r.rec.mu.Lock()
				defer r.rec.mu.Unlock()
				return r.rec.calls > calls
			})
			// The lifecycle runs on while nothing can be delivered.
			r.sim.AdvanceActions()
			r.sim.ExpireActions()
			for range 3 {
				r.sim.AdvanceActions()
			}
			if restart {
				stop()
				_, stop = r.start()
			}
			r.rec.mu.Lock()
			r.rec.failNext = 0
			r.rec.mu.Unlock()

			// Every state the simulator emitted, each once; expiries followed by a
			// reactivation are the ones the history cannot show.
			want := map[string]int{}
			expired := 0
			for _, s := range r.sim.ActionStates() {
				if s.State == "expired" {
					expired++
					continue
				}
				want[fmt.Sprintf("%d/%s/%d", s.CodeID, s.State, s.Updated)]++
			}
			if expired == 0 || len(want) < 60 {
				t.Fatalf("test setup: %d states, %d expiries", len(want), expired)
			}
			t.Logf("%d states to deliver, %d expiries", len(want), expired)
			got := func() map[string]int {
				r.rec.mu.Lock()
				defer r.rec.mu.Unlock()
				out := map[string]int{}
				for _, a := range r.rec.got {
					if a.Kind == alert.KindAntigena {
						out[fmt.Sprintf("%s/%s/%d", a.ID, a.Action.State, a.Created.UnixMilli())]++
					}
				}
				return out
			}
			latest := map[int64]string{}
			for _, s := range r.sim.ActionStates() {
				latest[s.CodeID] = fmt.Sprintf("%d/%s/%d", s.CodeID, s.State, s.Updated)
			}
			waitFor(t, "every action's latest state", func() bool {
				g := got()
				for _, k := range latest {
					if g[k] == 0 {
						return false
					}
				}
				return true
			})
			r.polls("/antigena", 3)
			stop()
			have := got()
			var lost, extra []string
			for k, n := range want {
				if have[k] != n {
					lost = append(lost, k+" x"+strconv.Itoa(have[k]))
				}
			}
			for k := range have {
				if want[k] == 0 {
					extra = append(extra, k)
				}
			}
			if len(lost) > 0 || len(extra) > 0 {
				t.Fatalf("%d of %d states not delivered exactly once: %v; delivered but never a state: %v", len(lost), len(want), lost, extra)
			}
			if v := counter(t, r.metrics, "dtforward_antigena_states_missed_total", map[string]string{"appliance": "dt"}); v != float64(expired) {
				t.Fatalf("dtforward_antigena_states_missed_total = %v, want the %d expiries", v, expired)
			}
		})
	}
}
