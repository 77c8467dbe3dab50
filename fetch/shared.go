// Shared requests: a Group lets the pollers of one appliance share identical API requests. With
// several sinks, each sink has its own poller per appliance (its own progress), and the
// pollers of sinks that are caught up ask for exactly the same window at about the same time:
// a Group sends that request once and serves its recorded response to every other poller that
// asks for it.
//
// A poller that asks while the request is streaming waits for it and is served the recording;
// one that asks later within the TTL is served it at once: a sink's poller that came back from
// an outage keeps its own phase, and with window ends on a common grid (cmd aligns them) it
// asks for the very windows the others asked for moments earlier. No poller waits for the
// others before a request starts: they ask within milliseconds of each other, and one that
// asks a moment later is served the recording, so a wait would only delay every poll. The
// recording is bounded in bytes; a larger response (a catch-up window) is not kept, and each
// poller asking for it is served by a request of its own, as is a poller that is behind and
// asks for other windows.
package fetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Group shares identical requests among the members pollers of one appliance.
type Group struct {
	next    Fetcher
	members int
	ttl     time.Duration
	budget  int // most bytes of recorded responses kept

	mu     sync.Mutex
	calls  map[string]chan struct{} // requests streaming, closed when each ends
	cache  map[string]*recorded
	cached int // bytes in cache

	requests atomic.Int64 // requests sent to next
	replayed atomic.Int64 // requests served from a recorded response
}

// GroupOptions tune a Group; zero values turn the recording off.
type GroupOptions struct {
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
	return &Group{next: next, members: max(members, 1), ttl: o.TTL, budget: o.Budget,
		calls: map[string]chan struct{}{}, cache: map[string]*recorded{}}
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

// Stream implements Fetcher.
func (g *Group) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	_, err := g.StreamDated(ctx, pathAndQuery, fn)
	return err
}

// StreamDated implements Fetcher: Stream, returning the Date of the answer the records
// came from (zero when next cannot tell it), the recorded one's when they were replayed.
// Records reach fn in the order of the response, from the caller's goroutine.
func (g *Group) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	record := g.ttl > 0 && g.budget > 0 && g.members > 1
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
		done := g.calls[pathAndQuery]
		if done == nil || waited || !record {
			break // g.mu stays held
		}
		// The same request is streaming already: wait for its recording rather than send it
		// again (if it was too large to keep, or failed, send it after all).
		g.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		waited = true
	}
	if !record {
		g.mu.Unlock()
		g.requests.Add(1)
		return g.next.StreamDated(ctx, pathAndQuery, fn)
	}
	done := make(chan struct{})
	g.calls[pathAndQuery] = done
	g.mu.Unlock()

	g.requests.Add(1)
	rec := &recorded{}
	date, err := g.next.StreamDated(ctx, pathAndQuery, func(raw []byte) error {
		if rec != nil {
			if rec.size+len(raw) > g.budget {
				rec = nil // too large to keep; this poller is served all the same
			} else {
				rec.items = append(rec.items, append([]byte(nil), raw...))
				rec.size += len(raw)
			}
		}
		return fn(raw)
	})
	g.mu.Lock()
	if g.calls[pathAndQuery] == done {
		delete(g.calls, pathAndQuery)
	}
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
	close(done)
	return date, err
}

// Requests returns how many requests the group sent.
func (g *Group) Requests() int64 { return g.requests.Load() }

// Joined returns how many requests were served by another poller's identical request, from its
// recording.
func (g *Group) Joined() int64 { return g.replayed.Load() }
