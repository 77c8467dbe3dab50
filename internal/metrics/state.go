package metrics

// AntigenaVanished counts one action forgotten before its final state was seen.
func (m *Metrics) AntigenaVanished(appliance string) {
	if m == nil {
		return
	}
	m.antigenaVanished.WithLabelValues(appliance).Inc()
}

// AntigenaStatesMissed counts n Antigena states that happened unseen and that the action's
// history cannot give back.
func (m *Metrics) AntigenaStatesMissed(appliance string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.antigenaStatesMissed.WithLabelValues(appliance).Add(float64(n))
}

// PBIDGaps counts n pbids found missing.
func (m *Metrics) PBIDGaps(appliance string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.pbidGaps.WithLabelValues(appliance).Add(float64(n))
}

// PBIDGapResolved counts n missing pbids that stopped being tracked, with the outcome.
func (m *Metrics) PBIDGapResolved(appliance, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.pbidGapsResolved.WithLabelValues(appliance, outcome).Add(float64(n))
}
