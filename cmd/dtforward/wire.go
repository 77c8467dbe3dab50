package main

// wire.go composes the daemon from its parts (run.go runs it): config → darktrace.Client per
// appliance, the fetch chain, one poller per appliance and destination, checkpoint stores,
// metrics and the HTTP server. run and demo share it. Policy lives in the packages; this file
// only connects them (see ARCHITECTURE.md).

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/checkpoint"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/deadletter"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/poller"
	"github.com/dtforward/dtforward/route"
	"github.com/dtforward/dtforward/source"
)

// sharedBudget bounds the bytes of API responses an appliance's shared fetch keeps for
// destinations that poll the same window a little later (several destinations only). A
// caught-up window is far smaller; catch-up windows larger than this are not kept.
const sharedBudget = 4 << 20

// daemon is a composed "run": every appliance's pollers, the destinations and the HTTP server.
type daemon struct {
	log      zerolog.Logger
	cfg      *config.Config
	metrics  *metrics.Metrics
	dests    []*route.Destination
	health   poller.Health
	shared   []*fetch.Group // one per polled appliance
	clients  []*darktrace.Client
	requests *fetch.FIFO // the process-wide API request slots
	http     *metrics.Server
	unlocks  []func() // the state directories' locks, held for the life of the daemon
}

// daemonOptions are the knobs tests and demo turn; zero values mean production behaviour.
type daemonOptions struct {
	now      func() time.Time
	retryMin time.Duration
	retryMax time.Duration
}

// newDaemon composes the daemon. Configuration and state-file problems are *configError.
func newDaemon(cfg *config.Config, e *env, log zerolog.Logger, o daemonOptions) (_ *daemon, err error) {
	d := &daemon{log: log, cfg: cfg, metrics: metrics.New(), requests: fetch.NewFIFO(cfg.DarktraceMaxConcurrentRequests)}
	d.metrics.SetBuildInfo(version, commit)
	defer func() {
		if err != nil {
			d.close()
			err = &configError{err}
		}
	}()
	apps, err := cfg.ShardAppliances()
	if err != nil {
		return nil, err
	}
	if shard, count := cfg.Shard(); count > 1 {
		log.Info().Int("shard", shard).Int("shards", count).Int("appliances", len(apps)).Msg("polling this shard's appliances")
		if len(apps) == 0 {
			log.Warn().Int("shard", shard).Int("shards", count).Msg("no appliance hashes to this shard; idling (more replicas than appliances?)")
		}
	}
	d.registerMetrics()
	if err := d.openDestinations(e); err != nil {
		return nil, err
	}
	if err := d.lockState(); err != nil {
		return nil, err
	}
	start, err := cfg.StartTime(time.Now())
	if err != nil {
		return nil, fmt.Errorf("POLL_START: %w", err)
	}
	anomalies := newAnomalyReporter(d.metrics, log)
	for i, app := range apps {
		if err := d.addAppliance(app, i, len(apps), start, anomalies.Report, o); err != nil {
			return nil, err
		}
	}
	if len(d.health.Sets) > 0 {
		for _, b := range d.health.Disabled {
			log.Error().Str("appliance", b.Appliance).Str("sink", cmp.Or(b.Sink, "siem")).Err(b.Err).
				Msg("appliance disabled for this sink: its checkpoint is unusable; the others go on (fix or remove the file and restart)")
		}
	}
	if len(d.health.Sets) == 0 && len(d.health.Disabled) > 0 {
		// Nothing left to poll: a start-up error, as it has always been for one appliance.
		errs := make([]error, len(d.health.Disabled))
		for i, b := range d.health.Disabled {
			errs[i] = b.Err
		}
		return nil, errors.Join(errs...)
	}
	if cfg.HTTPAddress != "" {
		if d.http, err = metrics.Serve(cfg.HTTPAddress, d.metrics, d.health.Ready); err != nil {
			return nil, err
		}
		log.Info().Str("address", d.http.Addr()).Msg("serving /healthz, /readyz and /metrics")
	}
	return d, nil
}

// registerMetrics adds the request-limit and readiness metrics.
func (d *daemon) registerMetrics() {
	m := d.metrics
	m.AddGaugeFunc("dtforward_api_requests_in_flight", "API requests holding one of the DARKTRACE_MAX_CONCURRENT_REQUESTS slots.",
		func() float64 { return float64(d.requests.InUse()) })
	m.AddGaugeFunc("dtforward_api_requests_queued", "API requests waiting for a DARKTRACE_MAX_CONCURRENT_REQUESTS slot.",
		func() float64 { return float64(d.requests.Waiting()) })
	m.AddGaugeFunc("dtforward_api_requests_shared_total", "Poll requests served by another sink's identical request (several sinks only).",
		func() float64 {
			var n int64
			for _, g := range d.shared {
				n += g.Joined()
			}
			return float64(n)
		})
	m.SetApplianceUpFunc(d.health.ApplianceUp)
	m.SetReadyDetail(d.health.Detail)
	m.SetSinkUpFunc(func() []metrics.SinkUp {
		labels, names := make([]string, len(d.dests)), make([]string, len(d.dests))
		for i, dest := range d.dests {
			labels[i], names[i] = dest.Config.Name, dest.Name()
		}
		return d.health.SinkUp(labels, names)
	})
}

// openDestinations opens every sink with its formatter.
func (d *daemon) openDestinations(e *env) error {
	sinks, err := d.cfg.Sinks()
	if err != nil {
		return err
	}
	d.health.MultiSink = d.cfg.SIEMSinksFile != ""
	for _, sk := range sinks {
		dest, err := route.Open(sk, route.Options{Version: version, Stdout: e.stdout, Metrics: d.metrics, Logger: d.log, StateDir: d.cfg.StateDir,
			DeadLetter: deadletter.New(sinkStateDir(d.cfg, sk.Name), d.cfg.DeadLetterMaxBytes), PoisonRetries: d.cfg.SIEMPoisonRetries})
		var fe *route.FormatError
		switch {
		case err != nil && d.health.MultiSink:
			return fmt.Errorf("SIEM_SINKS_FILE: sink %q: %w", sk.Name, err)
		case errors.As(err, &fe):
			return fmt.Errorf("SIEM_FORMAT: %w", err)
		case err != nil:
			return err
		}
		d.dests = append(d.dests, dest)
		if sk.TLSInsecureSkipVerify {
			d.log.Warn().Str("sink", dest.Name()).Msg("TLS verification of the collector is off (SIEM_TLS_INSECURE_SKIP_VERIFY / tls_insecure_skip_verify)")
		}
	}
	return nil
}

// stateDir is where dest keeps its checkpoints: each named sink its own subdirectory, the
// SIEM_* sink STATE_DIR itself (the layout it always had).
func (d *daemon) stateDir(dest *route.Destination) string {
	return sinkStateDir(d.cfg, dest.Config.Name)
}

// lockState locks every destination's state directory for the life of the daemon (see
// checkpoint.LockRun): a second process on the same state is refused at start.
func (d *daemon) lockState() error {
	index, count := d.cfg.Shard()
	for _, dest := range d.dests {
		unlock, err := checkpoint.LockRun(d.stateDir(dest), index, count)
		if err != nil {
			return err
		}
		d.unlocks = append(d.unlocks, unlock)
	}
	return nil
}

// addAppliance composes appliance i of n: its client and clock, the fetch chain and one poller
// per destination. An unusable checkpoint disables the appliance for that destination only.
func (d *daemon) addAppliance(app config.Appliance, i, n int, start time.Time, anomalies darktrace.AnomalyFunc, o daemonOptions) error {
	cfg, log := d.cfg, d.log
	// A sink receives an appliance's records only when its selection takes the appliance: the
	// others get no poller for it, so its records cannot reach them.
	var dests []*route.Destination
	for _, dest := range d.dests {
		if dest.Config.Selects(app.Name, app.Labels) {
			dests = append(dests, dest)
		}
	}
	if len(dests) == 0 {
		log.Warn().Str("appliance", app.Name).Msg("no sink selects this appliance; it is not polled")
		return nil
	}
	set := &poller.Set{Appliance: app.Name, Interval: cfg.PollInterval, Phase: poller.StaggerDelay(i, n, cfg.PollInterval),
		Gridded: len(dests) > 1, ExactNow: o.now}
	if o.now == nil {
		set.Clock = poller.NewClock(log.With().Str("appliance", app.Name).Logger()).Report(d.metrics, app.Name)
		set.ExactNow = set.Clock.Now
	}
	c, err := newClient(app, cfg, set.Clock, reportMalformed(app.Name, d.metrics, log), reportTrimmed(app.Name, d.metrics, log))
	if err != nil {
		return fmt.Errorf("appliance %s: %w", app.Name, err)
	}
	d.clients = append(d.clients, c)
	set.Status = c.Status
	if app.InsecureSkipVerify {
		log.Warn().Str("appliance", app.Name).Msg("TLS verification of the appliance is off (DARKTRACE_INSECURE_SKIP_VERIFY)")
	}
	// No gathering wait: a poller that asks a moment later is served the recording.
	limited := fetch.Limited{Next: c, Slots: d.requests, Rate: fetch.NewPerMinute(cfg.DarktraceMaxRequestsPerMinute),
		Sent: func() { d.metrics.APIRequest(app.Name) }, Throttled: func(w time.Duration) { d.metrics.APIThrottled(app.Name, w) }}
	group := fetch.NewGroup(limited, len(dests), fetch.GroupOptions{TTL: cfg.PollInterval, Budget: sharedBudget})
	for _, dest := range dests {
		plog := log
		if dest.Config.Name != "" {
			plog = log.With().Str("sink", dest.Config.Name).Logger()
		}
		store, err := checkpoint.Open(sinkStateDir(cfg, dest.Config.Name), app.Name)
		if se := (*checkpoint.StateError)(nil); errors.As(err, &se) {
			// One unusable checkpoint must not stop the others: skip this appliance for this
			// sink, leave the file for the operator, and keep reporting it (logged by newDaemon
			// once it is known whether others go on).
			d.health.Disabled = append(d.health.Disabled, poller.Disabled{Appliance: app.Name, Sink: dest.Config.Name, Err: err})
			continue
		} else if err != nil {
			return err
		}
		if fb := store.FellBack(); fb != nil {
			log.Warn().Str("appliance", app.Name).Str("sink", dest.Name()).Err(fb).Msg("checkpoint damaged; resuming from its last durable copy")
		}
		room := fetch.Room{Next: group, Backlog: dest.Delivery, Room: fetch.SinkRoom(cfg.DarktraceMaxConcurrentRequests)}
		reader := source.NewReader(room, app.Name, c.Host(), source.Filter(cfg.Filter()), plog).ReportAnomalies(anomalies)
		d.metrics.Appliance(app.Name, dest.Sources(cfg.PollSources))
		p, err := poller.New(poller.Config{
			Reader: reader, Sources: dest.Sources(cfg.PollSources), Store: store,
			Deliverer: route.Labelled{Next: dest, Labels: app.Labels},
			Interval:  cfg.PollInterval, Overlap: cfg.PollOverlap, Start: start,
			RetryMin: o.retryMin, RetryMax: o.retryMax, RetryAfter: darktrace.RetryAfterOf,
			ShutdownTimeout: cfg.ShutdownTimeout, Now: set.Now(), Logger: plog, Metrics: d.metrics,
			// POLL_AIANALYST_REFRESH_HORIZON=0 turns the refresh off; the poller reads 0 as
			// "default" and a negative horizon as off.
			AIAnalystRefreshHorizon:  cmp.Or(cfg.PollAIAnalystRefreshHorizon, -1),
			AIAnalystRefreshInterval: cfg.PollAIAnalystRefreshInterval,
		})
		if err != nil {
			return err
		}
		if set.Reader == nil {
			set.Reader = reader // the clock check runs under the first poller's request slot
		}
		set.Pollers = append(set.Pollers, p)
		set.Sinks = append(set.Sinks, dest.Config.Name)
	}
	if len(set.Pollers) > 0 {
		d.health.Sets = append(d.health.Sets, set)
		d.shared = append(d.shared, group)
	}
	return nil
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
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
	for _, unlock := range d.unlocks {
		unlock()
	}
	d.unlocks = nil
}
