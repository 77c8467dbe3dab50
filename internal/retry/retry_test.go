package retry

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	wantCaps := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, c := range wantCaps {
		c *= time.Millisecond
		d := b.Next()
		if d < c/2 || d > c {
			t.Fatalf("attempt %d: delay %s outside [%s, %s]", i, d, c/2, c)
		}
	}
	b = Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("a new Backoff's first delay %s, want ≤ Min", d)
	}
}
