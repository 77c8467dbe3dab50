package darktrace

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// What classify reads from an error answer: the API's error text, Retry-After, a redirect's
// target, an HTML login page, and a short safe description of the body for the message.

// apiErrorValue returns the error text of a Darktrace error body: the string value in a small
// object whose key is the path segment ({"modelbreaches": "API SIGNATURE ERROR"}), or "error".
// Matching is on the value, normalized, because the key varies by endpoint.
func apiErrorValue(body []byte) string {
	v, _ := errorObject(body)
	return v
}

// errorObject recognises an error body: a JSON object of at most three keys holding "error",
// or a string value that is one of the API's error words. Records have many keys and no such
// values, so a real single-record response is never mistaken for an error.
func errorObject(body []byte) (string, bool) {
	b := bytes.TrimSpace(body)
	if len(b) == 0 || b[0] != '{' || len(b) > snippetLimit {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || len(m) == 0 || len(m) > 3 {
		return "", false
	}
	for _, raw := range m {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		switch w := strings.ToUpper(strings.TrimSpace(s)); w {
		case "API SIGNATURE ERROR", "API DATE ERROR", "ERROR":
			return w, true
		}
	}
	if raw, ok := m["error"]; ok {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return string(raw), true
	}
	return "", false
}

// retryAfter parses Retry-After as delay-seconds or an HTTP-date. A date is measured against
// the response's own Date header when there is one (both are the server's clock), else ours.
func retryAfter(h http.Header, serverNow, ourNow time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		ref := serverNow
		if ref.IsZero() {
			ref = ourNow
		}
		d = t.Sub(ref)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// locationPath returns the path of a Location header (absolute or relative).
func locationPath(loc string) string {
	u, err := url.Parse(strings.TrimSpace(loc))
	if err != nil {
		return ""
	}
	return u.Path
}

// isHTML trusts the body over the Content-Type header: proxies label JSON as text/html and
// HTML as application/json often enough.
func isHTML(h http.Header, body []byte) bool {
	if b := bytes.TrimSpace(body); len(b) > 0 {
		return b[0] == '<'
	}
	return strings.HasPrefix(strings.ToLower(h.Get("Content-Type")), "text/html")
}

func isLoginPage(body []byte) bool {
	low := bytes.ToLower(body)
	return bytes.Contains(low, []byte("login")) || bytes.Contains(low, []byte("log in")) || bytes.Contains(low, []byte("sign in"))
}

// describeBody summarizes a body for an error message: the title of an HTML page, the error
// value of a JSON error, or a short quoted prefix. Never the whole body.
func describeBody(body []byte, html bool) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return "empty body"
	}
	if html {
		low := bytes.ToLower(b)
		if i := bytes.Index(low, []byte("<title>")); i >= 0 {
			rest := b[i+len("<title>"):]
			if j := bytes.Index(bytes.ToLower(rest), []byte("</title>")); j >= 0 {
				return "HTML page " + quoteSnippet(bytes.TrimSpace(rest[:j]))
			}
		}
		return "HTML page"
	}
	if v, ok := errorObject(b); ok {
		return "error " + quoteSnippet([]byte(v))
	}
	return "body " + quoteSnippet(b)
}

// quoteSnippet renders at most 200 bytes of untrusted text as a Go-quoted string: control
// characters and invalid UTF-8 are escaped, so it cannot break or forge a log line.
func quoteSnippet(b []byte) string {
	const max = 200
	cut := len(b) > max
	if cut {
		b = b[:max]
	}
	s := strconv.QuoteToGraphic(string(b))
	if cut {
		s += "…"
	}
	return s
}
