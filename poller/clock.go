package poller

import (
	"context"
	"time"
)

// DatedFetcher is a Fetcher that also tells the appliance's clock when it answered (the HTTP
// Date header); *darktrace.Client is one. With it, no window is ever taken as complete beyond
// the appliance's own "now", whatever our clock says.
type DatedFetcher interface {
	Fetcher
	StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error)
}

// streamDated streams through f, with the response date when f can tell it.
func streamDated(ctx context.Context, f Fetcher, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	if df, ok := f.(DatedFetcher); ok {
		return df.StreamDated(ctx, pathAndQuery, fn)
	}
	return time.Time{}, f.Stream(ctx, pathAndQuery, fn)
}
