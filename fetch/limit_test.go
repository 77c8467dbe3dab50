package fetch

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond; the FIFO's queue length is the only way to know a goroutine is parked.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFIFOOrder: waiters get the slot in the order they queued, and a releaser that comes
// straight back queues behind them instead of barging in.
func TestFIFOOrder(t *testing.T) {
	f := NewFIFO(1)
	ctx := context.Background()
	if err := f.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := f.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			f.Release()
		})
		waitFor(t, "waiter to queue", func() bool { return f.Waiting() == i+1 })
	}
	// The holder releases and immediately wants the slot again: it must come last.
	f.Release()
	if err := f.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]int(nil), order...)
	mu.Unlock()
	if len(got) != 5 {
		t.Fatalf("re-acquire barged ahead of the queue: only %v ran first", got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("order = %v, want 0..4", got)
		}
	}
	f.Release()
	wg.Wait()
	if f.InUse() != 0 {
		t.Fatalf("InUse = %d after everyone released", f.InUse())
	}
}

// TestFIFOCancel: a cancelled waiter leaves the queue holding nothing, and the ones behind it
// still get their turn.
func TestFIFOCancel(t *testing.T) {
	var f FIFO // zero value: one slot
	bg := context.Background()
	if err := f.Acquire(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	errc := make(chan error, 1)
	go func() { errc <- f.Acquire(ctx) }()
	waitFor(t, "first waiter", func() bool { return f.Waiting() == 1 })
	got := make(chan struct{})
	go func() {
		if err := f.Acquire(bg); err == nil {
			close(got)
		}
	}()
	waitFor(t, "second waiter", func() bool { return f.Waiting() == 2 })
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cancelled Acquire = %v, want context.Canceled", err)
	}
	if f.Waiting() != 1 {
		t.Fatalf("Waiting = %d after cancel, want 1", f.Waiting())
	}
	f.Release()
	<-got
	f.Release()
	if f.InUse() != 0 {
		t.Fatalf("InUse = %d, want 0", f.InUse())
	}
	// An already-cancelled context with a free slot still gets it: the slot is free now.
	if err := f.Acquire(ctx); err != nil {
		t.Fatalf("free slot refused: %v", err)
	}
	f.Release()
}

// TestFIFOCapacity: never more than n holders at once.
func TestFIFOCapacity(t *testing.T) {
	f := NewFIFO(3)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := f.Acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur++
			peak = max(peak, cur)
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			cur--
			mu.Unlock()
			f.Release()
		})
	}
	wg.Wait()
	if peak > 3 || peak == 0 {
		t.Fatalf("peak concurrent holders = %d, want 1..3", peak)
	}
}

func TestReleaseWithoutAcquirePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewFIFO(2).Release()
}
