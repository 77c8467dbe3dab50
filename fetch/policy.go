package fetch

import (
	"errors"
	"net/http"

	"github.com/dtforward/dtforward/darktrace"
)

// Failure is what a failed request means for whoever walks windows (the live loop, backfill).
type Failure int

const (
	// Retryable: try the same request again after a delay (network, 5xx, 429).
	Retryable Failure = iota
	// TooLarge: the response holds more records than the cap; only a smaller window helps.
	TooLarge
	// TooSlow: our timeout or a proxy's; a smaller window may help, the same one again may not.
	TooSlow
	// Auth: the credentials or the clock are wrong; every other request fails the same way
	// until a person acts.
	Auth
	// Permanent: a request that will not succeed as it is (a 4xx other than the above, a body
	// that is not JSON).
	Permanent
)

// Classify says what a failed request means. The live loop retries everything but splits
// TooLarge and repeated TooSlow windows; backfill stops at Auth, splits TooLarge and Retryable
// windows after a few attempts, and records the rest as failed windows.
func Classify(err error) Failure {
	if errors.Is(err, ErrTooLarge) {
		return TooLarge
	}
	var de *darktrace.Error
	if errors.Is(err, darktrace.ErrTimeout) ||
		(errors.As(err, &de) && (de.StatusCode == http.StatusGatewayTimeout || de.StatusCode == http.StatusRequestTimeout)) {
		return TooSlow
	}
	switch darktrace.ClassOf(err) {
	case darktrace.ClassAuth:
		return Auth
	case darktrace.ClassRetry:
		return Retryable
	}
	return Permanent
}
