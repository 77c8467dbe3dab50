package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTooLarge aborts a response that carries more records than its cap: the API does not
// paginate, so the window is fetched in halves instead (Halve).
var ErrTooLarge = errors.New("response holds more records than the per-window cap")

// Capped aborts a response once it carries more than Max records.
type Capped struct {
	Next Fetcher
	Max  int
}

// StreamDated implements Fetcher.
func (c Capped) StreamDated(ctx context.Context, pathAndQuery string, fn func(raw []byte) error) (time.Time, error) {
	n := 0
	return c.Next.StreamDated(ctx, pathAndQuery, func(raw []byte) error {
		if n++; n > c.Max {
			return fmt.Errorf("%w (%d)", ErrTooLarge, c.Max)
		}
		return fn(raw)
	})
}
