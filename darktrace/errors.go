package darktrace

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Class says what a caller should do about a failure. It is decided in one place (this file),
// so the poller, backfill and `dtforward check` all react to a response the same way.
type Class int

const (
	// ClassOK is no error.
	ClassOK Class = iota
	// ClassRetry is transient (5xx, 408, 429, timeouts, resets, truncated/invalid bodies):
	// retry the same request with backoff, honouring RetryAfterOf.
	ClassRetry
	// ClassAuth is a credentials, clock or permission problem a person must fix; retrying
	// slowly is fine, but each occurrence deserves an error log with Error.Msg.
	ClassAuth
	// ClassPermanent will fail the same way if repeated unchanged (bad parameters, an error
	// body, an untrusted TLS certificate, or the caller's own cancellation).
	ClassPermanent
)

// String returns ok, retry, auth or permanent (used in logs and metric labels).
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassRetry:
		return "retry"
	case ClassAuth:
		return "auth"
	case ClassPermanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Sentinel causes, for errors.Is on an *Error.
var (
	// ErrSignature: the appliance rejected the DTAPI signature or does not know the token.
	ErrSignature = errors.New("API SIGNATURE ERROR")
	// ErrClockSkew: the appliance rejected DTAPI-Date (more than 30 minutes off its clock).
	ErrClockSkew = errors.New("API DATE ERROR")
	// ErrPermission: the token is valid but may not read this endpoint (302 to /403).
	ErrPermission = errors.New("redirected to /403")
	// ErrNotAuthenticated: 302 to /login, 401/403, or a 200 HTML login page.
	ErrNotAuthenticated = errors.New("not authenticated")
	// ErrTimeout: no complete response within Config.Timeout.
	ErrTimeout = errors.New("request timed out")
)

// errOurTimeout is the context cause of the per-request deadline, so a timeout of ours (retry)
// is told apart from the caller's own deadline or cancellation.
var errOurTimeout = errors.New("darktrace: per-request timeout")

// Error is every failure the client returns (wrapping the cause). Msg is written for a person:
// what happened and what to do. It never contains a token.
type Error struct {
	Class         Class
	Endpoint      string        // path without query, e.g. /modelbreaches
	StatusCode    int           // 0 when no response arrived
	RetryAfter    time.Duration // from Retry-After on 429/503 (and 408), capped at MaxRetryAfter
	ApplianceTime time.Time     // the response Date header, when the appliance sent one
	Msg           string
	Err           error
}

// Error returns "darktrace <endpoint>: <Msg>[: <cause>]".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("darktrace ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
	} else {
		b.WriteString("request")
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil && !strings.Contains(e.Msg, e.Err.Error()) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// GoString keeps %#v as readable (and token-free) as %v.
func (e *Error) GoString() string {
	return fmt.Sprintf("&darktrace.Error{Class:%s, Endpoint:%q, StatusCode:%d, Msg:%q}", e.Class, e.Endpoint, e.StatusCode, e.Error())
}

// MaxRetryAfter caps a Retry-After so a hostile or buggy value cannot stall polling for days.
const MaxRetryAfter = 15 * time.Minute

// ClassOf returns the class of err: nil → ClassOK; an *Error (anywhere in the chain) → its
// Class. For other errors (e.g. returned by a Stream callback): net timeouts, connection resets,
// refusals and EOFs → ClassRetry; JSON syntax errors → ClassRetry; context.Canceled or
// context.DeadlineExceeded → ClassPermanent.
//
// The caller's own cancellation is ClassPermanent on purpose: repeating the request cannot
// succeed under the same context, and a retry loop that sees ClassRetry would spin during
// shutdown. Callers that need to tell shutdown from a real failure check ctx.Err() or
// errors.Is(err, context.Canceled) — an *Error caused by cancellation wraps ctx.Err(). Our
// per-request timeout is not a context error to the caller: it is ClassRetry wrapping ErrTimeout.
func ClassOf(err error) Class {
	if err == nil {
		return ClassOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ClassPermanent
	}
	if isRetryableNetError(err) || isDecodeError(err) {
		return ClassRetry
	}
	return ClassPermanent
}

// RetryAfterOf returns the Retry-After the appliance asked for, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func isRetryableNetError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE)
}

func isDecodeError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errTrailingData) ||
		errors.Is(err, errSyntaxSplit) ||
		// json.Decoder reports a body that ends mid-value as a plain io.ErrUnexpectedEOF or,
		// for a body that ends right after a delimiter, as io.EOF.
		errors.Is(err, io.EOF)
}

// transportError classifies a failure to get (or finish reading) a response.
func (c *Client) transportError(callerCtx, reqCtx context.Context, endpoint string, err error) *Error {
	if callerCtx.Err() != nil {
		return &Error{Class: ClassPermanent, Endpoint: endpoint, Msg: "request abandoned: the caller cancelled it", Err: callerCtx.Err()}
	}
	if errors.Is(context.Cause(reqCtx), errOurTimeout) {
		return &Error{Class: ClassRetry, Endpoint: endpoint,
			Msg: fmt.Sprintf("no complete response within %s; the appliance is slow or unreachable (raise DARKTRACE_TIMEOUT if large responses are expected)", c.timeout),
			Err: ErrTimeout}
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verifyErr *tls.CertificateVerificationError
		recordErr tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknownCA):
		return &Error{Class: ClassPermanent, Endpoint: endpoint,
			Msg: "TLS: the appliance certificate is not signed by a trusted CA; set DARKTRACE_CA_FILE to the appliance's CA certificate (PEM)",
			Err: err}
	case errors.As(err, &hostErr):
		return &Error{Class: ClassPermanent, Endpoint: endpoint,
			Msg: "TLS: the appliance certificate does not name " + c.base.Hostname() + certNames(hostErr.Certificate) +
				"; use a name in the certificate in DARKTRACE_URL, or set DARKTRACE_SERVER_NAME (server_name in DARKTRACE_APPLIANCES_FILE) to it",
			Err: err}
	case errors.As(err, &invalid), errors.As(err, &verifyErr):
		return &Error{Class: ClassPermanent, Endpoint: endpoint,
			Msg: "TLS: the appliance certificate is not valid (expired or not for server use)",
			Err: err}
	case errors.As(err, &recordErr),
		// net/http turns a RecordHeaderError that starts with "HTTP/" into this plain error.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &Error{Class: ClassPermanent, Endpoint: endpoint,
			Msg: "TLS handshake failed: the server does not speak TLS on this port (try http:// with DARKTRACE_ALLOW_HTTP=true, or check the port)",
			Err: err}
	}
	return &Error{Class: ClassRetry, Endpoint: endpoint,
		Msg: "connection to the appliance failed", Err: err}
}

// certNames lists the names a certificate is valid for, as " (it names a, b)".
func certNames(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && cert.Subject.CommonName != "" {
		names = append(names, cert.Subject.CommonName)
	}
	if len(names) == 0 {
		return ""
	}
	if len(names) > 5 {
		names = append(names[:5], "…")
	}
	return " (it names " + strings.Join(names, ", ") + ")"
}

// bodyError classifies a failure while reading a 2xx body after n elements: the caller's
// cancellation, our timeout or a broken connection as transportError does, otherwise a
// truncated or invalid body (retry: the next answer is usually whole).
func (c *Client) bodyError(callerCtx, reqCtx context.Context, endpoint string, status, n int, offset int64, err error) *Error {
	if callerCtx.Err() != nil || reqCtx.Err() != nil || !isDecodeError(err) {
		return c.transportError(callerCtx, reqCtx, endpoint, err)
	}
	return &Error{Class: ClassRetry, Endpoint: endpoint, StatusCode: status,
		Msg: fmt.Sprintf("response body is truncated or not valid JSON (near byte %d, after %d records)", offset, n),
		Err: err}
}

// response is everything classify looks at; a plain struct so the table test can build one
// without a server.
type response struct {
	Endpoint   string
	StatusCode int
	Header     http.Header
	Body       []byte              // a bounded prefix, or the whole single object for a 200 '{'
	Now        time.Time           // our clock (the one DTAPI-Date was made from)
	scrub      func([]byte) []byte // removes tokens; nil in tests that have none
}

// classify maps one HTTP response to nil (ok) or an *Error. It is the only place that decides
// ok/retry/auth/permanent for a response.
func classify(r response) *Error {
	html := isHTML(r.Header, r.Body)
	body, location := r.Body, []byte(r.Header.Get("Location"))
	if r.scrub != nil {
		body, location = r.scrub(body), r.scrub(location)
	}
	e := &Error{Endpoint: r.Endpoint, StatusCode: r.StatusCode}
	if d, err := http.ParseTime(r.Header.Get("Date")); err == nil {
		e.ApplianceTime = d.UTC()
	}
	status := r.StatusCode

	switch {
	case status >= 300 && status < 400:
		loc := locationPath(r.Header.Get("Location"))
		switch {
		case loc == "/403" || strings.HasPrefix(loc, "/403/"):
			e.Class, e.Err = ClassAuth, ErrPermission
			e.Msg = "token lacks permission for " + r.Endpoint + "; grant the API token access to it on the appliance (System Config > API tokens)"
		case loc == "/login" || strings.HasPrefix(loc, "/login/"):
			e.Class, e.Err = ClassAuth, ErrNotAuthenticated
			e.Msg = "not authenticated or unknown endpoint (redirected to /login); check the tokens and that DARKTRACE_URL points at the appliance API"
		default:
			e.Class = ClassPermanent
			e.Msg = fmt.Sprintf("unexpected HTTP %d redirect to %s; check DARKTRACE_URL (scheme, host, proxy)", status, quoteSnippet(location))
		}
		return e

	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		e.Class = ClassRetry
		e.RetryAfter = retryAfter(r.Header, e.ApplianceTime, r.Now)
		what := "appliance server error"
		switch status {
		case http.StatusRequestTimeout:
			what = "appliance timed out the request"
		case http.StatusTooManyRequests:
			what = "appliance is rate limiting"
		}
		e.Msg = fmt.Sprintf("HTTP %d: %s (%s)", status, what, describeBody(body, html))
		if e.RetryAfter > 0 {
			e.Msg += "; the appliance asks to wait " + e.RetryAfter.String()
		}
		return e

	case status == http.StatusBadRequest:
		switch apiErrorValue(body) {
		case "API SIGNATURE ERROR":
			e.Class, e.Err = ClassAuth, ErrSignature
			e.Msg = "signature rejected: check DARKTRACE_PUBLIC_TOKEN/DARKTRACE_PRIVATE_TOKEN (a pair from the same token, no stray whitespace)"
		case "API DATE ERROR":
			e.Class, e.Err = ClassAuth, ErrClockSkew
			// The Date header has second resolution: compare at that resolution so an exact
			// one-hour offset reads "1h0m0s", not "59m59s".
			ours := r.Now.UTC().Truncate(time.Second)
			if !e.ApplianceTime.IsZero() {
				off := ours.Sub(e.ApplianceTime)
				if off < 0 {
					off = -off
				}
				e.Msg = fmt.Sprintf("clock skew: appliance time is %s while ours is %s (off by %s); fix NTP",
					e.ApplianceTime.Format(time.RFC3339), ours.Format(time.RFC3339), off.Round(time.Second))
			} else {
				e.Msg = fmt.Sprintf("clock skew: the appliance rejected our DTAPI-Date (ours is %s, it accepts ±30m of its clock) and sent no Date header to compare; fix NTP",
					ours.Format(time.RFC3339))
			}
		default:
			e.Class = ClassPermanent
			e.Msg = fmt.Sprintf("HTTP 400: appliance rejected the request (%s); check the query parameters", describeBody(body, html))
		}
		return e

	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Class, e.Err = ClassAuth, ErrNotAuthenticated
		e.Msg = fmt.Sprintf("HTTP %d: the appliance (or a proxy in front of it) refused the request (%s); check the tokens and their permissions", status, describeBody(body, html))
		return e

	case status == http.StatusNotFound && html:
		// The API answers an unknown path in JSON: an HTML 404 page comes from something else
		// (a web server, a proxy, the wrong port or a path in the URL).
		e.Class = ClassPermanent
		e.Msg = fmt.Sprintf("HTTP 404 (%s): this is not a Darktrace appliance API; check DARKTRACE_URL (the appliance's base URL, e.g. https://appliance.example, no path) and any proxy in between", describeBody(body, html))
		return e

	case status >= 400:
		e.Class = ClassPermanent
		e.Msg = fmt.Sprintf("HTTP %d (%s)", status, describeBody(body, html))
		return e

	case status < 200:
		e.Class = ClassRetry
		e.Msg = fmt.Sprintf("unexpected HTTP %d", status)
		return e
	}

	// 2xx.
	if html {
		if isLoginPage(body) {
			e.Class, e.Err = ClassAuth, ErrNotAuthenticated
			e.Msg = "the appliance answered with its HTML login page instead of JSON: not authenticated (a proxy may be following its redirect, or DARKTRACE_URL points at the web UI)"
		} else {
			e.Class = ClassPermanent
			e.Msg = "expected JSON, got an HTML page (" + describeBody(body, true) + "); check DARKTRACE_URL and any proxy in between"
		}
		return e
	}
	if v, ok := errorObject(body); ok {
		switch v {
		case "API SIGNATURE ERROR", "API DATE ERROR":
			// Same meaning as the 400 form; keep one wording.
			r.StatusCode = http.StatusBadRequest
			e2 := classify(r)
			e2.StatusCode = status
			return e2
		}
		e.Class = ClassPermanent
		e.Msg = "appliance returned an error: " + quoteSnippet([]byte(v)) + "; check the query parameters"
		return e
	}
	return nil
}
