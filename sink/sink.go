// Package sink ships formatted lines to a SIEM: syslog over UDP, TCP or TLS, stdout, or a file.
package sink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dtforward/dtforward/alert"
)

// Message is one formatted line with the metadata the syslog header needs.
type Message struct {
	Severity int    // alert severity 0..10; mapped to a syslog severity by the sink
	Kind     string // alert kind, the RFC 5424 MSGID
	Line     []byte // one formatted line, without a trailing newline
	// Alert is the record the line was made from, or nil (tests, raw lines). Line-oriented
	// sinks ignore it; it lets a sink name the record in an error or a dead letter, and lets a
	// structured sink (HTTP collectors) take time, appliance and ids without parsing Line.
	Alert *alert.Alert
}

// Sink delivers messages. Send and Close are not called concurrently with each other.
type Sink interface {
	// Send delivers msgs in order. It returns nil only when every message was handed to the
	// transport; on error the caller resends the whole batch (at-least-once), except after a
	// *RejectedError, which says what was accepted. Send honours ctx
	// and its own write deadlines: it never blocks forever.
	Send(ctx context.Context, msgs []Message) error
	// Close releases the connection or file. Send is not called after Close.
	Close() error
}

// Checker is implemented by sinks that can prove their receiver takes what they would send
// (reachable, healthy, credentials accepted) without sending a message; "check" calls it.
type Checker interface {
	Check(ctx context.Context) error
}

// RejectedError is returned by Send when the receiver refused one message of the batch for
// good (a RELP "500" answer, an HTTP 400 naming the event): resending it cannot succeed.
// Messages before Index were accepted by the receiver; messages after it were not (or not
// knowingly) delivered. The caller sets the refused message aside with Reason and sends the
// rest again, so one poison message cannot hold back the alerts behind it.
type RejectedError struct {
	Index  int    // position of the refused message in the batch given to Send
	Reason string // the receiver's answer, for the dead letter and the log
	// Next, when above Index, says the receiver also accepted the messages between Index and
	// Next (a RELP window answered after the refusal): the caller resends from Next, so
	// nothing acknowledged is sent twice. 0 means Index+1.
	Next int
	// Alert is the refused message's record, when the sink knows it, to name it in Error.
	Alert *alert.Alert
}

func (e *RejectedError) Error() string {
	if a := e.Alert; a != nil {
		return fmt.Sprintf("the receiver refused %s %s of appliance %s: %s", a.Kind, a.ID, a.Appliance, e.Reason)
	}
	return fmt.Sprintf("the receiver refused message %d of the batch: %s", e.Index+1, e.Reason)
}

// RetryAfterError is implemented by errors that carry how long the receiver asked us to wait
// (HTTP 429/503 Retry-After). The caller waits at least that long before resending.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// RetryAfterOf returns the wait the receiver asked for somewhere in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var ra RetryAfterError
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

// SettingError is one problem an HTTP sink's Config.Validate finds, naming the setting as
// the user wrote it (SIEM_HEC_TOKEN, or the key of a sink in SIEM_SINKS_FILE).
type SettingError struct {
	Setting, Problem string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Problem }

// ConfigError marks a failure that only an operator can fix (HTTP 401/403: wrong token or
// secret, a missing role, a wrong collection rule id). Retrying keeps failing; the caller
// retries slowly and reports Setting so the message names what to change.
type ConfigError struct {
	Setting string // the variable to check, e.g. SIEM_HEC_TOKEN
	Err     error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v (check %s)", e.Err, e.Setting)
}

func (e *ConfigError) Unwrap() error { return e.Err }
