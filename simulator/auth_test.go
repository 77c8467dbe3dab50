package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

var base = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// TestSignatureMatchesContractVectors pins the verifier to the worked examples in the API
// contract: a simulator that accepted other signatures would hide client bugs.
func TestSignatureMatchesContractVectors(t *testing.T) {
	tests := []struct {
		name, p, date, sig string
	}{
		{"darktrace example", "/modelbreaches?includeacknowledged=true&includesuppressed=true&starttime=1514808000000&endtime=1514808060000", "2018-01-01 12:00:00", "e25f42e5b8e77889555766ce22f20de8a63500b1"},
		{"compact date", "/modelbreaches?includeacknowledged=true&includesuppressed=true&starttime=1514808000000&endtime=1514808060000", "20180101T120000", "84322a64cd5367497bf7987d393ddc73dd4065e8"},
		{"no query", "/status", "2018-01-01 12:00:00", "486897224fcd23a8d464d58028d76b121fbcfde4"},
		{"antigena", "/antigena?includecleared=true&includehistory=true", "20180101T120000", "079abf99a9a20b1b78298beb04f11b6bb7caa996"},
	}
	clk := &fixedClock{t: time.Date(2018, 1, 1, 12, 0, 0, 0, time.UTC)}
	_, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.p, map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": tt.date, "DTAPI-Signature": tt.sig})
			if r.code != http.StatusOK {
				t.Fatalf("status %d, body %s", r.code, r.body)
			}
			bad := c.do(tt.p, map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": tt.date, "DTAPI-Signature": strings.Repeat("0", 40)})
			if bad.code != http.StatusBadRequest {
				t.Fatalf("zero signature: status %d", bad.code)
			}
		})
	}
}

func TestAuthErrors(t *testing.T) {
	clk := &fixedClock{t: base}
	_, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now})
	sign := func(p string, at time.Time) map[string]string {
		d := darktrace.FormatDate(at)
		return map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": d, "DTAPI-Signature": darktrace.Signature(testPriv, testPub, p, d)}
	}
	without := func(h map[string]string, k string) map[string]string { delete(h, k); return h }
	with := func(h map[string]string, k, v string) map[string]string { h[k] = v; return h }
	const q = "/modelbreaches?starttime=1&endtime=2"
	tests := []struct {
		name     string
		path     string
		headers  map[string]string
		code     int
		body     map[string]string // JSON body expected
		location string
	}{
		{"valid", q, sign(q, base), 200, nil, ""},
		{"wrong signature", q, with(sign(q, base), "DTAPI-Signature", darktrace.Signature("wrong", testPub, q, darktrace.FormatDate(base))), 400, map[string]string{"modelbreaches": "API SIGNATURE ERROR"}, ""},
		{"signature of another query", q, sign("/modelbreaches?starttime=1&endtime=3", base), 400, map[string]string{"modelbreaches": "API SIGNATURE ERROR"}, ""},
		{"sorted query signed, other order sent", "/modelbreaches?starttime=1&endtime=2", sign("/modelbreaches?endtime=2&starttime=1", base), 400, map[string]string{"modelbreaches": "API SIGNATURE ERROR"}, ""},
		{"unknown token", q, with(sign(q, base), "DTAPI-Token", "nobody"), 400, map[string]string{"modelbreaches": "API SIGNATURE ERROR"}, ""},
		{"uppercase hex signature accepted", q, with(sign(q, base), "DTAPI-Signature", strings.ToUpper(sign(q, base)["DTAPI-Signature"])), 200, nil, ""},
		{"date 31 min behind", q, sign(q, base.Add(-31*time.Minute)), 400, map[string]string{"modelbreaches": "API DATE ERROR"}, ""},
		{"date 31 min ahead", q, sign(q, base.Add(31*time.Minute)), 400, map[string]string{"modelbreaches": "API DATE ERROR"}, ""},
		{"date 29 min behind", q, sign(q, base.Add(-29*time.Minute)), 200, nil, ""},
		{"date unparsable", q, with(sign(q, base), "DTAPI-Date", "yesterday"), 400, map[string]string{"modelbreaches": "API DATE ERROR"}, ""},
		{"error key is the first path segment", "/aianalyst/incidentevents", sign("/aianalyst/incidentevents", base.Add(-time.Hour)), 400, map[string]string{"aianalyst": "API DATE ERROR"}, ""},
		{"missing token", q, without(sign(q, base), "DTAPI-Token"), 302, nil, "/login"},
		{"missing date", q, without(sign(q, base), "DTAPI-Date"), 302, nil, "/login"},
		{"missing signature", q, without(sign(q, base), "DTAPI-Signature"), 302, nil, "/login"},
		{"unknown endpoint", "/nothing", sign("/nothing", base), 302, nil, "/login"},
		{"percent-encoded value signed decoded", "/modelbreaches?from=2026-01-15%2011%3A00%3A00", sign("/modelbreaches?from=2026-01-15 11:00:00", base), 200, nil, ""},
		{"percent-encoded value signed encoded", "/modelbreaches?from=2026-01-15%2011%3A00%3A00", sign("/modelbreaches?from=2026-01-15%2011%3A00%3A00", base), 400, map[string]string{"modelbreaches": "API SIGNATURE ERROR"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(tt.path, tt.headers)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d (body %.200s)", r.code, tt.code, r.body)
			}
			if tt.body != nil {
				var got map[string]string
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatalf("body %q: %v", r.body, err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.body) {
					t.Errorf("body %v, want %v", got, tt.body)
				}
			}
			if tt.location != "" {
				if got := r.header.Get("Location"); got != tt.location {
					t.Errorf("Location %q, want %q", got, tt.location)
				}
				if want := "Found. Redirecting to " + tt.location; string(r.body) != want {
					t.Errorf("body %q, want %q", r.body, want)
				}
			}
			if got, want := r.header.Get("Date"), base.Format(http.TimeFormat); got != want {
				t.Errorf("Date header %q, want the appliance clock %q", got, want)
			}
		})
	}
}

func TestDateFormats(t *testing.T) {
	clk := &fixedClock{t: base}
	_, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now})
	tests := []struct {
		name, date string
		ok         bool
	}{
		{"compact", "20260115T120000", true},
		{"space separated", "2026-01-15 12:00:00", true},
		{"space separated with fraction", "2026-01-15 12:00:00.250", true},
		{"ISO without zone", "2026-01-15T12:00:00", true},
		{"ISO with fraction", "2026-01-15T12:00:00.123456", true},
		{"ISO Z", "2026-01-15T12:00:00Z", true},
		{"ISO offset", "2026-01-15T13:00:00+01:00", true},
		{"ISO fraction and offset", "2026-01-15T06:00:00.5-06:00", true},
		{"ISO offset without colon", "2026-01-15T13:00:00.000+0100", true},
		{"local time sent as UTC is skewed", "2026-01-15T13:00:00", false},
		{"epoch seconds", "1768478400", false},
		{"US format", "01/15/2026 12:00:00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do("/status", map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": tt.date,
				"DTAPI-Signature": darktrace.Signature(testPriv, testPub, "/status", tt.date)})
			if got := r.code == http.StatusOK; got != tt.ok {
				t.Fatalf("accepted=%v, want %v (status %d, %s)", got, tt.ok, r.code, r.body)
			}
			if !tt.ok && !strings.Contains(string(r.body), `"status":"API DATE ERROR"`) {
				t.Errorf("body %s, want a date error", r.body)
			}
		})
	}
}

func TestClockOffset(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now, ClockOffset: 2 * time.Hour})
	c.now = clk.now // a client trusting its own (real) clock
	r := c.get("/status")
	if r.code != http.StatusBadRequest || !strings.Contains(string(r.body), "API DATE ERROR") {
		t.Fatalf("client 2h behind the appliance: status %d %s, want a date error", r.code, r.body)
	}
	if got, want := r.header.Get("Date"), base.Add(2*time.Hour).Format(http.TimeFormat); got != want {
		t.Errorf("Date header %q, want the offset appliance clock %q", got, want)
	}
	c.now = s.Now // a client that adopted the appliance clock
	var st darktrace.Status
	c.get("/status").ok(t, &st)
	if want := "2026-01-15 14:00:00"; st.Time != want {
		t.Errorf("/status time %q, want %q", st.Time, want)
	}
	s.SetClockOffset(0)
	c.now = clk.now
	c.get("/status").ok(t, &st)
	if want := "2026-01-15 12:00:00"; st.Time != want {
		t.Errorf("/status time after SetClockOffset(0) %q, want %q", st.Time, want)
	}
}

func TestPermissions(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now})
	s.AddToken("breaches-only", "secret2", []string{"modelbreaches", "status"})
	s.SetPermissions(testPub, []string{"antigena"})
	limited := *c
	limited.pub, limited.priv = "breaches-only", "secret2"
	tests := []struct {
		name   string
		c      *apiClient
		path   string
		code   int
		target string
	}{
		{"restricted token, allowed endpoint", c, "/antigena", 200, ""},
		{"restricted token, allowed sub-endpoint", c, "/antigena/summary", 200, ""},
		{"restricted token, other endpoint", c, "/modelbreaches", 302, "/403"},
		{"restricted token, status", c, "/status", 302, "/403"},
		{"added token, allowed", &limited, "/modelbreaches?minscore=0.5", 200, ""},
		{"added token, not allowed", &limited, "/aianalyst/incidentevents", 302, "/403"},
		{"added token, unknown endpoint is a login redirect", &limited, "/nope", 302, "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.get(tt.path)
			if r.code != tt.code {
				t.Fatalf("status %d, want %d", r.code, tt.code)
			}
			if tt.target != "" {
				if r.header.Get("Location") != tt.target || string(r.body) != "Found. Redirecting to "+tt.target {
					t.Errorf("Location %q body %q, want %s", r.header.Get("Location"), r.body, tt.target)
				}
			}
		})
	}
	s.SetPermissions(testPub, nil)
	if r := c.get("/modelbreaches"); r.code != 200 {
		t.Errorf("after SetPermissions(nil): status %d, want 200", r.code)
	}
}

func TestRequestLog(t *testing.T) {
	clk := &fixedClock{t: base}
	var mu sync.Mutex
	var hooked []string
	s, c := start(t, Options{Seed: 1, HistoryCount: 10, Now: clk.now, OnRequest: func(r Request) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, r.Path+" "+r.Outcome)
	}})
	c.get("/status")
	c.do("/status", nil)
	c.get("/nope")
	var outcomes []string
	for _, r := range s.Requests() {
		outcomes = append(outcomes, r.Path+" "+r.Outcome)
	}
	if got, want := strings.Join(outcomes, ","), "/status ok,/status auth:missing,/nope notfound"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
	mu.Lock()
	if got := strings.Join(hooked, ","); got != strings.Join(outcomes, ",") {
		t.Errorf("OnRequest saw %q, log %q", got, outcomes)
	}
	mu.Unlock()
	if s.RequestCount() != 3 {
		t.Errorf("RequestCount %d, want 3", s.RequestCount())
	}
}

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want []string
	}{
		{"no tokens", Options{}, []string{"PublicToken and PrivateToken are required"}},
		{"everything wrong at once", Options{PublicToken: "p", PrivateToken: "k", LateFraction: 2, HostileFraction: 1.5,
			Rate: -1, History: -time.Hour, LateDelay: time.Second, CertFile: "c.pem"},
			[]string{"LateFraction 2", "HostileFraction 1.5", "Rate -1", "History -1h0m0s", "LateDelay 1s", "CertFile and KeyFile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.o)
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
