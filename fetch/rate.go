package fetch

import (
	"sync"
	"time"
)

// PerMinute bounds the requests sent to one appliance in any 60-second span
// (DARKTRACE_MAX_REQUESTS_PER_MINUTE). It remembers the send times of the last n requests: a
// request may go when the oldest of them is a minute old. A sliding window, not a token bucket
// refilled at n/60 per second: the bound holds for every minute the appliance could look at,
// while a burst of up to n requests (a window walked in halves) still goes at once.
type PerMinute struct {
	mu   sync.Mutex
	sent []time.Time // ring of the last len(sent) send times
	next int         // the oldest entry, overwritten by the next send
	now  func() time.Time
}

// rateSpan is the span PerMinute keeps between a request and the n-th after it: a minute, and a
// second to spare, so that the network's jitter cannot bring two of them within a minute of each
// other at the appliance.
const rateSpan = time.Minute + time.Second

// NewPerMinute returns a bound of n requests a minute (n < 1 is taken as 1).
func NewPerMinute(n int) *PerMinute {
	return &PerMinute{sent: make([]time.Time, max(n, 1)), now: time.Now}
}

// take records a request sent now and returns 0 when the bound allows it; otherwise it records
// nothing and returns how long until it will.
func (p *PerMinute) take() time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// The zero time of an unused entry is always more than a minute ago.
	if wait := p.sent[p.next].Add(rateSpan).Sub(now); wait > 0 {
		return wait
	}
	p.sent[p.next] = now
	p.next = (p.next + 1) % len(p.sent)
	return 0
}
