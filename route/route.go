// Package route composes dtforward's destinations: one destination is a sink from the
// configuration (SIEM_* or one entry of SIEM_SINKS_FILE) with the sources it receives, its
// formatter, its sink and the poller.Deliverer that joins them. cmd wires destinations to
// appliances; this package decides how one destination turns alerts into accepted lines.
package route

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/hec"
	"github.com/dtforward/dtforward/sink/otlp"
	"github.com/dtforward/dtforward/sink/sentinel"
)

// headerReserve is room left for the syslog header inside max_message_bytes: PRI, version,
// a microsecond timestamp with offset, APP-NAME, PROCID and MSGID take under 100 bytes; the
// hostname is added on top.
const headerReserve = 100

// NewFormatter builds the sink's format with a line limit that leaves room for its syslog
// header. version is dtforward's, for the CEF/LEEF header.
func NewFormatter(s config.Sink, version string) (formatter.Formatter, error) {
	maxBytes := s.MaxMessageBytes
	if s.HeaderOrDefault() != sink.HeaderNone && maxBytes > 0 {
		host, _ := os.Hostname()
		maxBytes -= headerReserve + len(host)
	}
	if maxBytes > 0 && maxBytes < formatter.MinMaxBytes {
		maxBytes = formatter.MinMaxBytes
	}
	return formatter.New(s.Format, formatter.Options{Version: version, LEEFVersion: s.LEEFVersion, MaxBytes: maxBytes})
}

// Options are what a destination needs besides its configuration.
type Options struct {
	Version string           // dtforward's version, for CEF/LEEF headers
	Stdout  io.Writer        // the stdout transport's writer
	Metrics *metrics.Metrics // may be nil
	Logger  zerolog.Logger
	// StateDir is STATE_DIR; a sink that keeps state of its own (the hec channel) keeps it in
	// its checkpoint directory there. "" when the command keeps no state (check).
	StateDir string
	// DeadLetter receives what the sink cannot take (see DeliveryOptions); nil holds it.
	DeadLetter DeadLetter
	// PoisonRetries is SIEM_POISON_RETRIES (0: DefaultPoisonRetries).
	PoisonRetries int
}

// NewSink builds the sink's transport, counting reconnects, datagrams and sanitized lines in
// o.Metrics.
func NewSink(s config.Sink, o Options) (sink.Sink, error) {
	log := o.Logger
	if s.Name != "" {
		log = log.With().Str("sink", s.Name).Logger()
	}
	label := s.Label()
	if s.Transport == "sentinel" {
		cfg, err := s.SentinelConfig(s.SettingName)
		if err != nil {
			return nil, err
		}
		cfg.Hooks = hooks(label, o.Metrics)
		return sentinel.New(cfg)
	}
	o.Metrics.Sink(label)
	if s.Transport == "hec" {
		return NewHEC(s, o.StateDir, &log, hooks(label, o.Metrics))
	}
	if s.Transport == "otlp" {
		cfg, err := s.OTLPConfig(s.SettingName, o.Version)
		if err != nil {
			return nil, err
		}
		cfg.Logger = &log
		cfg.Hooks = hooks(label, o.Metrics)
		return otlp.New(cfg)
	}
	cfg := s.SinkConfig()
	cfg.Stdout = o.Stdout
	cfg.Hooks = hooks(label, o.Metrics)
	cfg.Logger = &log
	return sink.New(cfg)
}

// hooks counts what the sink named label does in m, for every sink that takes sink.Hooks.
// Hooks.Error stays unset: route counts a failed Send itself (dtforward_sink_errors_total).
func hooks(label string, m *metrics.Metrics) sink.Hooks {
	return sink.Hooks{Reconnect: m.SinkReconnect, Datagrams: m.AddSinkDatagrams,
		Sanitized: func(n int) { m.SinkSanitized(label, n) },
		Sent:      func(_, bytes int) { m.SinkBytes(label, bytes) }}
}

// NewHEC builds the Splunk HEC sink of s. With stateDir, its channel is kept in the sink's
// checkpoint directory (STATE_DIR, or STATE_DIR/<name> for a sink of SIEM_SINKS_FILE).
func NewHEC(s config.Sink, stateDir string, log *zerolog.Logger, h sink.Hooks) (*hec.Sink, error) {
	c := s.HECConfig()
	c.Hooks = h
	if stateDir != "" {
		c.StateDir = stateDir
		if s.Name != "" {
			c.StateDir = filepath.Join(stateDir, s.Name)
		}
	}
	if s.Name != "" {
		c.Setting = func(key string) string { return fmt.Sprintf("%s of sink %q in SIEM_SINKS_FILE", key, s.Name) }
	}
	c.Logger = log
	return hec.New(c)
}

// Destination is one sink with its formatter and Deliverer. It implements poller.Deliverer,
// counting what its sink accepts under its own name.
type Destination struct {
	Config   config.Sink
	Sink     sink.Sink
	Delivery *Delivery
	metrics  *metrics.Metrics
}

// Open builds the destination of s.
func Open(s config.Sink, o Options) (*Destination, error) {
	f, err := NewFormatter(s, o.Version)
	if err != nil {
		return nil, &FormatError{err}
	}
	sk, err := NewSink(s, o)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if s.Name != "" {
		log = log.With().Str("sink", s.Name).Logger()
	}
	d := &Destination{Config: s, Sink: sk, metrics: o.Metrics}
	d.Delivery = NewDelivery(f, sk, log, DeliveryOptions{
		Sink: d.Name(), DeadLetter: o.DeadLetter, PoisonRetries: o.PoisonRetries,
		Counted: func(reason string) { o.Metrics.DeadLetter(d.Name(), reason) },
	})
	return d, nil
}

// FormatError is Open's error when the format cannot be built (the rest is the sink's).
type FormatError struct{ Err error }

func (e *FormatError) Error() string { return e.Err.Error() }
func (e *FormatError) Unwrap() error { return e.Err }

// Name is the destination's label in logs, metrics and /readyz.
func (d *Destination) Name() string { return d.Config.Label() }

// Sources returns the polled sources this destination receives, in POLL_SOURCES order.
func (d *Destination) Sources(polled []string) []string {
	if d.Config.Sources == nil {
		return polled
	}
	var out []string
	for _, s := range polled {
		if slices.Contains(d.Config.Sources, s) {
			out = append(out, s)
		}
	}
	return out
}

// Deliver implements poller.Deliverer.
func (d *Destination) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	aside, err := d.Delivery.deliver(ctx, alerts)
	if err != nil {
		d.metrics.SinkError(d.Name())
		return err
	}
	d.metrics.SinkAlerts(d.Name(), len(alerts)-aside)
	return nil
}

// Close closes the sink.
func (d *Destination) Close() error { return d.Sink.Close() }
