package main

// wire.go composes the daemon from its parts: config → darktrace.Client per appliance,
// formatter + sink → one poller.Deliverer, checkpoint stores, metrics and the HTTP server.
// run, demo and check share it so that what "check" tests is exactly what "run" uses.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/limit"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/sharedfetch"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/poller"
	"github.com/dtforward/dtforward/route"
	"github.com/dtforward/dtforward/sink"
)

// newLogger returns the zerolog logger on w: JSON, or console when LOG_FORMAT=console or, with
// LOG_FORMAT unset, when w is a terminal. Console output is coloured only on a terminal, so a
// pipe or a file never receives ANSI escapes.
func newLogger(cfg *config.Config, w io.Writer) zerolog.Logger {
	tty := isTerminal(w)
	console := cfg.LogFormat == "console" || (cfg.LogFormat == "" && tty)
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !tty}
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// isTerminal reports whether w is a terminal (a TTY or a Windows console).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// newClient builds the API client of one appliance. With a clock, requests are signed with the
// estimated appliance time and every answer's Date header keeps the estimate current.
func newClient(app config.Appliance, cfg *config.Config, clock *applianceClock) (*darktrace.Client, error) {
	var now func() time.Time
	var onDate func(time.Time)
	if clock != nil {
		now, onDate = clock.Now, clock.observe
	}
	return darktrace.New(darktrace.Config{
		URL:          app.URL,
		PublicToken:  app.PublicToken.Value(),
		PrivateToken: app.PrivateToken.Value(),
		AllowHTTP:    app.AllowHTTP,
		Timeout:      cfg.DarktraceTimeout,
		TLS: tlsconfig.Options{
			CAFile: app.CAFile, ServerName: app.ServerName, InsecureSkipVerify: app.InsecureSkipVerify,
		},
		UserAgent: "dtforward/" + version,
		Now:       now,
		OnDate:    onDate,
	})
}

// labelled is one appliance's view of the shared delivery: it stamps the appliance's labels
// from the appliances file on every alert.
type labelled struct {
	d      poller.Deliverer
	labels map[string]string // shared, read-only
}

// Deliver implements poller.Deliverer.
func (l labelled) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	if len(l.labels) > 0 {
		for _, a := range alerts {
			a.Labels = l.labels
		}
	}
	return l.d.Deliver(ctx, alerts)
}

// limitedFetcher takes a slot of the process-wide request limit
// (DARKTRACE_MAX_CONCURRENT_REQUESTS) for each API request. Slots are granted in arrival
// order, so a slow or huge appliance holds at most one and cannot starve the others; time
// spent queueing does not count against the request timeout.
type limitedFetcher struct {
	c     *darktrace.Client
	slots *limit.FIFO
}

// StreamDated implements poller.Fetcher.
func (l limitedFetcher) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if err := l.slots.Acquire(ctx); err != nil {
		return time.Time{}, err
	}
	defer l.slots.Release()
	return l.c.StreamDated(ctx, pathAndQuery, fn)
}

// roomFetcher waits while its sink's queue is full (Delivery.WaitRoom) before fetching:
// fetching more than the sink can take only costs memory. It sits in front of the shared
// fetch, so a stuck sink holds back only its own pollers.
type roomFetcher struct {
	next    poller.Fetcher
	backlog *route.Delivery
	room    int // most slices queued at the sink before fetches wait
}

// StreamDated implements poller.Fetcher.
func (r roomFetcher) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if err := r.backlog.WaitRoom(ctx, r.room); err != nil {
		return time.Time{}, err
	}
	return r.next.StreamDated(ctx, pathAndQuery, fn)
}

// sinkRoom is how many slices may wait for the sink before appliances stop fetching: enough
// to keep group commits full, few enough that a slow collector holds a bounded amount of
// fetched data (at most sinkRoom + DARKTRACE_MAX_CONCURRENT_REQUESTS batches).
func sinkRoom(maxRequests int) int { return max(2*maxRequests, 32) }

// brokenAppliance is an appliance that cannot be polled for one sink until the operator acts
// (its checkpoint is unusable). The others run; /readyz and dtforward_appliance_up report it.
type brokenAppliance struct {
	name string
	sink string // the sink's label, "" for the SIEM_* sink
	err  error
}

// polled is one appliance: its client and clock, and one poller per destination, each with
// that destination's checkpoint and Deliverer. The pollers fetch through one shared-fetch
// group, so destinations that are caught up are served by one request per window.
type polled struct {
	name    string
	client  *darktrace.Client
	clock   *applianceClock // nil when daemonOptions.now overrides the clock
	group   *sharedfetch.Group
	pollers []*poller.Appliance
	sinks   []string         // destination label of each poller
	first   *poller.Pipeline // the one the clock check runs under
	phase   time.Duration    // stagger: delay of the first poll

	// With several destinations: the clock without grid, and the grid window ends are on.
	exactNow func() time.Time
	grid     func(time.Time) time.Time
}

// grid returns the function that rounds a time down to the grid of interval offset by phase
// from the Unix epoch.
func grid(phase, interval time.Duration) func(time.Time) time.Time {
	base := time.Unix(0, 0).Add(phase)
	return func(t time.Time) time.Time {
		return base.Add(t.Sub(base) / interval * interval)
	}
}

// sharedBudget bounds the bytes of API responses an appliance's shared fetch keeps for
// destinations that poll the same window a little later (several destinations only). A
// caught-up window is far smaller; catch-up windows larger than this are not kept.
const sharedBudget = 4 << 20

// daemon is a composed "run": every appliance's pollers, the destinations and the HTTP server.
type daemon struct {
	log       zerolog.Logger
	cfg       *config.Config
	metrics   *metrics.Metrics
	dests     []*route.Destination
	polled    []*polled
	broken    []brokenAppliance
	requests  *limit.FIFO // the process-wide API request slots
	http      *metrics.Server
	multiSink bool
}

// daemonOptions are the knobs tests and demo turn; zero values mean production behaviour.
type daemonOptions struct {
	now      func() time.Time
	retryMin time.Duration
	retryMax time.Duration
}

// configError marks errors that are the user's to fix before starting: exit 2.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// newDaemon composes the daemon. Configuration and state-file problems are *configError.
func newDaemon(cfg *config.Config, e *env, log zerolog.Logger, o daemonOptions) (*daemon, error) {
	d := &daemon{log: log, cfg: cfg, metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			d.close()
		}
	}()
	apps, err := cfg.ShardAppliances()
	if err != nil {
		return nil, &configError{err}
	}
	if shard, count := cfg.Shard(); count > 1 {
		log.Info().Int("shard", shard).Int("shards", count).Int("appliances", len(apps)).Msg("polling this shard's appliances")
		if len(apps) == 0 {
			log.Warn().Int("shard", shard).Int("shards", count).Msg("no appliance hashes to this shard; idling (more replicas than appliances?)")
		}
	}
	d.requests = limit.New(cfg.DarktraceMaxConcurrentRequests)
	d.metrics.AddGaugeFunc("dtforward_api_requests_in_flight", "API requests holding one of the DARKTRACE_MAX_CONCURRENT_REQUESTS slots.",
		func() float64 { return float64(d.requests.InUse()) })
	d.metrics.AddGaugeFunc("dtforward_api_requests_queued", "API requests waiting for a DARKTRACE_MAX_CONCURRENT_REQUESTS slot.",
		func() float64 { return float64(d.requests.Waiting()) })
	d.metrics.AddGaugeFunc("dtforward_api_requests_shared_total", "Poll requests served by another sink's identical request (several sinks only).",
		func() float64 {
			var n int64
			for _, p := range d.polled {
				n += p.group.Joined()
			}
			return float64(n)
		})
	d.metrics.SetApplianceUpFunc(d.applianceUp)
	d.metrics.SetReadyDetail(d.readyDetail)
	d.metrics.SetSinkUpFunc(d.sinkUp)
	sinks, err := cfg.Sinks()
	if err != nil {
		return nil, &configError{err}
	}
	d.multiSink = cfg.SIEMSinksFile != ""
	for _, sk := range sinks {
		dest, err := route.Open(sk, route.Options{Version: version, Stdout: e.stdout, Metrics: d.metrics, Logger: log})
		if err != nil {
			var fe *route.FormatError
			switch {
			case d.multiSink:
				err = fmt.Errorf("SIEM_SINKS_FILE: sink %q: %w", sk.Name, err)
			case errors.As(err, &fe):
				err = fmt.Errorf("SIEM_FORMAT: %w", err)
			}
			return nil, &configError{err}
		}
		d.dests = append(d.dests, dest)
		if sk.TLSInsecureSkipVerify {
			log.Warn().Str("sink", dest.Name()).Msg("TLS verification of the collector is off (SIEM_TLS_INSECURE_SKIP_VERIFY / tls_insecure_skip_verify)")
		}
	}
	start, err := cfg.StartTime(time.Now())
	if err != nil {
		return nil, &configError{fmt.Errorf("POLL_START: %w", err)}
	}
	filter := poller.Filter(cfg.Filter())
	anomalies := newAnomalyReporter(d.metrics, log)
	for i, app := range apps {
		now := o.now
		var clock *applianceClock
		if now == nil {
			clock = &applianceClock{log: log.With().Str("appliance", app.Name).Logger()}
			now = clock.Now
		}
		c, err := newClient(app, cfg, clock)
		if err != nil {
			return nil, &configError{fmt.Errorf("appliance %s: %w", app.Name, err)}
		}
		if app.InsecureSkipVerify {
			log.Warn().Str("appliance", app.Name).Msg("TLS verification of the appliance is off (DARKTRACE_INSECURE_SKIP_VERIFY)")
		}
		pa := &polled{name: app.Name, client: c, clock: clock}
		pa.phase = staggerDelay(i, len(apps), cfg.PollInterval)
		if len(d.dests) > 1 {
			// Window ends on a grid of POLL_INTERVAL (offset by the appliance's stagger), so
			// every destination's poller asks for the very same windows, whatever its phase
			// after an outage, and the shared fetch serves them from one request.
			pa.exactNow, pa.grid = now, grid(pa.phase, cfg.PollInterval)
			now = func() time.Time { return pa.grid(pa.exactNow()) }
		}
		pa.group = sharedfetch.New(limitedFetcher{c: c, slots: d.requests}, len(d.dests), sharedfetch.Options{
			// No gathering wait: a poller that asks a moment later is served the recording.
			TTL: cfg.PollInterval, Budget: sharedBudget,
		})
		for _, dest := range d.dests {
			stateDir := cfg.StateDir
			if dest.Config.Name != "" {
				// Each sink keeps its own progress; the SIEM_* sink keeps the layout it always had.
				stateDir = filepath.Join(cfg.StateDir, dest.Config.Name)
			}
			store, err := poller.OpenStore(stateDir, app.Name)
			var se *poller.StateError
			if errors.As(err, &se) {
				// One unusable checkpoint must not stop the others: skip this appliance for this
				// sink, leave the file for the operator, and keep reporting it.
				log.Error().Str("appliance", app.Name).Str("sink", dest.Name()).Err(err).
					Msg("appliance disabled for this sink: its checkpoint is unusable; the others go on (fix or remove the file and restart)")
				d.broken = append(d.broken, brokenAppliance{name: app.Name, sink: dest.Config.Name, err: err})
				continue
			}
			if err != nil {
				return nil, &configError{err}
			}
			plog := log
			if dest.Config.Name != "" {
				plog = log.With().Str("sink", dest.Config.Name).Logger()
			}
			fetch := roomFetcher{next: pa.group, backlog: dest.Delivery, room: sinkRoom(cfg.DarktraceMaxConcurrentRequests)}
			p := poller.NewPipeline(fetch, app.Name, c.Host(), filter, plog).ReportAnomalies(anomalies.Report)
			a, err := poller.NewAppliance(poller.Config{
				Pipeline:        p,
				Sources:         dest.Sources(cfg.PollSources),
				Store:           store,
				Deliverer:       labelled{d: dest, labels: app.Labels},
				Interval:        cfg.PollInterval,
				Overlap:         cfg.PollOverlap,
				Start:           start,
				RetryMin:        o.retryMin,
				RetryMax:        o.retryMax,
				RetryAfter:      darktrace.RetryAfterOf,
				ShutdownTimeout: cfg.ShutdownTimeout,
				Now:             now,
				Logger:          plog,
				Metrics:         d.metrics,

				// POLL_AIANALYST_REFRESH_HORIZON=0 turns the refresh off; the poller reads 0 as
				// "default" and a negative horizon as off.
				AIAnalystRefreshHorizon:  cmp.Or(cfg.PollAIAnalystRefreshHorizon, -1),
				AIAnalystRefreshInterval: cfg.PollAIAnalystRefreshInterval,
			})
			if err != nil {
				return nil, &configError{err}
			}
			if pa.first == nil {
				pa.first = p
			}
			pa.pollers = append(pa.pollers, a)
			pa.sinks = append(pa.sinks, dest.Config.Name)
		}
		if len(pa.pollers) == 0 {
			c.CloseIdleConnections()
			continue
		}
		d.polled = append(d.polled, pa)
	}
	if len(d.polled) == 0 && len(d.broken) > 0 {
		// Nothing left to poll: a start-up error, as it has always been for one appliance.
		errs := make([]error, len(d.broken))
		for i, b := range d.broken {
			errs[i] = b.err
		}
		return nil, &configError{errors.Join(errs...)}
	}
	if cfg.HTTPAddress != "" {
		srv, err := metrics.Serve(cfg.HTTPAddress, d.metrics, d.ready)
		if err != nil {
			return nil, &configError{err}
		}
		d.http = srv
		log.Info().Str("address", srv.Addr()).Msg("serving /healthz, /readyz and /metrics")
	}
	ok = true
	return d, nil
}

// ready is /readyz: every appliance's sources answer, deliver and keep up, for every sink. The
// error names each appliance (and, with several sinks, the sink) that is not ready, one line per
// problem, after a count when there are several.
func (d *daemon) ready() error {
	var errs []error
	total, notReady := len(d.broken), len(d.broken)
	for _, b := range d.broken {
		errs = append(errs, fmt.Errorf("%s%s: disabled: %w", sinkPrefix(b.sink), b.name, b.err))
	}
	for _, p := range d.polled {
		for i, a := range p.pollers {
			total++
			if err := a.Ready(); err != nil {
				if p.sinks[i] != "" {
					err = fmt.Errorf("%s%w", sinkPrefix(p.sinks[i]), err)
				}
				errs = append(errs, err)
				notReady++
			}
		}
	}
	if notReady > 0 && total > 1 {
		what := "appliances"
		if d.multiSink {
			what = "appliance pollers (one per appliance and sink)"
		}
		errs = append([]error{fmt.Errorf("%d of %d %s not ready", notReady, total, what)}, errs...)
	}
	return errors.Join(errs...)
}

// sinkPrefix is "sink NAME: " for a named sink, "" for the SIEM_* sink.
func sinkPrefix(name string) string {
	if name == "" {
		return ""
	}
	return "sink " + name + ": "
}

// applianceUp is dtforward_appliance_up: 1 per appliance whose pollers are all ready, 0 per
// failing or disabled one.
func (d *daemon) applianceUp() []metrics.ApplianceUp {
	up := map[string]bool{}
	var order []string
	mark := func(name string, ok bool) {
		if prev, seen := up[name]; !seen {
			order = append(order, name)
			up[name] = ok
		} else {
			up[name] = prev && ok
		}
	}
	for _, b := range d.broken {
		mark(b.name, false)
	}
	for _, p := range d.polled {
		for _, a := range p.pollers {
			mark(p.name, a.Ready() == nil)
		}
	}
	out := make([]metrics.ApplianceUp, 0, len(order))
	for _, n := range order {
		out = append(out, metrics.ApplianceUp{Appliance: n, Up: up[n]})
	}
	return out
}

// sinkUp is dtforward_sink_up: 1 per sink that no appliance's poller reports failing.
func (d *daemon) sinkUp() []metrics.SinkUp {
	failing := map[string]bool{}
	for _, p := range d.polled {
		for i, a := range p.pollers {
			for _, st := range a.Status() {
				if st.SinkError != "" {
					failing[p.sinks[i]] = true
				}
			}
		}
	}
	out := make([]metrics.SinkUp, 0, len(d.dests))
	for _, dest := range d.dests {
		out = append(out, metrics.SinkUp{Sink: dest.Name(), Up: !failing[dest.Config.Name]})
	}
	return out
}

// readyDetail is /readyz?verbose: one line per appliance, ready, not ready or disabled.
func (d *daemon) readyDetail() []string {
	out := make([]string, 0, len(d.broken)+len(d.polled))
	for _, b := range d.broken {
		if b.sink != "" {
			out = append(out, b.name+" (sink "+b.sink+"): disabled")
			continue
		}
		out = append(out, b.name+": disabled")
	}
	for _, p := range d.polled {
		state := "ready"
		for _, a := range p.pollers {
			if a.Ready() != nil {
				state = "not ready"
			}
		}
		out = append(out, p.name+": "+state)
	}
	return out
}

// maxStagger bounds how far the first polls are spread, so a long POLL_INTERVAL does not delay
// the last appliance's first poll by as much.
const maxStagger = time.Minute

// staggerDelay is appliance i of n's delay before its first poll: the starts are spread evenly
// over min(POLL_INTERVAL, maxStagger), so hundreds of appliances do not all request (and
// deliver) at the same instant at boot, nor in every interval after it, since each keeps its
// phase.
func staggerDelay(i, n int, interval time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(interval, maxStagger) / time.Duration(n) * time.Duration(i)
}

// run polls until ctx ends, reopening file sinks on SIGHUP, then shuts down in order.
func (d *daemon) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Hundreds of names would make one enormous line; past a few dozen, the count says enough.
	names := make([]string, 0, min(len(d.polled), maxLoggedNames))
	for _, p := range d.polled[:min(len(d.polled), maxLoggedNames)] {
		names = append(names, p.name)
	}
	ev := d.log.Info().Str("version", version).Int("appliance_count", len(d.polled)).Strs("appliances", names).Strs("sources", d.cfg.PollSources).
		Dur("interval_ms", d.cfg.PollInterval).Dur("overlap_ms", d.cfg.PollOverlap)
	if d.multiSink {
		sinks := make([]string, len(d.dests))
		for i, dest := range d.dests {
			sinks[i] = dest.Name()
		}
		ev = ev.Strs("sinks", sinks)
	} else {
		ev = ev.Str("format", d.cfg.SIEMFormat).Str("transport", d.cfg.SIEMTransport)
	}
	ev.Msg("dtforward started")

	var wg sync.WaitGroup
	for _, p := range d.polled {
		wg.Go(func() {
			if p.grid == nil && !sleepCtx(ctx, p.phase) {
				return
			}
			if c := p.clock; c != nil {
				// Windows must follow the appliance clock from the very first poll.
				ok := c.sync(ctx, p.first, p.client)
				wg.Go(func() { c.run(ctx, p.first, p.client, ok) })
			}
			if p.grid != nil {
				// Start on a grid point of the appliance clock, so that the window ends (on
				// the grid) are as fresh as they can be. This waits at most one interval, once.
				now := p.exactNow()
				if !sleepCtx(ctx, p.grid(now).Add(d.cfg.PollInterval).Sub(now)) {
					return
				}
			}
			// The destinations' pollers start together, so that while caught up they ask for
			// the same windows at the same moments and share the requests.
			for _, a := range p.pollers {
				wg.Go(func() { _ = a.Run(ctx) })
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		// A shard that owns no appliance still serves /healthz and /readyz until stopped,
		// rather than exiting and being restarted over and over.
		<-ctx.Done()
		close(done)
	}()
	for {
		select {
		case <-hup:
			for _, dest := range d.dests {
				r, ok := dest.Sink.(sink.Reopener)
				if !ok {
					continue
				}
				if err := r.Reopen(); err != nil {
					d.log.Error().Err(err).Str("sink", dest.Name()).Msg("SIGHUP: reopening the output file failed")
				} else {
					d.log.Info().Str("sink", dest.Name()).Msg("SIGHUP: output file reopened")
				}
			}
		case <-done:
			d.log.Info().Msg("dtforward stopped")
			return
		}
	}
}

// close releases everything newDaemon opened.
func (d *daemon) close() {
	if d.http != nil {
		_ = d.http.Close()
	}
	for _, dest := range d.dests {
		if err := dest.Close(); err != nil {
			d.log.Warn().Err(err).Str("sink", dest.Name()).Msg("closing the sink")
		}
	}
	for _, p := range d.polled {
		p.client.CloseIdleConnections()
	}
}

// printConfigError prints a configuration error one problem per line, prefixed with the
// command, and returns exitUsage.
func printConfigError(w io.Writer, cmd string, err error) int {
	var ce *config.Error
	var lines []string
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			lines = append(lines, p.Error())
		}
	} else {
		lines = strings.Split(err.Error(), "\n")
	}
	for _, l := range lines {
		fmt.Fprintf(w, "dtforward %s: %s\n", cmd, l)
	}
	if ce != nil {
		fmt.Fprintf(w, "Run \"dtforward %s --help\" for the variables it reads, or \"dtforward demo\" to try dtforward without an appliance.\n", cmd)
	}
	return exitUsage
}

// maxLoggedNames bounds the appliance names listed in the start-up log line.
const maxLoggedNames = 50

// sleepCtx waits d or until ctx ends; it reports whether the full time passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
