package poller

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff computes capped exponential retry delays with jitter. The zero value is not usable;
// set Min and Max. A Backoff is used by one goroutine.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next attempt: Min·2^n capped at Max, then jittered into
// [d/2, d] so that several sources failing together do not retry in lockstep.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	b.attempt++
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Attempts returns how many delays were handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.attempt }

// Reset starts again at Min after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// sleep waits d or until ctx is done; it reports whether the full delay elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
