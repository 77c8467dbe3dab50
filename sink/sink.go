// Package sink ships formatted lines to a SIEM: syslog over UDP, TCP or TLS, stdout, or a file.
package sink

import (
	"context"

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
	// transport; on error the caller resends the whole batch (at-least-once). Send honours ctx
	// and its own write deadlines: it never blocks forever.
	Send(ctx context.Context, msgs []Message) error
	// Close releases the connection or file. Send is not called after Close.
	Close() error
}
