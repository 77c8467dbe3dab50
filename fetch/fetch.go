// Package fetch is the request path from a poller to an appliance: the one Fetcher interface
// and every wrapper around *darktrace.Client. For a live poll the chain reads, outermost first:
//
//	Capped  (capped.go)  abort a response past the per-window record cap (ErrTooLarge)
//	Room    (this file)  wait while the destination's sink queue is full
//	Group   (shared.go)  share an identical request among one appliance's destinations
//	Limited (this file)  take one of the process-wide request slots (FIFO, limit.go), within the
//	                     appliance's requests a minute (PerMinute, rate.go)
//	*darktrace.Client    sign, send, stream the JSON array
//
// Halve (halve.go) walks a window in halves when a response is too large or too slow (backfill);
// Walk (halve.go) walks it in pieces sized from the density just seen, halving a piece that is
// too large (the live loop); and
// Classify (policy.go) is the one place deciding what a failed request means for the live loop
// and for backfill.
package fetch

import (
	"context"
	"time"

	"github.com/dtforward/dtforward/internal/retry"
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
// for each request, within the appliance's bound of requests a minute (Rate). Slots are granted
// in arrival order, so a slow or huge appliance holds at most one and cannot starve the others;
// a request waiting for its appliance's Rate holds no slot; time spent queueing does not count
// against the request timeout.
type Limited struct {
	Next  Fetcher
	Slots *FIFO
	// Rate, when set, bounds the requests sent to this appliance in any minute
	// (DARKTRACE_MAX_REQUESTS_PER_MINUTE).
	Rate *PerMinute
	// Sent, when set, is called for every request sent (the dtforward_api_requests_total
	// count of one appliance).
	Sent func()
	// Throttled, when set, is called with the time a request waited for Rate
	// (dtforward_api_throttled_seconds_total).
	Throttled func(time.Duration)
}

// StreamDated implements Fetcher.
func (l Limited) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	var waited time.Duration
	for {
		if err := l.Slots.Acquire(ctx); err != nil {
			l.throttled(waited)
			return time.Time{}, err
		}
		// The send time is taken with the slot in hand, so a request that then queued for a
		// slot cannot land in a minute that is already full.
		wait := l.Rate.take()
		if wait == 0 {
			break
		}
		l.Slots.Release()
		start := time.Now()
		ok := retry.Sleep(ctx, wait)
		waited += time.Since(start)
		if !ok {
			l.throttled(waited)
			return time.Time{}, ctx.Err()
		}
	}
	defer l.Slots.Release()
	l.throttled(waited)
	if l.Sent != nil {
		l.Sent()
	}
	return l.Next.StreamDated(ctx, pathAndQuery, fn)
}

func (l Limited) throttled(d time.Duration) {
	if d > 0 && l.Throttled != nil {
		l.Throttled(d)
	}
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
