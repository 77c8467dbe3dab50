package source

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// fakeAPI is a minimal in-memory appliance behind the Fetcher interface, for unit tests of
// the read path (a copy of the poller tests' fake). The proof tests run against the real simulator over HTTP.
type fakeAPI struct {
	mu       sync.Mutex
	breaches []darktrace.Breach
	actions  []darktrace.Action
	extra    []string // raw elements appended to every response (malformed records)
	queries  []string
	failNext int   // fail this many requests
	failErr  error // with this error
	delay    time.Duration

	inflight, maxInflight atomic.Int32
}

func (f *fakeAPI) addBreach(b darktrace.Breach) {
	f.mu.Lock()
	f.breaches = append(f.breaches, b)
	f.mu.Unlock()
}

func (f *fakeAPI) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.queries = append(f.queries, pathAndQuery)
	if f.failNext > 0 {
		f.failNext--
		f.mu.Unlock()
		return f.failErr
	}
	path, rawq, _ := strings.Cut(pathAndQuery, "?")
	q, _ := url.ParseQuery(rawq)
	start, _ := strconv.ParseInt(q.Get("starttime"), 10, 64)
	end, _ := strconv.ParseInt(q.Get("endtime"), 10, 64)
	var out [][]byte
	switch path {
	case "/modelbreaches":
		// Reverse order, as a server may send it: the poller must sort.
		for i := len(f.breaches) - 1; i >= 0; i-- {
			b := f.breaches[i]
			if c := b.Created(); c >= start && c <= end {
				raw, _ := json.Marshal(b)
				out = append(out, raw)
			}
		}
	case "/antigena":
		for _, a := range f.actions {
			raw, _ := json.Marshal(a)
			out = append(out, raw)
		}
	case "/aianalyst/incidentevents":
	default:
		f.mu.Unlock()
		return errors.New("fake: unknown path " + path)
	}
	for _, e := range f.extra {
		out = append(out, []byte(e))
	}
	f.mu.Unlock()
	for _, raw := range out {
		if err := fn(raw); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// StreamDated implements Fetcher; the fake answers carry no Date.
func (f *fakeAPI) StreamDated(ctx context.Context, q string, fn func(raw []byte) error) (time.Time, error) {
	return time.Time{}, f.Stream(ctx, q, fn)
}

func breach(pbid int64, timeMS, createdMS int64) darktrace.Breach {
	b := darktrace.Breach{PBID: pbid, Time: timeMS, CreationTime: createdMS, Score: 0.5}
	b.Model.Name = "Anomalous Connection::Data Sent to Rare Domain"
	b.Model.PID = 762
	b.Model.Tags = []string{"AP: Egress"}
	b.Device = darktrace.Device{DID: 7, IP: "10.0.0.7", Hostname: "ws-7"}
	return b
}
