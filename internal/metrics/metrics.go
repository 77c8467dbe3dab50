// Package metrics holds dtforward's Prometheus series (on their own registry, so no library
// defaults leak in) and the small HTTP server that serves /healthz, /readyz and /metrics on
// HTTP_ADDRESS.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Outcomes of a record, the values of the outcome label of dtforward_records_total.
const (
	OutcomeFetched   = "fetched"   // received from the appliance
	OutcomeSent      = "sent"      // accepted by every sink, or set aside in a dead-letter file
	OutcomeDeduped   = "deduped"   // already delivered earlier
	OutcomeFiltered  = "filtered"  // dropped by FILTER_*
	OutcomeMalformed = "malformed" // did not decode or normalize; skipped
)

// Lag is one source's checkpoint lag, reported by a LagFunc.
type Lag struct {
	Appliance, Source string
	Lag               time.Duration
}

// Metrics is the set of dtforward series. All methods are safe for concurrent use and do
// nothing on a nil *Metrics, so callers need no "metrics enabled?" branches.
type Metrics struct {
	reg            *prometheus.Registry
	records        *prometheus.CounterVec
	pollDuration   *prometheus.HistogramVec
	apiErrors      *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
	apiThrottled   *prometheus.CounterVec
	sinkReconnects prometheus.Counter
	anomalies      *prometheus.CounterVec
	sinkDatagrams  prometheus.Counter

	// per sink (the sink label is a name from SIEM_SINKS_FILE or "siem": bounded by the
	// configuration) and per-source state: Antigena actions lost from sight, pbid gaps.
	sinkAlerts       *prometheus.CounterVec
	sinkErrors       *prometheus.CounterVec
	sinkSanitized    *prometheus.CounterVec
	sinkBytes        *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
	antigenaVanished *prometheus.CounterVec
	// Antigena states that came and went unseen and that the history cannot give back.
	antigenaStatesMissed *prometheus.CounterVec
	pbidGaps             *prometheus.CounterVec
	pbidGapsResolved     *prometheus.CounterVec
	// the appliance clock estimate: Date headers /status refuted, the last Date's skew.
	clockDisagreements *prometheus.CounterVec
	clockSkew          *prometheus.GaugeVec

	mu     sync.Mutex
	lags   []func() []Lag
	up     func() []ApplianceUp
	sinkUp func() []SinkUp
	// detail lists one status line per appliance for /readyz?verbose.
	detail func() []string
}

// ApplianceUp is one appliance's readiness for dtforward_appliance_up.
type ApplianceUp struct {
	Appliance string
	Up        bool
}

// New returns the series registered on a fresh registry, plus Go runtime and process metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		records: counterVec(reg, "dtforward_records_total",
			"Records by appliance, source and outcome (fetched, sent, deduped, filtered, malformed). sent: done with by every sink routed to, accepted or set aside in a sink's dead-letter file (dtforward_dead_letters_total counts those).",
			"appliance", "source", "outcome"),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dtforward_poll_duration_seconds",
			Help:    "Duration of one poll cycle (fetch, deliver, persist), including retries.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"appliance", "source"}),
		apiErrors: counterVec(reg, "dtforward_api_errors_total",
			"Failed appliance requests by appliance and source.",
			"appliance", "source"),
		apiRequests: counterVec(reg, "dtforward_api_requests_total",
			"Requests sent to the appliance (after shared fetches are joined), by appliance.",
			"appliance"),
		apiThrottled: counterVec(reg, "dtforward_api_throttled_seconds_total",
			"Time requests to the appliance waited for DARKTRACE_MAX_REQUESTS_PER_MINUTE, by appliance.",
			"appliance"),
		sinkReconnects: counter(reg, "dtforward_sink_reconnects_total",
			"Connections (re)established to the SIEM."),
		anomalies: counterVec(reg, "dtforward_decode_anomalies_total",
			"Record fields of an unexpected type, by source and field (the record was kept; the value was converted or left empty).",
			"source", "field"),
		sinkDatagrams: counter(reg, "dtforward_sink_datagrams_sent_total",
			"UDP datagrams handed to the kernel (sent, not necessarily received: UDP has no acknowledgement)."),
		sinkAlerts: counterVec(reg, "dtforward_sink_alerts_total",
			"Alerts a sink accepted, by sink (with several sinks each counts its own copy).",
			"sink"),
		sinkErrors: counterVec(reg, "dtforward_sink_errors_total",
			"Batches a sink failed to accept, by sink (each is retried whole; the other sinks go on).",
			"sink"),
		sinkSanitized: counterVec(reg, "dtforward_sink_lines_sanitized_total",
			"Lines a sink sent with CR or LF replaced by spaces, by sink. The formatters never produce either: above 0 means a formatter let one through (the line still went out as one line).",
			"sink"),
		sinkBytes: counterVec(reg, "dtforward_sink_bytes_total",
			"Bytes a sink wrote, by sink: a syslog sink (udp, tcp, tls, relp) to its connection, framing included; file and stdout their lines; hec, sentinel and otlp the bodies of their requests as sent (gzip; otlp over gRPC with its framing).",
			"sink"),
		deadLetters: counterVec(reg, "dtforward_dead_letters_total",
			"Alerts a sink set aside in its dead-letter file, by sink and reason (refused, unformattable, too_large); each is logged with its id.",
			"sink", "reason"),
		antigenaVanished: counterVec(reg, "dtforward_antigena_vanished_total",
			"Antigena actions that disappeared from /antigena before their final state (cleared or expired) was seen.",
			"appliance"),
		antigenaStatesMissed: counterVec(reg, "dtforward_antigena_states_missed_total",
			"Antigena action states that came and went between two polls (or while a sink was down) and could not be rebuilt from the action's history, so were never forwarded: an expiry followed by a reactivation, or a history entry of unknown meaning.",
			"appliance"),
		pbidGaps: counterVec(reg, "dtforward_pbid_gaps_total",
			"pbids found missing between delivered breaches (deleted, not visible yet, or suppressed and hidden by FILTER_INCLUDE_SUPPRESSED=false).",
			"appliance"),
		pbidGapsResolved: counterVec(reg, "dtforward_pbid_gaps_resolved_total",
			"Missing pbids no longer tracked, by outcome: appeared, late (delivered after its window), filtered, gave_up, dropped (over the tracking cap).",
			"appliance", "outcome"),
		clockDisagreements: counterVec(reg, "dtforward_clock_disagreements_total",
			"Checks in which /status refuted an answer's Date header more than 30 s off the appliance clock estimate (a proxy stamping its own clock?); windows kept following /status.",
			"appliance"),
		clockSkew: gaugeVec(reg, "dtforward_clock_date_skew_seconds",
			"The last answer's Date header minus the appliance clock estimated from /status, in seconds (about 0 when they agree; Date has one-second resolution).",
			"appliance"),
	}
	lagDesc := prometheus.NewDesc("dtforward_checkpoint_lag_seconds",
		"Time between now and the end of the last window delivered, by appliance and source (with several sinks: the sink furthest behind).",
		[]string{"appliance", "source"}, nil)
	upDesc := prometheus.NewDesc("dtforward_appliance_up",
		"1 while an appliance is ready (as /readyz judges it), 0 while it fails or is disabled (e.g. unusable checkpoint).",
		[]string{"appliance"}, nil)
	m.reg.MustRegister(m.pollDuration,
		&lagCollector{m: m, desc: lagDesc}, &upCollector{desc: upDesc, read: m.appliancesUp},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(&upCollector{read: m.sinksUp, desc: prometheus.NewDesc("dtforward_sink_up",
		"1 while a sink accepts what every appliance sends it, 0 while it fails.", []string{"sink"}, nil)})
	return m
}

// counterVec makes and registers a counter vector, so that a series' name, help and labels
// stand together and none is made without being registered.
func counterVec(reg *prometheus.Registry, name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	reg.MustRegister(c)
	return c
}

// gaugeVec is counterVec for a gauge.
func gaugeVec(reg *prometheus.Registry, name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	reg.MustRegister(g)
	return g
}

// counter is counterVec for a series without labels.
func counter(reg *prometheus.Registry, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

// Registry returns the registry, e.g. for tests that gather.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AddRecords counts n records with an outcome.
func (m *Metrics) AddRecords(appliance, source, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.records.WithLabelValues(appliance, source, outcome).Add(float64(n))
}

// ObservePoll records one poll cycle's duration.
func (m *Metrics) ObservePoll(appliance, source string, d time.Duration) {
	if m == nil {
		return
	}
	m.pollDuration.WithLabelValues(appliance, source).Observe(d.Seconds())
}

// APIRequest counts one request sent to an appliance.
func (m *Metrics) APIRequest(appliance string) {
	if m == nil {
		return
	}
	m.apiRequests.WithLabelValues(appliance).Inc()
}

// APIThrottled counts the time one request to appliance waited for its requests-a-minute bound.
func (m *Metrics) APIThrottled(appliance string, d time.Duration) {
	if m == nil {
		return
	}
	m.apiThrottled.WithLabelValues(appliance).Add(d.Seconds())
}

// APIError counts one failed appliance request.
func (m *Metrics) APIError(appliance, source string) {
	if m == nil {
		return
	}
	m.apiErrors.WithLabelValues(appliance, source).Inc()
}

// outcomes are the values of dtforward_records_total's outcome label.
var outcomes = []string{OutcomeFetched, OutcomeSent, OutcomeDeduped, OutcomeFiltered, OutcomeMalformed}

// Appliance creates at 0 the counter series of an appliance polling sources, so that an alert
// on rate() or increase() sees each of them from the start rather than from its first event.
func (m *Metrics) Appliance(appliance string, sources []string) {
	if m == nil {
		return
	}
	for _, src := range sources {
		for _, o := range outcomes {
			m.records.WithLabelValues(appliance, src, o)
		}
		m.apiErrors.WithLabelValues(appliance, src)
	}
	m.antigenaVanished.WithLabelValues(appliance)
	m.antigenaStatesMissed.WithLabelValues(appliance)
	m.pbidGaps.WithLabelValues(appliance)
	m.apiRequests.WithLabelValues(appliance)
	m.apiThrottled.WithLabelValues(appliance)
}

// SetBuildInfo sets dtforward_build_info: 1, labelled with the version, the commit and the Go
// version the binary was built with.
func (m *Metrics) SetBuildInfo(version, commit string) {
	if m == nil {
		return
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "dtforward_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	g.Set(1)
	m.reg.MustRegister(g)
}

// SinkReconnect counts one (re)connection to the SIEM.
func (m *Metrics) SinkReconnect() {
	if m == nil {
		return
	}
	m.sinkReconnects.Inc()
}

// DecodeAnomaly counts one record field of an unexpected type. field comes from the decoder's
// fixed set of JSON paths, so the label's cardinality is bounded.
func (m *Metrics) DecodeAnomaly(source, field string) {
	if m == nil {
		return
	}
	m.anomalies.WithLabelValues(source, field).Inc()
}

// AddSinkDatagrams counts n UDP datagrams sent.
func (m *Metrics) AddSinkDatagrams(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sinkDatagrams.Add(float64(n))
}

// AddLagFunc registers a function reporting checkpoint lags; it is called at every scrape, so
// the gauge keeps growing while a source is stuck rather than freezing at its last success.
func (m *Metrics) AddLagFunc(f func() []Lag) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.lags = append(m.lags, f)
	m.mu.Unlock()
}

// SetApplianceUpFunc sets the function reporting dtforward_appliance_up; it is called at every
// scrape.
func (m *Metrics) SetApplianceUpFunc(f func() []ApplianceUp) {
	if m != nil {
		setLocked(&m.mu, &m.up, f)
	}
}

// SetReadyDetail sets the lines /readyz?verbose adds after its verdict (one per appliance).
func (m *Metrics) SetReadyDetail(f func() []string) {
	if m != nil {
		setLocked(&m.mu, &m.detail, f)
	}
}

// setLocked stores v in *p under mu: the functions are set while the server may be scraped.
func setLocked[T any](mu *sync.Mutex, p *T, v T) {
	mu.Lock()
	*p = v
	mu.Unlock()
}

// upSeries reads the function *f (nil until set) under mu and names its values for an
// upCollector.
func upSeries[T any](mu *sync.Mutex, f *func() []T, named func(T) namedUp) []namedUp {
	mu.Lock()
	read := *f
	mu.Unlock()
	if read == nil {
		return nil
	}
	var out []namedUp
	for _, u := range read() {
		out = append(out, named(u))
	}
	return out
}

func (m *Metrics) readyDetail() []string {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	f := m.detail
	m.mu.Unlock()
	if f == nil {
		return nil
	}
	return f()
}

// AddGaugeFunc registers an unlabelled gauge read at every scrape.
func (m *Metrics) AddGaugeFunc(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// upCollector is a 0/1 gauge with one label, read at every scrape through read.
type upCollector struct {
	desc *prometheus.Desc
	read func() []namedUp
}

// namedUp is one series of an upCollector: its label value and whether it is up.
type namedUp struct {
	name string
	up   bool
}

func (c *upCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *upCollector) Collect(ch chan<- prometheus.Metric) {
	for _, u := range c.read() {
		v := 0.0
		if u.up {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, u.name)
	}
}

// appliancesUp reads the SetApplianceUpFunc function.
func (m *Metrics) appliancesUp() []namedUp {
	return upSeries(&m.mu, &m.up, func(u ApplianceUp) namedUp { return namedUp{u.Appliance, u.Up} })
}

type lagCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	fs := append([]func() []Lag(nil), c.m.lags...)
	c.m.mu.Unlock()
	// With several sinks each appliance source has one poller per sink; the series reports
	// the worst of them (one series per label set, as Prometheus requires).
	type key struct{ appliance, source string }
	worst := map[key]float64{}
	var order []key
	for _, f := range fs {
		for _, l := range f() {
			k := key{l.Appliance, l.Source}
			v, ok := worst[k]
			if !ok {
				order = append(order, k)
			}
			if !ok || l.Lag.Seconds() > v {
				worst[k] = l.Lag.Seconds()
			}
		}
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, worst[k], k.appliance, k.source)
	}
}

// Server serves /healthz (the process is up), /readyz (ready() returns nil) and /metrics.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error
}

// Handler returns the HTTP handler of a Server, for tests and for embedding.
func Handler(m *Metrics, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var detail []string
		if r.URL.Query().Has("verbose") {
			detail = m.readyDetail()
		}
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				writeLines(w, detail)
				return
			}
		}
		fmt.Fprintln(w, "ready")
		writeLines(w, detail)
	})
	if m != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	}
	return mux
}

func writeLines(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// Serve listens on addr and serves Handler(m, ready) until Close.
func Serve(addr string, m *Metrics, ready func() error) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDRESS %s: %w", addr, err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(m, ready),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
		},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr returns the address actually listened on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, waiting up to a few seconds for in-flight scrapes.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if err != nil {
		return err
	}
	return s.err
}
