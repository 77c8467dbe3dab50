package httpsink

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"junk", 0},
		{"999999", MaxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if got := RetryAfter(h, now); got != c.want {
			t.Errorf("Retry-After %q: got %s, want %s", c.v, got, c.want)
		}
	}
}

func TestGzipRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	body := bytes.Repeat([]byte(`{"a":1}`), 1000)
	z, err := Gzip(&buf, body)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("round trip: %v, %d bytes back of %d", err, len(got), len(body))
	}
}

func TestClientDoesNotFollowRedirectsAndReadsErrors(t *testing.T) {
	followed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/elsewhere":
			followed = true
		case "/busy":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "server\n  busy")
		default:
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	defer srv.Close()
	c, err := NewClient(tlsconfig.Options{}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if followed || resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed=%v status=%d; a redirect must not carry the token elsewhere", followed, resp.StatusCode)
	}
	resp, err = c.Get(srv.URL + "/busy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	se := ReadError("test", resp, time.Now())
	if se.Code != 503 || se.Body != "server busy" || !se.Temporary() || sink.RetryAfterOf(se) != 3*time.Second {
		t.Fatalf("got %+v", se)
	}
}
