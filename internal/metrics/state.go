package metrics

import "github.com/prometheus/client_golang/prometheus"

// stateSeries are the series of the per-source state: Antigena actions lost from sight and
// pbid gaps.
type stateSeries struct {
	antigenaVanished *prometheus.CounterVec
	pbidGaps         *prometheus.CounterVec
	pbidGapsResolved *prometheus.CounterVec
}

func newStateSeries(reg *prometheus.Registry) *stateSeries {
	s := &stateSeries{
		antigenaVanished: counterVec(reg, "dtforward_antigena_vanished_total",
			"Antigena actions that disappeared from /antigena before their final state (cleared or expired) was seen.",
			"appliance"),
		pbidGaps: counterVec(reg, "dtforward_pbid_gaps_total",
			"pbids found missing between delivered breaches (filtered, deleted or not visible yet).",
			"appliance"),
		pbidGapsResolved: counterVec(reg, "dtforward_pbid_gaps_resolved_total",
			"Missing pbids no longer tracked, by outcome: appeared, late (delivered after its window), filtered, gave_up, dropped (over the tracking cap).",
			"appliance", "outcome"),
	}
	return s
}

// AntigenaVanished counts one action forgotten before its final state was seen.
func (m *Metrics) AntigenaVanished(appliance string) {
	if m == nil {
		return
	}
	m.state.antigenaVanished.WithLabelValues(appliance).Inc()
}

// PBIDGaps counts n pbids found missing.
func (m *Metrics) PBIDGaps(appliance string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.state.pbidGaps.WithLabelValues(appliance).Add(float64(n))
}

// PBIDGapResolved counts n missing pbids that stopped being tracked, with the outcome.
func (m *Metrics) PBIDGapResolved(appliance, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.state.pbidGapsResolved.WithLabelValues(appliance, outcome).Add(float64(n))
}
