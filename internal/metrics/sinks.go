package metrics

import "github.com/prometheus/client_golang/prometheus"

// sinkSeries are the per-sink series. The sink label is a name from SIEM_SINKS_FILE (or
// "siem" for the SIEM_* sink): bounded by the configuration.
type sinkSeries struct {
	alerts    *prometheus.CounterVec
	errors    *prometheus.CounterVec
	sanitized *prometheus.CounterVec
	dead      *prometheus.CounterVec
}

func newSinkSeries(reg *prometheus.Registry) *sinkSeries {
	s := &sinkSeries{
		alerts: counterVec(reg, "dtforward_sink_alerts_total",
			"Alerts a sink accepted, by sink (with several sinks each counts its own copy).",
			"sink"),
		errors: counterVec(reg, "dtforward_sink_errors_total",
			"Batches a sink failed to accept, by sink (each is retried whole; the other sinks go on).",
			"sink"),
		sanitized: counterVec(reg, "dtforward_sink_lines_sanitized_total",
			"Lines a sink sent with CR or LF replaced by spaces, by sink. The formatters never produce either: above 0 means a formatter let one through (the line still went out as one line).",
			"sink"),
		dead: counterVec(reg, "dtforward_dead_letters_total",
			"Alerts a sink set aside in its dead-letter file, by sink and reason (refused, unformattable, too_large); each is logged with its id.",
			"sink", "reason"),
	}
	return s
}

// SinkAlerts counts n alerts accepted by the named sink.
func (m *Metrics) SinkAlerts(sink string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sinks.alerts.WithLabelValues(sink).Add(float64(n))
}

// Sink creates the named sink's counter series at 0, so that an alert on them sees the sink
// from the start.
func (m *Metrics) Sink(sink string) {
	if m == nil {
		return
	}
	m.sinks.alerts.WithLabelValues(sink)
	m.sinks.errors.WithLabelValues(sink)
	m.sinks.sanitized.WithLabelValues(sink)
}

// SinkError counts one batch the named sink did not accept.
func (m *Metrics) SinkError(sink string) {
	if m == nil {
		return
	}
	m.sinks.errors.WithLabelValues(sink).Inc()
}

// SinkSanitized counts n lines of the named sink whose CR or LF the sink replaced.
func (m *Metrics) SinkSanitized(sink string, n int) {
	if m == nil || n < 0 {
		return
	}
	m.sinks.sanitized.WithLabelValues(sink).Add(float64(n))
}

// DeadLetter counts one alert the named sink set aside. reason is one of deadletter's fixed
// reasons, so the label's cardinality is bounded.
func (m *Metrics) DeadLetter(sink, reason string) {
	if m == nil {
		return
	}
	m.sinks.dead.WithLabelValues(sink, reason).Inc()
}

// SinkUp is one sink's readiness for dtforward_sink_up.
type SinkUp struct {
	Sink string
	Up   bool
}

// SetSinkUpFunc sets the function reporting dtforward_sink_up; it is called at every scrape.
func (m *Metrics) SetSinkUpFunc(f func() []SinkUp) {
	if m != nil {
		setLocked(&m.mu, &m.sinkUp, f)
	}
}

// sinksUp reads the SetSinkUpFunc function.
func (m *Metrics) sinksUp() []namedUp {
	return upSeries(&m.mu, &m.sinkUp, func(u SinkUp) namedUp { return namedUp{u.Sink, u.Up} })
}
