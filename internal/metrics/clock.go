package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clockSeries are the series of the appliance clock estimate: answers whose Date header
// /status did not confirm, and how far the last Date was from the estimate.
type clockSeries struct {
	disagreements *prometheus.CounterVec
	skew          *prometheus.GaugeVec
}

func newClockSeries(reg *prometheus.Registry) *clockSeries {
	s := &clockSeries{
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dtforward_clock_disagreements_total",
			Help: "Checks in which /status refuted an answer's Date header more than 30 s off the appliance clock estimate (a proxy stamping its own clock?); windows kept following /status.",
		}, []string{"appliance"}),
		skew: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dtforward_clock_date_skew_seconds",
			Help: "The last answer's Date header minus the appliance clock estimated from /status, in seconds (about 0 when they agree; Date has one-second resolution).",
		}, []string{"appliance"}),
	}
	reg.MustRegister(s.disagreements, s.skew)
	return s
}

// ClockDisagreement counts one Date header that /status refuted.
func (m *Metrics) ClockDisagreement(appliance string) {
	if m == nil {
		return
	}
	m.clock.disagreements.WithLabelValues(appliance).Inc()
}

// ClockSkew sets how far the last Date header was from the estimate (positive: ahead).
func (m *Metrics) ClockSkew(appliance string, d time.Duration) {
	if m == nil {
		return
	}
	m.clock.skew.WithLabelValues(appliance).Set(d.Seconds())
	m.clock.disagreements.WithLabelValues(appliance)
}
