// Package fetch is the request path from a poller to an appliance: the one Fetcher interface
// and every wrapper around *darktrace.Client. For a live poll the chain reads, outermost first:
//
//	Capped  (capped.go)  abort a response past the per-window record cap (ErrTooLarge)
//	Room    (this file)  wait while the destination's sink queue is full
//	Group   (shared.go)  share an identical request among one appliance's destinations
//	Limited (this file)  take one of the process-wide request slots (FIFO, limit.go)
//	*darktrace.Client    sign, send, stream the JSON array
//
// Halve (halve.go) walks a window in halves when a response is too large or too slow, and
// Classify (policy.go) is the one place deciding what a failed request means for the live loop
// and for backfill.
package fetch

import (
	"context"
	"time"
)

// Fetcher GETs pathAndQuery (sent and signed exactly as given) and calls fn with each element
// of the JSON array returned.
type Fetcher interface {
	// StreamDated returns the appliance's clock when it answered (the HTTP Date header; zero
	// when the answer had none): no window is ever taken as complete beyond the appliance's
	// own "now", whatever our clock says. Part of the one interface, so that a wrapper cannot
	// drop it without failing to compile.
	StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error)
}

// Limited takes a slot of the process-wide request limit (DARKTRACE_MAX_CONCURRENT_REQUESTS)
// for each request. Slots are granted in arrival order, so a slow or huge appliance holds at
// most one and cannot starve the others; time spent queueing does not count against the
// request timeout.
type Limited struct {
	Next  Fetcher
	Slots *FIFO
	// Sent, when set, is called for every request sent (the dtforward_api_requests_total
	// count of one appliance).
	Sent func()
}

// StreamDated implements Fetcher.
func (l Limited) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if err := l.Slots.Acquire(ctx); err != nil {
		return time.Time{}, err
	}
	defer l.Slots.Release()
	if l.Sent != nil {
		l.Sent()
	}
	return l.Next.StreamDated(ctx, pathAndQuery, fn)
}

// Backlog is a destination's queue (route.Delivery): WaitRoom returns once fewer than room
// slices wait for its sink.
type Backlog interface {
	WaitRoom(ctx context.Context, room int) error
}

// Room waits while its sink's queue is full before fetching: fetching more than the sink can
// take only costs memory. It sits in front of the shared Group, so a stuck sink holds back only
// its own pollers.
type Room struct {
	Next    Fetcher
	Backlog Backlog
	Room    int // most slices queued at the sink before fetches wait (SinkRoom)
}

// StreamDated implements Fetcher.
func (r Room) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if err := r.Backlog.WaitRoom(ctx, r.Room); err != nil {
		return time.Time{}, err
	}
	return r.Next.StreamDated(ctx, pathAndQuery, fn)
}

// SinkRoom is how many slices may wait for a sink before appliances stop fetching: enough to
// keep group commits full, few enough that a slow collector holds a bounded amount of fetched
// data (at most SinkRoom + maxRequests batches).
func SinkRoom(maxRequests int) int { return max(2*maxRequests, 32) }
