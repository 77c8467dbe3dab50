package poller

import (
	"testing"
	"time"
)

// TestStaggerDelay: first polls are spread evenly and deterministically over the interval
// (capped at a minute), and a lone appliance starts at once.
func TestStaggerDelay(t *testing.T) {
	if d := StaggerDelay(0, 1, time.Minute); d != 0 {
		t.Errorf("single appliance waits %s", d)
	}
	const n = 300
	prev := time.Duration(-1)
	for i := range n {
		d := StaggerDelay(i, n, 10*time.Second)
		if d <= prev || d >= 10*time.Second {
			t.Fatalf("appliance %d starts after %s (previous %s); want increasing within the 10s interval", i, d, prev)
		}
		if d != StaggerDelay(i, n, 10*time.Second) {
			t.Fatal("not deterministic")
		}
		prev = d
	}
	if last := StaggerDelay(n-1, n, time.Hour); last >= MaxStagger || last < MaxStagger*9/10 {
		t.Errorf("with a 1h interval the last of %d appliances starts after %s; want just under %s", n, last, MaxStagger)
	}
}
