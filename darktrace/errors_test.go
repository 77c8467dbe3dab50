package darktrace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
)

// applianceDate is the Date header the fake appliance sends in clock-skew cases: 45 minutes
// behind testNow (13:30 UTC).
const applianceDate = "Mon, 23 Nov 2026 12:45:00 GMT"

// responseCase is one row of the shared classification table: an HTTP response and what the
// client must make of it. The same rows run against classify directly and, over real loopback
// HTTP, through Stream.
type responseCase struct {
	name       string
	path       string // default /modelbreaches?starttime=1&endtime=2
	status     int
	header     http.Header // a nil value suppresses the header (e.g. Date)
	body       string
	class      Class
	is         error         // errors.Is target, when the class has a sentinel
	msg        []string      // substrings Msg must contain
	retryAfter time.Duration // expected RetryAfter
}

var responseCases = []responseCase{
	{name: "200 array", status: 200, body: `[{"pbid":1},{"pbid":2}]`, class: ClassOK},
	{name: "200 empty array", status: 200, body: `[]`, class: ClassOK},
	{name: "200 single record object", status: 200, body: `{"pbid":95,"time":1,"score":0.5,"model":{"name":"m"},"device":{"did":-1}}`, class: ClassOK},
	{name: "200 object with error key among many", status: 200, body: `{"pbid":95,"time":1,"error":false,"score":0.5,"model":{}}`, class: ClassOK},

	{name: "500 JSON", status: 500, body: `{"error":"internal failure"}`, class: ClassRetry, msg: []string{"HTTP 500", "internal failure"}},
	{name: "502 HTML", status: 502, header: http.Header{"Content-Type": {"text/html"}}, body: "<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>", class: ClassRetry, msg: []string{"HTTP 502", `"502 Bad Gateway"`}},
	{name: "503 HTML no content type", status: 503, body: "\n<!DOCTYPE html><p>maintenance</p>", class: ClassRetry, msg: []string{"HTTP 503", "HTML page"}},
	{name: "503 Retry-After seconds", status: 503, header: http.Header{"Retry-After": {"7"}}, body: `{}`, class: ClassRetry, retryAfter: 7 * time.Second, msg: []string{"wait 7s"}},
	{name: "429 Retry-After seconds", status: 429, header: http.Header{"Retry-After": {"30"}}, class: ClassRetry, retryAfter: 30 * time.Second, msg: []string{"rate limiting"}},
	{name: "429 Retry-After HTTP-date against server Date", status: 429, header: http.Header{"Date": {applianceDate}, "Retry-After": {"Mon, 23 Nov 2026 12:47:00 GMT"}}, class: ClassRetry, retryAfter: 2 * time.Minute},
	{name: "429 Retry-After HTTP-date against our clock", status: 429, header: http.Header{"Date": nil, "Retry-After": {"Mon, 23 Nov 2026 13:31:30 GMT"}}, class: ClassRetry, retryAfter: 90 * time.Second},
	{name: "429 Retry-After huge is capped", status: 429, header: http.Header{"Retry-After": {"99999999"}}, class: ClassRetry, retryAfter: MaxRetryAfter},
	{name: "429 Retry-After garbage ignored", status: 429, header: http.Header{"Retry-After": {"soon"}}, class: ClassRetry},
	{name: "429 Retry-After in the past", status: 429, header: http.Header{"Date": {applianceDate}, "Retry-After": {"Mon, 23 Nov 2026 12:00:00 GMT"}}, class: ClassRetry},
	{name: "408", status: 408, class: ClassRetry, msg: []string{"HTTP 408"}},

	{name: "400 signature error", status: 400, body: `{"modelbreaches": "API SIGNATURE ERROR"}`, class: ClassAuth, is: ErrSignature,
		msg: []string{"signature rejected: check DARKTRACE_PUBLIC_TOKEN/DARKTRACE_PRIVATE_TOKEN"}},
	{name: "400 signature error other key", path: "/antigena?includecleared=true", status: 400, body: `{"antigena":"API SIGNATURE ERROR"}`, class: ClassAuth, is: ErrSignature},
	{name: "400 date error with Date header", status: 400, header: http.Header{"Date": {applianceDate}}, body: `{"modelbreaches": "API DATE ERROR"}`, class: ClassAuth, is: ErrClockSkew,
		msg: []string{"clock skew: appliance time is 2026-11-23T12:45:00Z while ours is 2026-11-23T13:30:00Z (off by 45m0s); fix NTP"}},
	{name: "400 date error without Date header", status: 400, header: http.Header{"Date": nil}, body: `{"status":"API DATE ERROR"}`, class: ClassAuth, is: ErrClockSkew,
		msg: []string{"clock skew", "2026-11-23T13:30:00Z", "fix NTP"}},
	{name: "302 to /403", path: "/antigena?includecleared=true&includehistory=true", status: 302, header: http.Header{"Location": {"/403"}}, body: "Found. Redirecting to /403", class: ClassAuth, is: ErrPermission,
		msg: []string{"token lacks permission for /antigena"}},
	{name: "302 to /login", status: 302, header: http.Header{"Location": {"/login"}}, body: "Found. Redirecting to /login", class: ClassAuth, is: ErrNotAuthenticated,
		msg: []string{"not authenticated or unknown endpoint"}},
	{name: "302 to absolute /login with query", status: 302, header: http.Header{"Location": {"https://dt.example/login?next=%2Fmodelbreaches"}}, class: ClassAuth, is: ErrNotAuthenticated},
	{name: "301 elsewhere", status: 301, header: http.Header{"Location": {"https://other.example/"}}, class: ClassPermanent, msg: []string{"HTTP 301", "other.example", "DARKTRACE_URL"}},
	{name: "200 HTML login page", status: 200, header: http.Header{"Content-Type": {"text/html; charset=utf-8"}}, body: "<!DOCTYPE html><html><head><title>Darktrace | Login</title></head><body><form action=/login></form></body></html>", class: ClassAuth, is: ErrNotAuthenticated,
		msg: []string{"HTML login page"}},
	{name: "200 JSON labelled text/html", status: 200, header: http.Header{"Content-Type": {"text/html"}}, body: `{"pbid":1,"time":2,"model":{"name":"login"},"device":{"did":1}}`, class: ClassOK},
	{name: "200 HTML other page", status: 200, body: "<html><title>Welcome to nginx!</title></html>", class: ClassPermanent, msg: []string{"expected JSON", "Welcome to nginx!"}},
	{name: "401", status: 401, class: ClassAuth, is: ErrNotAuthenticated, msg: []string{"HTTP 401"}},

	{name: "400 error body", status: 400, body: `{"error": "Invalid value for starttime"}`, class: ClassPermanent, msg: []string{"HTTP 400", "Invalid value for starttime"}},
	{name: "400 HTML", status: 400, body: "<html><title>Bad Request</title></html>", class: ClassPermanent, msg: []string{"HTTP 400", "Bad Request"}},
	{name: "404", status: 404, body: "not found", class: ClassPermanent, msg: []string{"HTTP 404"}},
	{name: "200 error object", status: 200, body: `{"error": "Unknown parameter foo"}`, class: ClassPermanent, msg: []string{"Unknown parameter foo"}},
	{name: "200 error object non-string", status: 200, body: `{"error": {"code": 12}}`, class: ClassPermanent, msg: []string{"code"}},
	{name: "200 response ERROR", status: 200, body: `{"response":"ERROR"}`, class: ClassPermanent, msg: []string{"ERROR"}},
	{name: "200 signature error", status: 200, body: `{"modelbreaches":"API SIGNATURE ERROR"}`, class: ClassAuth, is: ErrSignature},
	{name: "200 hostile error text", status: 200, body: `{"error":"bad\r\nCEF:0|forged|line\u2028x\u0000"}`, class: ClassPermanent, msg: []string{"forged"}},
}

func (tc responseCase) pathAndQuery() string {
	if tc.path != "" {
		return tc.path
	}
	return "/modelbreaches?starttime=1&endtime=2"
}

// check asserts err matches the row; used by both the direct and the HTTP run.
func (tc responseCase) check(t *testing.T, err error) {
	t.Helper()
	if got := ClassOf(err); got != tc.class {
		t.Fatalf("class = %s, want %s (err: %v)", got, tc.class, err)
	}
	if tc.class == ClassOK {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *Error: %v", err, err)
	}
	if tc.is != nil && !errors.Is(err, tc.is) {
		t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
	}
	for _, s := range tc.msg {
		if !strings.Contains(e.Msg, s) {
			t.Errorf("Msg %q does not contain %q", e.Msg, s)
		}
	}
	if e.RetryAfter != tc.retryAfter {
		t.Errorf("RetryAfter = %s, want %s", e.RetryAfter, tc.retryAfter)
	}
	if RetryAfterOf(err) != tc.retryAfter {
		t.Errorf("RetryAfterOf = %s, want %s", RetryAfterOf(err), tc.retryAfter)
	}
	if e.StatusCode != tc.status {
		t.Errorf("StatusCode = %d, want %d", e.StatusCode, tc.status)
	}
	if want := endpointOf(tc.pathAndQuery()); e.Endpoint != want {
		t.Errorf("Endpoint = %q, want %q", e.Endpoint, want)
	}
	// Whatever the appliance sent, the error stays one printable line.
	if i := strings.IndexFunc(err.Error(), func(r rune) bool { return !unicode.IsPrint(r) }); i >= 0 {
		t.Errorf("error text has a non-printable character at %d: %q", i, err.Error())
	}
}

func TestClassifyTable(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				if v != nil {
					h[k] = v
				}
			}
			e := classify(response{
				Endpoint:   endpointOf(tc.pathAndQuery()),
				StatusCode: tc.status,
				Header:     h,
				Body:       []byte(tc.body),
				Now:        testNow,
			})
			var err error
			if e != nil {
				err = e
			}
			tc.check(t, err)
		})
	}
}

// TestStreamResponseTable runs the same rows over real loopback HTTP, through Stream.
func TestStreamResponseTable(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			n := 0
			err := c.Stream(context.Background(), tc.pathAndQuery(), func([]byte) error { n++; return nil })
			tc.check(t, err)
			if tc.class != ClassOK && n != 0 {
				t.Errorf("fn called %d times for a failed response", n)
			}
		})
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, ClassOK},
		{"wrapped *Error", fmt.Errorf("poll: %w", &Error{Class: ClassAuth}), ClassAuth},
		{"canceled", context.Canceled, ClassPermanent},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), ClassPermanent},
		{"unknown error", errors.New("callback failed"), ClassPermanent},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), ClassRetry},
		{"trailing data", fmt.Errorf("decode: %w", errTrailingData), ClassRetry},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ClassRetry},
		{"json syntax", json.Unmarshal([]byte("[1,"), new(any)), ClassRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
	for c, want := range map[Class]string{ClassOK: "ok", ClassRetry: "retry", ClassAuth: "auth", ClassPermanent: "permanent", Class(9): "class(9)"} {
		if c.String() != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), c.String(), want)
		}
	}
}
