package darktrace

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

// SkippedRecord is an element DecodeStream skipped: it did not decode, or has no usable id.
type SkippedRecord struct {
	Index int
	ID    string
	Err   error
}

// DecodeStream (exported for the external tests) streams pathAndQuery and decodes each element with the source table's decoder for
// T, the way the poller reads a response: fn gets each record with a usable id, bad (may be
// nil) the others with their index and RecordID.
func DecodeStream[T any, PT interface {
	*T
	Record
}](ctx context.Context, c *Client, pathAndQuery string, fn func(rec PT, raw []byte) error, bad func(SkippedRecord)) error {
	var src *Source
	switch any(PT(nil)).(type) {
	case *Breach:
		src, _ = SourceNamed(SourceBreaches)
	case *Action:
		src, _ = SourceNamed(SourceAntigena)
	case *IncidentEvent:
		src, _ = SourceNamed(SourceAIAnalyst)
	}
	i := 0
	return c.Stream(ctx, pathAndQuery, func(raw []byte) error {
		idx := i
		i++
		rec, err := src.Decode(raw, nil)
		if err == nil {
			if k := strings.TrimSpace(rec.RecordKey()); k == "" || k == "0" || strings.HasPrefix(k, "-") {
				err = errors.New("record has no usable id")
			}
		}
		if err != nil {
			if bad != nil {
				bad(SkippedRecord{Index: idx, ID: RecordID(raw), Err: err})
			}
			return nil
		}
		return fn(rec.(PT), raw)
	})
}
