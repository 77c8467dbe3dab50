// Package sharedfetch lets the pollers of one appliance share identical API requests. With
// several sinks, each sink has its own poller per appliance (its own progress), and the
// pollers of sinks that are caught up ask for exactly the same window at about the same time:
// a Group sends that request once and streams each record to every poller that asked.
//
// Nothing is cached or buffered: a poller that asks after the shared request started sends
// its own. A poller that is behind (its sink was down) asks for other windows and is served
// alone, so it never slows the others down by more than the short gathering wait.
package sharedfetch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Fetcher is poller.Fetcher: GET pathAndQuery and call fn with each element of the array.
type Fetcher interface {
	Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error
}

// Group shares identical requests among the members pollers of one appliance.
type Group struct {
	next    Fetcher
	members int
	gather  time.Duration

	mu    sync.Mutex
	calls map[string]*call

	requests atomic.Int64 // requests sent to next
	joined   atomic.Int64 // requests served by another member's request
}

// New returns a Group over next for members pollers. The first poller to ask for a query
// waits up to gather for the others to ask for the same (it starts at once when all have).
func New(next Fetcher, members int, gather time.Duration) *Group {
	return &Group{next: next, members: max(members, 1), gather: gather, calls: map[string]*call{}}
}

// call is one request being gathered or streamed.
type call struct {
	subs    []*subscriber
	full    chan struct{} // closed when every member has joined
	started bool
	done    chan struct{}
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

var errNobodyLeft = errors.New("sharedfetch: every poller left")

// Stream implements Fetcher. Records reach fn in the order of the response, from the
// caller's goroutine or another member's; fn is never called after Stream returns.
func (g *Group) Stream(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) error {
	s := &subscriber{fn: fn}
	g.mu.Lock()
	if c := g.calls[pathAndQuery]; c != nil && !c.started {
		c.subs = append(c.subs, s)
		if len(c.subs) == g.members {
			close(c.full)
		}
		g.mu.Unlock()
		g.joined.Add(1)
		select {
		case <-c.done:
			return s.err
		case <-ctx.Done():
			s.mu.Lock()
			s.gone = true
			s.mu.Unlock()
			return ctx.Err()
		}
	}
	if g.members == 1 {
		g.mu.Unlock()
		g.requests.Add(1)
		return g.next.Stream(ctx, pathAndQuery, fn)
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
	delete(g.calls, pathAndQuery)
	subs := c.subs
	g.mu.Unlock()

	// The request runs under the first poller's context: all pollers share the process's
	// context, so when it ends (shutdown) it ends for all of them.
	g.requests.Add(1)
	err := g.next.Stream(ctx, pathAndQuery, func(raw []byte) error {
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
	close(c.done)
	if s.err == nil && err != nil && !errors.Is(err, errNobodyLeft) {
		return err
	}
	return s.err
}

// Requests returns how many requests the group sent.
func (g *Group) Requests() int64 { return g.requests.Load() }

// Joined returns how many requests were served by another poller's identical request.
func (g *Group) Joined() int64 { return g.joined.Load() }
