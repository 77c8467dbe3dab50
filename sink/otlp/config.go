package otlp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

// Protocols, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.
const (
	ProtocolHTTPProtobuf = "http/protobuf"
	ProtocolHTTPJSON     = "http/json"
	ProtocolGRPC         = "grpc"
)

// Protocols lists the protocols the sink speaks, the default first.
var Protocols = []string{ProtocolHTTPProtobuf, ProtocolHTTPJSON, ProtocolGRPC}

// Config configures the sink. Zero values mean the documented defaults.
type Config struct {
	// Endpoint is the collector: http(s)://host:4318 for OTLP/HTTP (the logs path /v1/logs is
	// added unless the URL ends in it); host:4317 (TLS), https://host:4317 or, in clear,
	// http://host:4317 for gRPC.
	Endpoint string
	Protocol string            // one of Protocols; "" = http/protobuf
	Headers  map[string]string // sent with every request (auth); ParseHeaders reads them
	// Format is the formatter's name: the bodies of json, darktrace-json and ocsf records are
	// maps (kvlist), those of cef and leef strings.
	Format  string
	Version string // dtforward's version, the service.version resource attribute
	TLS     tlsconfig.Options
	Timeout time.Duration // per request; default 30s
	// MaxRequestBytes bounds one request's encoded records; DefaultMaxRequestBytes when 0.
	MaxRequestBytes int
	// Setting names a setting in errors (otlp_headers -> SIEM_OTLP_HEADERS, or the key of a
	// sink in SIEM_SINKS_FILE); nil means the SIEM_* names.
	Setting func(key string) string
	Logger  *zerolog.Logger
	Now     func() time.Time // default time.Now
	// Hooks.Sent is called after each request the transport sent, with its records and its
	// bytes as they went out (compressed; gRPC's framing included), whatever the answer. The
	// other hooks are not called.
	Hooks sink.Hooks
}

// DefaultMaxRequestBytes keeps a request under the 4 MiB a gRPC server takes by default
// (the collector's OTLP receiver included), with room for the envelope.
const DefaultMaxRequestBytes = 2 << 20

// ParseHeaders reads the headers setting: comma-separated key=value pairs, as
// OTEL_EXPORTER_OTLP_HEADERS spells them (values may be percent-encoded, so a value can hold
// a comma). Errors never quote a value: headers carry credentials.
func ParseHeaders(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("pair %d is not key=value", i+1)
		}
		// A value that does not decode is "" here: the name is judged first, and the
		// percent-encoding is reported only under a name that is one.
		dec, decErr := url.PathUnescape(strings.TrimSpace(v))
		if err := headerError(k, dec); err != nil {
			return nil, fmt.Errorf("pair %d: %w", i+1, err)
		}
		if decErr != nil {
			return nil, fmt.Errorf("header %s: bad percent-encoding (value not shown)", k)
		}
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, fmt.Errorf("header %s is given twice", k)
		}
		out[lk] = dec
	}
	return out, nil
}

// headerError says what makes k: v unfit to send, or nil. It never quotes the value (headers
// carry credentials), nor a name that is not one: a comma inside an unencoded value makes the
// "name" a piece of the credential.
func headerError(k, v string) error {
	if !validHeaderName(k) {
		return errors.New("its name is not a header name (a comma inside a value must be written %2C; value not shown)")
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("header %s contains control characters (value not shown)", k)
	}
	return nil
}

// validHeaderName is an HTTP token that gRPC also takes as metadata (lower-cased, and no
// "grpc-" prefix, which gRPC reserves).
func validHeaderName(k string) bool {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			return false
		}
	}
	return !strings.HasPrefix(strings.ToLower(k), "grpc-")
}

// Validate checks c the way New does, without opening anything. It returns every problem as
// a *sink.SettingError, joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &sink.SettingError{Setting: c.setting(key), Problem: fmt.Sprintf(format, args...)})
	}
	if c.Protocol != "" && !slices.Contains(Protocols, c.Protocol) {
		add("otlp_protocol", "%q is not one of %s", c.Protocol, strings.Join(Protocols, ", "))
	}
	if c.Endpoint == "" {
		add("address", "required for transport otlp (the collector: https://collector:4318, or host:4317 with %s=grpc)", c.setting("otlp_protocol"))
	} else if _, _, err := c.target(); err != nil {
		add("address", "%v", err)
	}
	for k, v := range c.Headers {
		if err := headerError(k, v); err != nil {
			add("otlp_headers", "%v", err)
		}
	}
	for _, p := range c.TLS.Check() { // the files the client will load, for the same reasons
		add("tls_"+p.Option, "%s", p.Msg)
	}
	if c.Timeout < 0 {
		add("timeout", "%s must be positive", c.Timeout)
	}
	return errors.Join(errs...)
}

// target returns where requests go: the OTLP/HTTP logs URL, or the gRPC host:port, and
// whether the connection is in clear.
func (c *Config) target() (string, bool, error) {
	if c.protocol() == ProtocolGRPC {
		hostport, plain := c.Endpoint, false
		if u, err := url.Parse(c.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return "", false, fmt.Errorf("%q: give the gRPC endpoint as host:port (or https://host:port, or http://host:port in clear), without path, query or user", c.Endpoint)
			}
			hostport, plain = u.Host, u.Scheme == "http"
		}
		host, port, err := net.SplitHostPort(hostport)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return "", false, fmt.Errorf("%q is not host:port (e.g. collector.example:4317)", c.Endpoint)
		}
		return hostport, plain, nil
	}
	u, err := url.Parse(c.Endpoint)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return "", false, fmt.Errorf("%q is not an http(s) URL (e.g. https://collector.example:4318); for gRPC set %s=grpc", c.Endpoint, c.setting("otlp_protocol"))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "", false, fmt.Errorf("give the collector's URL only, without user, query or fragment (headers go in %s)", c.setting("otlp_headers"))
	}
	// As OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path is added to the base URL; a URL that
	// names it already (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT style) is taken as it is.
	if !strings.HasSuffix(u.Path, LogsPath) {
		u.Path = strings.TrimRight(u.Path, "/") + LogsPath
	}
	return u.String(), u.Scheme == "http", nil
}

func (c *Config) protocol() string {
	if c.Protocol == "" {
		return ProtocolHTTPProtobuf
	}
	return c.Protocol
}

func (c *Config) setting(key string) string {
	if c.Setting != nil {
		return c.Setting(key)
	}
	return "SIEM_" + strings.ToUpper(key)
}
