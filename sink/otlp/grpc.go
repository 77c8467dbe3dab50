package otlp

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// exportMethod is the LogsService's one method. The slim generated types carry no gRPC
// stubs; the method name is all a call needs.
const exportMethod = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

// grpcExporter calls LogsService/Export on one connection.
type grpcExporter struct {
	cfg  *Config
	conn *grpc.ClientConn
	md   metadata.MD
}

func newGRPC(cfg *Config, target string, plain bool) (*grpcExporter, error) {
	creds := insecure.NewCredentials()
	if !plain {
		tc, err := tlsconfig.Client(cfg.TLS)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(tc)
	}
	// "passthrough": the address goes to the dialer as it is, as for every other sink (no
	// DNS resolver of gRPC's own balancing between the collector's addresses).
	conn, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("dtforward/"+cfg.Version),
		grpc.WithStatsHandler(wireBytes{}),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	if err != nil {
		return nil, err
	}
	return &grpcExporter{cfg: cfg, conn: conn, md: metadata.New(cfg.Headers)}, nil
}

func (g *grpcExporter) close() error { return g.conn.Close() }

func (g *grpcExporter) export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, int, error) {
	var sent atomic.Int64
	ctx = context.WithValue(metadata.NewOutgoingContext(ctx, g.md), sentKey{}, &sent)
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	var resp collogspb.ExportLogsServiceResponse
	err := g.conn.Invoke(ctx, exportMethod, req, &resp)
	if err == nil {
		return &resp, int(sent.Load()), nil
	}
	return nil, int(sent.Load()), g.callErr(err)
}

// wireBytes adds the bytes of each message a call sends, compressed and with gRPC's framing,
// to the counter its context carries under sentKey: only gRPC knows what the compressed
// message weighed.
type wireBytes struct{}

type sentKey struct{}

func (wireBytes) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.OutPayload); ok {
		if n, ok := ctx.Value(sentKey{}).(*atomic.Int64); ok {
			n.Add(int64(p.WireLength))
		}
	}
}

func (wireBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (wireBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (wireBytes) HandleConn(context.Context, stats.ConnStats)                       {}

// grpcError is a call that failed with a status; it carries the RetryInfo delay (capped as
// Retry-After is), implementing sink.RetryAfterError.
type grpcError struct {
	code codes.Code
	msg  string
	wait time.Duration
}

func (e *grpcError) Error() string {
	return httpsink.Answered(service, fmt.Sprintf("gRPC %s", e.code), e.msg, e.wait)
}

// RetryAfter implements sink.RetryAfterError.
func (e *grpcError) RetryAfter() time.Duration { return e.wait }

// callErr reads a failed call into the sink package's error types, as answerErr does for
// OTLP/HTTP.
func (g *grpcExporter) callErr(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", service, err)
	}
	ge := &grpcError{code: st.Code(), msg: st.Message()}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			ge.wait = min(max(ri.GetRetryDelay().AsDuration(), 0), httpsink.MaxRetryAfter)
		}
	}
	switch st.Code() {
	case codes.InvalidArgument:
		return &refusedError{err: ge}
	case codes.ResourceExhausted:
		if strings.Contains(st.Message(), "larger than max") {
			// The server's message size limit, not its load: splitting is what helps.
			return &refusedError{err: ge, tooLarge: true}
		}
	case codes.Unauthenticated, codes.PermissionDenied:
		return &sink.ConfigError{Setting: g.cfg.setting("otlp_headers"), Err: fmt.Errorf("%s refused the credentials: %w", service, ge)}
	case codes.Unimplemented:
		return &sink.ConfigError{Setting: g.cfg.setting("address") + " and " + g.cfg.setting("otlp_protocol"),
			Err: fmt.Errorf("%s does not serve OTLP logs over gRPC: %w", service, ge)}
	}
	// UNAVAILABLE and RESOURCE_EXHAUSTED are the retryable answers, with RetryInfo; the caller
	// retries the others too, slowly.
	return ge
}
