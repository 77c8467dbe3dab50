package metrics

// SinkAlerts counts n alerts accepted by the named sink.
func (m *Metrics) SinkAlerts(sink string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sinkAlerts.WithLabelValues(sink).Add(float64(n))
}

// Sink creates the named sink's counter series at 0, so that an alert on them sees the sink
// from the start.
func (m *Metrics) Sink(sink string) {
	if m == nil {
		return
	}
	m.sinkAlerts.WithLabelValues(sink)
	m.sinkErrors.WithLabelValues(sink)
	m.sinkSanitized.WithLabelValues(sink)
	m.sinkBytes.WithLabelValues(sink)
}

// SinkBytes counts bytes the named sink wrote, framing included.
func (m *Metrics) SinkBytes(sink string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.sinkBytes.WithLabelValues(sink).Add(float64(n))
}

// SinkError counts one batch the named sink did not accept.
func (m *Metrics) SinkError(sink string) {
	if m == nil {
		return
	}
	m.sinkErrors.WithLabelValues(sink).Inc()
}

// SinkSanitized counts n lines of the named sink whose CR or LF the sink replaced.
func (m *Metrics) SinkSanitized(sink string, n int) {
	if m == nil || n < 0 {
		return
	}
	m.sinkSanitized.WithLabelValues(sink).Add(float64(n))
}

// DeadLetter counts one alert the named sink set aside. reason is one of deadletter's fixed
// reasons, so the label's cardinality is bounded.
func (m *Metrics) DeadLetter(sink, reason string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(sink, reason).Inc()
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
