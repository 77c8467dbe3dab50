package simulator

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/tlsconfig"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		name, spec string
		want       []Fault
		err        string
	}{
		{"empty", "", nil, ""},
		{"contract example", "modelbreaches:500=0.1,timeout=0.05;antigena:429=1", []Fault{
			{Endpoint: "modelbreaches", Kind: FaultJSON500, Probability: 0.1},
			{Endpoint: "modelbreaches", Kind: FaultHang, Probability: 0.05},
			{Endpoint: "antigena", Kind: FaultRateLimit, Probability: 1},
		}, ""},
		{"all endpoints with count", "500*3", []Fault{{Kind: FaultJSON500, Probability: 1, Count: 3}}, ""},
		{"param probability count", "aianalyst:large@20000=0.5*2", []Fault{{Endpoint: "aianalyst", Kind: FaultLarge, Probability: 0.5, Count: 2, Param: "20000"}}, ""},
		{"star endpoint and spaces", " * : slow@200ms ; status:reset ", []Fault{
			{Kind: FaultSlow, Probability: 1, Param: "200ms"}, {Endpoint: "status", Kind: FaultReset, Probability: 1}}, ""},
		{"retry-after seconds", "429@5", []Fault{{Kind: FaultRateLimit, Probability: 1, Param: "5"}}, ""},
		{"unknown kind", "modelbreaches:404", nil, `kind "404" is not one of 500, 500html`},
		{"unknown endpoint", "breaches:500", nil, `fault endpoint "breaches" is not one of modelbreaches`},
		{"probability above 1", "500=2", nil, "probability \"2\" is not a number from 0 to 1"},
		{"bad count", "500*0", nil, "count \"0\" is not a whole number >= 1"},
		{"param on a kind without one", "reset@1s", nil, "kind reset takes no @param"},
		{"bad duration", "slow@fast", nil, "is not a duration"},
		{"bad large count", "large@-1", nil, "is not a record count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFaults(tt.spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func mustFaults(t *testing.T, spec string) []Fault {
	t.Helper()
	f, err := ParseFaults(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFaultKinds injects each kind once into /modelbreaches and checks what a client sees,
// then that the next request is served normally.
func TestFaultKinds(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 2, HistoryCount: 5, Now: clk.now})
	const q = "/modelbreaches?includeacknowledged=true&includesuppressed=true"
	isJSONValue := func(want string) func(t *testing.T, r reply, err error) {
		return func(t *testing.T, r reply, err error) {
			var m map[string]string
			if err != nil || json.Unmarshal(r.body, &m) != nil || len(m) != 1 {
				t.Fatalf("body %q err %v, want one JSON member", r.body, err)
			}
			for _, v := range m {
				if v != want {
					t.Errorf("value %q, want %q", v, want)
				}
			}
		}
	}
	html := func(t *testing.T, r reply, err error) {
		if err != nil || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), "<html") {
			t.Errorf("type %q body %.80q err %v, want HTML", r.header.Get("Content-Type"), r.body, err)
		}
	}
	tests := []struct {
		spec  string
		code  int
		check func(t *testing.T, r reply, err error)
		query string // default q
	}{
		{"500", 500, isJSONValue("Internal Server Error"), ""},
		{"500html", 500, html, ""},
		{"502", 502, html, ""},
		{"503", 503, html, ""},
		{"429", 429, func(t *testing.T, r reply, _ error) {
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
			}
		}, ""},
		{"429@7", 429, func(t *testing.T, r reply, _ error) {
			if r.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q, want 7", r.header.Get("Retry-After"))
			}
		}, ""},
		{"truncated", 200, func(t *testing.T, r reply, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(r.body) == 0 || json.Valid(r.body) {
				t.Errorf("read error %v after %d bytes, want an unexpected EOF inside the JSON", err, len(r.body))
			}
		}, ""},
		{"invalid", 200, func(t *testing.T, r reply, err error) {
			if err != nil || json.Valid(r.body) || !strings.HasPrefix(string(r.body), "[{") {
				t.Errorf("err %v valid %v, want a complete but invalid JSON body", err, json.Valid(r.body))
			}
		}, ""},
		{"loginpage", 200, func(t *testing.T, r reply, err error) {
			html(t, r, err)
			if !strings.Contains(string(r.body), "Login") {
				t.Error("not a login page")
			}
		}, ""},
		{"signature", 400, isJSONValue("API SIGNATURE ERROR"), ""},
		{"date", 400, isJSONValue("API DATE ERROR"), ""},
		{"forbidden", 302, func(t *testing.T, r reply, _ error) {
			if r.header.Get("Location") != "/403" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		}, ""},
		{"login", 302, func(t *testing.T, r reply, _ error) {
			if r.header.Get("Location") != "/login" {
				t.Errorf("Location %q", r.header.Get("Location"))
			}
		}, ""},
		// Go's Transport silently retries a GET once when a reused connection dies before any
		// response byte, so a client only sees a reset that happens twice in a row.
		{"reset*2", 0, func(t *testing.T, _ reply, err error) {
			if err == nil {
				t.Error("request succeeded through a connection reset")
			}
		}, ""},
		{"error200", 200, isJSONValue("Unable to process request"), ""},
		{"responseerror", 200, isJSONValue("ERROR"), ""},
		{"empty", 200, func(t *testing.T, r reply, err error) {
			if err != nil || strings.TrimSpace(string(r.body)) != "[]" {
				t.Errorf("empty answer: err %v, body %q", err, r.body)
			}
		}, ""},
		{"slow@2ms", 200, func(t *testing.T, r reply, err error) {
			var got []darktrace.Breach
			if err != nil || json.Unmarshal(r.body, &got) != nil || len(got) != 5 {
				t.Errorf("slow body: err %v, %d bytes", err, len(r.body))
			}
		}, ""},
		{"hang@50ms", 200, func(t *testing.T, r reply, err error) {
			if err != nil || !json.Valid(r.body) {
				t.Errorf("bounded hang then answer: err %v", err)
			}
		}, ""},
		{"deep@50", 200, func(t *testing.T, r reply, err error) {
			var got []struct{ PBID int64 }
			if err != nil || json.Unmarshal(r.body, &got) != nil || len(got) != 6 || got[0].PBID != DeepRecordID ||
				!strings.Contains(string(r.body), strings.Repeat("[", 50)+strings.Repeat("]", 50)) {
				t.Errorf("deep answer: err %v, %d records: %.200s", err, len(got), r.body)
			}
		}, ""},
		{"large", 200, func(t *testing.T, r reply, err error) {
			var got []struct{ PBID int64 }
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			synthetic := 0
			for _, b := range got {
				if b.PBID >= LargePBIDBase {
					synthetic++
				}
			}
			if synthetic != 10000 || len(got) != 10005 {
				t.Errorf("%d records, %d synthetic; want 5 + 10000", len(got), synthetic)
			}
		}, q + "&minimal=true"},
	}
	covered := map[FaultKind]bool{}
	for _, tt := range tests {
		f := mustFaults(t, tt.spec)
		covered[f[0].Kind] = true
	}
	for _, k := range FaultKinds() {
		if !covered[k] {
			t.Errorf("fault kind %s has no case here", k)
		}
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			spec := "modelbreaches:" + tt.spec
			if !strings.Contains(spec, "*") {
				spec += "*1"
			}
			s.SetFaults(mustFaults(t, spec))
			p := q
			if tt.query != "" {
				p = tt.query
			}
			date := darktrace.FormatDate(base)
			r, err := c.try(p, map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": date,
				"DTAPI-Signature": darktrace.Signature(testPriv, testPub, p, date)})
			if r.code != tt.code {
				t.Errorf("status %d, want %d (err %v)", r.code, tt.code, err)
			}
			tt.check(t, r, err)
			if next := c.get(q); next.code != 200 || !json.Valid(next.body) {
				t.Errorf("after the fault was spent: status %d", next.code)
			}
			log := s.Requests()
			if got := log[len(log)-2].Outcome; !strings.HasPrefix(got, "fault:") {
				t.Errorf("logged outcome %q, want fault:…", got)
			}
		})
	}
}

// TestHangUntilClientGivesUp checks an unbounded hang holds the request until the client's
// timeout, and that the handler then returns (goleak would catch it otherwise).
func TestHangUntilClientGivesUp(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 2, HistoryCount: 5, Now: clk.now})
	s.SetFaults(mustFaults(t, "status:timeout"))
	c.hc.Timeout = 300 * time.Millisecond
	if r, err := c.try("/status", map[string]string{}); err != nil || r.code != 302 {
		t.Fatalf("unsigned request: %d %v, want the 302 to /login before faults apply", r.code, err)
	}
	date := darktrace.FormatDate(base)
	_, err := c.try("/status", map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": date,
		"DTAPI-Signature": darktrace.Signature(testPriv, testPub, "/status", date)})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a client timeout", err)
	}
}

func TestFaultSelection(t *testing.T) {
	clk := &fixedClock{t: base}
	s, c := start(t, Options{Seed: 2, HistoryCount: 5, Now: clk.now})
	codes := func(p string, n int) map[int]int {
		out := map[int]int{}
		for i := 0; i < n; i++ {
			out[c.get(p).code]++
		}
		return out
	}
	t.Run("count", func(t *testing.T) {
		s.SetFaults(mustFaults(t, "503*2"))
		if got := codes("/status", 4); got[503] != 2 || got[200] != 2 {
			t.Errorf("codes %v, want two 503 then 200s", got)
		}
	})
	t.Run("probability", func(t *testing.T) {
		s.SetFaults(mustFaults(t, "500=0.3"))
		got := codes("/status", 200)
		if got[500] < 30 || got[500] > 90 || got[200] != 200-got[500] {
			t.Errorf("codes %v, want about 60 of 200 failing", got)
		}
	})
	t.Run("endpoint scope", func(t *testing.T) {
		s.SetFaults(mustFaults(t, "antigena:502"))
		if c.get("/antigena").code != 502 || c.get("/antigena/summary").code != 502 || c.get("/modelbreaches?minimal=true").code != 200 {
			t.Error("antigena fault must hit /antigena and /antigena/summary only")
		}
	})
	t.Run("auth before faults", func(t *testing.T) {
		s.SetFaults(mustFaults(t, "500"))
		if r := c.do("/status", nil); r.code != 302 {
			t.Errorf("unsigned request got %d, want the 302 to /login", r.code)
		}
	})
	t.Run("large on other endpoints", func(t *testing.T) {
		s.SetFaults(mustFaults(t, "antigena:large@30;aianalyst:large@20"))
		var a []darktrace.Action
		var e []darktrace.IncidentEvent
		c.get("/antigena").ok(t, &a)
		c.get("/aianalyst/incidentevents").ok(t, &e)
		if len(a) < 30 || len(e) < 20 {
			t.Errorf("%d actions, %d events; want the extras", len(a), len(e))
		}
	})
	s.SetFaults(nil)
	if got := codes("/status", 3); got[200] != 3 {
		t.Errorf("after SetFaults(nil): %v", got)
	}
}

func TestTLS(t *testing.T) {
	clk := &fixedClock{t: base}
	s, err := New(Options{PublicToken: testPub, PrivateToken: testPriv, Seed: 1, HistoryCount: 5, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.Start("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	ca := s.CAFile()
	t.Cleanup(func() { s.Close() })
	if !strings.HasPrefix(u, "https://127.0.0.1:") || ca == "" {
		t.Fatalf("url %q CA %q", u, ca)
	}
	cfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	trusted := &apiClient{t: t, base: u, pub: testPub, priv: testPriv, now: s.Now,
		hc: &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirect, Transport: &http.Transport{TLSClientConfig: cfg}}}
	t.Cleanup(trusted.hc.CloseIdleConnections)
	var st darktrace.Status
	trusted.get("/status").ok(t, &st)
	// A reset over TLS is still a reset, not a clean TLS close.
	s.SetFaults(mustFaults(t, "status:reset*2"))
	if _, err := trusted.try("/status", nil); err != nil {
		t.Errorf("unsigned request is answered before faults: %v", err)
	}
	date := darktrace.FormatDate(base)
	if _, err := trusted.try("/status", map[string]string{"DTAPI-Token": testPub, "DTAPI-Date": date,
		"DTAPI-Signature": darktrace.Signature(testPriv, testPub, "/status", date)}); err == nil {
		t.Error("reset over TLS: request succeeded")
	}
	untrusted := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(untrusted.CloseIdleConnections)
	_, err = untrusted.Get(u + "/status")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without the CA: %v, want a certificate error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ca); !os.IsNotExist(err) {
		t.Errorf("CA file after Close: %v, want it removed", err)
	}
}
