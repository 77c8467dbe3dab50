package poller

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// countingClient is the real client, counting the records of each response it streams.
type countingClient struct {
	*darktrace.Client
	mu       sync.Mutex
	largest  int
	requests int
	over     int // responses that carried more than 50 records (aborted by the cap of 50)
}

func (c *countingClient) StreamDated(ctx context.Context, q string, fn func([]byte) error) (time.Time, error) {
	n := 0
	defer func() {
		c.mu.Lock()
		c.largest = max(c.largest, n)
		c.requests++
		if n > 50 {
			c.over++
		}
		c.mu.Unlock()
	}()
	return c.Client.StreamDated(ctx, q, func(raw []byte) error { n++; return fn(raw) })
}

func (c *countingClient) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.largest
}

// batchRecorder accepts the first accept batches (all when accept < 0) and refuses the rest.
type batchRecorder struct {
	mu      sync.Mutex
	accept  int
	got     []string
	largest int
}

func (r *batchRecorder) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.accept == 0 {
		return context.DeadlineExceeded // a collector that stopped answering
	}
	r.accept--
	r.largest = max(r.largest, len(alerts))
	for _, a := range alerts {
		r.got = append(r.got, a.ID)
	}
	return nil
}

func (r *batchRecorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type catchUp struct {
	sim    *simulator.Simulator
	client *countingClient
	dir    string
	start  time.Time
}

func newCatchUp(t *testing.T, o simulator.Options, timeout time.Duration) *catchUp {
	t.Helper()
	sim, c := startSim(t, o, timeout)
	return &catchUp{sim: sim, client: &countingClient{Client: c}, dir: t.TempDir(), start: sim.Now().Add(-o.History)}
}

// appliance is a poller of the whole history with MaxRecords 50 and SendBatch 20.
func (c *catchUp) appliance(t *testing.T, d Deliverer, log zerolog.Logger) *Poller {
	t.Helper()
	st, err := checkpoint.Open(c.dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		Reader:    source.NewReader(c.client, "dt", "dt.example", source.Filter{IncludeAcknowledged: true}, log),
		Sources:   []string{darktrace.SourceBreaches},
		Store:     st,
		Deliverer: d,
		Interval:  20 * time.Millisecond, Overlap: time.Minute, Start: c.start,
		MaxRecords: 50, SendBatch: 20,
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond,
		Logger:          log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// want is every breach the poller must deliver (suppressed ones are not asked for).
func (c *catchUp) want() []string {
	var out []string
	for _, b := range c.sim.BreachInfos() {
		out = append(out, strconv.FormatInt(b.PBID, 10))
	}
	return out
}

func tally(ids []string) map[string]int {
	n := map[string]int{}
	for _, id := range ids {
		n[id]++
	}
	return n
}

// TestLoopCatchUpIsBoundedByConfiguration: 300 breaches to catch up on, at most 50 records
// per response and 20 per Deliver call. Every breach arrives exactly once, no response carries
// more than the cap (the 51st record aborts it) and no batch more than 20.
func TestLoopCatchUpIsBoundedByConfiguration(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 61, History: 6 * time.Hour, HistoryCount: 300}, time.Minute)
	var logs syncBuffer
	rec := &batchRecorder{accept: -1}
	stop := run(t, c.appliance(t, rec, zerolog.New(&logs)))
	want := c.want()
	waitFor(t, "every breach", func() bool { return len(tally(rec.ids())) >= len(want) })
	stop()

	got := tally(rec.ids())
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("breach %s delivered %d times, want once", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %d distinct breaches, want %d", len(got), len(want))
	}
	if m := c.client.max(); m > 51 {
		t.Errorf("a response carried %d records; the cap of 50 should have cut it at 51", m)
	}
	if rec.largest > 20 {
		t.Errorf("a Deliver call carried %d alerts, want at most 20", rec.largest)
	}
}

// TestLoopCatchUpWastesFewResponses (issue 19 item 10): catching up on 2,000 breaches spread
// over 6 hours with a cap of 50, the poll sizes each piece from the density of the last one.
// Walking the window in blind halves sent a too-large response (transferred, then thrown away)
// at every level of every half: as many wasted responses as delivered pieces, which made
// bounded catch-up slower than fetching whole. Counted, not timed.
func TestLoopCatchUpWastesFewResponses(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 63, History: 6 * time.Hour, HistoryCount: 2000}, time.Minute)
	rec := &batchRecorder{accept: -1}
	stop := run(t, c.appliance(t, rec, zerolog.Nop()))
	want := c.want()
	waitFor(t, "every breach", func() bool { return len(tally(rec.ids())) >= len(want) })
	stop()
	if got := tally(rec.ids()); len(got) != len(want) {
		t.Fatalf("delivered %d distinct breaches, want %d", len(got), len(want))
	}
	c.client.mu.Lock()
	defer c.client.mu.Unlock()
	t.Logf("%d breaches: %d requests, %d of them over the cap", len(want), c.client.requests, c.client.over)
	// About 2000/37 pieces of 3/4 of the cap; the descent to the first piece costs
	// log2(2000/37) ≈ 6 too-large responses, and a piece sized from a sparser neighbour now and
	// then one more (11 seen; halving every half threw away 61).
	if c.client.over > 20 {
		t.Errorf("%d responses over the cap were thrown away for %d requests, want at most 20", c.client.over, c.client.requests)
	}
}

// TestLoopMovesTheCheckpointPerBatch: the collector takes 7 batches of 20 and then stops
// answering; after a restart, everything arrives and what the first run delivered is repeated
// at most one batch: the checkpoint moved after each delivered batch, not once per window.
func TestLoopMovesTheCheckpointPerBatch(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 62, History: 6 * time.Hour, HistoryCount: 300}, time.Minute)
	first := &batchRecorder{accept: 7}
	stop := run(t, c.appliance(t, first, zerolog.Nop()))
	waitFor(t, "7 batches", func() bool { first.mu.Lock(); defer first.mu.Unlock(); return first.accept == 0 })
	stop()

	second := &batchRecorder{accept: -1}
	stop = run(t, c.appliance(t, second, zerolog.Nop()))
	want := c.want()
	waitFor(t, "every breach after the restart", func() bool {
		return len(tally(append(first.ids(), second.ids()...))) >= len(want)
	})
	stop()

	both := tally(append(first.ids(), second.ids()...))
	dups := 0
	for _, id := range want {
		if both[id] == 0 {
			t.Errorf("breach %s never delivered", id)
		}
		dups += max(both[id]-1, 0)
	}
	if dups > 20 {
		t.Errorf("%d breaches delivered twice across the restart; at most one batch (20) may repeat", dups)
	}
}

// TestLoopSplitsASlowWindow: every response trickles in, so the whole history cannot arrive
// within the API timeout however often it is asked for. The poller halves the window after two
// timeouts until the pieces arrive in time, and delivers everything.
func TestLoopSplitsASlowWindow(t *testing.T) {
	// About 70 ms per breach: the whole hour takes near 3 s, twice the timeout; its halves
	// arrive in time even on a loaded machine (and would be halved again if not).
	c := newCatchUp(t, simulator.Options{Seed: 63, History: time.Hour, HistoryCount: 40}, 2*time.Second)
	faults, err := simulator.ParseFaults("modelbreaches:slow@10ms")
	if err != nil {
		t.Fatal(err)
	}
	c.sim.SetFaults(faults)
	var logs syncBuffer
	rec := &batchRecorder{accept: -1}
	stop := run(t, c.appliance(t, rec, zerolog.New(&logs)))
	want := c.want()
	waitUntil(t, 2*time.Minute, "every breach", func() bool { return len(tally(rec.ids())) >= len(want) })
	stop()
	if !strings.Contains(logs.String(), "fetching it in halves") {
		t.Errorf("no split was logged:\n%s", logs.String())
	}
}
