package poller

import (
	"context"
	"os"
	"path/filepath"
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

// holdMeter is the real client and a Deliverer at once: it measures the most records of one
// response that were read and not yet delivered (the records a poll holds at once).
type holdMeter struct {
	*darktrace.Client
	rec *batchRecorder

	mu               sync.Mutex
	read, sent, most int
	requests         int
}

func (h *holdMeter) StreamDated(ctx context.Context, q string, fn func([]byte) error) (time.Time, error) {
	h.mu.Lock()
	h.read, h.sent = 0, 0
	h.requests++
	h.mu.Unlock()
	return h.Client.StreamDated(ctx, q, func(raw []byte) error {
		h.mu.Lock()
		h.read++
		h.most = max(h.most, h.read-h.sent)
		h.mu.Unlock()
		return fn(raw)
	})
}

func (h *holdMeter) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	h.mu.Lock()
	h.sent += len(alerts)
	h.mu.Unlock()
	return h.rec.Deliver(ctx, alerts)
}

// TestLoopSameMillisecondFloodIsReadInBatches (issue 18 item 8): 500 breaches created in the
// same millisecond against a cap of 50 records per response. The smallest window cannot be split
// below the cap, and the API does not paginate; it used to be "fetched whole", every record held
// until the response ended (100,000 of them peaked at 328 MB). It is now streamed: records go to
// the Deliverer 20 at a time as the response is read, so at most the cap's worth (the aborted
// capped attempt) is ever held, and every breach still arrives exactly once. On the old code
// the meter saw all 500 held at once.
func TestLoopSameMillisecondFloodIsReadInBatches(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 88, History: 6 * time.Hour, HistoryCount: 20}, time.Minute)
	c.sim.AddBreaches(500)
	want := c.want()
	h := &holdMeter{Client: c.client.Client, rec: &batchRecorder{accept: -1}}
	store, err := checkpoint.Open(c.dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		Reader:    source.NewReader(h, "dt", "dt.example", source.Filter{IncludeAcknowledged: true}, zerolog.Nop()),
		Sources:   []string{darktrace.SourceBreaches},
		Store:     store,
		Deliverer: h,
		Interval:  20 * time.Millisecond, Overlap: time.Minute, Start: c.start,
		MaxRecords: 50, SendBatch: 20,
		RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a)
	waitUntil(t, time.Minute, "every breach", func() bool { return len(tally(h.rec.ids())) >= len(want) })
	stop()
	got := tally(h.rec.ids())
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("pbid %s delivered %d times, want once", id, got[id])
		}
	}
	if h.rec.largest > 20 {
		t.Errorf("a batch of %d alerts, want at most 20", h.rec.largest)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t.Logf("%d breaches, %d requests, at most %d records read and not delivered", len(want), h.requests, h.most)
	if h.most > 51 {
		t.Errorf("%d records of one response held at once, want at most the cap's 51", h.most)
	}
	// What the poller remembers of the flood (the delivered keys, in memory and rewritten in
	// the checkpoint at every batch) must not grow with it either: the 500 consecutive pbids
	// are one run. The old code kept an entry per pbid, 13 KB of checkpoint here and 1.1 GB
	// of memory for 100,000 (bench/same-ms-memory.sh).
	fi, err := os.Stat(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint %d bytes", fi.Size())
	if fi.Size() > 1024 {
		b, _ := os.ReadFile(store.Path())
		t.Errorf("checkpoint holds %d bytes after a flood of %d consecutive pbids, want under 1 KB:\n%.600s", fi.Size(), len(want), b)
	}
}

// TestLoopSameMillisecondFloodSurvivesARestart: the appliance lists a window by activity time,
// not by pbid, so a flood of one creation millisecond is delivered in what is, for pbids,
// random order. Stopped half-way (the collector stops answering, dtforward is restarted), the
// checkpoint must hold what was delivered in a size that does not grow with the flood or its
// order (a bitmap, not an id or a run per hole: the old code wrote 1,200 ids, about 30 KB, at
// every batch), no pbid not read yet may count as a gap, and the restart must deliver every
// other breach, repeating none.
func TestLoopSameMillisecondFloodSurvivesARestart(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 89, History: 6 * time.Hour, HistoryCount: 20}, time.Minute)
	c.sim.AddBreaches(3000)
	want := c.want()
	first := &batchRecorder{accept: 60}
	stop := run(t, c.appliance(t, first, zerolog.Nop()))
	waitUntil(t, time.Minute, "60 batches accepted", func() bool {
		first.mu.Lock()
		defer first.mu.Unlock()
		return first.accept == 0
	})
	stop()
	fi, err := os.Stat(filepath.Join(c.dir, "dt.json"))
	if err != nil {
		t.Fatal(err)
	}
	delivered := len(first.ids())
	t.Logf("stopped after %d of %d breaches; checkpoint %d bytes", delivered, len(want), fi.Size())
	if delivered >= len(want) || delivered < 600 {
		t.Fatalf("%d of %d delivered before the stop, want part of the flood", delivered, len(want))
	}
	if fi.Size() > 16<<10 {
		t.Errorf("checkpoint %d bytes half-way through the flood, want at most 16 KiB (a bitmap)", fi.Size())
	}
	// A pbid of the flood not delivered yet is not missing: the rest of the response holds it.
	// Observed slice by slice, each one's holes were counted as gaps and checked by id.
	st, err := checkpoint.Open(c.dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	if ss, _ := st.Source(darktrace.SourceBreaches); ss.Gaps != nil && len(ss.Gaps.Missing) > 0 {
		t.Errorf("%d pbids of the flood tracked as missing half-way through it, want none", len(ss.Gaps.Missing))
	}

	second := &batchRecorder{accept: -1}
	stop = run(t, c.appliance(t, second, zerolog.Nop()))
	waitUntil(t, time.Minute, "every breach", func() bool { return len(first.ids())+len(second.ids()) >= len(want) })
	// Once the flood was read in full, the gap tracker has learnt it with no pbid missing, and
	// what is remembered of it is one run again.
	var last checkpoint.Progress
	waitUntil(t, time.Minute, "the flood settled in the checkpoint", func() bool {
		st, err := checkpoint.Open(c.dir, "dt")
		if err != nil {
			t.Fatal(err)
		}
		last, _ = st.Source(darktrace.SourceBreaches)
		return last.Gaps != nil && last.Gaps.MaxPBID >= int64(len(want)) && len(last.Bitmaps) == 0
	})
	stop()
	if len(last.Gaps.Missing) > 0 || len(last.Runs) > 3 {
		t.Errorf("after the flood: %d pbids missing, %d runs; want none missing and the flood one run", len(last.Gaps.Missing), len(last.Runs))
	}
	got := tally(append(first.ids(), second.ids()...))
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("pbid %s delivered %d times, want once", id, got[id])
		}
	}
}

// slowRecorder is a batchRecorder that takes its time over each batch, as a collector under
// load does.
type slowRecorder struct {
	batchRecorder
	pause time.Duration
}

func (s *slowRecorder) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	time.Sleep(s.pause)
	return s.batchRecorder.Deliver(ctx, alerts)
}

// TestLoopLongFloodIsReadAgainWithoutBackoff: a flood whose delivery outlasts the request
// timeout (a million breaches take longer than DARKTRACE_TIMEOUT's minute) ends each read
// early after delivering part of it. That is progress: the rest is read again at once, skipping
// what was delivered, and every breach arrives once. It used to count as a failing appliance
// each time (an API error, a warning, a growing backoff between the pieces).
func TestLoopLongFloodIsReadAgainWithoutBackoff(t *testing.T) {
	c := newCatchUp(t, simulator.Options{Seed: 90, History: 6 * time.Hour, HistoryCount: 20}, 2*time.Second)
	c.sim.AddBreaches(1500)
	want := c.want()
	rec := &slowRecorder{batchRecorder: batchRecorder{accept: -1}, pause: 40 * time.Millisecond}
	logs := &syncBuffer{}
	stop := run(t, c.appliance(t, rec, zerolog.New(logs)))
	waitUntil(t, 2*time.Minute, "every breach", func() bool { return len(tally(rec.ids())) >= len(want) })
	stop()
	got := tally(rec.ids())
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("pbid %s delivered %d times, want once", id, got[id])
		}
	}
	out := logs.String()
	if n := strings.Count(out, "appliance request failed"); n > 0 {
		t.Errorf("%d reads that delivered part of the flood reported as a failing appliance", n)
	}
	early := strings.Count(out, "streamed window ended early")
	t.Logf("%d reads ended early", early)
	if early == 0 {
		t.Error("no read of the flood ended early and was read again")
	}
}
