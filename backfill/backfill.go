// Package backfill forwards every record of a past time range once, resumably: it walks the
// range in windows through the same read path as the live poller (package source), delivers
// through the same Deliverer, and keeps its progress in a state file of its own.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/retry"
	"github.com/dtforward/dtforward/source"
)

// Defaults for the zero fields of Config.
const (
	DefaultChunk      = time.Hour
	DefaultMinChunk   = time.Minute
	DefaultMaxRecords = 10_000
	DefaultAttempts   = 3
	// DefaultDeliverAttempts is Config.DeliverAttempts' default.
	DefaultDeliverAttempts = 6
	// DefaultMaxFailedInARow is Config.MaxFailedInARow's default.
	DefaultMaxFailedInARow = 3
	// sendBatch bounds one Deliver call, so a large window is formatted and sent in slices
	// and a sink failure repeats at most one slice.
	sendBatch = 1000
)

// StateVersion is the backfill state file format written by this build.
const StateVersion = 1

// Deliverer hands a batch of alerts to the SIEM (route.Delivery): nil only when every alert
// was accepted.
type Deliverer interface {
	Deliver(ctx context.Context, alerts []*alert.Alert) error
}

// Config configures one appliance's backfill.
type Config struct {
	// Reader is the appliance's read path, built exactly as for run (source.NewReader).
	// Backfill uses its fetcher, filter and labels through a private copy that also caps the
	// records per response, so it never shares the live poller's request slot.
	Reader    *source.Reader
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
	// Args is the range as the user gave it ("--from 2h --to 10m"), kept in the state file: an
	// unfinished backfill started with the same Args is resumed over its own range, although a
	// range relative to now resolves to other times on every run.
	Args string
	// Restart drops the state of any unfinished backfill of the appliance (sources in common)
	// and of this range, and starts this range from the beginning.
	Restart bool
	// DryRun fetches, counts and hands records to the Deliverer (which the caller makes a
	// formatter without a transport) but keeps no state: a later real run starts from scratch.
	DryRun bool

	// Progress, when set, is called from the backfill goroutine after every delivered window.
	Progress func(Progress)
	Logger   zerolog.Logger
}

// Progress is a snapshot for progress bars and log lines.
type Progress struct {
	Records     int // records delivered so far in this run
	ChunksDone  int // (source, chunk) pairs finished, including those done before a resume
	ChunksTotal int
	// Walked and Total are milliseconds of the range times sources: walked so far (delivered,
	// or recorded as failed) and in all. Walked moves with every piece delivered.
	Walked, Total int64
	Window        Window // the window just delivered; zero in the first report, at the start
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

// SourceSummary counts one source's records over this run.
type SourceSummary struct {
	Fetched   int `json:"fetched"`
	Sent      int `json:"sent"`
	Deduped   int `json:"deduped"`
	Filtered  int `json:"filtered"`
	Malformed int `json:"malformed"`
}

// Summary is the outcome of Run.
type Summary struct {
	Appliance string
	// From and To are the range walked: the one asked for, or the range of the unfinished
	// backfill of the same command that this run resumed.
	From, To  time.Time
	StatePath string // "" on a dry run
	Resumed   bool   // the state file already had progress
	Sources   map[string]*SourceSummary
	// Errors counts failed requests and failed deliveries (each retry counts). A response
	// over MaxRecords is not one: it is split, and counted in Splits only.
	Errors int
	// Splits counts windows halved because they were too large (routine) or kept failing.
	Splits      int
	ChunksDone  int
	ChunksTotal int
	// Failed lists the windows that could not be delivered, earliest first; they are retried
	// first by the next run with the same arguments.
	Failed   []Window
	Duration time.Duration
}

// Complete reports whether every chunk of the range was delivered.
func (s *Summary) Complete() bool {
	return len(s.Failed) == 0 && s.ChunksDone == s.ChunksTotal
}

// Records returns the records delivered over all sources.
func (s *Summary) Records() int {
	n := 0
	for _, ss := range s.Sources {
		n += ss.Sent
	}
	return n
}

// Error is why a backfill stopped before the end of its range: the window it stopped
// at and the cause. Everything before Window (and not in Summary.Failed) was delivered.
type Error struct {
	Window Window
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("backfill stopped at %s: %v", e.Window, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// UnfinishedError is an unfinished backfill of the same appliance, with sources in common,
// over another range than the one asked for: walking both would send their overlap twice, and
// starting over would forget the progress. The user finishes it or passes Restart.
type UnfinishedError struct {
	Path     string
	From, To time.Time
	Sources  []string
	Args     string // as the unfinished run was given its range; "" for states of older builds
}

// Error implements error.
func (e *UnfinishedError) Error() string {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	given := ""
	if e.Args != "" {
		given = " (given as " + e.Args + ")"
	}
	return fmt.Sprintf("an unfinished backfill of %s over [%s, %s)%s is in %s; finish it first (the same command, or --from %s --to %s), "+
		"or add --restart to drop its progress and start this range",
		strings.Join(e.Sources, ","), stamp(e.From), stamp(e.To), given, e.Path, stamp(e.From), stamp(e.To))
}

// Run forwards every record of [From, To) once: it walks the range in Chunk windows in
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
// keeps failing and cancellation stop the walk with a *Error (the summary is returned
// too). Once cfg is accepted the returned summary is never nil, also with an error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	started := time.Now()
	if cfg.Reader == nil || cfg.Deliverer == nil {
		return nil, errors.New("backfill: Reader and Deliverer are required")
	}
	cfg.Chunk = positive(cfg.Chunk, DefaultChunk)
	cfg.MinChunk = positive(cfg.MinChunk, DefaultMinChunk)
	cfg.MinChunk = max(min(cfg.MinChunk, cfg.Chunk), time.Millisecond)
	cfg.MaxRecords = positive(cfg.MaxRecords, DefaultMaxRecords)
	cfg.Attempts = positive(cfg.Attempts, DefaultAttempts)
	cfg.MaxFailedInARow = positive(cfg.MaxFailedInARow, DefaultMaxFailedInARow)
	cfg.DeliverAttempts = positive(cfg.DeliverAttempts, DefaultDeliverAttempts)
	cfg.RetryMin, cfg.RetryMax = retry.Bounds(cfg.RetryMin, cfg.RetryMax)
	from, to := cfg.From.UnixMilli(), cfg.To.UnixMilli()
	if to <= from {
		return nil, fmt.Errorf("backfill: the range end %s is not after its start %s", cfg.To.UTC().Format(time.RFC3339), cfg.From.UTC().Format(time.RFC3339))
	}

	// A private reader: the same fetcher, filter and labels, wrapped to cap the records per
	// response, with its own request slot.
	p := cfg.Reader.With(func(f fetch.Fetcher) fetch.Fetcher { return fetch.Capped{Next: f, Max: cfg.MaxRecords} }, true, cfg.Logger)
	log := cfg.Logger.With().Str("appliance", p.Appliance()).Logger()

	var sources []*source.Source
	var names []string
	for _, name := range cfg.Sources {
		if slices.Contains(names, name) {
			continue
		}
		src, err := p.Source(name)
		if err != nil {
			return nil, fmt.Errorf("backfill: %w", err)
		}
		sources = append(sources, src.Ranged())
		names = append(names, name)
	}
	if len(sources) == 0 {
		return nil, errors.New("backfill: no sources")
	}

	b := &backfiller{
		cfg: cfg, log: log, from: from, to: to, chunk: cfg.Chunk.Milliseconds(),
		sum:    &Summary{Appliance: p.Appliance(), Sources: map[string]*SourceSummary{}},
		dedupe: map[string]*dedupe{},
	}
	b.chunk = max(b.chunk, 1)
	for _, n := range names {
		b.sum.Sources[n] = &SourceSummary{}
		b.dedupe[n] = &dedupe{}
	}
	defer func() { b.sum.Duration = time.Since(started) }()

	if !cfg.DryRun {
		if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
			return b.sum, fmt.Errorf("creating STATE_DIR %s: %w", cfg.StateDir, err)
		}
		// One backfill per appliance at a time: choosing which state to resume (below) must
		// not race with another run writing or dropping it. The lock file goes with the lock.
		unlock, err := checkpoint.Lock(LockPath(cfg.StateDir, p.Appliance()), "dtforward backfill of "+p.Appliance())
		if errors.Is(err, checkpoint.ErrLocked) {
			return b.sum, fmt.Errorf("another dtforward backfill of this appliance is running: %w", err)
		} else if err != nil {
			return b.sum, err
		}
		defer unlock()
		if err := b.pick(names); err != nil {
			return b.sum, err
		}
		from, to = b.from, b.to
		b.path = StatePath(cfg.StateDir, p.Appliance(), time.UnixMilli(from), time.UnixMilli(to), names)
		b.sum.StatePath = b.path
		// Under the lock: the temporary files a killed run of this backfill left are stale.
		b.file = checkpoint.NewFile(b.path, "backfill state")
	}
	b.sum.From, b.sum.To = time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC()
	b.st = &backfillState{Version: StateVersion, Appliance: p.Appliance(), From: from, To: to, Args: cfg.Args,
		Sources: names, Progress: map[string]*backfillCursor{}}
	if !cfg.DryRun {
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
	if b.file != nil && b.file.Unsynced() {
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
	cfg   Config
	log   zerolog.Logger
	from  int64
	to    int64
	chunk int64
	path  string
	file  *checkpoint.File
	st    *backfillState
	sum   *Summary
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

// positive returns v when it is positive, else the default d: the zero fields of a Config.
func positive[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}
