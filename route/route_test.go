package route

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/testutil/hecsim"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sinkTo(transport, address string) config.Sink {
	return config.Sink{Format: "json", LEEFVersion: "2.0", Transport: transport, Address: address, Facility: "local4",
		RELPWindow: 16, MaxMessageBytes: 8192, Timeout: 2 * time.Second}
}

func breach(id string) *alert.Alert {
	return &alert.Alert{Kind: alert.KindBreach, ID: id, Appliance: "dt", Severity: 5, Raw: []byte(`{}`)}
}

// A destination formats with its own format and sends with its own header and APP-NAME: two
// destinations to one real rsyslog, told apart by the APP-NAME (RFC 5424) and TAG (RFC 3164)
// that SC4S and Elastic route on.
func TestDestinationAppName(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{TCP: true})
	a := sinkTo("tcp", r.TCP)
	a.Name, a.AppName = "elastic", "dt-elastic"
	b := sinkTo("tcp", r.TCP)
	b.Name, b.Format, b.Header = "legacy", "darktrace-json", "rfc3164"
	for _, s := range []config.Sink{a, b} {
		d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Deliver(context.Background(), []*alert.Alert{breach("1")}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	msgs := r.Wait(t, 2, 10*time.Second)
	if raw := string(msgs[0].Raw); !strings.HasPrefix(raw, "<164>1 ") || !strings.Contains(raw, " dt-elastic ") || !strings.Contains(raw, ` modelbreach - {"schemaVersion":2`) {
		t.Errorf("rfc5424 message without APP-NAME dt-elastic: %q", raw)
	}
	// darktrace-json defaults its APP-NAME to "darktrace", as Darktrace's own Syslog JSON does.
	if raw := string(msgs[1].Raw); !strings.HasPrefix(raw, "<164>") || !strings.Contains(raw, " darktrace[") || !strings.HasSuffix(raw, "]: {}") {
		t.Errorf("rfc3164 message without TAG darktrace: %q", raw)
	}
}

func TestDestinationSources(t *testing.T) {
	polled := []string{"modelbreaches", "antigena", "aianalyst"}
	all := Destination{Config: config.Sink{}}
	if got := all.Sources(polled); strings.Join(got, ",") != "modelbreaches,antigena,aianalyst" {
		t.Errorf("no sources: %v, want every polled source", got)
	}
	ai := Destination{Config: config.Sink{Sources: []string{"aianalyst", "modelbreaches"}}}
	if got := ai.Sources(polled); strings.Join(got, ",") != "modelbreaches,aianalyst" {
		t.Errorf("listed sources: %v, want them in POLL_SOURCES order", got)
	}
}

func TestOpenRejectsUnknownFormat(t *testing.T) {
	s := sinkTo("stdout", "")
	s.Format = "xml"
	_, err := Open(s, Options{Logger: zerolog.Nop()})
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("Open with format xml = %v, want a *FormatError", err)
	}
}

// TestSinkCountsSanitizedLines: a line that reaches the sink with CR or LF (no formatter
// makes one; this is the last line of defence) goes out as one line and is counted under the
// sink's name in dtforward_sink_lines_sanitized_total, which exists at 0 from the start.
func TestSinkCountsSanitizedLines(t *testing.T) {
	m := metrics.New()
	s := sinkTo("file", filepath.Join(t.TempDir(), "out.log"))
	s.Name = "archive"
	d, err := Open(s, Options{Version: "test", Metrics: m, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := scrape(t, m); !strings.Contains(got, "\ndtforward_sink_lines_sanitized_total{sink=\"archive\"} 0\n") {
		t.Fatalf("before any send, /metrics lacks the sanitized counter at 0:\n%s", got)
	}
	msgs := []sink.Message{
		{Line: []byte("forged\r\n<13>1 - evil - - - injected"), Kind: "modelbreach", Severity: 5},
		{Line: []byte("clean"), Kind: "modelbreach", Severity: 5},
		{Line: []byte("lf\nonly"), Kind: "modelbreach", Severity: 5},
	}
	if err := d.Sink.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, m); !strings.Contains(got, "\ndtforward_sink_lines_sanitized_total{sink=\"archive\"} 2\n") {
		t.Fatalf("after 2 lines with CR/LF, /metrics:\n%s", got)
	}
	b, err := os.ReadFile(s.Address)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 3 {
		t.Fatalf("%d lines written for 3 messages:\n%s", n, b)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	metrics.Handler(m, func() error { return nil }).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return "\n" + rec.Body.String()
}

// TestOTLPCountsBytes: the otlp sink feeds dtforward_sink_bytes_total{sink} as the syslog
// sinks do: every byte of the request bodies the collector received (gzip, as sent). Before,
// the otlp series stayed at 0.
func TestOTLPCountsBytes(t *testing.T) {
	var mu sync.Mutex
	received := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		received += len(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	s := sinkTo("otlp", srv.URL)
	s.Name = "collector"
	m := metrics.New()
	d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for b := range 3 {
		alerts := make([]*alert.Alert, 50)
		for i := range alerts {
			alerts[i] = breach(strconv.Itoa(b*50 + i))
		}
		if err := d.Deliver(context.Background(), alerts); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := counterValue(t, m, "dtforward_sink_bytes_total"); received == 0 || got != float64(received) {
		t.Errorf("dtforward_sink_bytes_total = %v, want the %d bytes the collector received", got, received)
	}
}

// TestOTLPHeadersThatDoNotParse: the sink is not built without headers that do not parse
// (it would export without its credentials); the error names the setting. Before, the
// headers were dropped silently and only config validation reported them.
func TestOTLPHeadersThatDoNotParse(t *testing.T) {
	s := sinkTo("otlp", "http://127.0.0.1:4318")
	s.OTLPHeaders = "authorization=Bearer%zz"
	sk, err := NewSink(s, Options{Version: "test", Logger: zerolog.Nop()})
	if err == nil {
		_ = sk.Close()
		t.Fatal("NewSink built the sink without its headers")
	}
	if !strings.Contains(err.Error(), "SIEM_OTLP_HEADERS") || strings.Contains(err.Error(), "zz") {
		t.Errorf("NewSink = %v, want an error naming SIEM_OTLP_HEADERS without the value", err)
	}
}

// TestHECCountsBytes: the hec sink feeds dtforward_sink_bytes_total{sink} through the same
// hooks as the others (event posts and acknowledgement queries, gzip as sent). Before, the
// hec series stayed at 0.
func TestHECCountsBytes(t *testing.T) {
	const token = "0d3b9a52-6f1e-4c2a-9b7d-5e8f1a2b3c4d"
	ca := syslogd.NewCA(t)
	h, err := hecsim.New(hecsim.Options{CertFile: ca.ServerCert, KeyFile: ca.ServerKey, Tokens: map[string]hecsim.Token{token: {Ack: true}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := h.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s := sinkTo("hec", url)
	s.Name, s.HECToken, s.HECAck, s.HECAckTimeout, s.TLSCAFile = "splunk", token, true, 5*time.Second, ca.CAFile
	m := metrics.New()
	d, err := Open(s, Options{Version: "test", Logger: zerolog.Nop(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	alerts := make([]*alert.Alert, 50)
	for i := range alerts {
		alerts[i] = breach(strconv.Itoa(i))
	}
	if err := d.Deliver(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, m, "dtforward_sink_bytes_total"); got < 100 {
		t.Errorf("dtforward_sink_bytes_total = %v after 50 events, want their gzip bytes", got)
	}
}
