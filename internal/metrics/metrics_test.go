package metrics

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	m := New()
	var readyErr error
	s, err := Serve("127.0.0.1:0", m, func() error { return readyErr })
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + s.Addr()

	m.AddRecords("dt1", "modelbreaches", OutcomeSent, 3)
	m.AddRecords("dt1", "modelbreaches", OutcomeSent, 0) // ignored
	m.ObservePoll("dt1", "modelbreaches", 150*time.Millisecond)
	m.SinkError("siem")
	m.SinkReconnect()
	m.AddSinkDatagrams(7)
	m.AddSinkDatagrams(0) // ignored
	m.APIError("dt1", "antigena")
	m.DecodeAnomaly("modelbreaches", "model.priority")
	m.DecodeAnomaly("modelbreaches", "model.priority")
	m.AddLagFunc(func() []Lag { return []Lag{{Appliance: "dt1", Source: "modelbreaches", Lag: 90 * time.Second}} })

	tests := []struct {
		name     string
		path     string
		readyErr error
		wantCode int
		want     []string
	}{
		{"healthz", "/healthz", errors.New("ignored by healthz"), 200, []string{"ok"}},
		{"readyz green", "/readyz", nil, 200, []string{"ready"}},
		{"readyz red says why", "/readyz", errors.New("dt1/modelbreaches: sink failing: connection refused"), 503, []string{"not ready", "sink failing"}},
		{"metrics", "/metrics", nil, 200, []string{
			`dtforward_records_total{appliance="dt1",outcome="sent",source="modelbreaches"} 3`,
			`dtforward_poll_duration_seconds_count{appliance="dt1",source="modelbreaches"} 1`,
			`dtforward_checkpoint_lag_seconds{appliance="dt1",source="modelbreaches"} 90`,
			`dtforward_sink_errors_total{sink="siem"} 1`,
			"dtforward_sink_reconnects_total 1",
			"dtforward_sink_datagrams_sent_total 7",
			`dtforward_api_errors_total{appliance="dt1",source="antigena"} 1`,
			`dtforward_decode_anomalies_total{field="model.priority",source="modelbreaches"} 2`,
			"go_goroutines",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readyErr = tt.readyErr
			code, body := get(t, base+tt.path)
			if code != tt.wantCode {
				t.Fatalf("%s: HTTP %d, want %d: %s", tt.path, code, tt.wantCode, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s lacks %q:\n%s", tt.path, w, body)
				}
			}
		})
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.AddRecords("a", "b", OutcomeSent, 1)
	m.ObservePoll("a", "b", time.Second)
	m.SinkError("a")
	m.Sink("a")
	m.Appliance("a", []string{"b"})
	m.SetBuildInfo("v", "c")
	m.SinkReconnect()
	m.AddSinkDatagrams(1)
	m.APIError("a", "b")
	m.DecodeAnomaly("a", "b")
	m.AddLagFunc(func() []Lag { return nil })
}

func TestServeBadAddress(t *testing.T) {
	_, err := Serve("127.0.0.1:notaport", New(), nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP_ADDRESS") {
		t.Fatalf("error %v should name HTTP_ADDRESS", err)
	}
}
