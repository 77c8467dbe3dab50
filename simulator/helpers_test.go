package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/darktrace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testPub  = "2485df5aaa4278ed80a133e91ae58c5ccccb7862"
	testPriv = "417f88cedddd679e76cdf4eb0a3ef3d99a99f203"
)

// fixedClock is a settable clock for deterministic tests.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

// start creates a simulator with test tokens, serves it on loopback HTTP and closes it at the
// end of the test.
func start(t *testing.T, o Options) (*Simulator, *apiClient) {
	t.Helper()
	if o.PublicToken == "" {
		o.PublicToken, o.PrivateToken = testPub, testPriv
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	u, err := s.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{t: t, base: u, pub: o.PublicToken, priv: o.PrivateToken, now: s.Now,
		hc: &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect}}
	t.Cleanup(c.hc.CloseIdleConnections)
	return s, c
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// apiClient signs requests with darktrace.Signature directly, as the appliance expects.
type apiClient struct {
	t         *testing.T
	base      string
	pub, priv string
	now       func() time.Time // the date to sign with
	hc        *http.Client
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

// get signs pathAndQuery (sent as is) and returns the reply.
func (c *apiClient) get(pathAndQuery string) reply {
	c.t.Helper()
	date := darktrace.FormatDate(c.now())
	return c.do(pathAndQuery, map[string]string{
		"DTAPI-Token": c.pub, "DTAPI-Date": date,
		"DTAPI-Signature": darktrace.Signature(c.priv, c.pub, pathAndQuery, date),
	})
}

func (c *apiClient) do(pathAndQuery string, headers map[string]string) reply {
	c.t.Helper()
	r, err := c.try(pathAndQuery, headers)
	if err != nil {
		c.t.Fatalf("GET %s: %v", pathAndQuery, err)
	}
	return r
}

func (c *apiClient) try(pathAndQuery string, headers map[string]string) (reply, error) {
	req, err := http.NewRequest(http.MethodGet, c.base+pathAndQuery, nil)
	if err != nil {
		return reply{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: body}, err
}

// ok asserts a 200 and decodes the JSON body into v.
func (r reply) ok(t *testing.T, v any) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("status %d, body %.300s", r.code, r.body)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %.300s: %v", r.body, err)
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }
