package hec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/testutil/hecsim"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/hec"
	"github.com/dtforward/dtforward/sink/httpsink"
	"github.com/dtforward/dtforward/sink/sinktest"
)

const (
	ackToken   = "11111111-2222-3333-4444-555555555555"
	noAckToken = "66666666-7777-8888-9999-000000000000"
)

// startHEC serves a collector over HTTPS with a throwaway CA; the sink trusts it through
// Config.TLS.CAFile, as SIEM_TLS_CA_FILE does.
func startHEC(t *testing.T, o hecsim.Options) (*hecsim.HEC, hec.Config) {
	t.Helper()
	ca := syslogd.NewCA(t)
	o.CertFile, o.KeyFile = ca.ServerCert, ca.ServerKey
	if o.Tokens == nil {
		o.Tokens = map[string]hecsim.Token{ackToken: {Ack: true}, noAckToken: {}}
	}
	h, err := hecsim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	url, err := h.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h, hec.Config{URL: url, Token: ackToken, Ack: true, Format: "json", TLS: tlsconfig.Options{CAFile: ca.CAFile},
		AckTimeout: 2 * time.Second, PollInterval: 5 * time.Millisecond, Timeout: 5 * time.Second}
}

func newSink(t *testing.T, c hec.Config) *hec.Sink {
	t.Helper()
	s, err := hec.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// messages formats n alerts (breaches, AI Analyst events and Antigena actions in turn) with
// format.
func messages(t *testing.T, format string, n int, from int) []sink.Message {
	return sinktest.Messages(t, format, n, from)
}

// ids returns how often each alert id was indexed.
func ids(t *testing.T, h *hecsim.HEC) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range h.Events() {
		var rec struct{ ID string }
		if err := json.Unmarshal(e.Event, &rec); err != nil {
			t.Fatalf("event is not the record's JSON: %s", e.Event)
		}
		out[rec.ID]++
	}
	return out
}

func exactlyOnce(t *testing.T, h *hecsim.HEC, n int) {
	t.Helper()
	got := ids(t, h)
	for i := 0; i < n; i++ {
		if c := got[fmt.Sprint(i)]; c != 1 {
			t.Errorf("alert %d indexed %d times", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct alerts indexed, want %d", len(got), n)
	}
}

func TestEnvelopeFields(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	c.Index = "darktrace"
	var sentEvents, sentBytes int // Hooks.Sent: dtforward_sink_bytes_total
	c.Hooks.Sent = func(events, bytes int) { sentEvents += events; sentBytes += bytes }
	s := newSink(t, c)
	msgs := messages(t, "json", 3, 0)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	evs := h.Events()
	if len(evs) != 3 {
		t.Fatalf("%d events indexed, want 3", len(evs))
	}
	if sentEvents != 3 || sentBytes < 40*3 {
		t.Errorf("Hooks.Sent saw %d events in %d bytes, want 3 of at least 40 bytes each (gzip)", sentEvents, sentBytes)
	}
	want := []string{"darktrace:modelbreach", "darktrace:aianalyst", "darktrace:antigena"}
	for i, e := range evs {
		wantTime := float64(msgs[i].Alert.Time.UnixMilli()) / 1000
		if !e.HasTime || e.Time != wantTime {
			t.Errorf("event %d time %v, want %v", i, e.Time, wantTime)
		}
		if e.Host != "dt-lab" || e.Source != "dtforward" || e.Sourcetype != want[i] || e.Index != "darktrace" {
			t.Errorf("event %d: host %q source %q sourcetype %q index %q", i, e.Host, e.Source, e.Sourcetype, e.Index)
		}
		if e.Fields["appliance"] != "dt-lab" || e.Fields["customer"] != "acme" || e.Fields["site"] != "lon" || len(e.Fields) != 3 {
			t.Errorf("event %d fields %v", i, e.Fields)
		}
		if string(e.Event) != string(msgs[i].Line) {
			t.Errorf("event %d body is not the line:\n%s\n%s", i, e.Event, msgs[i].Line)
		}
		if e.Channel != s.Channel() {
			t.Errorf("event %d on channel %q, the sink's is %q", i, e.Channel, s.Channel())
		}
	}
}

func TestCEFLinesGoAsStrings(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	c.Format = "cef"
	c.Sourcetypes = map[string]string{alert.KindAntigena: "darktrace:respond"}
	s := newSink(t, c)
	msgs := messages(t, "cef", 3, 0)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	for i, e := range h.Events() {
		var line string
		if err := json.Unmarshal(e.Event, &line); err != nil || line != string(msgs[i].Line) {
			t.Errorf("event %d is not the CEF line as a string: %s", i, e.Event)
		}
		want := "darktrace:cef"
		if i == 2 {
			want = "darktrace:respond"
		}
		if e.Sourcetype != want {
			t.Errorf("event %d sourcetype %q, want %q", i, e.Sourcetype, want)
		}
	}
}

// An indexer that loses a request: its ackId never turns true, Send fails after the ack
// timeout, and the retry of the same batch sends only what was not acknowledged.
func TestLostRequestIsSentAgainAlone(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	c.MaxBatchBytes = 2000 // several requests per batch
	c.AckTimeout = 300 * time.Millisecond
	s := newSink(t, c)
	msgs := messages(t, "json", 30, 0)
	h.LoseNext(1)
	err := s.Send(context.Background(), msgs)
	var te *hec.AckTimeoutError
	if !errors.As(err, &te) || te.Requests != 1 {
		t.Fatalf("Send = %v, want an AckTimeoutError for 1 request", err)
	}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, h, 30)
}

// Acknowledgements that come late are waited for; ones lost after indexing cost duplicates of
// one request, never a gap.
func TestLateAndLostAcks(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{IndexDelay: 150 * time.Millisecond})
	c.MaxBatchBytes = 2000
	c.AckTimeout = time.Second
	s := newSink(t, c)
	msgs := messages(t, "json", 20, 0)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatalf("late acknowledgements: %v", err)
	}
	exactlyOnce(t, h, 20)

	more := messages(t, "json", 20, 20)
	h.LoseAcks(1)
	if err := s.Send(context.Background(), more); err == nil {
		t.Fatal("Send succeeded although one acknowledgement never came")
	}
	if err := s.Send(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	got := ids(t, h)
	dup := 0
	for i := 0; i < 40; i++ {
		switch n := got[fmt.Sprint(i)]; {
		case n == 0:
			t.Errorf("alert %d lost", i)
		case n > 1:
			dup++
		}
	}
	if dup == 0 || dup > 10 {
		t.Errorf("%d duplicates; want those of the one request whose acknowledgement was lost", dup)
	}
}

func TestBusyAndThrottled(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	s := newSink(t, c)
	msgs := messages(t, "json", 5, 0)
	h.SetBusy(1)
	err := s.Send(context.Background(), msgs)
	var se *httpsink.StatusError
	if !errors.As(err, &se) || se.Code != 503 || !se.Temporary() || !strings.Contains(err.Error(), "Server is busy") {
		t.Fatalf("busy: Send = %v", err)
	}
	h.Throttle(1)
	err = s.Send(context.Background(), msgs)
	if sink.RetryAfterOf(err) != time.Second {
		t.Fatalf("429: Send = %v, want a one-second Retry-After", err)
	}
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, h, 5)
}

func TestTokenAndAckSettingErrors(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{Tokens: map[string]hecsim.Token{ackToken: {Ack: true}, noAckToken: {}, "dead": {Disabled: true}}})
	for _, tc := range []struct {
		token   string
		ack     bool
		setting string
	}{
		{"wrong-token", true, "SIEM_HEC_TOKEN"},
		{"dead", false, "SIEM_HEC_TOKEN"},
		{noAckToken, true, "SIEM_HEC_ACK"},
	} {
		c := c
		c.Token, c.Ack = tc.token, tc.ack
		s := newSink(t, c)
		for _, step := range []struct {
			name string
			run  func() error
		}{
			{"Send", func() error { return s.Send(context.Background(), messages(t, "json", 2, 0)) }},
			{"Check", func() error { return s.Check(context.Background()) }},
		} {
			err := step.run()
			var ce *sink.ConfigError
			if !errors.As(err, &ce) || ce.Setting != tc.setting {
				t.Errorf("token %s ack %v: %s = %v, want a ConfigError naming %s", tc.token, tc.ack, step.name, err, tc.setting)
			}
		}
	}
	if n := len(h.Events()); n != 0 {
		t.Errorf("%d events indexed with bad settings", n)
	}
	if st := h.Stats(); st.ByStatus[200] != 0 {
		t.Errorf("%d batches accepted: the token without acknowledgement was not caught before sending", st.ByStatus[200])
	}
	// Sinks-file names.
	c.Token = "wrong-token"
	c.Setting = func(k string) string { return "SIEM_SINKS_FILE sink splunk: " + k }
	err := newSink(t, c).Check(context.Background())
	var ce *sink.ConfigError
	if !errors.As(err, &ce) || ce.Setting != "SIEM_SINKS_FILE sink splunk: hec_token" {
		t.Errorf("Check = %v", err)
	}
}

func TestCheckSendsNothing(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	if err := newSink(t, c).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Ack, c.Token = false, noAckToken
	if err := newSink(t, c).Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Events()); n != 0 {
		t.Fatalf("check indexed %d events", n)
	}
	h.SetBusy(-1)
	if err := newSink(t, c).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unhealthy collector: Check = %v", err)
	}
}

// 413 splits a request until it fits; an event that never fits is refused by number after
// everything before it is acknowledged.
func TestTooLargeSplits(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{MaxContentLength: 3000})
	s := newSink(t, c)
	msgs := messages(t, "json", 24, 0)
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, h, 24)
	if h.Stats().ByStatus[413] == 0 {
		t.Fatal("no request was too large: the test does not test splitting")
	}

	big := messages(t, "json", 3, 100)
	big[1].Line = []byte(`{"kind":"modelbreach","id":"101","pad":"` + strings.Repeat("x", 40000) + `"}`)
	err := s.Send(context.Background(), big)
	var re *sink.RejectedError
	if !errors.As(err, &re) || re.Index != 1 {
		t.Fatalf("Send = %v, want message 2 refused", err)
	}
	if ids(t, h)["100"] != 1 {
		t.Fatal("the event before the refused one is not indexed")
	}
}

// A 400 naming an event: the events before it are acknowledged, then it is refused by its
// index in the batch.
func TestInvalidEventIsNamed(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	s := newSink(t, c)
	msgs := messages(t, "json", 6, 0)
	msgs[3].Line = []byte(`{"kind":"modelbreach","id":"3",`) // cut short: not JSON
	err := s.Send(context.Background(), msgs)
	var re *sink.RejectedError
	if !errors.As(err, &re) || re.Index != 3 || !strings.Contains(re.Reason, "Invalid data format") {
		t.Fatalf("Send = %v, want message 4 refused as invalid data", err)
	}
	got := ids(t, h)
	for i := 0; i < 3; i++ {
		if got[fmt.Sprint(i)] == 0 {
			t.Errorf("alert %d before the refused one is not indexed", i)
		}
	}
	// The caller sends the rest again.
	if err := s.Send(context.Background(), msgs[4:]); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, h); got["4"] != 1 || got["5"] != 1 {
		t.Errorf("the rest: %v", got)
	}
}

func TestWithoutAck(t *testing.T) {
	h, c := startHEC(t, hecsim.Options{})
	c.Ack, c.Token = false, noAckToken
	s := newSink(t, c)
	if err := s.Send(context.Background(), messages(t, "json", 10, 0)); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, h, 10)
	if st := h.Stats(); st.AckQueries != 0 {
		t.Errorf("%d acknowledgement queries with acknowledgement off", st.AckQueries)
	}
}

func TestChannelIsStable(t *testing.T) {
	_, c := startHEC(t, hecsim.Options{})
	c.StateDir = t.TempDir()
	a, b := newSink(t, c), newSink(t, c)
	if a.Channel() != b.Channel() || !hec.ValidChannel(a.Channel()) {
		t.Errorf("kept channel %q then %q", a.Channel(), b.Channel())
	}
	c.StateDir, c.Name = "", "splunk"
	d1, d2 := newSink(t, c), newSink(t, c)
	if d1.Channel() != d2.Channel() || !hec.ValidChannel(d1.Channel()) || d1.Channel() == a.Channel() {
		t.Errorf("derived channel %q then %q", d1.Channel(), d2.Channel())
	}
	c.Name = "other"
	if newSink(t, c).Channel() == d1.Channel() {
		t.Error("two sinks derive the same channel")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		c    hec.Config
		want string
	}{
		{hec.Config{Token: "t"}, "SIEM_ADDRESS: required"},
		{hec.Config{URL: "splunk:8088", Token: "t"}, "SIEM_ADDRESS: \"splunk:8088\" is not an http(s) URL"},
		{hec.Config{URL: "https://u:p@splunk:8088", Token: "t"}, "without user"},
		{hec.Config{URL: "https://splunk:8088"}, "SIEM_HEC_TOKEN: required"},
		{hec.Config{URL: "https://splunk:8088", Token: "a b"}, "SIEM_HEC_TOKEN: contains whitespace"},
		{hec.Config{URL: "https://splunk:8088", Token: "t", Index: "_internal"}, "SIEM_HEC_INDEX"},
	} {
		err := tc.c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "a b") {
			t.Errorf("token value in the error: %v", err)
		}
	}
	if err := (&hec.Config{URL: "https://splunk:8088/services/collector", Token: "t", Index: "darktrace"}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseSourcetypes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", nil, ""},
		{"darktrace", map[string]string{"modelbreach": "darktrace", "aianalyst": "darktrace", "antigena": "darktrace"}, ""},
		{"modelbreach=darktrace:alert, aianalyst=darktrace:incident", map[string]string{"modelbreach": "darktrace:alert", "aianalyst": "darktrace:incident"}, ""},
		{"breach=x", nil, "not kind=sourcetype"},
		{"bad type", nil, "not a sourcetype"},
		{"modelbreach=a,modelbreach=b", nil, "twice"},
	} {
		got, err := hec.ParseSourcetypes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, %v", tc.in, got, err)
		}
	}
}
