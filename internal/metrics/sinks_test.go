package metrics

import (
	"strings"
	"testing"
	"time"
)

// With several sinks each appliance source has one poller per sink, each registering its lag:
// the scrape must still succeed (one series per label set) and report the worst lag.
func TestPerSinkSeries(t *testing.T) {
	m := New()
	m.AddLagFunc(func() []Lag { return []Lag{{Appliance: "dt", Source: "modelbreaches", Lag: 5 * time.Second}} })
	m.AddLagFunc(func() []Lag { return []Lag{{Appliance: "dt", Source: "modelbreaches", Lag: 90 * time.Second}} })
	m.SetSinkUpFunc(func() []SinkUp { return []SinkUp{{Sink: "siem", Up: true}, {Sink: "archive"}} })
	m.SinkAlerts("siem", 3)
	m.SinkError("archive")
	s, err := Serve("127.0.0.1:0", m, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, body := get(t, "http://"+s.Addr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	for _, want := range []string{
		`dtforward_checkpoint_lag_seconds{appliance="dt",source="modelbreaches"} 90` + "\n",
		`dtforward_sink_up{sink="siem"} 1` + "\n",
		`dtforward_sink_up{sink="archive"} 0` + "\n",
		`dtforward_sink_alerts_total{sink="siem"} 3` + "\n",
		`dtforward_sink_errors_total{sink="archive"} 1` + "\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := strings.Count(body, "dtforward_checkpoint_lag_seconds{"); n != 1 {
		t.Errorf("%d lag series, want 1", n)
	}
}
