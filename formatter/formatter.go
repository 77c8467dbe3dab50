// Package formatter turns an alert.Alert into exactly one line of CEF, LEEF, JSON,
// Darktrace-native JSON or OCSF (whose mapping is package formatter/ocsf).
package formatter

import "github.com/dtforward/dtforward/alert"

// Formatter renders alerts. Implementations are safe for concurrent use.
type Formatter interface {
	// Append appends exactly one line for a to dst (no trailing newline, no raw CR or LF) and
	// returns the extended buffer. An error means a cannot be rendered at all; the caller sets
	// the alert aside (dead letter) with its id and the error.
	Append(dst []byte, a *alert.Alert) ([]byte, error)
}
