// Package httpsink holds what every HTTP-based sink (Splunk HEC, Microsoft Sentinel's Logs
// Ingestion API, OTLP/HTTP) needs the same way: a client with the project's TLS defaults and
// the environment's proxy, gzip bodies, and one reading of an HTTP answer into the sink
// package's error types, so each sink states only what its service's answers mean.
package httpsink

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

// MaxRetryAfter caps a Retry-After so that a hostile or buggy collector cannot stall a sink
// for days.
const MaxRetryAfter = 15 * time.Minute

// maxErrorBody is how much of an error answer is kept for the log and the dead letter.
const maxErrorBody = 1024

// NewClient returns an HTTP client with TLS 1.2+, verification on unless the user opted out,
// the custom CA of o, HTTPS_PROXY/NO_PROXY from the environment, and no redirects: a
// redirect would carry the token to wherever the collector points.
func NewClient(o tlsconfig.Options, timeout time.Duration) (*http.Client, error) {
	tc, err := tlsconfig.Client(o)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = tc
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
}

// Gzip returns body compressed, reusing buf.
func Gzip(buf *bytes.Buffer, body []byte) ([]byte, error) {
	buf.Reset()
	zw := gzip.NewWriter(buf)
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RetryAfter reads a Retry-After header (delta-seconds or an HTTP date), capped at
// MaxRetryAfter; 0 when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// StatusError is an answer other than success. It implements sink.RetryAfterError.
type StatusError struct {
	Service string // e.g. "Splunk HEC", for the message
	Code    int
	Body    string // the start of the answer's body, for the log
	Wait    time.Duration
}

func (e *StatusError) Error() string {
	return Answered(e.Service, fmt.Sprintf("HTTP %d", e.Code), e.Body, e.Wait)
}

// Answered is how every HTTP-native sink words a refusal: who answered what, the detail the
// service gave, and the wait it asked for.
func Answered(service, status, detail string, wait time.Duration) string {
	msg := service + " answered " + status
	if detail != "" {
		msg += ": " + detail
	}
	if wait > 0 {
		msg += fmt.Sprintf(" (asked to wait %s)", wait)
	}
	return msg
}

// RetryAfter implements sink.RetryAfterError.
func (e *StatusError) RetryAfter() time.Duration { return e.Wait }

// Temporary reports whether the same request may succeed later (timeouts, throttling, server
// errors), as opposed to a refusal of the request itself.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusRequestTimeout || e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// ReadError turns a non-success answer into a *StatusError and drains the body so that the
// connection can be reused. The caller still closes resp.Body.
func ReadError(service string, resp *http.Response, now time.Time) *StatusError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return &StatusError{
		Service: service,
		Code:    resp.StatusCode,
		Body:    strings.Join(strings.Fields(string(b)), " "),
		Wait:    RetryAfter(resp.Header, now),
	}
}

// NotBefore remembers until when a service asked not to be called (Retry-After, gRPC's
// RetryInfo), so that no request leaves before then, whoever retries. The zero value is
// ready; it is safe for concurrent use.
type NotBefore struct {
	mu sync.Mutex
	t  time.Time
}

// Set records that the service asked to wait until t.
func (n *NotBefore) Set(t time.Time) {
	n.mu.Lock()
	n.t = t
	n.mu.Unlock()
}

// Wait returns once the time asked for has passed (now is the current time), or with ctx's
// error.
func (n *NotBefore) Wait(ctx context.Context, now time.Time) error {
	n.mu.Lock()
	wait := n.t.Sub(now)
	n.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
