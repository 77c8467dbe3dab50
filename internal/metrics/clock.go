package metrics

import (
	"time"
)

// ClockDisagreement counts one Date header that /status refuted.
func (m *Metrics) ClockDisagreement(appliance string) {
	if m == nil {
		return
	}
	m.clockDisagreements.WithLabelValues(appliance).Inc()
}

// ClockSkew sets how far the last Date header was from the estimate (positive: ahead).
func (m *Metrics) ClockSkew(appliance string, d time.Duration) {
	if m == nil {
		return
	}
	m.clockSkew.WithLabelValues(appliance).Set(d.Seconds())
	m.clockDisagreements.WithLabelValues(appliance)
}
