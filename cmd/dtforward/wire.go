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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/limit"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/poller"
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

// headerReserve is room left for the syslog header inside SIEM_MAX_MESSAGE_BYTES: PRI,
// version, a microsecond timestamp with offset, APP-NAME, PROCID and MSGID take under 100
// bytes; the hostname is added on top.
const headerReserve = 100

// newFormatter builds SIEM_FORMAT with a line limit that leaves room for the syslog header.
func newFormatter(cfg *config.Config, header string) (formatter.Formatter, error) {
	maxBytes := cfg.SIEMMaxMessageBytes
	if header != sink.HeaderNone && maxBytes > 0 {
		host, _ := os.Hostname()
		maxBytes -= headerReserve + len(host)
	}
	if maxBytes > 0 && maxBytes < formatter.MinMaxBytes {
		maxBytes = formatter.MinMaxBytes
	}
	return formatter.New(cfg.SIEMFormat, formatter.Options{Version: version, LEEFVersion: cfg.SIEMLEEFVersion, MaxBytes: maxBytes})
}

// sinkHeader returns the syslog header to use: SIEM_HEADER for network transports; for stdout
// and file only when set explicitly (bare lines are what people pipe and tail).
func sinkHeader(cfg *config.Config, getenv func(string) string) string {
	switch cfg.SIEMTransport {
	case "stdout", "file":
		if getenv("SIEM_HEADER") == "" {
			return sink.HeaderNone
		}
	}
	if cfg.SIEMHeader == "" {
		return sink.HeaderRFC5424
	}
	return cfg.SIEMHeader
}

// newSink builds the configured sink, counting reconnects in m.
func newSink(cfg *config.Config, header string, stdout io.Writer, m *metrics.Metrics, log *zerolog.Logger) (sink.Sink, error) {
	app := "dtforward"
	if cfg.SIEMFormat == "darktrace-json" {
		// Darktrace's own "Syslog JSON" alerts use this APP-NAME; existing parsers key on it.
		app = "darktrace"
	}
	return sink.New(sink.Config{
		Transport: cfg.SIEMTransport,
		Address:   cfg.SIEMAddress,
		Header:    header,
		Framing:   cfg.Framing(),
		Facility:  cfg.SIEMFacility,
		AppName:   app,
		TLS: tlsconfig.Options{
			CAFile: cfg.SIEMTLSCAFile, CertFile: cfg.SIEMTLSCertFile, KeyFile: cfg.SIEMTLSKeyFile,
			ServerName: cfg.SIEMTLSServerName, InsecureSkipVerify: cfg.SIEMTLSInsecureSkipVerify,
		},
		RELP:    sink.RELPOptions{Window: cfg.SIEMRELPWindow, TLS: cfg.SIEMRELPTLS},
		Timeout: cfg.SIEMTimeout,
		UDPRate: cfg.SIEMUDPRate,
		Stdout:  stdout,
		Hooks:   sink.Hooks{Reconnect: m.SinkReconnect, Datagrams: m.AddSinkDatagrams},
		Logger:  log,
	})
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
	d      *delivery
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
// spent queueing does not count against the request timeout. Before that it waits while the
// sink's queue is full (delivery.waitRoom): fetching more than the sink can take only costs
// memory.
type limitedFetcher struct {
	c       *darktrace.Client
	slots   *limit.FIFO
	backlog *delivery
	room    int // most slices queued at the sink before fetches wait
}

// The poller must see each answer's Date: no window may end past it.
var _ poller.DatedFetcher = limitedFetcher{}

// Stream implements poller.Fetcher.
func (l limitedFetcher) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	_, err := l.StreamDated(ctx, pathAndQuery, fn)
	return err
}

// StreamDated implements poller.DatedFetcher.
func (l limitedFetcher) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if err := l.backlog.waitRoom(ctx, l.room); err != nil {
		return time.Time{}, err
	}
	if err := l.slots.Acquire(ctx); err != nil {
		return time.Time{}, err
	}
	defer l.slots.Release()
	return l.c.StreamDated(ctx, pathAndQuery, fn)
}

// sinkRoom is how many slices may wait for the sink before appliances stop fetching: enough
// to keep group commits full, few enough that a slow collector holds a bounded amount of
// fetched data (at most sinkRoom + DARKTRACE_MAX_CONCURRENT_REQUESTS batches).
func sinkRoom(maxRequests int) int { return max(2*maxRequests, 32) }

// brokenAppliance is an appliance that cannot be polled until the operator acts (its
// checkpoint is unusable). The others run; /readyz and dtforward_appliance_up report it.
type brokenAppliance struct {
	name string
	err  error
}

// daemon is a composed "run": every appliance's poller, the sink and the HTTP server.
type daemon struct {
	log        zerolog.Logger
	cfg        *config.Config
	metrics    *metrics.Metrics
	sink       sink.Sink
	appliances []*poller.Appliance
	broken     []brokenAppliance
	requests   *limit.FIFO // the process-wide API request slots
	clients    []*darktrace.Client
	clocks     []*applianceClock // nil entries when daemonOptions.now overrides the clock
	pipelines  []*poller.Pipeline
	http       *metrics.Server
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
	d.metrics.SetApplianceUpFunc(d.applianceUp)
	d.metrics.SetReadyDetail(d.readyDetail)
	header := sinkHeader(cfg, e.getenv)
	f, err := newFormatter(cfg, header)
	if err != nil {
		return nil, &configError{fmt.Errorf("SIEM_FORMAT: %w", err)}
	}
	if d.sink, err = newSink(cfg, header, e.stdout, d.metrics, &log); err != nil {
		return nil, &configError{err}
	}
	if cfg.SIEMTLSInsecureSkipVerify {
		log.Warn().Msg("SIEM_TLS_INSECURE_SKIP_VERIFY=true: the collector's certificate is not verified")
	}
	del := &delivery{f: f, s: d.sink, log: log}
	start, err := cfg.StartTime(time.Now())
	if err != nil {
		return nil, &configError{fmt.Errorf("POLL_START: %w", err)}
	}
	filter := poller.Filter{
		MinScore:            cfg.FilterMinScore,
		IncludeAcknowledged: cfg.FilterIncludeAcknowledged,
		IncludeSuppressed:   cfg.FilterIncludeSuppressed,
		Models:              cfg.ModelsRegexp(),
		Tags:                cfg.TagsRegexp(),
	}
	anomalies := newAnomalyReporter(d.metrics, log)
	for _, app := range apps {
		now := o.now
		var clock *applianceClock
		if now == nil {
			clock = &applianceClock{log: log.With().Str("appliance", app.Name).Logger()}
			now = clock.Now
		}
		d.clocks = append(d.clocks, clock)
		c, err := newClient(app, cfg, clock)
		if err != nil {
			return nil, &configError{fmt.Errorf("appliance %s: %w", app.Name, err)}
		}
		if app.InsecureSkipVerify {
			log.Warn().Str("appliance", app.Name).Msg("TLS verification of the appliance is off (DARKTRACE_INSECURE_SKIP_VERIFY)")
		}
		store, err := poller.OpenStore(cfg.StateDir, app.Name)
		var se *poller.StateError
		if errors.As(err, &se) {
			// One unusable checkpoint must not stop the other appliances: skip this one,
			// leave the file for the operator, and keep reporting it.
			log.Error().Str("appliance", app.Name).Err(err).
				Msg("appliance disabled: its checkpoint is unusable; the other appliances go on (fix or remove the file and restart)")
			d.broken = append(d.broken, brokenAppliance{name: app.Name, err: err})
			c.CloseIdleConnections()
			continue
		}
		if err != nil {
			return nil, &configError{err}
		}
		d.clients = append(d.clients, c)
		d.clocks = append(d.clocks, clock)
		p := poller.NewPipeline(limitedFetcher{c: c, slots: d.requests, backlog: del, room: sinkRoom(cfg.DarktraceMaxConcurrentRequests)}, app.Name, c.Host(), filter, log).ReportAnomalies(anomalies.Report)
		d.pipelines = append(d.pipelines, p)
		a, err := poller.NewAppliance(poller.Config{
			Pipeline:        p,
			Sources:         cfg.PollSources,
			Store:           store,
			Deliverer:       labelled{d: del, labels: app.Labels},
			Interval:        cfg.PollInterval,
			Overlap:         cfg.PollOverlap,
			Start:           start,
			RetryMin:        o.retryMin,
			RetryMax:        o.retryMax,
			RetryAfter:      darktrace.RetryAfterOf,
			ShutdownTimeout: cfg.ShutdownTimeout,
			Now:             now,
			Logger:          log,
			Metrics:         d.metrics,

			// POLL_AIANALYST_REFRESH_HORIZON=0 turns the refresh off; the poller reads 0 as
			// "default" and a negative horizon as off.
			AIAnalystRefreshHorizon:  cmp.Or(cfg.PollAIAnalystRefreshHorizon, -1),
			AIAnalystRefreshInterval: cfg.PollAIAnalystRefreshInterval,
		})
		if err != nil {
			return nil, &configError{err}
		}
		d.appliances = append(d.appliances, a)
	}
	if len(d.appliances) == 0 && len(d.broken) > 0 {
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

// ready is /readyz: every appliance's sources answer, deliver and keep up. The error names
// each appliance that is not ready (one line per problem), after a count when there are
// several appliances.
func (d *daemon) ready() error {
	var errs []error
	for _, b := range d.broken {
		errs = append(errs, fmt.Errorf("%s: disabled: %w", b.name, b.err))
	}
	notReady := len(d.broken)
	for _, a := range d.appliances {
		if err := a.Ready(); err != nil {
			errs = append(errs, err)
			notReady++
		}
	}
	if total := len(d.broken) + len(d.appliances); notReady > 0 && total > 1 {
		errs = append([]error{fmt.Errorf("%d of %d appliances not ready", notReady, total)}, errs...)
	}
	return errors.Join(errs...)
}

// applianceUp is dtforward_appliance_up: 1 per ready appliance, 0 per failing or disabled one.
func (d *daemon) applianceUp() []metrics.ApplianceUp {
	out := make([]metrics.ApplianceUp, 0, len(d.broken)+len(d.appliances))
	for _, b := range d.broken {
		out = append(out, metrics.ApplianceUp{Appliance: b.name})
	}
	for _, a := range d.appliances {
		out = append(out, metrics.ApplianceUp{Appliance: a.Name(), Up: a.Ready() == nil})
	}
	return out
}

// readyDetail is /readyz?verbose: one line per appliance, ready, not ready or disabled.
func (d *daemon) readyDetail() []string {
	out := make([]string, 0, len(d.broken)+len(d.appliances))
	for _, b := range d.broken {
		out = append(out, b.name+": disabled")
	}
	for _, a := range d.appliances {
		state := "ready"
		if a.Ready() != nil {
			state = "not ready"
		}
		out = append(out, a.Name()+": "+state)
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

// run polls until ctx ends, reopening a file sink on SIGHUP, then shuts down in order.
func (d *daemon) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Hundreds of names would make one enormous line; past a few dozen, the count says enough.
	names := make([]string, 0, min(len(d.appliances), maxLoggedNames))
	for _, a := range d.appliances[:min(len(d.appliances), maxLoggedNames)] {
		names = append(names, a.Name())
	}
	d.log.Info().Str("version", version).Int("appliance_count", len(d.appliances)).Strs("appliances", names).Strs("sources", d.cfg.PollSources).
		Dur("interval_ms", d.cfg.PollInterval).Dur("overlap_ms", d.cfg.PollOverlap).
		Str("format", d.cfg.SIEMFormat).Str("transport", d.cfg.SIEMTransport).Msg("dtforward started")

	var wg sync.WaitGroup
	for i, a := range d.appliances {
		wg.Go(func() {
			if !sleepCtx(ctx, staggerDelay(i, len(d.appliances), d.cfg.PollInterval)) {
				return
			}
			if c := d.clocks[i]; c != nil {
				// Windows must follow the appliance clock from the very first poll.
				ok := c.sync(ctx, d.pipelines[i], d.clients[i])
				wg.Go(func() { c.run(ctx, d.pipelines[i], d.clients[i], ok) })
			}
			_ = a.Run(ctx)
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
			if r, ok := d.sink.(sink.Reopener); ok {
				if err := r.Reopen(); err != nil {
					d.log.Error().Err(err).Msg("SIGHUP: reopening the output file failed")
				} else {
					d.log.Info().Msg("SIGHUP: output file reopened")
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
	if d.sink != nil {
		if err := d.sink.Close(); err != nil {
			d.log.Warn().Err(err).Msg("closing the sink")
		}
	}
	for _, c := range d.clients {
		c.CloseIdleConnections()
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
