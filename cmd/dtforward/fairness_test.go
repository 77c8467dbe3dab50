package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/fetch"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/route"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/sink"
)

// gateSink records every message it accepts, in order. While gate is open (non-nil), a Send
// whose first line contains hold blocks until the gate is closed or ctx ends.
type gateSink struct {
	mu    sync.Mutex
	lines []string
	sends []int // size of every Send

	hold    string
	gate    chan struct{}
	blocked chan struct{} // closed when a Send first blocks at the gate
	once    sync.Once
}

func (s *gateSink) Send(ctx context.Context, msgs []sink.Message) error {
	if s.gate != nil && len(msgs) > 0 && strings.Contains(string(msgs[0].Line), s.hold) {
		s.once.Do(func() { close(s.blocked) })
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends = append(s.sends, len(msgs))
	for _, m := range msgs {
		s.lines = append(s.lines, string(m.Line))
	}
	return nil
}

func (s *gateSink) Close() error { return nil }

func (s *gateSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

func alertsOf(appliance string, n int) []*alert.Alert {
	out := make([]*alert.Alert, n)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = &alert.Alert{Kind: alert.KindBreach, ID: strconv.Itoa(i + 1), Appliance: appliance,
			Time: t0, Created: t0, Name: "Test::Model", Severity: 5, Score: 0.5, Priority: alert.NoPriority}
	}
	return out
}

func jsonFormatter(t *testing.T) formatter.Formatter {
	t.Helper()
	f, err := formatter.New("json", formatter.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// labelsSeen is a formatter that renders an alert as its appliance and labels, so the test sees
// what the real formatters are handed.
type labelsSeen struct{}

func (labelsSeen) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	return fmt.Appendf(dst, "%s %v", a.Appliance, a.Labels), nil
}

// TestDeliveryStampsApplianceLabels (issue 13 item 2): each appliance's labels from the
// appliances file reach the formatter on every alert of that appliance, and only of that one.
func TestDeliveryStampsApplianceLabels(t *testing.T) {
	s := &gateSink{}
	d := route.NewDelivery(labelsSeen{}, s, zerolog.Nop())
	a := route.Labelled{Next: d, Labels: map[string]string{"customer": "acme", "site": "lon"}}
	b := route.Labelled{Next: d}
	ctx := context.Background()
	if err := a.Deliver(ctx, alertsOf("dt-a", route.Slice+3)); err != nil {
		t.Fatal(err)
	}
	if err := b.Deliver(ctx, alertsOf("dt-b", 2)); err != nil {
		t.Fatal(err)
	}
	lines := s.snapshot()
	if len(lines) != route.Slice+5 {
		t.Fatalf("%d lines, want %d", len(lines), route.Slice+5)
	}
	for i, l := range lines {
		want := "dt-a map[customer:acme site:lon]"
		if i >= route.Slice+3 {
			want = "dt-b map[]"
		}
		if l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
}

// TestFetchWaitsWhileTheSinkIsFull: with the sink stuck and its queue full, appliances stop
// fetching (fetched batches would only pile up in memory); the fetch proceeds once the sink
// drains, and gives up when its context ends.
func TestFetchWaitsWhileTheSinkIsFull(t *testing.T) {
	var requests atomic.Int32
	_, url := startSim(t, simulator.Options{Seed: 70, History: time.Hour, HistoryCount: 3,
		OnRequest: func(simulator.Request) { requests.Add(1) }})
	app := config.Appliance{Name: "dt", URL: url, PublicToken: "pub-0123456789abcdef", PrivateToken: "priv-fedcba9876543210", AllowHTTP: true}
	c, err := newClient(app, &config.Config{DarktraceTimeout: 5 * time.Second}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()

	s := &gateSink{hold: `"appliance":"dt-a"`, gate: make(chan struct{}), blocked: make(chan struct{})}
	d := route.NewDelivery(jsonFormatter(t), s, zerolog.Nop())
	f := fetch.Room{Next: fetch.Limited{Next: c, Slots: fetch.NewFIFO(4)}, Backlog: d, Room: 2}
	errs := make(chan error, 3)
	go func() { errs <- d.Deliver(context.Background(), alertsOf("dt-a", 1)) }()
	<-s.blocked
	for i := range 2 {
		go func() { errs <- d.Deliver(context.Background(), alertsOf(fmt.Sprintf("dt-%d", i), 1)) }()
		waitUntil(t, 10*time.Second, "the slice to queue", func() bool { return d.Queued() == i+1 })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.StreamDated(ctx, "/modelbreaches", func([]byte) error { return nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetch with a full sink queue = %v, want it to wait until its context ends", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the appliance while the sink queue was full", n)
	}
	fetched := make(chan error, 1)
	go func() {
		_, err := f.StreamDated(context.Background(), "/modelbreaches", func([]byte) error { return nil })
		fetched <- err
	}()
	close(s.gate)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-fetched; err != nil {
		t.Fatalf("fetch after the sink drained: %v", err)
	}
	if requests.Load() != 1 {
		t.Fatalf("%d requests, want 1", requests.Load())
	}
}
