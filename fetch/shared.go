// Shared requests: a Group lets the pollers of one appliance share identical API requests. With
// several sinks, each sink has its own poller per appliance (its own progress), and the
// pollers of sinks that are caught up ask for exactly the same window at about the same time:
// a Group sends that request once and streams each record to every poller that asked.
//
// A poller that asks while the request is streaming joins it (a singleflight). One that asks
// later within the TTL is served the recorded response: a sink's poller that came back from
// an outage keeps its own phase, and with window ends on a common grid (cmd aligns them) it
// asks for the very windows the others asked for moments earlier. The recording is bounded in
// bytes; a larger response (a catch-up window) is not kept. A poller that is behind asks for
// other windows and is served alone.
package fetch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Group shares identical requests among the members pollers of one appliance.
type Group struct {
	next    Fetcher
	members int
	gather  time.Duration
	ttl     time.Duration
	budget  int // most bytes of recorded responses kept

	mu     sync.Mutex
	calls  map[string]*call
	cache  map[string]*recorded
	cached int // bytes in cache

	requests atomic.Int64 // requests sent to next
	joined   atomic.Int64 // requests served by another member's request as it streamed
	replayed atomic.Int64 // requests served from a recorded response
}

// Options tune a Group; zero values turn the feature off.
type GroupOptions struct {
	// Gather is how long the first poller to ask for a query waits for the others to ask for
	// the same (it starts at once when all have).
	Gather time.Duration
	// TTL is how long a complete response is served again to pollers asking the same query.
	TTL time.Duration
	// Budget bounds the bytes of responses kept for TTL; a response that does not fit is not kept.
	Budget int
}

// recorded is a complete response kept for pollers that ask later.
type recorded struct {
	items [][]byte
	size  int
	until time.Time
	date  time.Time // the answer's Date
}

// NewGroup returns a Group over next for members pollers.
func NewGroup(next Fetcher, members int, o GroupOptions) *Group {
	return &Group{next: next, members: max(members, 1), gather: o.Gather, ttl: o.TTL, budget: o.Budget,
		calls: map[string]*call{}, cache: map[string]*recorded{}}
}

// fromCacheLocked returns the live recording of pathAndQuery, dropping expired ones. g.mu is held.
func (g *Group) fromCacheLocked(pathAndQuery string, now time.Time) *recorded {
	for q, r := range g.cache {
		if !now.Before(r.until) {
			delete(g.cache, q)
			g.cached -= r.size
		}
	}
	return g.cache[pathAndQuery]
}

// call is one request being gathered or streamed.
type call struct {
	subs    []*subscriber
	full    chan struct{} // closed when every member has joined
	started bool
	done    chan struct{}
	date    time.Time // the answer's Date, set before done is closed
}

// subscriber is one poller's part in a call.
type subscriber struct {
	fn   func(raw []byte) error
	mu   sync.Mutex // held while fn runs, so a poller that gives up is never called after
	gone bool       // its context ended; no more calls
	err  error      // its fn failed, or the request's error
}

// deliver passes raw to the subscriber unless it failed or left; it reports whether the
// subscriber still wants records.
func (s *subscriber) deliver(raw []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || s.err != nil {
		return false
	}
	s.err = s.fn(raw)
	return s.err == nil
}

var errNobodyLeft = errors.New("fetch: every poller of the shared request left")

// Stream implements Fetcher. Records reach fn in the order of the response, from the
// caller's goroutine or another member's; fn is never called after Stream returns.
func (g *Group) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	_, err := g.StreamDated(ctx, pathAndQuery, fn)
	return err
}

// StreamDated implements Fetcher: Stream, returning the Date of the answer the records
// came from (zero when next cannot tell it).
func (g *Group) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	s := &subscriber{fn: fn}
	waited := false
	for {
		g.mu.Lock()
		if r := g.fromCacheLocked(pathAndQuery, time.Now()); r != nil && ctx.Err() == nil {
			g.mu.Unlock()
			g.replayed.Add(1)
			for _, raw := range r.items {
				if err := fn(raw); err != nil {
					return time.Time{}, err
				}
			}
			return r.date, ctx.Err()
		}
		c := g.calls[pathAndQuery]
		if c != nil && !c.started {
			c.subs = append(c.subs, s)
			if len(c.subs) == g.members {
				close(c.full)
			}
			g.mu.Unlock()
			g.joined.Add(1)
			select {
			case <-c.done:
				return c.date, s.err
			case <-ctx.Done():
				s.mu.Lock()
				s.gone = true
				s.mu.Unlock()
				return time.Time{}, ctx.Err()
			}
		}
		if c == nil || waited || g.ttl <= 0 {
			break // g.mu stays held
		}
		// The same request is streaming already: wait for its recording rather than send it
		// again (if it was too large to keep, send it after all).
		g.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		waited = true
	}
	if g.members == 1 {
		g.mu.Unlock()
		g.requests.Add(1)
		return g.next.StreamDated(ctx, pathAndQuery, fn)
	}
	c := &call{subs: []*subscriber{s}, full: make(chan struct{}), done: make(chan struct{})}
	g.calls[pathAndQuery] = c
	g.mu.Unlock()

	t := time.NewTimer(g.gather)
	select {
	case <-c.full:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	g.mu.Lock()
	c.started = true
	subs := c.subs
	g.mu.Unlock()

	// The request runs under the first poller's context: all pollers share the process's
	// context, so when it ends (shutdown) it ends for all of them.
	g.requests.Add(1)
	var rec *recorded
	if g.ttl > 0 && g.budget > 0 {
		rec = &recorded{}
	}
	date, err := g.next.StreamDated(ctx, pathAndQuery, func(raw []byte) error {
		if rec != nil {
			if rec.size+len(raw) > g.budget {
				rec = nil // too large to keep; the pollers are served all the same
			} else {
				rec.items = append(rec.items, append([]byte(nil), raw...))
				rec.size += len(raw)
			}
		}
		live := 0
		for _, sub := range subs {
			if sub.deliver(raw) {
				live++
			}
		}
		if live == 0 {
			return errNobodyLeft
		}
		return nil
	})
	for _, sub := range subs {
		sub.mu.Lock()
		if sub.err == nil && !errors.Is(err, errNobodyLeft) {
			sub.err = err
		}
		sub.mu.Unlock()
	}
	g.mu.Lock()
	if g.calls[pathAndQuery] == c {
		delete(g.calls, pathAndQuery)
	}
	c.date = date
	if rec != nil && err == nil {
		rec.date = date
		g.fromCacheLocked("", time.Now()) // drop expired recordings first
		if g.cached+rec.size <= g.budget {
			rec.until = time.Now().Add(g.ttl)
			if old := g.cache[pathAndQuery]; old != nil {
				g.cached -= old.size
			}
			g.cache[pathAndQuery] = rec
			g.cached += rec.size
		}
	}
	g.mu.Unlock()
	close(c.done)
	if s.err == nil && err != nil && !errors.Is(err, errNobodyLeft) {
		return date, err
	}
	return date, s.err
}

// Requests returns how many requests the group sent.
func (g *Group) Requests() int64 { return g.requests.Load() }

// Joined returns how many requests were served by another poller's identical request, as it
// streamed or from its recording.
func (g *Group) Joined() int64 { return g.joined.Load() + g.replayed.Load() }
