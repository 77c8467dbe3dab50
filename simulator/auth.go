package simulator

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// dateSkew is how far DTAPI-Date may be from the appliance clock.
const dateSkew = 30 * time.Minute

// dateLayouts are the DTAPI-Date forms the appliance accepts. Values without an offset are UTC.
var dateLayouts = []string{
	"20060102T150405",
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05.999999999",
	time.RFC3339Nano, // with "Z" or an offset, optional fraction
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05Z07:00",
}

// parseAPIDate parses a DTAPI-Date value.
func parseAPIDate(v string) (time.Time, bool) {
	for _, l := range dateLayouts {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// signedPath rebuilds what the client signed: the path, then "?" and the query with each key
// and value percent-decoded, in the order sent. The appliance does not sort parameters, so a
// client that signs a sorted query but sends another order fails here as it would there.
func signedPath(r *http.Request) (string, bool) {
	p := r.URL.Path
	if r.URL.RawQuery == "" {
		if r.URL.ForceQuery {
			return p + "?", true
		}
		return p, true
	}
	var b strings.Builder
	b.WriteString(p)
	b.WriteByte('?')
	for i, part := range strings.Split(r.URL.RawQuery, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		k, v, hasEq := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", false
		}
		b.WriteString(dk)
		if hasEq {
			dv, err := url.QueryUnescape(v)
			if err != nil {
				return "", false
			}
			b.WriteByte('=')
			b.WriteString(dv)
		}
	}
	return b.String(), true
}

// authResult is the outcome of checking a request's DTAPI headers.
type authResult int

const (
	authOK authResult = iota
	authMissing
	authDate
	authSignature
)

// authenticate checks the DTAPI headers against the appliance clock now and returns the token
// on success.
func (s *Simulator) authenticate(r *http.Request, now time.Time) (*token, authResult) {
	pub := r.Header.Get("DTAPI-Token")
	date := r.Header.Get("DTAPI-Date")
	sig := r.Header.Get("DTAPI-Signature")
	if pub == "" || date == "" || sig == "" {
		return nil, authMissing
	}
	t, ok := parseAPIDate(date)
	if !ok {
		return nil, authDate
	}
	if d := now.Sub(t); d > dateSkew || d < -dateSkew {
		return nil, authDate
	}
	s.mu.RLock()
	tok := s.tokens[pub]
	s.mu.RUnlock()
	if tok == nil {
		return nil, authSignature
	}
	p, ok := signedPath(r)
	if !ok {
		return nil, authSignature
	}
	want := darktrace.Signature(tok.private, pub, p, date)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(sig))) != 1 {
		return nil, authSignature
	}
	return tok, authOK
}

// allows reports whether the token may call endpoint (e.g. "antigena/summary").
func (t *token) allows(endpoint string) bool {
	if t.allowed == nil {
		return true
	}
	for _, a := range t.allowed {
		if endpointMatches(a, endpoint) {
			return true
		}
	}
	return false
}

// endpointMatches reports whether pattern names endpoint: "" and "*" match everything, a name
// matches itself and the endpoints below it ("antigena" matches "antigena/summary").
func endpointMatches(pattern, endpoint string) bool {
	pattern = strings.Trim(pattern, "/")
	return pattern == "" || pattern == "*" || pattern == endpoint || strings.HasPrefix(endpoint, pattern+"/")
}
