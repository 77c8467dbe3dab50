package main

import (
	"sync"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
)

// anomalyReporter counts the values of unexpected type the tolerant decoders find
// (dtforward_decode_anomalies_total) and logs the first one of each source and field, so a
// Darktrace version that sends a field differently costs one warning, not one per record.
type anomalyReporter struct {
	m    *metrics.Metrics // nil: count nothing
	log  zerolog.Logger
	seen sync.Map // source + "\x00" + field
}

func newAnomalyReporter(m *metrics.Metrics, log zerolog.Logger) *anomalyReporter {
	return &anomalyReporter{m: m, log: log}
}

// Report is a darktrace.AnomalyFunc; safe for concurrent use.
func (r *anomalyReporter) Report(a darktrace.Anomaly) {
	r.m.DecodeAnomaly(a.Source, a.Field)
	if _, logged := r.seen.LoadOrStore(a.Source+"\x00"+a.Field, struct{}{}); logged {
		return
	}
	r.log.Warn().Str("source", a.Source).Str("field", a.Field).Str("id", a.ID).
		Msg("record field has a value of an unexpected type; the record is forwarded with what could be read (logged once per field; counted in dtforward_decode_anomalies_total)")
}
