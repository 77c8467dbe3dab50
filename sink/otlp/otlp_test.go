package otlp_test

// These tests cover what the collector's own OTLP receiver cannot be made to answer here:
// partial_success (the receiver never sends one), 401 (it needs an authenticator extension),
// success answers a proxy altered, and the encoding of records. The delivery against the real
// receiver (otlpreceiver) is tested in the module test/otlpcollector, kept apart so that the
// collector's dependencies are not built by `go test ./...`.

import (
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/otlp"
	"github.com/dtforward/dtforward/sink/sinktest"
)

func messages(t *testing.T, format string, n int) []sink.Message {
	return sinktest.Messages(t, format, n, 0)
}

// collector is an OTLP/HTTP logs endpoint written from the OTLP specification, for the
// answers the real receiver never gives: it rejects, by partial_success, the records whose
// darktrace.id is in reject, and answers status with its Retry-After when status is set.
// The other fields make it answer success as a proxy in front of it may pass it on.
type collector struct {
	mu       sync.Mutex
	requests []*collogspb.ExportLogsServiceRequest
	reject   map[string]bool
	status   int
	headers  http.Header

	strip    bool   // answer without a Content-Type (a proxy that strips it)
	okStatus int    // the success answer's code; 0 = 200
	okBody   []byte // with okType, replaces the OTLP answer (a page of the proxy's own)
	okType   string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = r.Header.Clone()
	if c.status != 0 {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(c.status)
		return
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b, _ := io.ReadAll(zr)
	asJSON := r.Header.Get("Content-Type") == "application/json"
	var req collogspb.ExportLogsServiceRequest
	err = proto.Unmarshal(b, &req)
	if asJSON {
		err = protojson.Unmarshal(b, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp collogspb.ExportLogsServiceResponse
	kept := &collogspb.ExportLogsServiceRequest{}
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			var recs []*logspb.LogRecord
			for _, lr := range sl.LogRecords {
				if c.reject[attr(lr.Attributes, otlp.AttrID)] {
					if resp.PartialSuccess == nil {
						resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{ErrorMessage: "record refused by policy"}
					}
					resp.PartialSuccess.RejectedLogRecords++
					continue
				}
				recs = append(recs, lr)
			}
			kept.ResourceLogs = append(kept.ResourceLogs, &logspb.ResourceLogs{Resource: rl.Resource,
				ScopeLogs: []*logspb.ScopeLogs{{Scope: sl.Scope, LogRecords: recs}}})
		}
	}
	c.requests = append(c.requests, kept)
	out, _ := proto.Marshal(&resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	if asJSON {
		out, _ = protojson.Marshal(&resp)
		w.Header().Set("Content-Type", "application/json")
	}
	if c.okBody != nil {
		out = c.okBody
		w.Header().Set("Content-Type", c.okType)
	}
	if c.strip {
		// A nil value keeps net/http from sniffing one in.
		w.Header()["Content-Type"] = nil
	}
	w.WriteHeader(cmp.Or(c.okStatus, http.StatusOK))
	_, _ = w.Write(out)
}

// got returns the requests received.
func (c *collector) got() []*collogspb.ExportLogsServiceRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// ids counts how often each record arrived.
func (c *collector) ids() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, r := range c.requests {
		for _, lr := range records(r) {
			out[attr(lr.Attributes, otlp.AttrID)]++
		}
	}
	return out
}

func records(r *collogspb.ExportLogsServiceRequest) []*logspb.LogRecord {
	var out []*logspb.LogRecord
	for _, rl := range r.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			out = append(out, sl.LogRecords...)
		}
	}
	return out
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			if s, ok := kv.Value.Value.(*commonpb.AnyValue_StringValue); ok {
				return s.StringValue
			}
			return fmt.Sprint(kv.Value.Value)
		}
	}
	return ""
}

func start(t *testing.T, c *collector) otlp.Config {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return otlp.Config{Endpoint: srv.URL, Format: "json", Version: "test", Timeout: 10 * time.Second}
}

func newSink(t *testing.T, c otlp.Config) *otlp.Sink {
	t.Helper()
	s, err := otlp.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestPartialSuccessRejectsTheRecords: a request of which the collector rejected records
// without naming them is sent again one record per request, so that the rejected record is
// reported under its own index and everything before it is known accepted.
func TestPartialSuccessRejectsTheRecords(t *testing.T) {
	c := &collector{reject: map[string]bool{"3": true}}
	s := newSink(t, start(t, c))
	msgs := messages(t, "json", 6)
	err := s.Send(context.Background(), msgs)
	var re *sink.RejectedError
	if !errors.As(err, &re) || re.Index != 3 {
		t.Fatalf("Send = %v, want a *sink.RejectedError for record 3", err)
	}
	if re.Alert != msgs[3].Alert || !strings.Contains(re.Reason, "record refused by policy") {
		t.Errorf("rejection %+v does not name the record and the collector's reason", re)
	}
	// The caller resends what follows the refused record, as route does.
	if err := s.Send(context.Background(), msgs[4:]); err != nil {
		t.Fatal(err)
	}
	got := c.ids()
	if got["3"] != 0 {
		t.Errorf("the rejected record arrived %d times", got["3"])
	}
	for i := range 6 {
		if i != 3 && got[fmt.Sprint(i)] < 1 {
			t.Errorf("record %d never arrived", i)
		}
	}
}

// TestAnySuccessIsAcceptance: OTLP/HTTP success is any 2xx; its body can only take records
// back by partial_success. An answer a proxy stripped of its Content-Type or replaced is
// still an acceptance (the records arrive once, Send returns nil), and a partial_success in
// a stripped answer is still read. The old sink took every such answer for a failure, so
// the batch was sent again, forever behind such a proxy.
func TestAnySuccessIsAcceptance(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *collector
		json bool
	}{
		{"stripped", &collector{strip: true}, false},
		{"stripped json", &collector{strip: true}, true},
		{"empty 204", &collector{okStatus: http.StatusNoContent, okBody: []byte{}}, false},
		{"stripped empty", &collector{strip: true, okBody: []byte{}}, false},
		{"a proxy's page", &collector{okStatus: http.StatusAccepted, okBody: []byte("<html>queued</html>"), okType: "text/html"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := start(t, tc.c)
			if tc.json {
				cfg.Protocol = otlp.ProtocolHTTPJSON
			}
			s := newSink(t, cfg)
			if err := s.Send(context.Background(), messages(t, "json", 4)); err != nil {
				t.Fatalf("Send = %v, want nil (the collector answered success)", err)
			}
			got := tc.c.ids()
			for i := range 4 {
				if n := got[fmt.Sprint(i)]; n != 1 {
					t.Errorf("record %d arrived %d times, want once", i, n)
				}
			}
		})
	}
	t.Run("stripped partial success", func(t *testing.T) {
		for _, asJSON := range []bool{false, true} {
			c := &collector{strip: true, reject: map[string]bool{"2": true}}
			cfg := start(t, c)
			if asJSON {
				cfg.Protocol = otlp.ProtocolHTTPJSON
			}
			err := newSink(t, cfg).Send(context.Background(), messages(t, "json", 4))
			var re *sink.RejectedError
			if !errors.As(err, &re) || re.Index != 2 {
				t.Errorf("json %v: Send = %v, want a *sink.RejectedError for record 2", asJSON, err)
			}
		}
	})
}

// TestCheckRefusesAPageForAnAnswer: check still tells an endpoint that answers success with
// something other than OTLP (it would swallow every record) from a collector, also behind a
// proxy that strips the Content-Type of its (empty) answer.
func TestCheckRefusesAPageForAnAnswer(t *testing.T) {
	page := &collector{okBody: []byte("<html>welcome</html>"), okType: "text/html"}
	if err := newSink(t, start(t, page)).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "not an OTLP answer") {
		t.Errorf("Check against a web page = %v, want an error saying it is not an OTLP answer", err)
	}
	if err := newSink(t, start(t, &collector{strip: true})).Check(context.Background()); err != nil {
		t.Errorf("Check behind a proxy that strips the Content-Type = %v", err)
	}
}

func TestHeadersAndRefusedCredentials(t *testing.T) {
	c := &collector{status: http.StatusUnauthorized}
	cfg := start(t, c)
	cfg.Headers = map[string]string{"authorization": "Bearer s3cret"}
	err := newSink(t, cfg).Send(context.Background(), messages(t, "json", 1))
	var ce *sink.ConfigError
	if !errors.As(err, &ce) || ce.Setting != "SIEM_OTLP_HEADERS" {
		t.Fatalf("Send = %v, want a *sink.ConfigError naming SIEM_OTLP_HEADERS", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the header's value: %v", err)
	}
	c.mu.Lock()
	h := c.headers
	c.mu.Unlock()
	if got := h.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	if got := h.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
}

func TestBusyCollectorRetryAfter(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		c := &collector{status: code}
		err := newSink(t, start(t, c)).Send(context.Background(), messages(t, "json", 2))
		if got := sink.RetryAfterOf(err); got != 7*time.Second {
			t.Errorf("HTTP %d: Send = %v, carrying a wait of %s, want 7s", code, err, got)
		}
		var re *sink.RejectedError
		if errors.As(err, &re) {
			t.Errorf("HTTP %d is a rejection: %v", code, err)
		}
	}
}

// TestRecordShape: one record per alert, with the record's time, severity, attributes and
// a resource per appliance; a JSON format's body is a map, CEF's a string.
func TestRecordShape(t *testing.T) {
	for _, format := range []string{"json", "ocsf", "cef"} {
		c := &collector{}
		cfg := start(t, c)
		cfg.Format = format
		msgs := messages(t, format, 3)
		if err := newSink(t, cfg).Send(context.Background(), msgs); err != nil {
			t.Fatal(err)
		}
		reqs := c.got()
		if len(reqs) != 1 || len(reqs[0].ResourceLogs) != 1 {
			t.Fatalf("%s: want one request with one resource (one appliance), got %d requests", format, len(reqs))
		}
		rl := reqs[0].ResourceLogs[0]
		for k, want := range map[string]string{"service.name": "dtforward", "service.version": "test",
			otlp.AttrAppliance: "dt-lab", otlp.AttrLabelPrefix + "customer": "acme", otlp.AttrLabelPrefix + "site": "lon"} {
			if got := attr(rl.Resource.Attributes, k); got != want {
				t.Errorf("%s: resource %s = %q, want %q", format, k, got, want)
			}
		}
		recs := records(reqs[0])
		if len(recs) != 3 {
			t.Fatalf("%s: %d records, want 3", format, len(recs))
		}
		for i, r := range recs {
			a := msgs[i].Alert
			if r.TimeUnixNano != uint64(a.Time.UnixNano()) {
				t.Errorf("%s: record %d time %d, want %d", format, i, r.TimeUnixNano, a.Time.UnixNano())
			}
			if r.SeverityNumber != logspb.SeverityNumber_SEVERITY_NUMBER_WARN || r.SeverityText != "WARN" {
				t.Errorf("%s: record %d severity %v %q, want WARN (alert severity 6, no category)", format, i, r.SeverityNumber, r.SeverityText)
			}
			for k, want := range map[string]string{otlp.AttrID: a.ID, otlp.AttrKind: a.Kind, otlp.AttrSource: alert.SourceOf(a.Kind),
				otlp.AttrAppliance: "dt-lab", otlp.AttrURL: a.URL} {
				if got := attr(r.Attributes, k); got != want {
					t.Errorf("%s: record %d attribute %s = %q, want %q", format, i, k, got, want)
				}
			}
			switch body := r.Body.Value.(type) {
			case *commonpb.AnyValue_KvlistValue:
				if format == "cef" {
					t.Errorf("cef body is a map")
				}
				if format == "json" && attr(body.KvlistValue.Values, "id") != a.ID {
					t.Errorf("json body's id = %q, want %q", attr(body.KvlistValue.Values, "id"), a.ID)
				}
			case *commonpb.AnyValue_StringValue:
				if format != "cef" {
					t.Errorf("%s body is a string, want a map", format)
				} else if body.StringValue != string(msgs[i].Line) {
					t.Errorf("cef body %q, want the line", body.StringValue)
				}
			default:
				t.Errorf("%s: body %T", format, body)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  otlp.Config
		want string // "" = valid
	}{
		{otlp.Config{Endpoint: "https://collector:4318"}, ""},
		{otlp.Config{Endpoint: "http://127.0.0.1:4318/v1/logs", Protocol: "http/json"}, ""},
		{otlp.Config{Endpoint: "collector:4317", Protocol: "grpc"}, ""},
		{otlp.Config{Endpoint: "http://collector:4317", Protocol: "grpc"}, ""},
		{otlp.Config{}, "SIEM_ADDRESS: required"},
		{otlp.Config{Endpoint: "collector:4318"}, "SIEM_ADDRESS: \"collector:4318\" is not an http(s) URL"},
		{otlp.Config{Endpoint: "https://user:pw@collector:4318"}, "without user"},
		{otlp.Config{Endpoint: "collector", Protocol: "grpc"}, "is not host:port"},
		{otlp.Config{Endpoint: "https://c:4318", Protocol: "thrift"}, "SIEM_OTLP_PROTOCOL: \"thrift\" is not one of"},
		{otlp.Config{Endpoint: "https://c:4318", Headers: map[string]string{"x-a": "b\nc"}}, "control characters (value not shown)"},
		// A name that is not one may be a piece of a credential (a comma inside a value):
		// never shown, as ParseHeaders does not show it (the check is one for both).
		{otlp.Config{Endpoint: "https://c:4318", Headers: map[string]string{"Bearer s3cret": "x"}}, "its name is not a header name"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%+v: the error shows a piece of the credential: %v", tc.cfg, err)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	got, err := otlp.ParseHeaders("Authorization=Bearer%20abc%2Cdef, X-Scope-OrgID = tenant-1")
	if err != nil {
		t.Fatal(err)
	}
	if got["authorization"] != "Bearer abc,def" || got["x-scope-orgid"] != "tenant-1" || len(got) != 2 {
		t.Errorf("ParseHeaders = %q", got)
	}
	for _, bad := range []string{"novalue", "=v", "a=1,A=2", "grpc-timeout=1", "a b=1", "a=%zz"} {
		if _, err := otlp.ParseHeaders(bad); err == nil {
			t.Errorf("ParseHeaders(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "zz") {
			t.Errorf("ParseHeaders(%q) shows the value: %v", bad, err)
		}
	}
}
