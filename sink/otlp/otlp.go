// Package otlp is the OpenTelemetry sink: one OTLP log record per alert, exported to a
// collector over OTLP/HTTP (protobuf or JSON) or OTLP/gRPC, gzip-compressed, with the headers
// the collector's authenticator wants. A batch counts as delivered only when the collector
// answered success for every record of it; records it refuses (an HTTP 400 or gRPC
// INVALID_ARGUMENT for a request, or partial_success naming rejected records) are reported as
// *sink.RejectedError one by one, so the dead-letter policy applies to them and not to the
// records around them.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"

	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// LogsPath is the OTLP/HTTP logs path.
const LogsPath = "/v1/logs"

const (
	service        = "OTLP collector"
	defaultTimeout = 30 * time.Second
	// recordOverhead bounds what grouping adds to a record's size in a request (its field tag
	// and length, a share of the resource and scope): it keeps a request under the limit.
	recordOverhead = 64
)

// exporter sends one export request: over HTTP or gRPC.
type exporter interface {
	// export returns the collector's answer, or an error: *refusedError when the collector
	// refused the request's content, *sink.ConfigError when only an operator can fix it, an
	// error carrying the wait asked for (sink.RetryAfterError) when it is busy, and
	// *unreadAnswer (with an empty answer) when it accepted the request with an answer that
	// is not OTLP's. sent is how many bytes of the request went out (0 when unknown).
	export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (resp *collogspb.ExportLogsServiceResponse, sent int, err error)
	close() error
}

// refusedError is a request the collector refused for its content (HTTP 400 or 413, gRPC
// INVALID_ARGUMENT, or a message over the server's size limit): resending it as it is cannot
// succeed, a part of it may.
type refusedError struct {
	err      error
	tooLarge bool
}

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// Sink is the OTLP sink. It implements sink.Sink and sink.Checker. Send is not called
// concurrently (sink.Sink).
type Sink struct {
	cfg Config
	exp exporter
	b   builder
	log zerolog.Logger

	notBefore httpsink.NotBefore // the collector asked us to wait until then (Retry-After, RetryInfo)
}

// New validates cfg and returns the sink. It does no network I/O (a gRPC connection is made
// by the first request).
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	target, plain, err := cfg.target()
	if err != nil {
		return nil, err
	}
	if plain {
		log.Warn().Str("address", cfg.Endpoint).Msg("the OTLP endpoint is plain http: the headers and the alerts cross the network unencrypted")
	}
	var exp exporter
	if cfg.protocol() == ProtocolGRPC {
		exp, err = newGRPC(&cfg, target, plain)
	} else {
		exp, err = newHTTP(&cfg, target)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.setting("tls_ca_file"), err)
	}
	return &Sink{cfg: cfg, exp: exp, b: builder{format: cfg.Format, version: cfg.Version, now: cfg.Now}, log: log}, nil
}

// Close releases the connections.
func (s *Sink) Close() error { return s.exp.close() }

// Send exports msgs, one log record each, in requests of at most MaxRequestBytes, in order.
// It returns nil only when the collector accepted every record. A record the collector
// refuses is a *sink.RejectedError naming it, returned once every record before it was
// accepted; a busy collector's wait (429, 503, UNAVAILABLE, RESOURCE_EXHAUSTED) is honoured
// before the next request and carried by the error.
func (s *Sink) Send(ctx context.Context, msgs []sink.Message) error {
	if err := s.notBefore.Wait(ctx, s.cfg.Now()); err != nil {
		return err
	}
	recs := make([]*logspb.LogRecord, len(msgs))
	for i := range msgs {
		recs[i] = s.b.record(&msgs[i])
	}
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) {
			n := proto.Size(recs[end]) + recordOverhead
			if end > start && size+n > s.cfg.MaxRequestBytes {
				break
			}
			size += n
			end++
		}
		if err := s.export(ctx, msgs, recs, start, end); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// export sends records [lo, hi) in one request. A request refused for its content is split
// down to the record the collector refuses; a partial success that rejected records has
// them found the same way, one record per request.
func (s *Sink) export(ctx context.Context, msgs []sink.Message, recs []*logspb.LogRecord, lo, hi int) error {
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: s.b.logs(msgs[lo:hi], recs[lo:hi])}
	resp, sent, err := s.exp.export(ctx, req)
	if sent > 0 && s.cfg.Hooks.Sent != nil {
		s.cfg.Hooks.Sent(hi-lo, sent)
	}
	var refused *refusedError
	var unread *unreadAnswer
	if errors.As(err, &unread) {
		s.log.Warn().Err(err).Int("records", hi-lo).
			Msg("the OTLP collector accepted a request with an answer dtforward cannot read (HTTP 2xx is success); any records it rejected in that answer cannot be known")
		err = nil
	}
	switch {
	case err == nil:
		ps := resp.GetPartialSuccess()
		if ps.GetRejectedLogRecords() <= 0 {
			if msg := ps.GetErrorMessage(); msg != "" {
				s.log.Warn().Str("warning", msg).Msg("the OTLP collector accepted every record with a warning")
			}
			return nil
		}
		reason := fmt.Sprintf("%s rejected %d of %d records (partial success): %s", service, ps.GetRejectedLogRecords(), hi-lo, ps.GetErrorMessage())
		if hi-lo == 1 {
			return s.rejected(msgs, lo, reason)
		}
		// OTLP does not say which records it rejected. They are sent again one by one to find
		// them: the records it had accepted are then received twice (at-least-once), never
		// lost, and the rejected ones go to the dead letter under their own names.
		s.log.Warn().Str("reason", reason).Int("records", hi-lo).
			Msg("the OTLP collector rejected some records of a request without naming them; sending them one by one to find them (the accepted ones arrive twice)")
		for i := lo; i < hi; i++ {
			if err := s.export(ctx, msgs, recs, i, i+1); err != nil {
				return err
			}
		}
		return nil
	case errors.As(err, &refused):
		if hi-lo == 1 {
			if refused.tooLarge {
				return s.rejected(msgs, lo, fmt.Sprintf("%v: the record alone is larger than the collector accepts; raise its limit or lower SIEM_MAX_MESSAGE_BYTES", err))
			}
			return s.rejected(msgs, lo, err.Error())
		}
		// The collector refused the request whole, so none of it was taken: the halves are
		// sent on their own until the refused record is alone.
		mid := lo + (hi-lo)/2
		if err := s.export(ctx, msgs, recs, lo, mid); err != nil {
			return err
		}
		return s.export(ctx, msgs, recs, mid, hi)
	}
	if wait := sink.RetryAfterOf(err); wait > 0 {
		s.notBefore.Set(s.cfg.Now().Add(wait))
	}
	return err
}

func (s *Sink) rejected(msgs []sink.Message, i int, reason string) error {
	return &sink.RejectedError{Index: i, Reason: reason, Alert: msgs[i].Alert}
}

// Check proves, without sending a record, that the collector takes what the sink would
// send: it exports an empty request, which OTLP answers with success. That verifies the
// address, TLS (certificate and name), the protocol, the path of the logs endpoint and the
// headers (a collector with an authenticator refuses an empty request without them too).
// Errors about the headers or the address are *sink.ConfigError.
func (s *Sink) Check(ctx context.Context) error {
	_, _, err := s.exp.export(ctx, &collogspb.ExportLogsServiceRequest{})
	return err
}
