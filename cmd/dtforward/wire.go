package main

// wire.go composes the daemon from its parts: config → darktrace.Client per appliance,
// formatter + sink → one poller.Deliverer, checkpoint stores, metrics and the HTTP server.
// run, demo and check share it so that what "check" tests is exactly what "run" uses.

import (
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
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/poller"
	"github.com/dtforward/dtforward/sink"
)

// newLogger returns the zerolog logger on w: JSON, or console when LOG_FORMAT=console or, with
// LOG_FORMAT unset, when w is a terminal.
func newLogger(cfg *config.Config, w io.Writer) zerolog.Logger {
	console := cfg.LogFormat == "console"
	if cfg.LogFormat == "" {
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil || cfg.LogLevel == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
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
		Timeout: cfg.SIEMTimeout,
		Stdout:  stdout,
		Hooks:   sink.Hooks{Reconnect: m.SinkReconnect},
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

// delivery is the poller.Deliverer: it formats a batch and sends it through the one sink. A
// mutex serializes appliances on the sink (sink.Sink is not required to be concurrent-safe and
// the lines of one batch must stay together and in order).
type delivery struct {
	mu  sync.Mutex
	f   formatter.Formatter
	s   sink.Sink
	log zerolog.Logger
}

// Deliver implements poller.Deliverer.
func (d *delivery) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	msgs := make([]sink.Message, 0, len(alerts))
	for _, a := range alerts {
		line, err := d.f.Append(nil, a)
		if err != nil {
			d.log.Error().Str("kind", a.Kind).Str("id", a.ID).Str("appliance", a.Appliance).Err(err).
				Msg("alert cannot be formatted; skipped")
			continue
		}
		msgs = append(msgs, sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line})
	}
	if len(msgs) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.s.Send(ctx, msgs)
	if !errors.Is(err, sink.ErrMessageTooLarge) {
		return err
	}
	// Nothing was sent and resending the batch cannot succeed: send one by one and drop (with
	// a log line) only the messages the transport can never carry.
	for _, m := range msgs {
		err := d.s.Send(ctx, []sink.Message{m})
		switch {
		case errors.Is(err, sink.ErrMessageTooLarge):
			d.log.Error().Str("kind", m.Kind).Int("bytes", len(m.Line)).Msg("message too large for the transport; skipped")
		case err != nil:
			return err
		}
	}
	return nil
}

// daemon is a composed "run": every appliance's poller, the sink and the HTTP server.
type daemon struct {
	log        zerolog.Logger
	cfg        *config.Config
	metrics    *metrics.Metrics
	sink       sink.Sink
	appliances []*poller.Appliance
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
	apps, err := cfg.Appliances()
	if err != nil {
		return nil, &configError{err}
	}
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
		d.clients = append(d.clients, c)
		if app.InsecureSkipVerify {
			log.Warn().Str("appliance", app.Name).Msg("TLS verification of the appliance is off (DARKTRACE_INSECURE_SKIP_VERIFY)")
		}
		store, err := poller.OpenStore(cfg.StateDir, app.Name)
		if err != nil {
			return nil, &configError{err}
		}
		p := poller.NewPipeline(c, app.Name, c.Host(), filter, log)
		d.pipelines = append(d.pipelines, p)
		a, err := poller.NewAppliance(poller.Config{
			Pipeline:        p,
			Sources:         cfg.PollSources,
			Store:           store,
			Deliverer:       del,
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
		})
		if err != nil {
			return nil, &configError{err}
		}
		d.appliances = append(d.appliances, a)
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

// ready is /readyz: every appliance's sources answer, deliver and keep up.
func (d *daemon) ready() error {
	var errs []error
	for _, a := range d.appliances {
		errs = append(errs, a.Ready())
	}
	return errors.Join(errs...)
}

// run polls until ctx ends, reopening a file sink on SIGHUP, then shuts down in order.
func (d *daemon) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	names := make([]string, len(d.appliances))
	for i, a := range d.appliances {
		names[i] = a.Name()
	}
	d.log.Info().Str("version", version).Strs("appliances", names).Strs("sources", d.cfg.PollSources).
		Dur("interval", d.cfg.PollInterval).Dur("overlap", d.cfg.PollOverlap).
		Str("format", d.cfg.SIEMFormat).Str("transport", d.cfg.SIEMTransport).Msg("dtforward started")

	var wg sync.WaitGroup
	for i, a := range d.appliances {
		wg.Go(func() {
			if c := d.clocks[i]; c != nil {
				// Windows must follow the appliance clock from the very first poll.
				ok := c.sync(ctx, d.pipelines[i], d.clients[i])
				wg.Go(func() { c.run(ctx, d.pipelines[i], d.clients[i], ok) })
			}
			_ = a.Run(ctx)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
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
	return exitUsage
}
