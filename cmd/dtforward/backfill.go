package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"

	"github.com/dtforward/dtforward/backfill"
	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/deadletter"
	"github.com/dtforward/dtforward/route"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/source"
)

// backfillFlags are the parsed and checked flags of "dtforward backfill".
type backfillFlags struct {
	from, to        time.Time
	sources         []string // nil: POLL_SOURCES
	chunk, minChunk time.Duration
	maxRecords      int
	dryRun          bool
	appliance       string
	progressEvery   time.Duration
	recent          bool   // --to is within the last 10 minutes
	relative        bool   // --from or --to was a duration back from now
	args            string // the range as given, "--from 2h --to 10m"
	restart         bool
}

// runBackfill is "dtforward backfill": forward every record of [--from, --to) once, through the
// same fetch → normalize → filter → format → sink path as run, resumably. Flag and
// configuration problems exit 2; an incomplete backfill exits 1 naming the first failing chunk.
func runBackfill(ctx context.Context, e *env) int {
	fl, code := parseBackfillFlags(e, time.Now())
	if code >= 0 {
		return code
	}
	cfg, err := loadConfig(config.ModeBackfill, e)
	if err != nil {
		return printConfigError(e.stderr, "backfill", err)
	}
	if fl.sources == nil {
		fl.sources = cfg.PollSources
	}
	apps, err := cfg.ShardAppliances()
	if err != nil {
		return printConfigError(e.stderr, "backfill", err)
	}
	if fl.appliance != "" {
		apps = slices.DeleteFunc(apps, func(a config.Appliance) bool { return a.Name != fl.appliance })
		if len(apps) == 0 {
			fmt.Fprintf(e.stderr, "dtforward backfill: --appliance: no configured appliance is named %q\n", fl.appliance)
			return exitUsage
		}
	}
	stderr := &barWriter{w: e.stderr}
	log := newLogger(cfg, stderr)
	defer backfill.TuneGC(e.getenv)()
	if fl.relative {
		log.Info().Time("from", fl.from).Time("to", fl.to).Msg("range given relative to now; fixed at these times (an unfinished run of the same command resumes its own range instead)")
	}
	if fl.recent {
		// The appliance can make a record visible a little after its creation time; run's
		// overlap re-reads for that, a backfill reads each window once.
		log.Warn().Time("to", fl.to).Msg("--to is less than 10 minutes ago: records the appliance publishes late may be missed; let run cover the last minutes")
	}

	if cfg.SIEMSinksFile != "" {
		// A backfill has one checkpoint of its own; which sink it fills is the operator's call.
		return printConfigError(e.stderr, "backfill", &config.Error{Problems: []error{&config.VarError{Var: "SIEM_SINKS_FILE",
			Msg: "backfill sends to one sink: unset it and give that sink's settings as SIEM_* variables"}}})
	}
	sinks, err := cfg.Sinks()
	if err != nil {
		return printConfigError(e.stderr, "backfill", err)
	}
	f, err := route.NewFormatter(sinks[0], version)
	if err != nil {
		return printConfigError(e.stderr, "backfill", fmt.Errorf("SIEM_FORMAT: %w", err))
	}
	var s sink.Sink
	dry := &discardSink{}
	if fl.dryRun {
		s = dry
	} else if s, err = route.NewSink(sinks[0], route.Options{Version: version, Stdout: e.stdout, Logger: log}); err != nil {
		return printConfigError(e.stderr, "backfill", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn().Err(err).Msg("closing the sink")
		}
	}()
	// The same composition of formatter and sink as run: one Deliverer.
	del := route.NewDelivery(f, s, log, route.DeliveryOptions{Sink: sinks[0].Label(),
		DeadLetter: deadletter.New(sinkStateDir(cfg, sinks[0].Name), cfg.DeadLetterMaxBytes), PoisonRetries: cfg.SIEMPoisonRetries})

	code = exitOK
	anomalies := newAnomalyReporter(nil, log)
	for _, app := range apps {
		c, err := newClient(app, cfg, nil, reportMalformed(app.Name, nil, log), reportTrimmed(app.Name, nil, log))
		if err != nil {
			return printConfigError(e.stderr, "backfill", fmt.Errorf("appliance %s: %w", app.Name, err))
		}
		prog := newBackfillProgress(stderr, log.With().Str("appliance", app.Name).Logger(), fl)
		sum, err := backfill.Run(ctx, backfill.Config{
			Reader:     source.NewReader(c, app.Name, c.Host(), source.Filter(cfg.Filter()), log).ReportAnomalies(anomalies.Report),
			Sources:    fl.sources,
			Deliverer:  del,
			From:       fl.from,
			To:         fl.to,
			Chunk:      fl.chunk,
			MinChunk:   fl.minChunk,
			MaxRecords: fl.maxRecords,
			StateDir:   cfg.StateDir,
			Args:       fl.args,
			Restart:    fl.restart,
			DryRun:     fl.dryRun,
			Progress:   prog.update,
			Logger:     log,
		})
		prog.finish()
		c.CloseIdleConnections()
		var se *checkpoint.StateError
		var ue *backfill.UnfinishedError
		if errors.As(err, &se) || errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "dtforward backfill: %v\n", err)
			return exitUsage
		}
		if sum == nil || errors.Is(err, checkpoint.ErrLocked) {
			fmt.Fprintf(e.stderr, "dtforward backfill: %v\n", err)
			return exitFailure
		}
		printBackfillSummary(e.stderr, log, sum, fl, dry, err)
		if err != nil || !sum.Complete() {
			code = exitFailure
		}
		if ctx.Err() != nil {
			break
		}
	}
	return code
}

// parseBackfillFlags parses and checks the flags; code is -1 to go on, else the exit code.
func parseBackfillFlags(e *env, now time.Time) (fl backfillFlags, code int) {
	fs := newFlags(e, "backfill", func(w io.Writer) {
		fmt.Fprint(w, `Usage: dtforward backfill --from T --to T [--sources modelbreaches,antigena,aianalyst] [--chunk 1h] [--dry-run] [--restart]

Forwards every record of [from, to) once, resumably (state in STATE_DIR); configured like run.
T is an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01, midnight UTC), epoch
milliseconds, a duration back from now (24h, 7d) or "now"; these are fixed to times at start
and kept in the state: the same command run again resumes an unfinished backfill over its own
range. A different range over an unfinished backfill of the appliance is refused (exit 2)
naming its state file; --restart drops that progress and starts the new range.
Exit codes: 0 every chunk delivered, 1 incomplete (run it again to resume: the summary says
how), 2 usage.
`)
	})
	from := fs.String("from", "", "start of the range, inclusive: RFC 3339, YYYY-MM-DD, epoch milliseconds or a duration back from now (24h, 7d)")
	to := fs.String("to", "", "end of the range, exclusive (same forms as --from, or now); not in the future")
	sources := fs.String("sources", "", "comma-separated sources: modelbreaches, antigena, aianalyst (default POLL_SOURCES)")
	fs.DurationVar(&fl.chunk, "chunk", backfill.DefaultChunk, "window per request")
	fs.DurationVar(&fl.minChunk, "min-chunk", backfill.DefaultMinChunk, "smallest window a slow or too-large chunk is split into")
	fs.IntVar(&fl.maxRecords, "max-records", backfill.DefaultMaxRecords, "records per response above which the window is split")
	fs.BoolVar(&fl.dryRun, "dry-run", false, "fetch, count and format, but send nothing and keep no state")
	fs.BoolVar(&fl.restart, "restart", false, "drop the progress of an unfinished backfill of the same appliance (or of this range) and start this range from the beginning")
	fs.StringVar(&fl.appliance, "appliance", "", "backfill only this appliance (default: every configured one)")
	fs.DurationVar(&fl.progressEvery, "progress-interval", 10*time.Second, "time between progress log lines when stderr is not a terminal")
	if code, ok := fs.parse(); !ok {
		return fl, code
	}
	fail := func(format string, args ...any) (backfillFlags, int) {
		fmt.Fprintf(e.stderr, "dtforward backfill: "+format+"\n", args...)
		return fl, exitUsage
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q (use --from and --to)", fs.Arg(0))
	}
	fl.args = "--from " + *from + " --to " + *to
	var err error
	for _, t := range []struct {
		name string
		in   string
		out  *time.Time
	}{{"--from", *from, &fl.from}, {"--to", *to, &fl.to}} {
		if t.in == "" {
			return fail("%s is required (RFC 3339, YYYY-MM-DD, epoch milliseconds or a duration back from now such as 24h or 7d)", t.name)
		}
		if t.in == "now" {
			*t.out, fl.relative = now.Truncate(time.Second), true
			continue
		}
		if *t.out, err = config.ParseTime(t.in, now); err != nil {
			return fail("%s: %v", t.name, err)
		}
		// A duration back from now ("24h", "7d") names a different range on every run; it is
		// fixed to whole seconds here, and the summary gives the fixed range to resume with.
		if later, _ := config.ParseTime(t.in, now.Add(time.Hour)); !later.Equal(*t.out) {
			*t.out = t.out.Truncate(time.Second)
			fl.relative = true
		}
	}
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	fl.recent = now.Sub(fl.to) < 10*time.Minute
	switch {
	case fl.from.After(now):
		return fail("--from %s is in the future (now is %s); backfill covers the past, run forwards new alerts", stamp(fl.from), stamp(now))
	case fl.to.After(now):
		return fail("--to %s is in the future (now is %s); give a time up to now", stamp(fl.to), stamp(now))
	case !fl.to.After(fl.from):
		return fail("--to %s must be after --from %s", stamp(fl.to), stamp(fl.from))
	case fl.chunk < time.Millisecond:
		return fail("--chunk %s must be positive (e.g. 1h)", fl.chunk)
	case fl.minChunk < time.Millisecond || fl.minChunk > fl.chunk:
		return fail("--min-chunk %s must be positive and at most --chunk %s", fl.minChunk, fl.chunk)
	case fl.maxRecords < 1:
		return fail("--max-records %d must be at least 1", fl.maxRecords)
	case fl.progressEvery <= 0:
		return fail("--progress-interval %s must be positive", fl.progressEvery)
	}
	if *sources != "" {
		for _, s := range strings.Split(*sources, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(darktrace.SourceNames(), s) {
				return fail("--sources: %q is not one of %s", s, strings.Join(darktrace.SourceNames(), ", "))
			}
			if !slices.Contains(fl.sources, s) {
				fl.sources = append(fl.sources, s)
			}
		}
	}
	return fl, -1
}

// resumeHint tells how to resume an incomplete backfill: the same command (an unfinished
// backfill keeps the range it resolved, also one given relative to now), or the range as fixed
// times.
func resumeHint(from, to time.Time) string {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	return fmt.Sprintf("run the same command again to resume there (or give the range as fixed times: --from %s --to %s)", stamp(from), stamp(to))
}

// backfillProgress shows progress: a bar when stderr is a terminal, else a log line every
// progressEvery. The bar counts the share of the range walked, which moves with every piece
// delivered from the first report on (made before the first request).
type backfillProgress struct {
	log     zerolog.Logger
	w       io.Writer
	bar     *progressbar.ProgressBar
	every   time.Duration
	start   time.Time
	lastLog time.Time
	last    backfill.Progress
	base    int64 // walked when this run started (resume)
	started bool
}

// barScale is the bar's resolution: permille of the range walked.
const barScale = 1000

func newBackfillProgress(w *barWriter, log zerolog.Logger, fl backfillFlags) *backfillProgress {
	f, ok := w.w.(*os.File)
	p := newBackfillProgressTTY(w, log, fl, ok && isatty.IsTerminal(f.Fd()))
	w.setBar(p.bar)
	return p
}

func newBackfillProgressTTY(w io.Writer, log zerolog.Logger, fl backfillFlags, tty bool) *backfillProgress {
	p := &backfillProgress{log: log, w: w, every: fl.progressEvery, start: time.Now()}
	p.lastLog = p.start
	if tty {
		if bw, ok := w.(*barWriter); ok {
			w = bw.barSide()
		}
		p.bar = progressbar.NewOptions(barScale,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("backfill"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(),
		)
	}
	return p
}

// update is the backfill.Config.Progress callback.
func (p *backfillProgress) update(pr backfill.Progress) {
	if !p.started {
		// The first report tells how much a resumed run had already done, so the rate and ETA
		// count only this run's work.
		p.started = true
		p.base = pr.Walked
	}
	p.last = pr
	elapsed := time.Since(p.start)
	rate := float64(pr.Records) / max(elapsed.Seconds(), 1e-3)
	if p.bar != nil {
		src := pr.Window.Source
		if src == "" {
			src = "starting"
		}
		p.bar.Describe(fmt.Sprintf("%s %d records %.0f/s, chunks %d/%d", src, pr.Records, rate, pr.ChunksDone, pr.ChunksTotal))
		_ = p.bar.Set64(pr.Walked * barScale / max(pr.Total, 1))
		return
	}
	if time.Since(p.lastLog) < p.every {
		return
	}
	p.lastLog = time.Now()
	ev := p.log.Info().Int("records", pr.Records).Float64("records_per_second", round1(rate)).
		Int("chunks_done", pr.ChunksDone).Int("chunks_total", pr.ChunksTotal).Float64("percent", round1(100*float64(pr.Walked)/float64(max(pr.Total, 1))))
	if !pr.Window.End.IsZero() {
		ev = ev.Time("window_end", pr.Window.End)
	}
	if done := pr.Walked - p.base; done > 0 {
		eta := time.Duration(float64(elapsed) / float64(done) * float64(pr.Total-pr.Walked))
		ev = ev.Dur("eta_ms", eta.Round(time.Second))
	}
	ev.Msg("backfill progress")
}

func (p *backfillProgress) finish() {
	if p.bar != nil {
		// Exit, not Finish: Finish would draw 100% over an incomplete backfill.
		_ = p.bar.Exit()
		if bw, ok := p.w.(*barWriter); ok {
			bw.setBar(nil)
		}
		fmt.Fprintln(p.w)
	}
}

// barWriter is stderr shared by the log and the progress bar: a log line first clears the
// bar's line (so it never prints over the bar, nor the bar over it), and the bar is drawn
// again after it. Writes of both are serialized.
type barWriter struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progressbar.ProgressBar
}

// clearLine returns the cursor to the start of the line and erases it (ANSI).
const clearLine = "\r\x1b[K"

func (b *barWriter) setBar(bar *progressbar.ProgressBar) {
	b.mu.Lock()
	b.bar = bar
	b.mu.Unlock()
}

// Write is the log's side.
func (b *barWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	bar := b.bar
	if bar != nil {
		_, _ = io.WriteString(b.w, clearLine)
	}
	n, err := b.w.Write(p)
	b.mu.Unlock()
	if bar != nil {
		_ = bar.RenderBlank()
	}
	return n, err
}

// barSide is the writer the bar draws with.
func (b *barWriter) barSide() io.Writer { return barSide{b} }

type barSide struct{ b *barWriter }

func (s barSide) Write(p []byte) (int, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.b.w.Write(p)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

// printBackfillSummary writes the human summary to w and the same numbers as one log line.
func printBackfillSummary(w io.Writer, log zerolog.Logger, sum *backfill.Summary, fl backfillFlags, dry *discardSink, err error) {
	stamp := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	state := "complete"
	if !sum.Complete() || err != nil {
		state = "INCOMPLETE"
	}
	from, to := fl.from, fl.to
	if !sum.From.IsZero() {
		from, to = sum.From, sum.To // the range walked: a resumed run of the same command walks its own
	}
	fmt.Fprintf(w, "backfill %s [%s, %s): %s in %s\n", sum.Appliance, stamp(from), stamp(to), state, sum.Duration.Round(time.Millisecond))
	ev := log.Info().Str("appliance", sum.Appliance).Time("from", from).Time("to", to).Bool("complete", state == "complete").
		Bool("resumed", sum.Resumed).Bool("dry_run", fl.dryRun)
	names := make([]string, 0, len(sum.Sources))
	for n := range sum.Sources {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return slices.Index(darktrace.SourceNames(), a) - slices.Index(darktrace.SourceNames(), b)
	})
	dup, malformed := 0, 0
	// A dry run sends nothing, so it never says "sent": its lines were formatted.
	verb := "sent"
	if fl.dryRun {
		verb = "formatted"
	}
	for _, n := range names {
		s := sum.Sources[n]
		fmt.Fprintf(w, "  %-14s %8d %s (%d fetched, %d duplicates dropped, %d filtered, %d malformed skipped)\n",
			n, s.Sent, verb, s.Fetched, s.Deduped, s.Filtered, s.Malformed)
		ev = ev.Dict(n, zerolog.Dict().Int("fetched", s.Fetched).Int(verb, s.Sent).Int("deduped", s.Deduped).
			Int("filtered", s.Filtered).Int("malformed", s.Malformed))
		dup += s.Deduped
		malformed += s.Malformed
	}
	rate := float64(sum.Records()) / max(sum.Duration.Seconds(), 1e-3)
	fmt.Fprintf(w, "  total %d records (%.0f/s), %d duplicates dropped, %d malformed skipped, %d errors, chunks %d/%d (%d windows split in halves, which is routine)\n",
		sum.Records(), rate, dup, malformed, sum.Errors, sum.ChunksDone, sum.ChunksTotal, sum.Splits)
	ev = ev.Int("records", sum.Records()).Int("duplicates", dup).Int("malformed", malformed).Int("errors", sum.Errors).
		Int("splits", sum.Splits).Int("chunks_done", sum.ChunksDone).Int("chunks_total", sum.ChunksTotal).
		Float64("records_per_second", round1(rate)).Dur("duration_ms", sum.Duration)
	if fl.dryRun {
		fmt.Fprintf(w, "  dry run: %d lines formatted (%d bytes); none left this process, no state kept\n", dry.lines.Load(), dry.bytes.Load())
	} else {
		fmt.Fprintf(w, "  state: %s\n", sum.StatePath)
	}
	var first string
	var be *backfill.Error
	switch {
	case errors.As(err, &be):
		first = be.Window.String()
		fmt.Fprintf(w, "  stopped at %s: %v\n", first, be.Err)
	case err != nil:
		fmt.Fprintf(w, "  stopped: %v\n", err)
	}
	if len(sum.Failed) > 0 {
		if first == "" || sum.Failed[0].Start.Before(be.Window.Start) {
			first = sum.Failed[0].String()
		}
		fmt.Fprintf(w, "  %d windows failed; first: %s\n", len(sum.Failed), sum.Failed[0])
	}
	if state != "complete" {
		fmt.Fprintf(w, "  first failing chunk: %s\n  %s\n", first, resumeHint(from, to))
		ev = ev.Str("first_failing_chunk", first)
		if err != nil {
			ev = ev.Str("error", err.Error())
		}
	}
	ev.Msg("backfill finished")
}

// discardSink is the dry run's sink: it counts what it would have sent.
type discardSink struct{ lines, bytes atomic.Int64 }

// Send implements sink.Sink.
func (d *discardSink) Send(_ context.Context, msgs []sink.Message) error {
	for _, m := range msgs {
		d.lines.Add(1)
		d.bytes.Add(int64(len(m.Line)))
	}
	return nil
}

// Close implements sink.Sink.
func (d *discardSink) Close() error { return nil }
