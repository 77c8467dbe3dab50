package otlpcollector

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/sink/otlp"
)

// record is what the test keeps of one log record the consumer accepted.
type record struct {
	ID, Kind, Appliance string
	BodyType            pcommon.ValueType
	Body                map[string]any // the body when it is a map
	Severity            plog.SeverityNumber
	Time                time.Time
	Resource            map[string]any
}

// collector is the Collector's OTLP receiver with a consumer the test steers.
type collector struct {
	HTTPAddr, GRPCAddr string // host:port
	CAFile             string // set when the receiver serves TLS

	mu       sync.Mutex
	accepted []record
	refuse   map[string]bool // records (id, or kind/id) whose request is refused for good (INVALID_ARGUMENT: HTTP 400)
	busy     int             // the next busy requests are answered busyCode with a RetryInfo of retryDelay
	busyCode codes.Code
	retry    time.Duration
	delay    time.Duration // a slow pipeline: each request is held this long, then taken
	// poisonNext makes the first model breach not accepted before a poison record: every
	// request holding it is refused for good from then on (poisoned is its id).
	poisonNext bool
	poisoned   string
	seen       map[string]bool // kind/id of every record accepted
	stats      struct{ requests, refused, busy int }
	rcv        interface{ Shutdown(context.Context) error }
}

type collectorOptions struct {
	TLS bool
	// Token, when set, has the receiver authenticate every request (HTTP and gRPC) with an
	// authenticator extension that takes "authorization: Bearer <Token>" only.
	Token string
}

// tokenAuth is an authenticator extension (extensionauth.Server), as bearertokenauth is.
type tokenAuth struct{ token string }

func (a tokenAuth) Start(context.Context, component.Host) error { return nil }
func (a tokenAuth) Shutdown(context.Context) error              { return nil }

func (a tokenAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	for k, vs := range headers {
		if strings.EqualFold(k, "authorization") && slices.Contains(vs, "Bearer "+a.token) {
			return ctx, nil
		}
	}
	return ctx, errors.New("missing or wrong bearer token")
}

// authHost is the host the receiver asks for its authenticator.
type authHost struct {
	ext map[component.ID]component.Component
}

func (h authHost) GetExtensions() map[component.ID]component.Component { return h.ext }

var authID = component.MustNewID("testauth")

// startCollector starts otlpreceiver on 127.0.0.1 with OTLP/HTTP and OTLP/gRPC.
func startCollector(t *testing.T, o collectorOptions) *collector {
	t.Helper()
	c := &collector{HTTPAddr: freeAddr(t), GRPCAddr: freeAddr(t), refuse: map[string]bool{}, seen: map[string]bool{}}
	f := otlpreceiver.NewFactory()
	cfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	h := cfg.Protocols.HTTP.GetOrInsertDefault()
	h.ServerConfig.NetAddr.Endpoint = c.HTTPAddr
	g := configgrpc.NewDefaultServerConfig()
	g.NetAddr.Endpoint = c.GRPCAddr
	if o.TLS {
		ca := syslogd.NewCA(t)
		c.CAFile = ca.CAFile
		ts := configtls.NewDefaultServerConfig()
		ts.CertFile, ts.KeyFile = ca.ServerCert, ca.ServerKey
		h.ServerConfig.TLS = configoptional.Some(ts)
		g.TLS = configoptional.Some(ts)
	}
	var host component.Host = componenttest.NewNopHost()
	if o.Token != "" {
		h.ServerConfig.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
		g.Auth = configoptional.Some(configauth.Config{AuthenticatorID: authID})
		host = authHost{ext: map[component.ID]component.Component{authID: tokenAuth{o.Token}}}
	}
	cfg.Protocols.GRPC = configoptional.Some(g)
	next, err := consumer.NewLogs(c.consume)
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), cfg, next)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	c.rcv = r
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return c
}

func (c *collector) consume(ctx context.Context, ld plog.Logs) error {
	c.mu.Lock()
	c.stats.requests++
	delay := c.delay
	var recs []record
	refused := ""
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		res := rl.Resource().Attributes().AsRaw()
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := record{BodyType: lr.Body().Type(), Severity: lr.SeverityNumber(), Time: lr.Timestamp().AsTime(), Resource: res}
				attrs := lr.Attributes()
				if v, ok := attrs.Get(otlp.AttrID); ok {
					r.ID = v.AsString()
				}
				if v, ok := attrs.Get(otlp.AttrKind); ok {
					r.Kind = v.AsString()
				}
				if v, ok := attrs.Get(otlp.AttrAppliance); ok {
					r.Appliance = v.AsString()
				}
				if r.BodyType == pcommon.ValueTypeMap {
					r.Body = lr.Body().Map().AsRaw()
				}
				if c.poisonNext && r.Kind == "modelbreach" && !c.seen[r.Kind+"/"+r.ID] {
					c.poisonNext, c.poisoned = false, r.ID
					c.refuse[r.Kind+"/"+r.ID] = true
				}
				if c.refuse[r.ID] || c.refuse[r.Kind+"/"+r.ID] {
					refused = r.ID
				}
				recs = append(recs, r)
			}
		}
	}
	switch {
	case refused != "":
		c.stats.refused++
		c.mu.Unlock()
		return status.Error(codes.InvalidArgument, "record "+refused+" refused by the pipeline")
	case c.busy > 0:
		c.busy--
		c.stats.busy++
		st, err := status.New(c.busyCode, "pipeline busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(c.retry)})
		c.mu.Unlock()
		if err != nil {
			return err
		}
		return st.Err()
	}
	c.mu.Unlock()
	if delay > 0 {
		// Held, then taken all the same, as a slow pipeline does: the sender may have given
		// up on the answer by then.
		time.Sleep(delay)
	}
	c.mu.Lock()
	c.accepted = append(c.accepted, recs...)
	for _, r := range recs {
		c.seen[r.Kind+"/"+r.ID] = true
	}
	c.mu.Unlock()
	return nil
}

// set changes the consumer's behaviour under its lock.
func (c *collector) set(f func(c *collector)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// records returns what was accepted.
func (c *collector) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), c.accepted...)
}

// counts returns how often each record (kind/id) was accepted.
func (c *collector) counts() map[string]int {
	out := map[string]int{}
	for _, r := range c.records() {
		out[r.Kind+"/"+r.ID]++
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
