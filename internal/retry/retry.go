// Package retry is the one retry loop of dtforward: capped exponential backoff with jitter, a
// server's Retry-After honoured, and waits that end with their context. The live loop and
// backfill both retry fetches and deliveries through Policy.Do.
package retry

import (
	"context"
	"errors"
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

// Sleep waits d or until ctx is done; it reports whether the full delay elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
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

// Default backoff bounds, for the live loop and backfill alike.
const (
	DefaultMin = time.Second
	DefaultMax = 60 * time.Second
)

// Bounds returns min and max with the defaults filled in: DefaultMin for a min that is not
// positive, and at least DefaultMax (and min) for a max below min.
func Bounds(minDelay, maxDelay time.Duration) (time.Duration, time.Duration) {
	if minDelay <= 0 {
		minDelay = DefaultMin
	}
	if maxDelay < minDelay {
		maxDelay = max(DefaultMax, minDelay)
	}
	return minDelay, maxDelay
}

// Policy is how often and how patiently an operation is retried.
type Policy struct {
	// Min and Max bound the backoff between attempts.
	Min, Max time.Duration
	// Attempts bounds the attempts in all; 0 retries until success or the context ends.
	Attempts int
	// RetryAfter, when set, extracts a server-requested delay (HTTP 429 Retry-After) from an
	// error; a longer one replaces the backoff delay, capped at 10×Max.
	RetryAfter func(error) time.Duration
}

// stop marks an error that must not be retried.
type stop struct{ err error }

func (s stop) Error() string { return s.err.Error() }

// Stop marks err as final: Do returns it at once instead of retrying.
func Stop(err error) error { return stop{err} }

// Do calls op until it returns nil, returns an error made by Stop (Do returns the error it
// wraps), or has failed Attempts times (Do returns the last error). Between attempts it waits
// the backoff delay, calling onRetry (may be nil) first. When ctx ends, after a failed attempt
// or during a wait, Do returns context.Cause(ctx).
func (p Policy) Do(ctx context.Context, op func() error, onRetry func(attempt int, err error, delay time.Duration)) error {
	bo := Backoff{Min: p.Min, Max: p.Max}
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var s stop
		if errors.As(err, &s) {
			return s.err
		}
		if p.Attempts > 0 && attempt >= p.Attempts {
			return err
		}
		delay := bo.Next()
		if p.RetryAfter != nil {
			if ra := p.RetryAfter(err); ra > delay {
				delay = min(ra, 10*p.Max)
			}
		}
		if onRetry != nil {
			onRetry(attempt, err, delay)
		}
		if !Sleep(ctx, delay) {
			return context.Cause(ctx)
		}
	}
}
