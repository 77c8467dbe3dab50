package fetch

import (
	"testing"
	"time"
)

// TestPerMinuteSlidingWindow: n requests go at once, the next waits until the first is a
// minute (and the second to spare) old, and a request refused records nothing.
func TestPerMinuteSlidingWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := NewPerMinute(3)
	p.now = func() time.Time { return now }
	for i := range 3 {
		if w := p.take(); w != 0 {
			t.Fatalf("request %d waits %s within the bound", i, w)
		}
		now = now.Add(10 * time.Second)
	}
	// Sent at 0, 10, 20 s; now 30 s.
	if w := p.take(); w != rateSpan-30*time.Second {
		t.Fatalf("fourth request waits %s, want %s", w, rateSpan-30*time.Second)
	}
	if w := p.take(); w != rateSpan-30*time.Second {
		t.Fatalf("a refused request was recorded: the next waits %s", w)
	}
	now = now.Add(rateSpan - 30*time.Second)
	if w := p.take(); w != 0 {
		t.Fatalf("request at %s after the first waits %s", rateSpan, w)
	}
	if w := p.take(); w != 10*time.Second {
		t.Fatalf("next waits %s, want 10s (the second request's turn)", w)
	}
	var none *PerMinute
	if none.take() != 0 {
		t.Fatal("no bound waited")
	}
}
