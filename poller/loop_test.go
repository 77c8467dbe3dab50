package poller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/source"
)

type loopOpts struct {
	sources  []string
	interval time.Duration
	overlap  time.Duration
	start    time.Time
	dir      string
	metrics  *metrics.Metrics
	logger   *zerolog.Logger
	// shutdownTimeout defaults to 200ms.
	shutdownTimeout time.Duration
}

func newTestAppliance(t *testing.T, api fetch.Fetcher, d Deliverer, o loopOpts) *Poller {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.sources == nil {
		o.sources = []string{darktrace.SourceBreaches}
	}
	if o.interval == 0 {
		o.interval = 20 * time.Millisecond
	}
	if o.overlap == 0 {
		o.overlap = time.Minute
	}
	if o.start.IsZero() {
		o.start = time.Now().Add(-time.Hour)
	}
	if o.shutdownTimeout == 0 {
		o.shutdownTimeout = 200 * time.Millisecond
	}
	log := zerolog.Nop()
	if o.logger != nil {
		log = *o.logger
	}
	st, err := checkpoint.Open(o.dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{
		Reader:    source.NewReader(api, "dt", "dt.example", source.Filter{IncludeAcknowledged: true}, log),
		Sources:   o.sources,
		Store:     st,
		Deliverer: d,
		Interval:  o.interval, Overlap: o.overlap, Start: o.start,
		RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		ShutdownTimeout: o.shutdownTimeout,
		Logger:          log,
		Metrics:         o.metrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// run starts a in the background and returns a function that stops it and waits.
func run(t *testing.T, a *Poller) (stop func()) {
	t.Helper()
	stop, _ = runCancel(t, a)
	return stop
}

// runCancel is run that also returns the cancellation alone, for tests that act between
// cancelling and waiting.
func runCancel(t *testing.T, a *Poller) (stop func(), cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatal("Run did not return within a minute of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop, cancel
}

// waitFor waits for cond. The timeout only bounds a failure: a loaded machine may be slow,
// never wrong.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, time.Minute, what, cond)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoopDeliversLateBreachesExactlyOnce(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	// History: created within the first window.
	for i := int64(1); i <= 20; i++ {
		api.addBreach(breach(i, now.Add(-30*time.Minute).UnixMilli(), now.Add(-20*time.Minute).UnixMilli()+i))
	}
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{})
	stop := run(t, a)
	waitFor(t, "history", func() bool { return len(rec.ids()) >= 20 })

	// Live breaches while polling; every third is late: activity 40 minutes before creation,
	// far behind the cursor, so only a window on creationTime finds it.
	for i := int64(21); i <= 80; i++ {
		created := time.Now()
		activity := created.Add(-time.Second)
		if i%3 == 0 {
			activity = created.Add(-40 * time.Minute)
		}
		api.addBreach(breach(i, activity.UnixMilli(), created.UnixMilli()))
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "all 80 breaches", func() bool { return len(rec.ids()) >= 80 })
	time.Sleep(60 * time.Millisecond) // a few more polls re-reading the overlap
	stop()

	got := rec.ids()
	if len(got) != 80 {
		t.Fatalf("delivered %d alerts, want 80 (duplicates?): %v", len(got), got)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("pbid %s delivered twice", id)
		}
		seen[id] = true
	}
	st, _ := a.cfg.Store.Source(darktrace.SourceBreaches)
	if st.Cursor < now.UnixMilli() {
		t.Fatalf("cursor %d did not move past the start %d", st.Cursor, now.UnixMilli())
	}
}

func TestLoopKeepsBatchAndCheckpointWhileSinkFails(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	for i := int64(1); i <= 5; i++ {
		api.addBreach(breach(i, now.Add(-time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli()+i))
	}
	rec := &recorder{failNext: 8, failErr: errors.New("dial tcp 127.0.0.1:6514: connection refused")}
	dir := t.TempDir()
	m := metrics.New()
	a := newTestAppliance(t, api, rec, loopOpts{dir: dir, metrics: m})
	run(t, a)
	waitFor(t, "some failures", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.calls >= 4 })
	if err := a.Ready(); err == nil {
		t.Fatal("Ready() = nil while the sink fails")
	}
	if n := api.queryCount(); n != 1 {
		t.Fatalf("%d requests while the first batch was undelivered; the batch must be retried without re-polling", n)
	}
	if _, err := os.Stat(a.cfg.Store.Path()); err == nil {
		t.Fatal("checkpoint written before the sink accepted the batch")
	}
	waitFor(t, "delivery after the outage", func() bool { return len(rec.ids()) == 5 })
	waitFor(t, "ready", func() bool { return a.Ready() == nil })
	if got := rec.ids(); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Fatalf("delivered %v", got)
	}
	if rec.batches != 1 {
		t.Fatalf("batch delivered in %d pieces, want 1", rec.batches)
	}
	if _, err := os.Stat(a.cfg.Store.Path()); err != nil {
		t.Fatalf("checkpoint not written after delivery: %v", err)
	}
}

func TestLoopRetriesAPIFailures(t *testing.T) {
	api := &fakeAPI{failNext: 5, failErr: &darktrace.Error{Class: darktrace.ClassRetry, Msg: "HTTP 503; will retry"}}
	now := time.Now()
	api.addBreach(breach(1, now.UnixMilli(), now.UnixMilli()))
	rec := &recorder{}
	var logs syncBuffer
	log := zerolog.New(&logs)
	a := newTestAppliance(t, api, rec, loopOpts{logger: &log})
	run(t, a)
	waitFor(t, "delivery", func() bool { return len(rec.ids()) == 1 })
	// Five identical failures: one warning, not five.
	if n := countLines(logs.String(), `"level":"warn"`); n != 1 {
		t.Fatalf("%d retry warnings for 5 identical errors, want 1:\n%s", n, logs.String())
	}
	if n := countLines(logs.String(), "appliance answers again"); n != 1 {
		t.Fatalf("recovery not logged once:\n%s", logs.String())
	}
}

func TestLoopAntigenaStateChanges(t *testing.T) {
	api := &fakeAPI{}
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{sources: []string{darktrace.SourceAntigena}})
	t0 := time.Now().UnixMilli()
	act := darktrace.Action{CodeID: 42, DID: 7, Action: "quarantine", Label: "Quarantine device", Score: 0.8,
		PBID: 5, Model: "Compromise::Beacon", Start: t0, Expires: t0 + 3600_000, Updated: darktrace.FlexInt(t0)}
	api.setAction(act) // pending
	run(t, a)
	steps := []func(*darktrace.Action){
		func(x *darktrace.Action) { x.Active = true; x.Updated = darktrace.FlexInt(t0 + 1000) },       // activated
		func(x *darktrace.Action) { x.Expires += 3600_000; x.Updated = darktrace.FlexInt(t0 + 2000) }, // extended
		func(x *darktrace.Action) {
			x.Active = false
			x.Cleared = true
			x.Updated = darktrace.FlexInt(t0 + 3000)
		},
	}
	waitFor(t, "pending line", func() bool { return len(rec.ids()) == 1 })
	for i, step := range steps {
		time.Sleep(50 * time.Millisecond) // several polls with no change: nothing new
		if n := len(rec.ids()); n != i+1 {
			t.Fatalf("after %d unchanged polls: %d lines, want %d", i, n, i+1)
		}
		step(&act)
		api.setAction(act)
		waitFor(t, fmt.Sprintf("line %d", i+2), func() bool { return len(rec.ids()) == i+2 })
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var states []string
	for _, al := range rec.got {
		states = append(states, al.Action.State)
	}
	if want := []string{"pending", "active", "active", "cleared"}; !slices.Equal(states, want) {
		t.Fatalf("states = %v, want %v", states, want)
	}
	if want := time.UnixMilli(t0 + 7200_000); !rec.got[2].Action.Expires.Equal(want) {
		t.Fatalf("extension line expires %s, want %s", rec.got[2].Action.Expires, want)
	}
}

func TestLoopOneRequestInFlightPerAppliance(t *testing.T) {
	api := &fakeAPI{delay: 5 * time.Millisecond}
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{sources: []string{darktrace.SourceBreaches, darktrace.SourceAntigena, darktrace.SourceAIAnalyst}, interval: time.Millisecond})
	stop := run(t, a)
	waitFor(t, "30 requests", func() bool { return api.queryCount() >= 30 })
	stop()
	if m := api.maxInflight.Load(); m != 1 {
		t.Fatalf("%d requests in flight at once, want 1", m)
	}
}

func TestLoopShutdown(t *testing.T) {
	t.Run("abandons an undeliverable batch and keeps the checkpoint", func(t *testing.T) {
		api := &fakeAPI{}
		api.addBreach(breach(1, time.Now().UnixMilli(), time.Now().UnixMilli()))
		rec := &recorder{failNext: 1 << 30, failErr: errors.New("sink down")}
		a := newTestAppliance(t, api, rec, loopOpts{})
		stop := run(t, a)
		waitFor(t, "a failed send", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.calls >= 2 })
		began := time.Now()
		stop()
		if d := time.Since(began); d > 30*time.Second {
			t.Fatalf("shutdown took %s", d)
		}
		if _, err := os.Stat(a.cfg.Store.Path()); err == nil {
			t.Fatal("checkpoint written for an undelivered batch")
		}
	})
	t.Run("finishes an in-flight send and persists it", func(t *testing.T) {
		api := &fakeAPI{}
		api.addBreach(breach(1, time.Now().UnixMilli(), time.Now().UnixMilli()))
		block := make(chan struct{})
		rec := &recorder{block: block}
		// A shutdown timeout no loaded machine reaches: the send ends after the cancellation,
		// within it.
		a := newTestAppliance(t, api, rec, loopOpts{shutdownTimeout: time.Minute})
		stop, cancel := runCancel(t, a)
		waitFor(t, "send in flight", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.calls == 1 })
		cancel()
		close(block)
		stop()
		if got := rec.ids(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("delivered %v", got)
		}
		st, err := checkpoint.Open(a.cfg.Store.Path()[:len(a.cfg.Store.Path())-len("/dt.json")], "dt")
		if err != nil {
			t.Fatal(err)
		}
		ss, ok := st.Source(darktrace.SourceBreaches)
		if v, seen := checkpoint.NewDelivered(ss).Get("1"); !ok || !seen || v.Time == 0 {
			t.Fatalf("delivered batch not persisted: %+v", ss)
		}
	})
	t.Run("abandons a send that outlives the shutdown timeout", func(t *testing.T) {
		api := &fakeAPI{}
		api.addBreach(breach(1, time.Now().UnixMilli(), time.Now().UnixMilli()))
		rec := &recorder{block: make(chan struct{})} // never released
		a := newTestAppliance(t, api, rec, loopOpts{})
		stop := run(t, a)
		waitFor(t, "send in flight", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return rec.calls == 1 })
		began := time.Now()
		stop()
		if d := time.Since(began); d < 150*time.Millisecond || d > 30*time.Second {
			t.Fatalf("shutdown took %s, want about the 200ms ShutdownTimeout", d)
		}
		if _, err := os.Stat(a.cfg.Store.Path()); err == nil {
			t.Fatal("checkpoint written for an abandoned batch")
		}
	})
}

func TestLoopResumesFromCheckpoint(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	for i := int64(1); i <= 10; i++ {
		api.addBreach(breach(i, now.UnixMilli()-100, now.UnixMilli()-100+i))
	}
	dir := t.TempDir()
	rec1 := &recorder{}
	stop := run(t, newTestAppliance(t, api, rec1, loopOpts{dir: dir}))
	waitFor(t, "first run", func() bool { return len(rec1.ids()) == 10 })
	stop()

	for i := int64(11); i <= 15; i++ {
		api.addBreach(breach(i, time.Now().UnixMilli(), time.Now().UnixMilli()))
	}
	rec2 := &recorder{}
	stop = run(t, newTestAppliance(t, api, rec2, loopOpts{dir: dir}))
	waitFor(t, "second run", func() bool { return len(rec2.ids()) == 5 })
	time.Sleep(50 * time.Millisecond)
	stop()
	want := []string{"11", "12", "13", "14", "15"}
	if got := rec2.ids(); !slices.Equal(got, want) {
		t.Fatalf("after restart delivered %v, want only %v", got, want)
	}
}

func TestLoopMetricsAndLag(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	for i := int64(1); i <= 3; i++ {
		api.addBreach(breach(i, now.UnixMilli(), now.UnixMilli()))
	}
	m := metrics.New()
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{metrics: m})
	if a.Ready() == nil {
		t.Fatal("ready before the first poll (checkpoint an hour behind)")
	}
	stop := run(t, a)
	waitFor(t, "delivery", func() bool { return len(rec.ids()) == 3 })
	// Later polls fetch the same 3 again: wait for them rather than sleeping a fixed time,
	// which a loaded machine may not fit a second poll into.
	waitFor(t, "a later poll", func() bool {
		mfs, _ := m.Registry().Gather()
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if mf.GetName() == "dtforward_records_total" && l.GetValue() == "deduped" && mt.GetCounter().GetValue() >= 3 {
						return true
					}
				}
			}
		}
		return false
	})
	stop()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				if l.GetName() == "outcome" {
					key += "/" + l.GetValue()
				}
			}
			switch {
			case mt.Counter != nil:
				got[key] += mt.Counter.GetValue()
			case mt.Gauge != nil:
				got[key] = mt.Gauge.GetValue()
			case mt.Histogram != nil:
				got[key] = float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	if got["dtforward_records_total/sent"] != 3 {
		t.Fatalf("sent = %v, want 3 (%v)", got["dtforward_records_total/sent"], got)
	}
	if got["dtforward_records_total/deduped"] < 3 || got["dtforward_records_total/fetched"] < 6 {
		t.Fatalf("later polls should have fetched and deduped the same 3: %v", got)
	}
	if lag, ok := got["dtforward_checkpoint_lag_seconds"]; !ok || lag < 0 || lag > 1 {
		t.Fatalf("lag = %v (present %v), want a fresh checkpoint", lag, ok)
	}
	if got["dtforward_poll_duration_seconds"] < 2 {
		t.Fatalf("poll duration observations = %v", got["dtforward_poll_duration_seconds"])
	}
}

func countLines(s, substr string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// TestLoopCatchesUpInBoundedWindows: a checkpoint far behind is caught up in MaxWindow-sized
// requests back to back (no interval wait between them), then polling settles.
func TestLoopCatchesUpInBoundedWindows(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	for h := int64(1); h <= 30; h++ {
		at := now.Add(-time.Duration(h) * time.Hour).UnixMilli()
		api.addBreach(breach(h, at, at))
	}
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{start: now.Add(-31 * time.Hour), interval: time.Hour})
	run(t, a)
	waitFor(t, "30 breaches", func() bool { return len(rec.ids()) == 30 })
	waitFor(t, "the 6th, caught-up request", func() bool { return api.queryCount() >= 6 })
	time.Sleep(50 * time.Millisecond)
	api.mu.Lock()
	queries := slices.Clone(api.queries)
	api.mu.Unlock()
	if len(queries) != 6 {
		t.Fatalf("%d requests for 31 hours with a 6h MaxWindow and a 1h interval, want 6 (5 full windows back to back, then now)", len(queries))
	}
	for _, q := range queries {
		s, e := windowOf(t, q)
		if d := e.Sub(s); d > DefaultMaxWindow+time.Minute {
			t.Fatalf("window %s longer than MaxWindow+overlap: %s", d, q)
		}
	}
	if got := rec.ids(); got[0] != "30" || got[29] != "1" {
		t.Fatalf("not delivered oldest first: %v", got)
	}
}

func windowOf(t *testing.T, q string) (time.Time, time.Time) {
	t.Helper()
	var s, e int64
	for _, kv := range strings.Split(q[strings.IndexByte(q, '?')+1:], "&") {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "starttime":
			s = n
		case "endtime":
			e = n
		}
	}
	return time.UnixMilli(s), time.UnixMilli(e)
}

// TestLoopIntervalIgnoresClockOffset: windows follow Config.Now (an appliance clock 20 minutes
// ahead here) but the wait between polls is the real interval.
func TestLoopIntervalIgnoresClockOffset(t *testing.T) {
	api := &fakeAPI{}
	st, err := checkpoint.Open(t.TempDir(), "dt")
	if err != nil {
		t.Fatal(err)
	}
	ahead := func() time.Time { return time.Now().Add(20 * time.Minute) }
	a, err := New(Config{
		Reader: source.NewReader(api, "dt", "", source.Filter{}, zerolog.Nop()), Sources: []string{darktrace.SourceBreaches},
		Store: st, Deliverer: &recorder{}, Interval: 20 * time.Millisecond, Overlap: time.Minute,
		Now: ahead, Logger: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, a)
	waitFor(t, "several polls", func() bool { return api.queryCount() >= 5 })
	stop()
	_, end := windowOf(t, api.queries[0])
	if d := time.Until(end); d < 19*time.Minute {
		t.Fatalf("window ends %s from now, want the appliance clock (+20m)", d)
	}
}

// TestLoopKeepsPollingWhenCheckpointCannotBeWritten: a failed checkpoint write (disk full,
// permissions) is reported on Ready but does not stop delivery; the next write retries.
func TestLoopKeepsPollingWhenCheckpointCannotBeWritten(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	api.addBreach(breach(1, now.UnixMilli(), now.UnixMilli()))
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{})
	// A non-empty directory where the checkpoint file should be: every rename fails.
	if err := os.MkdirAll(filepath.Join(a.cfg.Store.Path(), "block"), 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, a)
	waitFor(t, "first delivery", func() bool { return len(rec.ids()) == 1 })
	waitFor(t, "not ready", func() bool {
		err := a.Ready()
		return err != nil && strings.Contains(err.Error(), "checkpoint not saved")
	})
	api.addBreach(breach(2, time.Now().UnixMilli(), time.Now().UnixMilli()))
	waitFor(t, "delivery goes on", func() bool { return len(rec.ids()) == 2 })
	if err := os.RemoveAll(a.cfg.Store.Path()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready once the checkpoint is written again", func() bool { return a.Ready() == nil })
	if _, err := os.Stat(a.cfg.Store.Path()); err != nil {
		t.Fatal(err)
	}
}

// wholeSecondDate answers with the Date an appliance sends: whole seconds, so up to a second
// behind the moment it answered.
type wholeSecondDate struct{ *fakeAPI }

func (w wholeSecondDate) StreamDated(ctx context.Context, q string, fn func(raw []byte) error) (time.Time, error) {
	_, err := w.fakeAPI.StreamDated(ctx, q, fn)
	return time.Now().Add(-999 * time.Millisecond), err
}

// TestLoopReadyWithWholeSecondDates: a caught-up cursor trails now by up to a second by design
// (no window ends past the appliance's Date, which has whole seconds). With a short interval
// that must not read as lagging: /readyz flapped on it (two real sinks, 200 ms interval).
func TestLoopReadyWithWholeSecondDates(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	api.addBreach(breach(1, now.Add(-time.Minute).UnixMilli(), now.Add(-time.Minute).UnixMilli()))
	rec := &recorder{}
	a := newTestAppliance(t, wholeSecondDate{api}, rec, loopOpts{interval: 20 * time.Millisecond})
	run(t, a)
	waitFor(t, "the breach", func() bool { return len(rec.ids()) == 1 })
	waitFor(t, "several polls", func() bool { return api.queryCount() >= 5 })
	if err := a.Ready(); err != nil {
		t.Fatalf("Ready() = %v with a cursor a second behind (the Date's resolution)", err)
	}
}

// TestLagMeasuresTheCheckpointOnDisk (issue 18 item 10): while the checkpoint cannot be
// written, dtforward_checkpoint_lag_seconds grows from the cursor on disk, though delivery
// (and the cursor in memory) goes on; once the file can be written again it drops back.
func TestLagMeasuresTheCheckpointOnDisk(t *testing.T) {
	api := &fakeAPI{}
	now := time.Now()
	api.addBreach(breach(1, now.UnixMilli(), now.UnixMilli()))
	m := metrics.New()
	rec := &recorder{}
	dir := t.TempDir()
	a := newTestAppliance(t, api, rec, loopOpts{metrics: m, dir: dir})
	stop := run(t, a)
	defer stop()
	waitFor(t, "delivery", func() bool { return len(rec.ids()) == 1 })
	lag := func() float64 {
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "dtforward_checkpoint_lag_seconds" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no dtforward_checkpoint_lag_seconds")
		return 0
	}
	waitFor(t, "a fresh checkpoint", func() bool { return lag() < 1 })

	// The volume "fills": every write of the checkpoint fails from now on.
	path := filepath.Join(dir, "dt.json")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	broken := time.Now()
	api.addBreach(breach(2, time.Now().UnixMilli(), time.Now().UnixMilli()))
	waitFor(t, "delivery while the checkpoint cannot be written", func() bool { return len(rec.ids()) == 2 })
	waitFor(t, "the lag to grow past 2s", func() bool { return lag() >= 2 })
	if since := time.Since(broken).Seconds(); lag() < 2 || lag() > since+2 {
		t.Fatalf("lag %.1fs, %.1fs after the checkpoint stopped being written", lag(), since)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lag to drop once the checkpoint is written again", func() bool { return lag() < 1 })
}
