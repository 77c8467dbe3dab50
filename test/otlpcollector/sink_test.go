package otlpcollector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/grpc/codes"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/otlp"
	"github.com/dtforward/dtforward/sink/sinktest"
)

// messages formats alerts from..from+n-1.
func messages(t *testing.T, format string, from, n int) []sink.Message {
	return sinktest.Messages(t, format, n, from)
}

// protocols are the sink's ways to the receiver: each protocol, in clear and over TLS.
var protocols = []struct {
	name, protocol string
	tls            bool
}{
	{"http-protobuf", otlp.ProtocolHTTPProtobuf, false},
	{"http-protobuf-tls", otlp.ProtocolHTTPProtobuf, true},
	{"http-json", otlp.ProtocolHTTPJSON, false},
	{"grpc", otlp.ProtocolGRPC, false},
	{"grpc-tls", otlp.ProtocolGRPC, true},
}

// sinkConfig points the sink at c over protocol, trusting c's CA as SIEM_TLS_CA_FILE does.
func sinkConfig(c *collector, protocol string) otlp.Config {
	cfg := otlp.Config{Protocol: protocol, Format: "json", Version: "test", Timeout: 10 * time.Second,
		TLS: tlsconfig.Options{CAFile: c.CAFile}}
	scheme := "http"
	if c.CAFile != "" {
		scheme = "https"
	}
	if protocol == otlp.ProtocolGRPC {
		cfg.Endpoint = scheme + "://" + c.GRPCAddr
		if c.CAFile != "" {
			cfg.Endpoint = c.GRPCAddr // host:port is TLS
		}
	} else {
		cfg.Endpoint = scheme + "://" + c.HTTPAddr
	}
	return cfg
}

func newSink(t *testing.T, cfg otlp.Config) *otlp.Sink {
	t.Helper()
	s, err := otlp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func exactlyOnce(t *testing.T, c *collector, msgs []sink.Message) {
	t.Helper()
	got := c.counts()
	for _, m := range msgs {
		if n := got[m.Kind+"/"+m.Alert.ID]; n != 1 {
			t.Errorf("%s %s arrived %d times", m.Kind, m.Alert.ID, n)
		}
	}
	if len(got) != len(msgs) {
		t.Errorf("%d distinct records arrived, want %d", len(got), len(msgs))
	}
}

// TestDelivery: over each protocol, every record arrives once, as one log record with its
// attributes, its time and severity, a map body, and a resource naming dtforward and the
// appliance's labels; a small request limit splits batches without losing order or records.
// Hooks.Sent (dtforward_sink_bytes_total) sees every record and the bytes that went out.
func TestDelivery(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := startCollector(t, collectorOptions{TLS: p.tls})
			cfg := sinkConfig(c, p.protocol)
			cfg.MaxRequestBytes = 4096 // several requests per batch
			var sentRecords, sentBytes int
			cfg.Hooks.Sent = func(records, bytes int) { sentRecords += records; sentBytes += bytes }
			s := newSink(t, cfg)
			if err := s.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			var all []sink.Message
			for b := range 5 {
				msgs := messages(t, "json", b*40, 40)
				if err := s.Send(context.Background(), msgs); err != nil {
					t.Fatal(err)
				}
				all = append(all, msgs...)
			}
			exactlyOnce(t, c, all)
			if sentRecords != len(all) || sentBytes < 40*len(all) {
				t.Errorf("Hooks.Sent saw %d records in %d bytes, want %d records of at least 40 bytes each (gzip)", sentRecords, sentBytes, len(all))
			}
			recs := c.records()
			for i, r := range recs {
				a := all[i].Alert
				if r.ID != a.ID {
					t.Fatalf("record %d is %s, want %s: the order was not kept", i, r.ID, a.ID)
				}
				if r.BodyType != pcommon.ValueTypeMap || r.Body["id"] != a.ID || r.Body["kind"] != a.Kind {
					t.Errorf("record %s: body %v %v, want the JSON record as a map", a.ID, r.BodyType, r.Body)
				}
				if !r.Time.Equal(a.Time) || r.Severity != plog.SeverityNumberWarn || r.Appliance != "dt-lab" {
					t.Errorf("record %s: time %s severity %v appliance %q", a.ID, r.Time, r.Severity, r.Appliance)
				}
				if r.Resource["service.name"] != "dtforward" || r.Resource[otlp.AttrLabelPrefix+"customer"] != "acme" || r.Resource[otlp.AttrLabelPrefix+"site"] != "lon" {
					t.Errorf("record %s: resource %v", a.ID, r.Resource)
				}
			}
		})
	}
}

// TestCEFBodyIsAString: a text format's line is the body, as a string.
func TestCEFBodyIsAString(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	cfg := sinkConfig(c, otlp.ProtocolHTTPProtobuf)
	cfg.Format = "cef"
	if err := newSink(t, cfg).Send(context.Background(), messages(t, "cef", 0, 3)); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.records() {
		if r.BodyType != pcommon.ValueTypeStr {
			t.Errorf("record %s: body %v, want a string", r.ID, r.BodyType)
		}
	}
}

// TestRefusedRecord: the pipeline refuses the requests holding one record for good (gRPC
// INVALID_ARGUMENT, HTTP 400). The sink splits the batch until that record is alone, reports
// it as *sink.RejectedError with everything before it delivered once, and the caller's resend
// of the rest delivers each of them once: nothing accepted is sent twice.
func TestRefusedRecord(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := startCollector(t, collectorOptions{TLS: p.tls})
			c.set(func(c *collector) { c.refuse["13"] = true })
			s := newSink(t, sinkConfig(c, p.protocol))
			msgs := messages(t, "json", 0, 30)
			err := s.Send(context.Background(), msgs)
			var re *sink.RejectedError
			if !errors.As(err, &re) || re.Index != 13 || re.Alert != msgs[13].Alert {
				t.Fatalf("Send = %v, want a *sink.RejectedError for record 13", err)
			}
			if !strings.Contains(re.Reason, "record 13 refused by the pipeline") {
				t.Errorf("the reason does not carry the collector's: %q", re.Reason)
			}
			exactlyOnce(t, c, msgs[:13])
			if err := s.Send(context.Background(), msgs[14:]); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, c, append(append([]sink.Message(nil), msgs[:13]...), msgs[14:]...))
		})
	}
}

// TestBusyCollector: a pipeline that is full answers UNAVAILABLE or RESOURCE_EXHAUSTED with
// RetryInfo (HTTP 503 or 429 with Retry-After). Send fails carrying the wait, is no rejection,
// and the next Send waits that long before it delivers the batch once.
func TestBusyCollector(t *testing.T) {
	for _, p := range protocols {
		for _, code := range []codes.Code{codes.Unavailable, codes.ResourceExhausted} {
			t.Run(p.name+"-"+code.String(), func(t *testing.T) {
				t.Parallel() // each waits the second it is asked to
				c := startCollector(t, collectorOptions{TLS: p.tls})
				c.set(func(c *collector) { c.busy, c.busyCode, c.retry = 1, code, time.Second })
				s := newSink(t, sinkConfig(c, p.protocol))
				msgs := messages(t, "json", 0, 10)
				err := s.Send(context.Background(), msgs)
				var re *sink.RejectedError
				var ce *sink.ConfigError
				if err == nil || errors.As(err, &re) || errors.As(err, &ce) {
					t.Fatalf("Send = %v, want a retryable error", err)
				}
				if got := sink.RetryAfterOf(err); got != time.Second {
					t.Fatalf("Send = %v carrying a wait of %s, want the 1s asked for", err, got)
				}
				start := time.Now()
				if err := s.Send(context.Background(), msgs); err != nil {
					t.Fatal(err)
				}
				// A lower bound only: the sink must not resend before the time asked for.
				if waited := time.Since(start); waited < 900*time.Millisecond {
					t.Errorf("the resend left after %s, before the 1s the collector asked for", waited)
				}
				exactlyOnce(t, c, msgs)
			})
		}
	}
}

// TestSlowCollector: a pipeline slower than the sink's timeout takes the request after the
// sink gave up on it. The sink reports the timeout, the resend delivers, and every record
// arrives: the repeats are at most the batch that timed out.
func TestSlowCollector(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := startCollector(t, collectorOptions{TLS: p.tls})
			cfg := sinkConfig(c, p.protocol)
			cfg.Timeout = 300 * time.Millisecond
			s := newSink(t, cfg)
			msgs := messages(t, "json", 0, 20)
			c.set(func(c *collector) { c.delay = time.Second })
			if err := s.Send(context.Background(), msgs); err == nil {
				t.Fatal("Send returned nil although the collector answered after the timeout")
			}
			c.set(func(c *collector) { c.delay = 0 })
			// The resend, as the caller makes it, with a timeout a loaded machine meets.
			cfg.Timeout = 30 * time.Second
			if err := newSink(t, cfg).Send(context.Background(), msgs); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for len(c.records()) < 2*len(msgs) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond) // the slow request is taken once its second is over
			}
			got := c.counts()
			dup := 0
			for _, m := range msgs {
				n := got[m.Kind+"/"+m.Alert.ID]
				if n < 1 || n > 2 {
					t.Errorf("%s arrived %d times, want 1 or 2", m.Alert.ID, n)
				}
				dup += n - 1
			}
			t.Logf("%s: %d records, %d repeats after a timeout", p.name, len(msgs), dup)
		})
	}
}

// TestCheck: an empty export request proves the endpoint without sending a record; a wrong
// path is a configuration error naming the address.
func TestCheck(t *testing.T) {
	c := startCollector(t, collectorOptions{})
	for _, p := range protocols {
		if p.tls {
			continue
		}
		if err := newSink(t, sinkConfig(c, p.protocol)).Check(context.Background()); err != nil {
			t.Errorf("%s: Check: %v", p.name, err)
		}
	}
	if n := len(c.records()); n != 0 {
		t.Errorf("Check delivered %d records", n)
	}
	cfg := sinkConfig(c, otlp.ProtocolHTTPProtobuf)
	cfg.Endpoint += "/wrong/v1/logs"
	err := newSink(t, cfg).Check(context.Background())
	var ce *sink.ConfigError
	if !errors.As(err, &ce) || ce.Setting != "SIEM_ADDRESS" {
		t.Errorf("Check of a wrong path = %v, want a *sink.ConfigError naming SIEM_ADDRESS", err)
	}
}

// TestHeaders: a receiver with an authenticator takes the sink's headers over each protocol;
// a wrong token is a *sink.ConfigError naming SIEM_OTLP_HEADERS, from Send and from Check, and
// the error does not show the token.
func TestHeaders(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			c := startCollector(t, collectorOptions{TLS: p.tls, Token: "s3cret"})
			cfg := sinkConfig(c, p.protocol)
			cfg.Headers = map[string]string{"authorization": "Bearer s3cret"}
			s := newSink(t, cfg)
			msgs := messages(t, "json", 0, 5)
			if err := s.Check(context.Background()); err != nil {
				t.Fatalf("Check with the right token: %v", err)
			}
			if err := s.Send(context.Background(), msgs); err != nil {
				t.Fatalf("Send with the right token: %v", err)
			}
			exactlyOnce(t, c, msgs)
			cfg.Headers = map[string]string{"authorization": "Bearer wrong-token"}
			s = newSink(t, cfg)
			for name, err := range map[string]error{"Check": s.Check(context.Background()), "Send": s.Send(context.Background(), msgs)} {
				var ce *sink.ConfigError
				if !errors.As(err, &ce) || ce.Setting != "SIEM_OTLP_HEADERS" {
					t.Errorf("%s with a wrong token = %v, want a *sink.ConfigError naming SIEM_OTLP_HEADERS", name, err)
				} else if strings.Contains(err.Error(), "wrong-token") {
					t.Errorf("%s: the error shows the token: %v", name, err)
				}
			}
		})
	}
}
