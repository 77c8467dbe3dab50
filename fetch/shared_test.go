package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// records serves n numbered records per request and counts requests.
type records struct {
	n     int
	calls atomic.Int32
}

func (r *records) Stream(ctx context.Context, q string, fn func([]byte) error) error {
	r.calls.Add(1)
	for i := range r.n {
		if err := fn(fmt.Appendf(nil, "%s#%d", q, i)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (r *records) StreamDated(ctx context.Context, q string, fn func([]byte) error) (time.Time, error) {
	return time.Time{}, r.Stream(ctx, q, fn)
}

func collect(t *testing.T, g *Group, q string) ([]string, error) {
	t.Helper()
	var got []string
	err := g.Stream(context.Background(), q, func(raw []byte) error {
		got = append(got, string(raw))
		return nil
	})
	return got, err
}

// shared are the options cmd/dtforward gives a Group (a poll interval's TTL, a bounded budget).
var shared = GroupOptions{TTL: time.Minute, Budget: 1 << 20}

// Pollers asking at the same moment: one request, its records served to all, each in order
// (whoever sends it, the others wait for it and are served its recording).
func TestIdenticalQueriesShareOneRequest(t *testing.T) {
	r := &records{n: 5}
	g := NewGroup(r, 3, shared)
	var wg sync.WaitGroup
	results := make([][]string, 3)
	for i := range 3 {
		wg.Go(func() {
			got, err := collect(t, g, "/modelbreaches?starttime=1&endtime=2")
			if err != nil {
				t.Error(err)
			}
			results[i] = got
		})
	}
	wg.Wait()
	if r.calls.Load() != 1 || g.Requests() != 1 || g.Joined() != 2 {
		t.Fatalf("requests %d (group %d, joined %d), want 1 shared by 3", r.calls.Load(), g.Requests(), g.Joined())
	}
	for i, got := range results {
		if len(got) != 5 || got[0] != "/modelbreaches?starttime=1&endtime=2#0" || got[4] != "/modelbreaches?starttime=1&endtime=2#4" {
			t.Errorf("poller %d got %q", i, got)
		}
	}
}

func TestDifferentQueriesAreNotShared(t *testing.T) {
	r := &records{n: 2}
	g := NewGroup(r, 2, shared)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			got, err := collect(t, g, fmt.Sprintf("/q%d", i))
			if err != nil || len(got) != 2 || got[0] != fmt.Sprintf("/q%d#0", i) {
				t.Errorf("poller %d: %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if r.calls.Load() != 2 || g.Joined() != 0 {
		t.Fatalf("requests %d, joined %d; want 2 separate", r.calls.Load(), g.Joined())
	}
}

// One poller's failing callback (its own problem) must not cost the others their records:
// when it sent the request, the request ends with its callback and is not recorded, and the
// others send it again.
func TestOneFailingPollerDoesNotStopTheOthers(t *testing.T) {
	r := &records{n: 4}
	g := NewGroup(r, 2, shared)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	var good []string
	var badErr error
	wg.Go(func() {
		badErr = g.Stream(context.Background(), "/q", func([]byte) error { return boom })
	})
	wg.Go(func() {
		var err error
		good, err = collect(t, g, "/q")
		if err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if !errors.Is(badErr, boom) || len(good) != 4 || r.calls.Load() > 2 {
		t.Fatalf("failing poller %v, other got %d records over %d requests", badErr, len(good), r.calls.Load())
	}
}

// A poller whose context ends while it waits for a shared request returns at once and is
// never called.
func TestLeavingPollerIsNotCalledAfterReturning(t *testing.T) {
	gate := make(chan struct{})
	f := fetchFunc(func(ctx context.Context, q string, fn func([]byte) error) error {
		<-gate
		return fn([]byte("x"))
	})
	g := NewGroup(f, 2, shared)
	leader := make(chan error, 1)
	go func() { leader <- g.Stream(context.Background(), "/q", func([]byte) error { return nil }) }()
	// Ask only once the leader's request is streaming: the poller would wait for it.
	for {
		g.mu.Lock()
		_, ok := g.calls["/q"]
		g.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var called atomic.Bool
	if err := g.Stream(ctx, "/q", func([]byte) error { called.Store(true); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("leaving poller: %v", err)
	}
	close(gate)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
	if called.Load() || g.Joined() != 0 {
		t.Fatalf("the poller that left was called (%v) or counted as served (%d)", called.Load(), g.Joined())
	}
}

type fetchFunc func(ctx context.Context, q string, fn func([]byte) error) error

func (f fetchFunc) Stream(ctx context.Context, q string, fn func([]byte) error) error {
	return f(ctx, q, fn)
}

func (f fetchFunc) StreamDated(ctx context.Context, q string, fn func([]byte) error) (time.Time, error) {
	return time.Time{}, f(ctx, q, fn)
}

// A poller that asks for the same query after the request finished (it polls at another
// phase) is served the recording within the TTL; one that does not fit the budget is not kept.
func TestLaterPollerIsServedTheRecording(t *testing.T) {
	r := &records{n: 3}
	g := NewGroup(r, 2, GroupOptions{TTL: time.Minute, Budget: 1 << 10})
	first, err := collect(t, g, "/q")
	if err != nil {
		t.Fatal(err)
	}
	second, err := collect(t, g, "/q")
	if err != nil {
		t.Fatal(err)
	}
	if r.calls.Load() != 1 || g.Joined() != 1 || fmt.Sprint(first) != fmt.Sprint(second) || len(second) != 3 {
		t.Fatalf("requests %d, joined %d; first %q, second %q", r.calls.Load(), g.Joined(), first, second)
	}

	big := &records{n: 100} // 100 records of ~5 bytes: more than a 64-byte budget
	g = NewGroup(big, 2, GroupOptions{TTL: time.Minute, Budget: 64})
	for range 2 {
		if got, err := collect(t, g, "/q"); err != nil || len(got) != 100 {
			t.Fatalf("%d records, %v", len(got), err)
		}
	}
	if big.calls.Load() != 2 {
		t.Fatalf("a response over the budget was kept: %d requests for 2 polls", big.calls.Load())
	}

	expired := &records{n: 1}
	g = NewGroup(expired, 2, GroupOptions{TTL: time.Millisecond, Budget: 1 << 10})
	for range 2 {
		if _, err := collect(t, g, "/q"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if expired.calls.Load() != 2 {
		t.Fatalf("a recording was served after its TTL: %d requests", expired.calls.Load())
	}
}

// A poller that asks while the same request is already streaming waits for it and is served
// its recording: one request.
func TestPollerArrivingMidStreamIsServedTheRecording(t *testing.T) {
	gate := make(chan struct{})
	var calls atomic.Int32
	f := fetchFunc(func(ctx context.Context, q string, fn func([]byte) error) error {
		calls.Add(1)
		if err := fn([]byte("a")); err != nil {
			return err
		}
		<-gate
		return fn([]byte("b"))
	})
	g := NewGroup(f, 2, GroupOptions{TTL: time.Minute, Budget: 1 << 10})
	first := make(chan []string, 1)
	go func() {
		got, _ := collect(t, g, "/q")
		first <- got
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan []string, 1)
	go func() {
		got, _ := collect(t, g, "/q")
		second <- got
	}()
	time.Sleep(20 * time.Millisecond) // let the second caller find the request streaming
	close(gate)
	a, b := <-first, <-second
	if calls.Load() != 1 || fmt.Sprint(a) != "[a b]" || fmt.Sprint(b) != "[a b]" {
		t.Fatalf("requests %d; first %q, second %q", calls.Load(), a, b)
	}
}

// dated is records that also tells the answer's Date, a different one per request.
type dated struct{ records }

func (d *dated) StreamDated(ctx context.Context, q string, fn func([]byte) error) (time.Time, error) {
	err := d.Stream(ctx, q, fn)
	return time.Unix(1_700_000_000+int64(d.calls.Load()), 0), err
}

// TestDatePassesThrough: every poller a Group serves learns the Date of the answer its records
// came from — replayed from the recording while or after it streamed, or alone — because the poller never
// takes a window as complete past it (a lost Date silently turned that protection off).
func TestDatePassesThrough(t *testing.T) {
	d := &dated{records{n: 3}}
	g := NewGroup(d, 2, shared)
	q := "/modelbreaches?starttime=1&endtime=2"
	var wg sync.WaitGroup
	dates := make([]time.Time, 2)
	for i := range 2 {
		wg.Go(func() {
			dt, err := g.StreamDated(context.Background(), q, func([]byte) error { return nil })
			if err != nil {
				t.Error(err)
			}
			dates[i] = dt
		})
	}
	wg.Wait()
	want := time.Unix(1_700_000_001, 0)
	if !dates[0].Equal(want) || !dates[1].Equal(want) {
		t.Fatalf("pollers asking together got dates %v, want both %v", dates, want)
	}
	replayed, err := g.StreamDated(context.Background(), q, func([]byte) error { return nil })
	if err != nil || !replayed.Equal(want) || d.calls.Load() != 1 {
		t.Fatalf("replay: date %v err %v after %d requests; want %v from the one request", replayed, err, d.calls.Load(), want)
	}
	alone := NewGroup(d, 1, GroupOptions{})
	if dt, err := alone.StreamDated(context.Background(), q, func([]byte) error { return nil }); err != nil || !dt.Equal(time.Unix(1_700_000_002, 0)) {
		t.Fatalf("single member: date %v err %v, want the second request's", dt, err)
	}
}
