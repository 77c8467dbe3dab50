package backfill

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// startSim starts a simulator on loopback HTTP and a client of it with the given timeout,
// both stopped when the test ends.
func startSim(t *testing.T, o simulator.Options, timeout time.Duration) (*simulator.Simulator, *darktrace.Client) {
	t.Helper()
	o.PublicToken, o.PrivateToken = "pub", "priv"
	sim, err := simulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := darktrace.New(darktrace.Config{URL: u, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return sim, c
}

// backfillSim starts a simulator on loopback HTTP and returns it with the pipeline run and
// backfill would build for it.
func backfillSim(t *testing.T, o simulator.Options, timeout time.Duration) (*simulator.Simulator, *source.Reader) {
	t.Helper()
	sim, c := startSim(t, o, timeout)
	return sim, source.NewReader(c, "dt-test", c.Host(), source.Filter{IncludeAcknowledged: true}, zerolog.Nop())
}

// wantBreaches is the oracle: every breach a creation-time backfill of [from, to) must deliver
// (suppressed ones are not asked for).
func wantBreaches(sim *simulator.Simulator, from, to time.Time) []string {
	var out []string
	for _, b := range sim.BreachInfos() {
		if b.Created >= from.UnixMilli() && b.Created < to.UnixMilli() {
			out = append(out, strconv.FormatInt(b.PBID, 10))
		}
	}
	return out
}

// countIDs returns how often each id of kind was delivered.
func countIDs(r *recorder, kind string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, a := range r.got {
		if a.Kind == kind {
			out[a.ID]++
		}
	}
	return out
}

// exactlyOnce fails unless every id in want was delivered exactly once and nothing else was.
func exactlyOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	missing, dup := 0, 0
	for _, id := range want {
		switch n := got[id]; {
		case n == 0:
			missing++
		case n > 1:
			dup++
		}
	}
	if missing > 0 || dup > 0 || len(got) != len(want) {
		t.Fatalf("want %d ids exactly once: %d missing, %d duplicated, %d distinct delivered", len(want), missing, dup, len(got))
	}
}

func TestBackfillDeliversEveryRecordOnce(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 3, History: 72 * time.Hour, HistoryCount: 1500,
		LateFraction: 0.2, LateDelay: 5 * time.Hour, MissingCreationFraction: 0.02}, 10*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-80 * time.Hour)
	rec := &recorder{}
	var last Progress
	dir := t.TempDir()
	sum, err := Run(t.Context(), Config{
		Reader: p, Sources: darktrace.SourceNames(), Deliverer: rec, From: from, To: to,
		Chunk: 2 * time.Hour, StateDir: dir, RetryMin: time.Millisecond,
		Progress: func(pr Progress) { last = pr },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := wantBreaches(sim, from, to)
	exactlyOnce(t, countIDs(rec, "modelbreach"), want)
	if got := sum.Sources[darktrace.SourceBreaches].Sent; got != len(want) {
		t.Errorf("summary says %d breaches sent, oracle %d", got, len(want))
	}
	var incidents []string
	for _, e := range sim.IncidentEvents() {
		if e.CreatedAt >= from.UnixMilli() && e.CreatedAt < to.UnixMilli() {
			incidents = append(incidents, e.ID)
		}
	}
	exactlyOnce(t, countIDs(rec, "aianalyst"), incidents)
	var actions []string
	for _, a := range sim.Actions() {
		if a.Start >= from.UnixMilli() && a.Start < to.UnixMilli() {
			actions = append(actions, strconv.FormatInt(a.CodeID, 10))
		}
	}
	exactlyOnce(t, countIDs(rec, "antigena"), actions)
	if len(actions) == 0 || len(incidents) == 0 {
		t.Fatalf("simulator made %d actions and %d incidents in range; the test needs some", len(actions), len(incidents))
	}
	if !sum.Complete() || sum.ChunksDone != 3*40 || sum.ChunksTotal != 3*40 {
		t.Errorf("summary: complete=%v chunks %d/%d, want 120/120", sum.Complete(), sum.ChunksDone, sum.ChunksTotal)
	}
	if last.ChunksDone != last.ChunksTotal || last.Records != sum.Records() {
		t.Errorf("last progress %+v, summary records %d", last, sum.Records())
	}
	// Breaches are delivered in creation order: windows walk forward in time.
	var prev int64
	rec.mu.Lock()
	for _, a := range rec.got {
		if a.Kind == "modelbreach" {
			if c := a.Created.UnixMilli(); c < prev && !a.Created.IsZero() {
				t.Fatalf("breach %s created %d delivered after one created %d", a.ID, c, prev)
			} else if !a.Created.IsZero() {
				prev = c
			}
		}
	}
	rec.mu.Unlock()

	// The same command again finds its state complete and sends nothing.
	again := &recorder{}
	sum2, err := Run(t.Context(), Config{Reader: p, Sources: []string{darktrace.SourceAIAnalyst, darktrace.SourceBreaches, darktrace.SourceAntigena},
		Deliverer: again, From: from, To: to, Chunk: 2 * time.Hour, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(again.ids()); n != 0 || !sum2.Resumed || !sum2.Complete() {
		t.Errorf("rerun of a finished backfill sent %d records, resumed=%v complete=%v", n, sum2.Resumed, sum2.Complete())
	}
}

func TestBackfillSplitsWindows(t *testing.T) {
	tests := []struct {
		name    string
		faults  string
		cfg     Config
		timeout time.Duration // client timeout; default 10s
	}{
		// The next response carries 1,000 extra records: over the cap, so it is split.
		{name: "too large", faults: "modelbreaches:large@1000*1", cfg: Config{MaxRecords: 300}},
		// Two failures in a row exhaust the attempts: split, and the halves succeed.
		{name: "server errors", faults: "modelbreaches:500*2", cfg: Config{Attempts: 2}},
		// The appliance does not answer within the client timeout, twice.
		{name: "timeouts", faults: "modelbreaches:hang@5s*2", cfg: Config{Attempts: 2}, timeout: time.Second},
		// A connection cut mid-body is a retryable decode error.
		{name: "truncated", faults: "modelbreaches:truncated*2", cfg: Config{Attempts: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.timeout == 0 {
				tc.timeout = 10 * time.Second
			}
			sim, p := backfillSim(t, simulator.Options{Seed: 5, History: 12 * time.Hour, HistoryCount: 150}, tc.timeout)
			to := sim.Now().Truncate(time.Millisecond)
			from := to.Add(-12 * time.Hour)
			faults, err := simulator.ParseFaults(tc.faults)
			if err != nil {
				t.Fatal(err)
			}
			sim.SetFaults(faults)
			rec := &recorder{}
			cfg := tc.cfg
			cfg.Reader, cfg.Sources, cfg.Deliverer, cfg.From, cfg.To = p, []string{darktrace.SourceBreaches}, rec, from, to
			cfg.Chunk, cfg.StateDir, cfg.RetryMin = 12*time.Hour, t.TempDir(), time.Millisecond
			sum, err := Run(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Splits < 1 {
				t.Errorf("no split; summary %+v", sum)
			}
			exactlyOnce(t, countIDs(rec, "modelbreach"), wantBreaches(sim, from, to))
			// A window over the record cap is split as a matter of routine: no error. Failing
			// requests are errors, counted apart from the splits they cause.
			if tooLarge := tc.name == "too large"; !sum.Complete() || (sum.Errors == 0) != tooLarge {
				t.Errorf("complete=%v errors=%d; want complete, with failures counted and a too-large window not an error", sum.Complete(), sum.Errors)
			}
		})
	}
}

func TestBackfillFailedWindowIsRetriedNextRun(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 7, History: 6 * time.Hour, HistoryCount: 600}, 5*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-6 * time.Hour)
	// The first window's request fails every time and cannot be split (min chunk = chunk).
	faults, _ := simulator.ParseFaults("modelbreaches:500*3")
	sim.SetFaults(faults)
	dir := t.TempDir()
	rec := &recorder{}
	cfg := Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: rec, From: from, To: to,
		Chunk: time.Hour, MinChunk: time.Hour, Attempts: 3, StateDir: dir, RetryMin: time.Millisecond}
	sum, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := Window{Source: darktrace.SourceBreaches, Start: from.UTC(), End: from.Add(time.Hour).UTC()}
	if sum.Complete() || len(sum.Failed) != 1 || sum.Failed[0] != first {
		t.Fatalf("complete=%v failed=%v, want exactly %v", sum.Complete(), sum.Failed, first)
	}
	if sum.ChunksDone != 6 {
		t.Errorf("chunks done %d, want 6 (the walk goes on past a failed window)", sum.ChunksDone)
	}
	// The next run retries just that window.
	sum, err = Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete() || !sum.Resumed {
		t.Fatalf("second run: complete=%v resumed=%v failed=%v", sum.Complete(), sum.Resumed, sum.Failed)
	}
	exactlyOnce(t, countIDs(rec, "modelbreach"), wantBreaches(sim, from, to))
}

func TestBackfillResumesAfterSinkFailure(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 9, History: 24 * time.Hour, HistoryCount: 600}, 5*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-24 * time.Hour)
	dir := t.TempDir()
	// The sink accepts ten batches, then fails for good.
	rec := &recorder{}
	down := &failAfter{next: rec, ok: 10}
	cfg := Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: down, From: from, To: to,
		Chunk: time.Hour, StateDir: dir, DeliverAttempts: 2, RetryMin: time.Millisecond}
	sum, err := Run(t.Context(), cfg)
	var be *Error
	if !errors.As(err, &be) || be.Window.Start != from.Add(10*time.Hour).UTC() {
		t.Fatalf("err = %v, want a Error at the 11th chunk", err)
	}
	if sum.ChunksDone != 10 || sum.Complete() {
		t.Errorf("chunks done %d complete=%v, want 10 and incomplete", sum.ChunksDone, sum.Complete())
	}
	cfg.Deliverer = rec
	sum, err = Run(t.Context(), cfg)
	if err != nil || !sum.Resumed || sum.ChunksDone != 24 {
		t.Fatalf("resume: err=%v resumed=%v chunks %d", err, sum.Resumed, sum.ChunksDone)
	}
	exactlyOnce(t, countIDs(rec, "modelbreach"), wantBreaches(sim, from, to))
}

// failAfter passes ok batches to next, then fails every one.
type failAfter struct {
	next *recorder
	ok   int
}

func (f *failAfter) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	if f.ok == 0 {
		return errors.New("collector refused the connection")
	}
	f.ok--
	return f.next.Deliver(ctx, alerts)
}

func TestBackfillStopsOnAuthAndCancel(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 11, History: 6 * time.Hour, HistoryCount: 100}, 5*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-6 * time.Hour)

	faults, _ := simulator.ParseFaults("modelbreaches:signature")
	sim.SetFaults(faults)
	sum, err := Run(t.Context(), Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: &recorder{},
		From: from, To: to, StateDir: t.TempDir(), RetryMin: time.Millisecond})
	if !errors.Is(err, darktrace.ErrSignature) || darktrace.ClassOf(err) != darktrace.ClassAuth {
		t.Fatalf("err = %v, want the signature error", err)
	}
	if sum.Errors != 1 || sum.ChunksDone != 0 {
		t.Errorf("auth failure was retried or walked on: errors=%d chunks=%d", sum.Errors, sum.ChunksDone)
	}

	sim.SetFaults(nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Run(ctx, Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: &recorder{},
		From: from, To: to, StateDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

func TestBackfillDedupesAcrossChunks(t *testing.T) {
	// The fake appliance ignores windows for /antigena: every chunk lists the same actions.
	api := &fakeAPI{}
	for i := int64(1); i <= 3; i++ {
		api.setAction(darktrace.Action{CodeID: i, DID: 7, Action: "quarantine", Label: "Quarantine device", Start: 1000, Updated: 2000})
	}
	api.addBreach(breach(1, 1_000_000, 1_000_000))
	p := source.NewReader(api, "dt", "dt.example", source.Filter{IncludeAcknowledged: true}, zerolog.Nop())
	rec := &recorder{}
	sum, err := Run(t.Context(), Config{Reader: p, Sources: []string{darktrace.SourceBreaches, darktrace.SourceAntigena}, Deliverer: rec,
		From: time.UnixMilli(0), To: time.UnixMilli(5 * 3_600_000), Chunk: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, countIDs(rec, "antigena"), []string{"1", "2", "3"})
	exactlyOnce(t, countIDs(rec, "modelbreach"), []string{"1"})
	if got := sum.Sources[darktrace.SourceAntigena].Deduped; got != 4*3 {
		t.Errorf("antigena duplicates dropped %d, want 12", got)
	}
	if sum.StatePath != "" {
		t.Errorf("dry run has a state file %q", sum.StatePath)
	}
	// The antigena query carries the range: the live poller's query has none.
	api.mu.Lock()
	q := api.queries[1]
	api.mu.Unlock()
	if want := "/antigena?includecleared=true&includehistory=true&starttime=0&endtime=3599999"; q != want {
		t.Errorf("antigena query %q, want %q", q, want)
	}
}

func TestBackfillStateFile(t *testing.T) {
	from, to := time.UnixMilli(1_700_000_000_000), time.UnixMilli(1_700_086_400_000)
	base := StatePath("/s", "dt 1", from, to, []string{"modelbreaches", "antigena"})
	tests := []struct {
		name string
		path string
		same bool
	}{
		{"source order does not matter", StatePath("/s", "dt 1", from, to, []string{"antigena", "modelbreaches"}), true},
		{"other sources", StatePath("/s", "dt 1", from, to, []string{"modelbreaches"}), false},
		{"other start", StatePath("/s", "dt 1", from.Add(time.Millisecond), to, []string{"modelbreaches", "antigena"}), false},
		{"other end", StatePath("/s", "dt 1", from, to.Add(time.Hour), []string{"modelbreaches", "antigena"}), false},
		{"other appliance", StatePath("/s", "dt 2", from, to, []string{"modelbreaches", "antigena"}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.path == base) != tc.same {
				t.Errorf("%s vs %s: same=%v, want %v", tc.path, base, tc.path == base, tc.same)
			}
		})
	}
	if name := filepath.Base(base); filepath.Dir(base) != "/s" || !strings.HasPrefix(name, "backfill-dt_1-") || !strings.HasSuffix(name, ".json") {
		t.Errorf("path %q, want /s/backfill-dt_1-<hash>.json", base)
	}

	// Corrupt or foreign files are refused with the file named, never overwritten.
	dir := t.TempDir()
	p := source.NewReader(&fakeAPI{}, "dt", "dt.example", source.Filter{}, zerolog.Nop())
	cfg := Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: &recorder{}, From: from, To: to, StateDir: dir}
	path := StatePath(dir, "dt", from, to, cfg.Sources)
	for _, bad := range []string{"{", `{"version":99}`, `{"version":1,"appliance":"dt","from":1,"to":2}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Run(t.Context(), cfg)
		var se *checkpoint.StateError
		if !errors.As(err, &se) || se.Path != path {
			t.Errorf("state %q: err = %v, want a StateError naming the file", bad, err)
		}
		if b, _ := os.ReadFile(path); string(b) != bad {
			t.Errorf("state %q was overwritten with %q", bad, b)
		}
	}
	// A second process with the same backfill is refused while the first runs.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	unlock, err := checkpoint.Lock(LockPath(cfg.StateDir, "dt"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "another dtforward backfill of this appliance is running") || !strings.Contains(err.Error(), "pid ") {
		t.Errorf("concurrent backfill: err = %v", err)
	}
	unlock()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused backfill wrote state: %v", err)
	}
	// The live checkpoint file is never written by a backfill.
	if _, err := Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.FileName("dt"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backfill touched the live checkpoint: %v", err)
	}
}

func TestBackfillStopsWhenEveryWindowFails(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 13, History: 12 * time.Hour, HistoryCount: 100}, 5*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-12 * time.Hour)
	faults, _ := simulator.ParseFaults("modelbreaches:500")
	sim.SetFaults(faults)
	sum, err := Run(t.Context(), Config{Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: &recorder{},
		From: from, To: to, Chunk: time.Hour, MinChunk: 30 * time.Minute, Attempts: 2, StateDir: t.TempDir(), RetryMin: time.Millisecond})
	var be *Error
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "3 windows in a row could not be fetched") {
		t.Fatalf("err = %v, want a stop after 3 failed windows", err)
	}
	// The producer runs up to two windows ahead of the walk (one step waiting in the channel's
	// buffer, the next being fetched), so the 4th and 5th windows may already have been split
	// when the walk stops; they must be neither done nor failed.
	if len(sum.Failed) != 3 || sum.ChunksDone != 3 || sum.Splits < 3 || sum.Splits > 5 || sum.Complete() {
		t.Errorf("failed %v, chunks done %d, splits %d; want 3 failed windows kept and counted, one split each (+2 fetched ahead)", sum.Failed, sum.ChunksDone, sum.Splits)
	}
}

// TestBackfillProgressMovesFromTheStart (issue 19 item 5): the first report comes before any
// request, with the whole range as its total, and the share walked grows with every piece
// delivered, also inside one chunk that is split, not only when a chunk ends (the bar sat at
// 0% for the first chunk).
func TestBackfillProgressMovesFromTheStart(t *testing.T) {
	sim, p := backfillSim(t, simulator.Options{Seed: 5, History: 12 * time.Hour, HistoryCount: 400}, 10*time.Second)
	to := sim.Now().Truncate(time.Millisecond)
	from := to.Add(-12 * time.Hour)
	var reports []Progress
	sum, err := Run(t.Context(), Config{
		Reader: p, Sources: []string{darktrace.SourceBreaches}, Deliverer: &recorder{}, From: from, To: to,
		Chunk: 12 * time.Hour, MaxRecords: 60, StateDir: t.TempDir(), RetryMin: time.Millisecond,
		Progress: func(pr Progress) { reports = append(reports, pr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Splits == 0 || sum.ChunksTotal != 1 {
		t.Fatalf("splits %d, chunks %d: the test needs one chunk fetched in pieces", sum.Splits, sum.ChunksTotal)
	}
	if len(reports) == 0 || reports[0].Walked != 0 || reports[0].Total != to.Sub(from).Milliseconds() || reports[0].ChunksTotal != 1 {
		t.Fatalf("first report %+v, want one at the start with the whole range as total", reports)
	}
	inside := 0
	for i, pr := range reports[1:] {
		if pr.Walked < reports[i].Walked {
			t.Fatalf("progress went back: %+v after %+v", pr, reports[i])
		}
		if pr.ChunksDone == 0 && pr.Walked > 0 {
			inside++
		}
	}
	if inside < 2 {
		t.Fatalf("%d reports inside the chunk, want the walk to move with each piece: %+v", inside, reports)
	}
	if last := reports[len(reports)-1]; last.Walked != last.Total {
		t.Fatalf("last report %+v, want all walked", last)
	}
}
