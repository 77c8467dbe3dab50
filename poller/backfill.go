package poller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

// Defaults for the zero fields of BackfillConfig.
const (
	DefaultBackfillChunk      = time.Hour
	DefaultBackfillMinChunk   = time.Minute
	DefaultBackfillMaxRecords = 10_000
	DefaultBackfillAttempts   = 3
	// DefaultBackfillDeliverAttempts is BackfillConfig.DeliverAttempts' default.
	DefaultBackfillDeliverAttempts = 6
	// DefaultBackfillMaxFailedInARow is BackfillConfig.MaxFailedInARow's default.
	DefaultBackfillMaxFailedInARow = 3
	// backfillBatch bounds one Deliver call, so a large window is formatted and sent in slices
	// and a sink failure repeats at most one slice.
	backfillBatch = 1000
)

// BackfillStateVersion is the backfill state file format written by this build.
const BackfillStateVersion = 1

// BackfillConfig configures one appliance's backfill.
type BackfillConfig struct {
	// Pipeline is the appliance's fetch path, built exactly as for run (NewPipeline). Backfill
	// uses its fetcher, filter and labels through a private copy that also counts records per
	// response, so it never shares the live poller's request slot.
	Pipeline  *Pipeline
	Sources   []string // modelbreaches, antigena, aianalyst
	Deliverer Deliverer

	// From and To bound the range [From, To) on record creation (breaches), createdAt (AI
	// Analyst) and action start (Antigena). Millisecond precision.
	From, To time.Time
	// Chunk is the window walked per request (default 1h); a window that keeps failing with a
	// retryable error or holds more than MaxRecords records is halved, down to MinChunk
	// (default 1m).
	Chunk, MinChunk time.Duration
	// MaxRecords is the most records one response may carry before the window is split
	// (default 10,000): it bounds the memory one window takes, as the API does not paginate.
	MaxRecords int
	// Attempts is how many times a window is requested on retryable errors before it is split
	// (default 3).
	Attempts int
	// DeliverAttempts is how many times a batch is handed to the Deliverer before the backfill
	// stops (default 6: with the default backoff a collector may be away for about half a
	// minute, e.g. restarting, without failing the run).
	DeliverAttempts int
	// MaxFailedInARow stops the backfill when this many windows in a row could not be fetched
	// (default 3): the appliance is failing as a whole, and walking on would spend minutes of
	// retries and splits on every remaining chunk. The failed windows are kept for the next run.
	MaxFailedInARow int
	// RetryMin and RetryMax bound the backoff between attempts (defaults 1s and 60s).
	RetryMin, RetryMax time.Duration

	// StateDir holds the backfill state file. DryRun neither reads nor writes it.
	StateDir string
	// DryRun fetches, counts and hands records to the Deliverer (which the caller makes a
	// formatter without a transport) but keeps no state: a later real run starts from scratch.
	DryRun bool

	// Progress, when set, is called from the backfill goroutine after every delivered window.
	Progress func(BackfillProgress)
	Logger   zerolog.Logger
}

// BackfillProgress is a snapshot for progress bars and log lines.
type BackfillProgress struct {
	Records     int // records delivered so far in this run
	ChunksDone  int // (source, chunk) pairs finished, including those done before a resume
	ChunksTotal int
	Window      Window // the window just delivered
}

// Window is a half-open time range [Start, End) of one source.
type Window struct {
	Source     string
	Start, End time.Time
}

// String returns "source [start, end)" in RFC 3339, the form error messages name chunks in.
func (w Window) String() string {
	return fmt.Sprintf("%s [%s, %s)", w.Source, w.Start.UTC().Format(time.RFC3339Nano), w.End.UTC().Format(time.RFC3339Nano))
}

// BackfillSourceSummary counts one source's records over this run.
type BackfillSourceSummary struct {
	Fetched   int `json:"fetched"`
	Sent      int `json:"sent"`
	Deduped   int `json:"deduped"`
	Filtered  int `json:"filtered"`
	Malformed int `json:"malformed"`
}

// BackfillSummary is the outcome of Backfill.
type BackfillSummary struct {
	Appliance string
	StatePath string // "" on a dry run
	Resumed   bool   // the state file already had progress
	Sources   map[string]*BackfillSourceSummary
	// Errors counts failed requests and failed deliveries (each retry counts).
	Errors int
	// Splits counts windows halved because they failed or were too large.
	Splits      int
	ChunksDone  int
	ChunksTotal int
	// Failed lists the windows that could not be delivered, earliest first; they are retried
	// first by the next run with the same arguments.
	Failed   []Window
	Duration time.Duration
}

// Complete reports whether every chunk of the range was delivered.
func (s *BackfillSummary) Complete() bool {
	return len(s.Failed) == 0 && s.ChunksDone == s.ChunksTotal
}

// Records returns the records delivered over all sources.
func (s *BackfillSummary) Records() int {
	n := 0
	for _, ss := range s.Sources {
		n += ss.Sent
	}
	return n
}

// BackfillError is why a backfill stopped before the end of its range: the window it stopped
// at and the cause. Everything before Window (and not in Summary.Failed) was delivered.
type BackfillError struct {
	Window Window
	Err    error
}

// Error implements error.
func (e *BackfillError) Error() string {
	return fmt.Sprintf("backfill stopped at %s: %v", e.Window, e.Err)
}

// Unwrap returns the cause.
func (e *BackfillError) Unwrap() error { return e.Err }

// errBackfillRunning: another process holds the lock of the same backfill.
var errBackfillRunning = errors.New("another dtforward backfill of this appliance, range and sources is running")

// errTooLarge aborts a response that carries more than MaxRecords records.
var errTooLarge = errors.New("response holds more records than the per-window cap")

// backfillState is the state file: per source, the cursor up to which everything was delivered
// and the windows before it that failed.
type backfillState struct {
	Version   int                        `json:"version"`
	Appliance string                     `json:"appliance"`
	From      int64                      `json:"from"`
	To        int64                      `json:"to"`
	Sources   []string                   `json:"sources"`
	Progress  map[string]*backfillCursor `json:"progress"`
}

type backfillCursor struct {
	Cursor int64      `json:"cursor"`
	Failed [][2]int64 `json:"failed,omitempty"`
}

// BackfillStatePath returns the state file of a backfill of appliance over [from, to) for
// sources: "backfill-<appliance>-<hash>.json" in dir, the hash covering the range and the
// sorted source list, so the same command finds its own file and a different range never
// resumes another's progress.
func BackfillStatePath(dir, appliance string, from, to time.Time, sources []string) string {
	srcs := slices.Clone(sources)
	slices.Sort(srcs)
	srcs = slices.Compact(srcs)
	h := sha256.Sum256([]byte(appliance + "\x00" + strconv.FormatInt(from.UnixMilli(), 10) + "\x00" +
		strconv.FormatInt(to.UnixMilli(), 10) + "\x00" + strings.Join(srcs, ",")))
	name := strings.TrimSuffix(FileName(appliance), ".json")
	return filepath.Join(dir, "backfill-"+name+"-"+hex.EncodeToString(h[:6])+".json")
}

// Backfill forwards every record of [From, To) once: it walks the range in Chunk windows in
// time order (each source's window of a chunk before the next chunk), through the same fetch →
// normalize → filter path as run, drops records already delivered by the previous or current
// chunk, hands the rest to the Deliverer and records the delivered position in its own state
// file after every window. Started again with the same range and sources it resumes at the
// first undelivered window, retrying earlier failed windows first. The next window is fetched
// while the previous one is delivered, so at most three windows' records are held at once.
//
// A window whose request keeps failing with a retryable error, or whose response holds more
// than MaxRecords records, is split in half down to MinChunk; a window that still fails is
// recorded in Summary.Failed and the walk goes on. Authentication problems, a Deliverer that
// keeps failing and cancellation stop the walk with a *BackfillError (the summary is returned
// too). Once cfg is accepted the returned summary is never nil, also with an error.
func Backfill(ctx context.Context, cfg BackfillConfig) (*BackfillSummary, error) {
	started := time.Now()
	if cfg.Pipeline == nil || cfg.Deliverer == nil {
		return nil, errors.New("backfill: Pipeline and Deliverer are required")
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultBackfillChunk
	}
	if cfg.MinChunk <= 0 {
		cfg.MinChunk = DefaultBackfillMinChunk
	}
	cfg.MinChunk = max(min(cfg.MinChunk, cfg.Chunk), time.Millisecond)
	if cfg.MaxRecords <= 0 {
		cfg.MaxRecords = DefaultBackfillMaxRecords
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultBackfillAttempts
	}
	if cfg.MaxFailedInARow <= 0 {
		cfg.MaxFailedInARow = DefaultBackfillMaxFailedInARow
	}
	if cfg.DeliverAttempts <= 0 {
		cfg.DeliverAttempts = DefaultBackfillDeliverAttempts
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(DefaultRetryMax, cfg.RetryMin)
	}
	from, to := cfg.From.UnixMilli(), cfg.To.UnixMilli()
	if to <= from {
		return nil, fmt.Errorf("backfill: the range end %s is not after its start %s", cfg.To.UTC().Format(time.RFC3339), cfg.From.UTC().Format(time.RFC3339))
	}

	// A private pipeline: the same fetcher, filter and labels, wrapped to cap the records per
	// response, with its own request slot.
	p := *cfg.Pipeline
	p.fetcher = cappedFetcher{f: cfg.Pipeline.fetcher, max: cfg.MaxRecords}
	p.inflight = make(chan struct{}, 1)
	p.log = cfg.Logger.With().Str("appliance", p.appliance).Logger()

	var sources []*Source
	var names []string
	for _, name := range cfg.Sources {
		if slices.Contains(names, name) {
			continue
		}
		src, err := p.Source(name)
		if err != nil {
			return nil, fmt.Errorf("backfill: %w", err)
		}
		sources = append(sources, rangeSource(src))
		names = append(names, name)
	}
	if len(sources) == 0 {
		return nil, errors.New("backfill: no sources")
	}

	b := &backfiller{
		cfg: cfg, log: p.log, from: from, to: to, chunk: cfg.Chunk.Milliseconds(),
		sum:    &BackfillSummary{Appliance: p.appliance, Sources: map[string]*BackfillSourceSummary{}},
		dedupe: map[string]*dedupe{},
	}
	b.chunk = max(b.chunk, 1)
	for _, n := range names {
		b.sum.Sources[n] = &BackfillSourceSummary{}
		b.dedupe[n] = &dedupe{}
	}
	defer func() { b.sum.Duration = time.Since(started) }()

	b.st = &backfillState{Version: BackfillStateVersion, Appliance: p.appliance, From: from, To: to,
		Sources: names, Progress: map[string]*backfillCursor{}}
	if !cfg.DryRun {
		b.path = BackfillStatePath(cfg.StateDir, p.appliance, cfg.From, cfg.To, names)
		b.sum.StatePath = b.path
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return b.sum, fmt.Errorf("creating STATE_DIR %s: %w", cfg.StateDir, err)
		}
		unlock, err := lockFile(b.path + ".lock")
		if errors.Is(err, errBackfillRunning) {
			return b.sum, fmt.Errorf("%w (%s is locked)", err, b.path+".lock")
		} else if err != nil {
			return b.sum, err
		}
		defer unlock()
		removeTempFiles(b.path) // left by a killed run of this backfill; the lock makes them stale
		if err := b.load(); err != nil {
			return b.sum, err
		}
	}
	for _, n := range names {
		if b.st.Progress[n] == nil {
			b.st.Progress[n] = &backfillCursor{Cursor: from}
		} else {
			b.sum.Resumed = true
		}
	}

	perSource := int((to - from + b.chunk - 1) / b.chunk)
	b.sum.ChunksTotal = perSource * len(names)
	for _, n := range names {
		c := b.st.Progress[n]
		b.sum.ChunksDone += int((c.Cursor - from) / b.chunk)
		if c.Cursor >= to {
			b.sum.ChunksDone += perSource - int((c.Cursor-from)/b.chunk)
		}
	}

	err := b.walk(ctx, sources)
	b.sum.Errors, b.sum.Splits = int(b.errs.Load()), int(b.splits.Load())
	b.collectFailed(names)
	if b.unsynced {
		// Make the last progress durable before reporting it.
		if serr := b.write(true); serr != nil && err == nil {
			err = fmt.Errorf("saving backfill state: %w", serr)
		}
	}
	if err != nil {
		return b.sum, err
	}
	return b.sum, nil
}

// backfiller is one Backfill call's state.
type backfiller struct {
	cfg      BackfillConfig
	log      zerolog.Logger
	from     int64
	to       int64
	chunk    int64
	path     string
	synced   time.Time // last fsynced save
	unsynced bool      // a save since then was not fsynced
	st       *backfillState
	sum      *BackfillSummary
	// dedupe remembers, per source, what the previous and the current chunk delivered: a record
	// listed again across a chunk boundary is dropped, and memory stays bounded by two chunks.
	dedupe  map[string]*dedupe
	records int
	// errs and splits are counted by the fetching goroutine too.
	errs, splits atomic.Int64
}

type dedupe struct{ prev, cur map[string]string }

func (d *dedupe) rotate() { d.prev, d.cur = d.cur, map[string]string{} }

func (d *dedupe) seen(key, version string) bool {
	if v, ok := d.cur[key]; ok && v == version {
		return true
	}
	v, ok := d.prev[key]
	return ok && v == version
}

func (b *backfiller) load() error {
	data, err := os.ReadFile(b.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &StateError{Path: b.path, Err: err}
	}
	var st backfillState
	if err := json.Unmarshal(data, &st); err != nil {
		return &StateError{Path: b.path, Err: fmt.Errorf("not valid JSON: %w", err)}
	}
	switch {
	case st.Version != BackfillStateVersion:
		return &StateError{Path: b.path, Err: fmt.Errorf("format version %d, this build reads version %d", st.Version, BackfillStateVersion)}
	case st.Appliance != b.st.Appliance || st.From != b.from || st.To != b.to:
		return &StateError{Path: b.path, Err: errors.New("belongs to another appliance or range")}
	}
	for name, c := range st.Progress {
		if c == nil || c.Cursor < b.from || c.Cursor > b.to {
			return &StateError{Path: b.path, Err: fmt.Errorf("source %q has a cursor outside the range", name)}
		}
		for _, w := range c.Failed {
			if w[0] < b.from || w[1] > b.to || w[0] >= w[1] {
				return &StateError{Path: b.path, Err: fmt.Errorf("source %q has an invalid failed window", name)}
			}
		}
	}
	if st.Progress == nil {
		st.Progress = map[string]*backfillCursor{}
	}
	b.st.Progress = st.Progress
	return nil
}

// durableEvery is how often the state file is also fsynced. Every save renames a complete new
// file into place, which a killed process cannot undo (the page cache outlives it), so a crash
// repeats at most the window in flight. Only a power loss can roll the file back, by at most
// this much of progress: repeats, never losses. Syncing every window instead costs two fsyncs
// per chunk, which on a busy disk dominates the whole backfill.
const durableEvery = 2 * time.Second

// save writes the state file: atomically always, durably at most every durableEvery (and when
// final is set).
func (b *backfiller) save() error { return b.write(false) }

func (b *backfiller) write(final bool) error {
	if b.cfg.DryRun {
		return nil
	}
	data, err := json.Marshal(b.st)
	if err != nil {
		return err
	}
	if final || time.Since(b.synced) >= durableEvery {
		if err := writeFileAtomic(b.path, data); err != nil {
			return err
		}
		b.synced, b.unsynced = time.Now(), false
		return nil
	}
	b.unsynced = true
	return replaceFile(b.path, data)
}

// replaceFile is writeFileAtomic without the fsyncs: a temporary file renamed over path, so
// readers see the old or the new content, never a mix.
func replaceFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// walk retries earlier failed windows, then goes chunk by chunk from the earliest cursor.
func (b *backfiller) walk(ctx context.Context, sources []*Source) error {
	for _, src := range sources {
		c := b.st.Progress[src.Name()]
		for _, w := range slices.Clone(c.Failed) {
			// Failed windows of one source are disjoint, so their end identifies them.
			at := func() int { return slices.IndexFunc(c.Failed, func(x [2]int64) bool { return x[1] == w[1] }) }
			b.dedupe[src.Name()].rotate()
			err := b.window(ctx, src, w[0], w[1], func(end int64) error {
				if i := at(); end >= w[1] {
					c.Failed = slices.Delete(c.Failed, i, i+1)
				} else {
					c.Failed[i][0] = end
				}
				return b.save()
			})
			var we *windowError
			switch {
			case errors.As(err, &we):
				// Still failing: keep the rest of it for the next run and go on.
				c.Failed[at()][0] = we.start
				b.log.Error().Str("source", src.Name()).Str("window", we.window(src.Name()).String()).Str("error", we.err.Error()).
					Msg("previously failed window still fails; kept for the next run")
				if err := b.save(); err != nil {
					return b.stop(src, we.start, w[1], err)
				}
			case err != nil:
				return err
			}
		}
	}

	return b.pipeline(ctx, sources)
}

// pipeline walks the range chunk by chunk with one window fetched ahead: a producer goroutine
// fetches (and splits) the windows in order while this goroutine delivers the previous one and
// saves the state. Fetching and decoding is most of the work, so sending no longer waits for
// it; memory stays at a few windows.
func (b *backfiller) pipeline(ctx context.Context, sources []*Source) error {
	type win struct {
		src           *Source
		start, cs, ce int64
	}
	var wins []win
	for cs := b.from; cs < b.to; cs += b.chunk {
		ce := min(cs+b.chunk, b.to)
		for _, src := range sources {
			if c := b.st.Progress[src.Name()]; c.Cursor < ce {
				wins = append(wins, win{src: src, start: max(c.Cursor, cs), cs: cs, ce: ce})
			}
		}
	}
	// step is what the producer hands over: a fetched piece, or the end of a window (finished,
	// or failed at failed.start), or a reason to stop.
	type step struct {
		w      win
		p      *piece
		first  bool
		last   bool
		failed *windowError
		stop   error
	}
	pctx, cancel := context.WithCancel(ctx)
	steps := make(chan step, 1)
	go func() {
		defer close(steps)
		send := func(s step) bool {
			select {
			case steps <- s:
				return true
			case <-pctx.Done():
				return false
			}
		}
		for _, w := range wins {
			first := true
			err := b.fetchSplit(pctx, w.src, w.start, w.ce, func(p piece) error {
				if !send(step{w: w, p: &p, first: first}) {
					return context.Cause(pctx)
				}
				first = false
				return nil
			})
			var we *windowError
			switch {
			case errors.As(err, &we):
				if !send(step{w: w, first: first, last: true, failed: we}) {
					return
				}
			case err != nil:
				send(step{stop: err})
				return
			default:
				if !send(step{w: w, last: true}) {
					return
				}
			}
		}
	}()
	defer func() {
		cancel()
		for range steps { // let the producer finish
		}
	}()

	failedInARow := 0
	for s := range steps {
		if s.stop != nil {
			return s.stop
		}
		name := s.w.src.Name()
		c := b.st.Progress[name]
		if s.first {
			b.dedupe[name].rotate()
		}
		if s.p != nil {
			err := b.consume(ctx, *s.p, func(end int64) error {
				c.Cursor = end
				return b.save()
			})
			if err != nil {
				return err
			}
		}
		if we := s.failed; we != nil {
			b.log.Error().Str("source", name).Str("window", we.window(name).String()).Str("error", we.err.Error()).
				Msg("window could not be fetched; recorded as failed, continuing")
			c.Failed = append(c.Failed, [2]int64{we.start, s.w.ce})
			c.Cursor = s.w.ce
			if err := b.save(); err != nil {
				return b.stop(s.w.src, we.start, s.w.ce, err)
			}
			failedInARow++
		} else if s.last {
			failedInARow = 0
		}
		if s.last {
			b.sum.ChunksDone++
			if b.cfg.Progress != nil {
				b.cfg.Progress(BackfillProgress{Records: b.records, ChunksDone: b.sum.ChunksDone, ChunksTotal: b.sum.ChunksTotal,
					Window: Window{Source: name, Start: time.UnixMilli(s.w.cs).UTC(), End: time.UnixMilli(s.w.ce).UTC()}})
			}
		}
		if we := s.failed; we != nil && failedInARow >= b.cfg.MaxFailedInARow {
			return b.stop(s.w.src, we.start, s.w.ce, fmt.Errorf("%d windows in a row could not be fetched, stopping; the last: %w", failedInARow, we.err))
		}
	}
	if ctx.Err() != nil {
		// The producer saw the cancellation first: name the first window not delivered.
		for _, w := range wins {
			if c := b.st.Progress[w.src.Name()]; c.Cursor < w.ce {
				return b.stop(w.src, max(c.Cursor, w.cs), w.ce, context.Cause(ctx))
			}
		}
	}
	return nil
}

func (b *backfiller) collectFailed(names []string) {
	b.sum.Failed = nil
	for _, n := range names {
		for _, w := range b.st.Progress[n].Failed {
			b.sum.Failed = append(b.sum.Failed, Window{Source: n, Start: time.UnixMilli(w[0]).UTC(), End: time.UnixMilli(w[1]).UTC()})
		}
	}
	slices.SortStableFunc(b.sum.Failed, func(x, y Window) int { return x.Start.Compare(y.Start) })
}

// windowError is a window that could not be fetched even at the minimum size: the walk records
// [start, end of its chunk) as failed and goes on.
type windowError struct {
	start, end int64
	err        error
}

func (e *windowError) Error() string { return e.err.Error() }

func (e *windowError) window(src string) Window {
	return Window{Source: src, Start: time.UnixMilli(e.start).UTC(), End: time.UnixMilli(e.end).UTC()}
}

func (b *backfiller) stop(src *Source, start, end int64, err error) error {
	return &BackfillError{Window: Window{Source: src.Name(), Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC()}, Err: err}
}

// window delivers [start, end) of src in the calling goroutine, halving it on retryable or
// too-large responses; done is called with the end of every piece delivered, in order.
func (b *backfiller) window(ctx context.Context, src *Source, start, end int64, done func(end int64) error) error {
	return b.fetchSplit(ctx, src, start, end, func(p piece) error { return b.consume(ctx, p, done) })
}

// piece is one fetched part of a window: [start, end) of src.
type piece struct {
	src        *Source
	start, end int64
	batch      *Batch
}

// fetchSplit fetches [start, end) of src and hands it to emit, or, when the request keeps
// failing with a retryable error or the response is too large, its two halves in order (down
// to MinChunk). It returns a *windowError for a piece that cannot be fetched, a
// *BackfillError when the backfill must stop, or emit's error.
func (b *backfiller) fetchSplit(ctx context.Context, src *Source, start, end int64, emit func(piece) error) error {
	return halve(start, end, b.cfg.MinChunk.Milliseconds(), func(start, end int64, canSplit bool) (*Batch, bool, error) {
		batch, err := b.fetch(ctx, src, start, end)
		if err == nil {
			return batch, false, nil
		}
		if ctx.Err() != nil {
			return nil, false, b.stop(src, start, end, context.Cause(ctx))
		}
		class := darktrace.ClassOf(err)
		if class == darktrace.ClassAuth {
			// Every other window would fail the same way: stop and let a person fix it.
			return nil, false, b.stop(src, start, end, err)
		}
		if splittable := errors.Is(err, errTooLarge) || class == darktrace.ClassRetry; splittable && canSplit {
			b.splits.Add(1)
			b.log.Warn().Str("source", src.Name()).Str("window", Window{Source: src.Name(), Start: time.UnixMilli(start), End: time.UnixMilli(end)}.String()).
				Str("error", err.Error()).Msg("splitting the window in half")
			return nil, true, nil
		}
		return nil, false, &windowError{start: start, end: end, err: err}
	}, func(start, end int64, batch *Batch) error {
		return emit(piece{src: src, start: start, end: end, batch: batch})
	})
}

// consume delivers a fetched piece: drops what the previous or current chunk already
// delivered, hands the rest to the Deliverer in slices, then calls done with the piece's end.
func (b *backfiller) consume(ctx context.Context, p piece, done func(end int64) error) error {
	src, batch := p.src, p.batch
	sum := b.sum.Sources[src.Name()]
	sum.Fetched += batch.Stats.Fetched
	sum.Filtered += batch.Stats.Filtered
	sum.Malformed += batch.Stats.Malformed
	sum.Deduped += batch.Stats.Deduped
	d := b.dedupe[src.Name()]
	fresh := make([]*alert.Alert, 0, len(batch.Items))
	for _, it := range batch.Items {
		if d.seen(it.Key, it.Version) {
			sum.Deduped++
			continue
		}
		fresh = append(fresh, it.Alert)
	}
	for len(fresh) > 0 {
		n := min(len(fresh), backfillBatch)
		if err := b.deliver(ctx, fresh[:n]); err != nil {
			return b.stop(src, p.start, p.end, err)
		}
		sum.Sent += n
		b.records += n
		fresh = fresh[n:]
	}
	for _, it := range batch.Items {
		d.cur[it.Key] = it.Version
	}
	if err := done(p.end); err != nil {
		return b.stop(src, p.start, p.end, fmt.Errorf("saving backfill state: %w", err))
	}
	return nil
}

// fetch requests [start, end) (the API's windows include both ends, so end−1 ms), retrying
// retryable failures up to Attempts times. A too-large response is not retried: only a
// smaller window helps.
func (b *backfiller) fetch(ctx context.Context, src *Source, start, end int64) (*Batch, error) {
	bo := Backoff{Min: b.cfg.RetryMin, Max: b.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		batch, err := src.Fetch(ctx, time.UnixMilli(start), time.UnixMilli(end-1))
		if err == nil {
			return batch, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		b.errs.Add(1)
		if errors.Is(err, errTooLarge) || darktrace.ClassOf(err) != darktrace.ClassRetry || attempt >= b.cfg.Attempts {
			return nil, err
		}
		delay := bo.Next()
		if ra := darktrace.RetryAfterOf(err); ra > delay {
			delay = min(ra, 10*b.cfg.RetryMax)
		}
		b.log.Warn().Str("source", src.Name()).Int("attempt", attempt).Str("error", err.Error()).Dur("retry_in_ms", delay).
			Msg("backfill request failed; retrying")
		if !sleep(ctx, delay) {
			return nil, ctx.Err()
		}
	}
}

// deliver hands alerts to the Deliverer, retrying with backoff up to DeliverAttempts times. A sink that
// keeps failing stops the backfill: every later window would fail the same way.
func (b *backfiller) deliver(ctx context.Context, alerts []*alert.Alert) error {
	bo := Backoff{Min: b.cfg.RetryMin, Max: b.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		err := b.cfg.Deliverer.Deliver(ctx, alerts)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		b.errs.Add(1)
		if attempt >= b.cfg.DeliverAttempts {
			return fmt.Errorf("delivery failed %d times: %w", attempt, err)
		}
		delay := bo.Next()
		b.log.Warn().Int("attempt", attempt).Str("error", err.Error()).Dur("retry_in_ms", delay).
			Msg("sink did not accept the batch; retrying")
		if !sleep(ctx, delay) {
			return context.Cause(ctx)
		}
	}
}

// cappedFetcher aborts a response once it carries more than max records.
type cappedFetcher struct {
	f   Fetcher
	max int
}

// StreamDated implements Fetcher.
func (c cappedFetcher) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	n := 0
	return c.f.StreamDated(ctx, pathAndQuery, func(raw []byte) error {
		if n++; n > c.max {
			return fmt.Errorf("%w (%d)", errTooLarge, c.max)
		}
		return fn(raw)
	})
}

// rangeSource returns src for a time range. Breaches and AI Analyst events are windowed
// already; /antigena is polled live without a window, so for a backfill its query gains
// starttime/endtime (the appliance filters them on the action's start).
func rangeSource(src *Source) *Source {
	if src.kind.windowed {
		return src
	}
	k := *src.kind
	live := src.kind.query
	k.query = func(p *Pipeline, start, end int64) string {
		return live(p, start, end) + "&starttime=" + strconv.FormatInt(start, 10) + "&endtime=" + strconv.FormatInt(end, 10)
	}
	k.windowed = true
	return &Source{kind: &k, p: src.p}
}
