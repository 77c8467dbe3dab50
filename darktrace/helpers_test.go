package darktrace

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Test tokens: distinctive, so a leak into any error text is easy to spot.
const (
	testPublic  = "PUBLICtoken0123456789abcdef0123456789ab"
	testPrivate = "PRIVATEtoken0123456789abcdef0123456789a"
)

// testNow is the client clock in tests: a non-UTC zone, so a DTAPI-Date built from local time
// instead of UTC would be caught.
var testNow = time.Date(2026, 11, 23, 18, 30, 0, 0, time.FixedZone("UTC+5", 5*3600))

// newTestServer starts a real loopback HTTP server and a client for it; both are stopped when
// the test ends.
func newTestServer(t *testing.T, h http.Handler, mod ...func(*Config)) (*httptest.Server, *Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := Config{
		URL:          srv.URL,
		PublicToken:  testPublic,
		PrivateToken: testPrivate,
		AllowHTTP:    true,
		Timeout:      time.Minute, // bounds a failure only
		Now:          func() time.Time { return testNow },
	}
	for _, f := range mod {
		f(&cfg)
	}
	c := newTestClient(t, cfg)
	return srv, c
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}
