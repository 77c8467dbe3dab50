package darktrace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRequestHeaders checks what the appliance sees: the query in the caller's (unsorted) order,
// a DTAPI-Date in UTC although the client clock is UTC+5, a signature over exactly the request
// URI, and no redirect followed.
func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name, pathAndQuery string
	}{
		{"unsorted query", "/modelbreaches?starttime=1700000000000&endtime=1600000000000&creationtime=true&includeacknowledged=true&includesuppressed=false&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true&minscore=0.5"},
		{"no query", "/status"},
		{"empty query", "/status?"},
		{"nested path", "/antigena/summary"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu  sync.Mutex
				got *http.Request
			)
			_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = r.Clone(context.Background())
				mu.Unlock()
				_, _ = io.WriteString(w, `[]`)
			}), func(cfg *Config) { cfg.UserAgent = "dtforward/1.2.3" })
			if err := c.Stream(context.Background(), tc.pathAndQuery, func([]byte) error { return nil }); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if got.RequestURI != tc.pathAndQuery {
				t.Errorf("server saw %q, want %q", got.RequestURI, tc.pathAndQuery)
			}
			date := got.Header.Get("DTAPI-Date")
			if date != "20261123T133000" {
				t.Errorf("DTAPI-Date = %q, want the UTC time 20261123T133000", date)
			}
			if want := Signature(testPrivate, testPublic, got.RequestURI, date); got.Header.Get("DTAPI-Signature") != want {
				t.Errorf("DTAPI-Signature = %q, want %q", got.Header.Get("DTAPI-Signature"), want)
			}
			for k, want := range map[string]string{"DTAPI-Token": testPublic, "User-Agent": "dtforward/1.2.3", "Accept": "application/json"} {
				if got.Header.Get(k) != want {
					t.Errorf("%s = %q, want %q", k, got.Header.Get(k), want)
				}
			}
			if got.Header.Get("Authorization") != "" || strings.Contains(fmt.Sprint(got.Header), testPrivate) {
				t.Error("private token was sent")
			}
		})
	}
}

func TestDefaultUserAgent(t *testing.T) {
	var ua atomic.Value
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.UserAgent())
		_, _ = io.WriteString(w, `[]`)
	}))
	if err := c.Stream(context.Background(), "/status", func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ua.Load() != DefaultUserAgent {
		t.Errorf("User-Agent = %v, want %s", ua.Load(), DefaultUserAgent)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/antigena", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/403", http.StatusFound) })
	mux.HandleFunc("/403", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		_, _ = io.WriteString(w, "<html><title>Login</title></html>")
	})
	_, c := newTestServer(t, mux)
	err := c.Stream(context.Background(), "/antigena?includecleared=true", func([]byte) error { return nil })
	if !errors.Is(err, ErrPermission) {
		t.Errorf("err = %v, want ErrPermission", err)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("client followed the redirect %d times", n)
	}
}

func TestUnencodablePathRejected(t *testing.T) {
	var hits atomic.Int32
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	for _, p := range []string{"/model breaches", "modelbreaches", "/x?a=b#frag", "/ü"} {
		err := c.Stream(context.Background(), p, func([]byte) error { return nil })
		if ClassOf(err) != ClassPermanent {
			t.Errorf("%q: class %s, want permanent (err %v)", p, ClassOf(err), err)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("%d requests reached the server; a path that cannot be sent as signed must not be sent", hits.Load())
	}
}

// TestTransportFaults covers failures below HTTP status level: hangs, slow and truncated
// bodies, invalid JSON, resets. Each handler runs on a real loopback server.
func TestTransportFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name    string
		handler http.HandlerFunc
		class   Class
		is      error
		msg     string
		records int // elements passed to fn before the failure
	}{
		{
			name: "hang before headers",
			handler: func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			},
			class: ClassRetry, is: ErrTimeout, msg: "no complete response within 300ms",
		},
		{
			name: "slow body past the timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[{"pbid":1},`)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			},
			class: ClassRetry, is: ErrTimeout, records: 1,
		},
		{
			name: "slow body within the timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				for _, part := range []string{`[{"pb`, `id":1},`, `{"pbid":2}`, `]`} {
					_, _ = io.WriteString(w, part)
					w.(http.Flusher).Flush()
					time.Sleep(20 * time.Millisecond)
				}
			},
			class: ClassOK, records: 2,
		},
		{
			name: "truncated JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2,"model":{"na`)
			},
			class: ClassRetry, is: io.ErrUnexpectedEOF, msg: "truncated or not valid JSON", records: 1,
		},
		{
			name: "truncated after complete element",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2}`)
			},
			class: ClassRetry, msg: "truncated or not valid JSON", records: 2,
		},
		{
			name: "short Content-Length body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2}`)
			},
			class: ClassRetry, records: 2,
		},
		{
			name: "invalid JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2}x{"pbid":3}]`)
			},
			class: ClassRetry, msg: "truncated or not valid JSON", records: 2,
		},
		{
			name: "trailing garbage",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `[{"pbid":1}]]`)
			},
			class: ClassRetry, records: 1,
		},
		{
			name: "single object truncated",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"pbid":1,`)
			},
			class: ClassRetry,
		},
		{
			name: "empty body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(200)
			},
			class: ClassRetry, msg: "empty response body",
		},
		{
			name: "plain text 200",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "Found. Redirecting to /login")
			},
			class: ClassRetry, msg: "not JSON",
		},
		{
			name: "connection closed before response",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			},
			class: ClassRetry, msg: "connection to the appliance failed",
		},
		{
			name: "connection reset mid-body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := w.(http.Hijacker).Hijack()
				if err != nil {
					return
				}
				_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n[{\"pbid\":1},{\"pb")
				_ = buf.Flush()
				// SO_LINGER 0 makes Close send an RST, as a crashing proxy would.
				_ = conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			},
			class: ClassRetry, records: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Only the cases about our timeout use the short one: the others must not depend on
			// how fast a loaded machine answers.
			tm := time.Minute
			if tc.is == ErrTimeout {
				tm = timeout
			}
			_, c := newTestServer(t, tc.handler, func(cfg *Config) { cfg.Timeout = tm })
			n := 0
			err := c.Stream(context.Background(), "/modelbreaches?starttime=1", func([]byte) error { n++; return nil })
			if ClassOf(err) != tc.class {
				t.Fatalf("class = %s, want %s (err %v)", ClassOf(err), tc.class, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not contain %q", err, tc.msg)
			}
			if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				t.Errorf("our own timeout must not look like the caller's context error: %v", err)
			}
			if n != tc.records {
				t.Errorf("fn called %d times, want %d", n, tc.records)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newTestClient(t, Config{URL: "http://" + addr, PublicToken: testPublic, PrivateToken: testPrivate, AllowHTTP: true})
	err = c.Stream(context.Background(), "/status", func([]byte) error { return nil })
	if ClassOf(err) != ClassRetry {
		t.Errorf("class = %s, want retry (err %v)", ClassOf(err), err)
	}
}

func TestCallerCancel(t *testing.T) {
	started := make(chan struct{})
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	err := c.Stream(ctx, "/status", func([]byte) error { return nil })
	if ClassOf(err) != ClassPermanent || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v (class %s), want permanent wrapping context.Canceled", err, ClassOf(err))
	}
}

func TestCallbackErrorStops(t *testing.T) {
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2},{"pbid":3}]`)
	}))
	stop := errors.New("sink full")
	n := 0
	err := c.Stream(context.Background(), "/modelbreaches", func([]byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("err = %v, want the callback's error unchanged", err)
	}
	if n != 2 {
		t.Errorf("fn called %d times, want 2", n)
	}
}

// TestDecodeStreamSkipsBadRecords: records without a usable id and elements that are not objects are
// reported with index and id and skipped; the others are delivered, each as its own value,
// including one whose time is of the wrong type (tolerant decoding keeps it, time left 0).
func TestDecodeStreamSkipsBadRecords(t *testing.T) {
	body := `[
	  {"pbid": 1, "time": 10, "score": 0.5, "model": {"name": "A"}, "device": {"did": 7}},
	  {"pbid": "2x", "time": 11},
	  {"pbid": 3, "time": "yesterday"},
	  42,
	  {"pbid": "evil\r\nid"},
	  {"pbid": 4, "time": 13, "score": "0.25", "model": {"then": {"name": "B"}, "now": {"name": "C"}}, "device": {"did": -1}}
	]`
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) }))
	var (
		got  []*Breach
		raws []string
		bad  []SkippedRecord
	)
	err := DecodeStream(context.Background(), c, "/modelbreaches", func(b *Breach, raw []byte) error {
		got = append(got, b)
		raws = append(raws, string(raw))
		return nil
	}, func(br SkippedRecord) { bad = append(bad, br) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].PBID != 1 || got[1].PBID != 3 || got[2].PBID != 4 {
		t.Fatalf("got %d records %+v, want pbid 1, 3 and 4", len(got), got)
	}
	if got[1].Time != 0 {
		t.Errorf("record 3 decoded as %+v", got[1])
	}
	if got[2].Model.Name != "B" || got[2].Score != 0.25 || got[2].Device.DID != -1 {
		t.Errorf("record 4 decoded as %+v", got[2])
	}
	if !strings.HasPrefix(raws[0], `{"pbid": 1`) || !strings.HasPrefix(raws[1], `{"pbid": 3`) || !strings.HasPrefix(raws[2], `{"pbid": 4`) {
		t.Errorf("raw = %q", raws)
	}
	want := []struct {
		index int
		id    string
	}{{1, "2x"}, {3, ""}, {4, "evil??id"}}
	if len(bad) != len(want) {
		t.Fatalf("bad = %+v, want %d entries", bad, len(want))
	}
	for i, w := range want {
		if bad[i].Index != w.index || bad[i].ID != w.id || bad[i].Err == nil {
			t.Errorf("bad[%d] = %+v, want index %d id %q with an error", i, bad[i], w.index, w.id)
		}
	}
}

func TestDecodeStreamNilBad(t *testing.T) {
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"codeid":"x"},{"codeid":5,"action":"quarantine","updated":"1700000000000"}]`)
	}))
	var got []int64
	err := DecodeStream(context.Background(), c, "/antigena", func(a *Action, _ []byte) error {
		got = append(got, a.CodeID, a.Updated.Int64())
		return nil
	}, nil)
	if err != nil || len(got) != 2 || got[0] != 5 || got[1] != 1700000000000 {
		t.Errorf("got %v, %v", got, err)
	}
}

func TestStatusAndGetJSON(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "includechildren=false&fast=true" {
			http.Error(w, `{"error":"bad query"}`, 400)
			return
		}
		_, _ = io.WriteString(w, `{"version":"6.1.23 (f35936c6)","time":"2026-11-23 13:30","hostname":"dt-1","label":"lab","uuid":"u-1","excessive":{"big":[1,2,3]}}`)
	})
	mux.HandleFunc("/antigena/summary", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"pendingCount":2,"activeCount":1,"pendingActionDevices":[3,4],"activeActionDevices":[5]}`)
	})
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `[{},{}]`) })
	mux.HandleFunc("/wrong", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"pendingCount":"many"}`) })
	_, c := newTestServer(t, mux)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "6.1.23 (f35936c6)" || st.Hostname != "dt-1" || st.UUID != "u-1" {
		t.Errorf("status = %+v", st)
	}
	var sum ActionSummary
	if err := c.GetJSON(ctx, "/antigena/summary", &sum); err != nil {
		t.Fatal(err)
	}
	if sum.PendingCount != 2 || sum.ActiveCount != 1 || len(sum.PendingActionDevices) != 2 {
		t.Errorf("summary = %+v", sum)
	}
	if err := c.GetJSON(ctx, "/list", &sum); ClassOf(err) != ClassPermanent {
		t.Errorf("GetJSON on a list: %v, want permanent", err)
	}
	if err := c.GetJSON(ctx, "/wrong", &sum); ClassOf(err) != ClassPermanent || !strings.Contains(err.Error(), "expected shape") {
		t.Errorf("GetJSON on a wrong shape: %v, want permanent", err)
	}
}

func TestHostAndDefaults(t *testing.T) {
	c := newTestClient(t, Config{URL: "https://dt.example.com:8443/", PublicToken: "p", PrivateToken: "q"})
	if c.Host() != "dt.example.com:8443" {
		t.Errorf("Host = %q", c.Host())
	}
	if c.timeout != DefaultTimeout || c.ua != DefaultUserAgent || c.now == nil {
		t.Errorf("defaults: timeout %s, user agent %q, clock set %v", c.timeout, c.ua, c.now != nil)
	}
}

func TestNewValidation(t *testing.T) {
	ok := Config{URL: "https://dt.example", PublicToken: testPublic, PrivateToken: testPrivate}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string // substrings of the error; nil = no error
	}{
		{"valid", func(*Config) {}, nil},
		{"http allowed", func(c *Config) { c.URL = "http://127.0.0.1:1"; c.AllowHTTP = true }, nil},
		{"trailing slash", func(c *Config) { c.URL = "https://dt.example/" }, nil},
		{"empty URL", func(c *Config) { c.URL = "" }, []string{"DARKTRACE_URL"}},
		{"http not allowed", func(c *Config) { c.URL = "http://dt.example" }, []string{"DARKTRACE_ALLOW_HTTP"}},
		{"other scheme", func(c *Config) { c.URL = "ftp://dt.example" }, []string{"https://"}},
		{"no scheme", func(c *Config) { c.URL = "dt.example" }, []string{"https://"}},
		{"base path", func(c *Config) { c.URL = "https://dt.example/api" }, []string{"scheme://host"}},
		{"user info", func(c *Config) { c.URL = "https://u:p@dt.example" }, []string{"user info"}},
		{"bad URL", func(c *Config) { c.URL = "https://dt example:x" }, []string{"not an http(s) URL"}},
		// The rule config applies too (CheckURL): New used to trim what config refused.
		{"newline after it", func(c *Config) { c.URL = "https://dt.example\n" }, []string{"around it"}},
		{"space before it", func(c *Config) { c.URL = " https://dt.example" }, []string{"around it"}},
		{"no host name", func(c *Config) { c.URL = "https://:8443" }, []string{"no host name"}},
		{"port out of range", func(c *Config) { c.URL = "https://dt.example:65536" }, []string{"port 65536"}},
		{"port 0", func(c *Config) { c.URL = "https://dt.example:0" }, []string{"port 0"}},
		{"missing tokens, all reported", func(c *Config) { c.PublicToken, c.PrivateToken = "", "" }, []string{"DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN"}},
		{"token with newline", func(c *Config) { c.PublicToken = testPublic + "\n" }, []string{"DARKTRACE_PUBLIC_TOKEN contains whitespace"}},
		{"token with space", func(c *Config) { c.PrivateToken = "a " + testPrivate }, []string{"DARKTRACE_PRIVATE_TOKEN contains whitespace"}},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, []string{"negative"}},
		{"missing CA file", func(c *Config) { c.TLS.CAFile = "/nonexistent/ca.pem" }, []string{"CA file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			c, err := New(cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				c.CloseIdleConnections()
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if strings.Contains(err.Error(), testPrivate) || strings.Contains(err.Error(), testPublic) {
				t.Errorf("error leaks a token: %v", err)
			}
		})
	}
}

// TestNoTokenInErrors forces every auth failure (and error bodies that echo the tokens back)
// and asserts neither token appears in any rendering of the error.
func TestNoTokenInErrors(t *testing.T) {
	echo := func(status int, header http.Header, body func(r *http.Request) string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body(r))
		}
	}
	tokens := func(r *http.Request) string {
		return r.Header.Get("DTAPI-Token") + " " + testPrivate + " " + r.Header.Get("DTAPI-Signature")
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		class   Class
	}{
		{"signature error", echo(400, nil, func(r *http.Request) string {
			return `{"modelbreaches":"API SIGNATURE ERROR","token":"` + r.Header.Get("DTAPI-Token") + `"}`
		}), ClassAuth},
		{"date error", echo(400, http.Header{"Date": {applianceDate}}, func(*http.Request) string { return `{"modelbreaches":"API DATE ERROR"}` }), ClassAuth},
		{"403 redirect", echo(302, http.Header{"Location": {"/403"}}, tokens), ClassAuth},
		{"login redirect", echo(302, http.Header{"Location": {"/login"}}, tokens), ClassAuth},
		{"login page", echo(200, http.Header{"Content-Type": {"text/html"}}, func(r *http.Request) string {
			return "<html><title>Login " + tokens(r) + "</title></html>"
		}), ClassAuth},
		{"401 echo", echo(401, nil, tokens), ClassAuth},
		{"400 error echo", echo(400, nil, func(r *http.Request) string { return `{"error":"` + tokens(r) + `"}` }), ClassPermanent},
		{"500 echo", echo(500, nil, tokens), ClassRetry},
		{"500 html title echo", echo(500, nil, func(r *http.Request) string { return "<title>" + tokens(r) + "</title>" }), ClassRetry},
		{"200 error echo", echo(200, nil, func(r *http.Request) string { return `{"error":"` + tokens(r) + `"}` }), ClassPermanent},
		{"200 garbage echo", echo(200, nil, tokens), ClassRetry},
		{"redirect elsewhere echo", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/elsewhere?t="+r.Header.Get("DTAPI-Token"))
			w.WriteHeader(301)
		}, ClassPermanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newTestServer(t, tc.handler)
			err := c.Stream(context.Background(), "/modelbreaches?starttime=1", func([]byte) error { return nil })
			if ClassOf(err) != tc.class {
				t.Fatalf("class = %s, want %s (%v)", ClassOf(err), tc.class, err)
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%+v", errors.Unwrap(err))} {
				for _, tok := range []string{testPublic, testPrivate} {
					if strings.Contains(s, tok) {
						t.Errorf("token leaked into %q", s)
					}
				}
			}
		})
	}
}

// TestManyRequestsReuseConnection guards the keep-alive path: error bodies are drained so the
// connection is reused, and nothing leaks across requests.
func TestManyRequestsReuseConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") == "1" {
			http.Error(w, strings.Repeat("x", 2000), 500)
			return
		}
		_, _ = io.WriteString(w, `[{"pbid":1}]`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, Config{URL: srv.URL, PublicToken: testPublic, PrivateToken: testPrivate, AllowHTTP: true})
	for i := range 10 {
		_ = c.Stream(context.Background(), "/modelbreaches?fail="+strconv.Itoa(i%2), func([]byte) error { return nil })
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 10 sequential requests, want 1", n)
	}
}

// TestConcurrentUse: one Client shared by several goroutines (e.g. sources of one appliance,
// or check running next to the poller) under the race detector.
func TestConcurrentUse(t *testing.T) {
	_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("i") == "3" {
			w.WriteHeader(503)
			return
		}
		_, _ = io.WriteString(w, `[{"pbid":1},{"pbid":2}]`)
	}))
	var wg sync.WaitGroup
	errs := make([]error, 8)
	counts := make([]int, 8)
	for i := range 8 {
		wg.Go(func() {
			errs[i] = DecodeStream(context.Background(), c, "/modelbreaches?i="+strconv.Itoa(i), func(*Breach, []byte) error {
				counts[i]++
				return nil
			}, nil)
		})
	}
	wg.Wait()
	for i := range 8 {
		wantClass, wantCount := ClassOK, 2
		if i == 3 {
			wantClass, wantCount = ClassRetry, 0
		}
		if ClassOf(errs[i]) != wantClass || counts[i] != wantCount {
			t.Errorf("goroutine %d: %d records, err %v", i, counts[i], errs[i])
		}
	}
}
