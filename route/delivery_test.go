package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
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

// waitUntil polls cond until it holds; the long timeout only bounds a broken test, it is no
// timing assertion.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeliverySharesTheSinkFairly (issue 11 item 4): appliance A hands over a huge batch while
// the collector is slow; B's small batch, queued while A's first slice is stuck in the sink,
// is written right after that slice, not after A's whole backlog. Ordering is asserted, not
// timing: the sink stays blocked until B is queued.
func TestDeliverySharesTheSinkFairly(t *testing.T) {
	const huge = 20 * Slice
	s := &gateSink{hold: `"appliance":"dt-a"`, gate: make(chan struct{}), blocked: make(chan struct{})}
	d := NewDelivery(jsonFormatter(t), s, zerolog.Nop())
	ctx := context.Background()

	errA := make(chan error, 1)
	go func() { errA <- d.Deliver(ctx, alertsOf("dt-a", huge)) }()
	<-s.blocked // A holds the sink, stuck in its first write
	errB := make(chan error, 1)
	go func() { errB <- d.Deliver(ctx, alertsOf("dt-b", 10)) }()
	waitUntil(t, "B to queue for the sink", func() bool { return d.Queued() == 1 })
	close(s.gate) // the collector catches up
	if err := <-errB; err != nil {
		t.Fatal(err)
	}
	if err := <-errA; err != nil {
		t.Fatal(err)
	}

	lines := s.snapshot()
	if len(lines) != huge+10 {
		t.Fatalf("%d lines, want %d", len(lines), huge+10)
	}
	firstB := -1
	nextA := 0
	for i, l := range lines {
		switch {
		case strings.Contains(l, `"appliance":"dt-b"`):
			if firstB < 0 {
				firstB = i
			}
		case strings.Contains(l, `"appliance":"dt-a"`):
			// A's lines stay in order whatever is interleaved.
			nextA++
			if want := fmt.Sprintf(`"id":"%d"`, nextA); !strings.Contains(l, want) {
				t.Fatalf("line %d: A's lines out of order: want %s in %s", i, want, l)
			}
		}
	}
	// B queued while A's first slice was in the sink, so exactly one slice of A goes first.
	if firstB != Slice {
		t.Fatalf("B's first line is line %d of %d; want it right after A's first slice of %d (A must not hold the sink for its whole batch)",
			firstB, len(lines), Slice)
	}
	for i, n := range s.sends {
		if n > Slice {
			t.Fatalf("send %d carried %d lines, more than a slice of %d", i, n, Slice)
		}
	}
}

// TestDeliveryWaitHonoursContext: an appliance waiting for a sink held by a stuck send gives up
// when its context ends instead of waiting forever (shutdown must not hang on the sink lock).
func TestDeliveryWaitHonoursContext(t *testing.T) {
	s := &gateSink{hold: `"appliance":"dt-a"`, gate: make(chan struct{}), blocked: make(chan struct{})}
	d := NewDelivery(jsonFormatter(t), s, zerolog.Nop())
	errA := make(chan error, 1)
	go func() { errA <- d.Deliver(context.Background(), alertsOf("dt-a", 3)) }()
	<-s.blocked
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Deliver(ctx, alertsOf("dt-b", 3)) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("B's Deliver = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(10 * time.Second):
		close(s.gate)
		<-errA
		t.Fatal("B's Deliver ignored its context while waiting for the sink")
	}
	close(s.gate)
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	for _, l := range s.snapshot() {
		if strings.Contains(l, `"appliance":"dt-b"`) {
			t.Fatalf("B's cancelled batch was written: %s", l)
		}
	}
}

// TestDeliveryGroupsQueuedSlices: slices that queue while the sink is busy go out together in
// one write (one fsync for a file sink), in arrival order.
func TestDeliveryGroupsQueuedSlices(t *testing.T) {
	s := &gateSink{hold: `"appliance":"dt-a"`, gate: make(chan struct{}), blocked: make(chan struct{})}
	d := NewDelivery(jsonFormatter(t), s, zerolog.Nop())
	ctx := context.Background()
	errs := make(chan error, 11)
	go func() { errs <- d.Deliver(ctx, alertsOf("dt-a", 5)) }()
	<-s.blocked
	for i := range 10 {
		go func() { errs <- d.Deliver(ctx, alertsOf(fmt.Sprintf("dt-%d", i), 20)) }()
		waitUntil(t, "the slice to queue", func() bool { return d.Queued() == i+1 })
	}
	close(s.gate)
	for range 11 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	sends := append([]int(nil), s.sends...)
	s.mu.Unlock()
	if len(sends) != 2 || sends[0] != 5 || sends[1] != 200 {
		t.Fatalf("sink writes %v; want A's 5 lines, then the 10 queued slices of 20 in one write", sends)
	}
	lines := s.snapshot()
	for i := range 10 {
		if l := lines[5+20*i]; !strings.Contains(l, fmt.Sprintf(`"appliance":"dt-%d"`, i)) {
			t.Fatalf("line %d = %s; want dt-%d's first line (arrival order)", 5+20*i, l, i)
		}
	}
}
