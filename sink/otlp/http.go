package otlp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"

	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// Content types of OTLP/HTTP.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// maxAnswer bounds how much of an answer is read.
const maxAnswer = 1 << 20

// httpExporter posts export requests to the logs URL.
type httpExporter struct {
	cfg    *Config
	url    string
	json   bool
	client *http.Client
	zbuf   bytes.Buffer
}

func newHTTP(cfg *Config, url string) (*httpExporter, error) {
	client, err := httpsink.NewClient(cfg.TLS, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &httpExporter{cfg: cfg, url: url, json: cfg.protocol() == ProtocolHTTPJSON, client: client}, nil
}

func (h *httpExporter) close() error {
	h.client.CloseIdleConnections()
	return nil
}

func (h *httpExporter) contentType() string {
	if h.json {
		return contentJSON
	}
	return contentProtobuf
}

// marshal encodes m as the protocol asks: OTLP/JSON wants enums as numbers and the
// lowerCamelCase field names protojson writes.
func (h *httpExporter) marshal(m proto.Message) ([]byte, error) {
	if h.json {
		return protojson.MarshalOptions{UseEnumNumbers: true}.Marshal(m)
	}
	return proto.Marshal(m)
}

// unmarshal decodes an answer in the encoding its Content-Type names, else in the request's:
// the collector answers in the request's encoding, and a proxy may have dropped the header.
func (h *httpExporter) unmarshal(b []byte, contentType string, m proto.Message) error {
	asJSON := h.json
	switch mt, _, _ := mime.ParseMediaType(contentType); mt {
	case contentJSON:
		asJSON = true
	case contentProtobuf:
		asJSON = false
	}
	if asJSON {
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m)
	}
	return proto.Unmarshal(b, m)
}

func (h *httpExporter) export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, int, error) {
	body, err := h.marshal(req)
	if err != nil {
		return nil, 0, err
	}
	z, err := httpsink.Gzip(&h.zbuf, body)
	if err != nil {
		return nil, 0, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(z))
	if err != nil {
		return nil, 0, err
	}
	for k, v := range h.cfg.Headers {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Content-Type", h.contentType())
	hr.Header.Set("Content-Encoding", "gzip")
	hr.Header.Set("User-Agent", "dtforward/"+h.cfg.Version)
	resp, err := h.client.Do(hr)
	if err != nil {
		// The URL holds no secret; the headers are never in an error.
		return nil, 0, fmt.Errorf("%s: %w", service, err)
	}
	defer resp.Body.Close()
	sent := len(z) // answered, so it went out whole
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
	if err != nil && ok {
		// The collector took the request; an answer cut short may have named rejected
		// records, so the request is not known to be accepted: a transport failure, sent
		// again (duplicates), unlike a whole answer that is not OTLP's.
		return nil, sent, fmt.Errorf("%s: reading the answer: %w", service, err)
	}
	ct := resp.Header.Get("Content-Type")
	if !ok {
		return nil, sent, h.answerErr(resp, b, ct)
	}
	// OTLP/HTTP: any 2xx is success, whatever its body. Only partial_success can take some
	// of it back, so the body is read for that when it can be: a proxy may strip the
	// Content-Type or the body (then the request's encoding is tried, which the collector
	// answers in). An answer that cannot be read is still an acceptance: resending it would
	// deliver the records twice, forever behind a proxy that always answers so.
	var out collogspb.ExportLogsServiceResponse
	if len(b) > 0 {
		if err := h.unmarshal(b, ct, &out); err != nil {
			return &out, sent, &unreadAnswer{status: resp.StatusCode, contentType: ct, url: h.url, err: err}
		}
	}
	return &out, sent, nil
}

// unreadAnswer is a 2xx answer whose body is not an OTLP answer. The collector accepted the
// request, so Send counts it delivered (and warns); Check fails on it, because an endpoint
// that answers every request with a page of its own would swallow every record.
type unreadAnswer struct {
	status      int
	contentType string
	url         string
	err         error
}

func (e *unreadAnswer) Error() string {
	return fmt.Sprintf("%s answered HTTP %d with %q, not an OTLP answer (%v): is %s an OTLP/HTTP logs endpoint?", service, e.status, e.contentType, e.err, e.url)
}

func (e *unreadAnswer) Unwrap() error { return e.err }

// answerErr reads an answer other than 2xx into the sink package's error types. The body is
// a google.rpc.Status in the request's encoding; its message is what the log shows.
func (h *httpExporter) answerErr(resp *http.Response, body []byte, ct string) error {
	se := &httpsink.StatusError{Service: service, Code: resp.StatusCode, Wait: httpsink.RetryAfter(resp.Header, h.cfg.Now())}
	var st status.Status
	if mt, _, _ := mime.ParseMediaType(ct); (mt == contentProtobuf || mt == contentJSON) && h.unmarshal(body, ct, &st) == nil && st.GetMessage() != "" {
		se.Body = st.GetMessage()
	} else {
		se.Body = strings.Join(strings.Fields(string(body[:min(len(body), 1024)])), " ")
	}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return &refusedError{err: se}
	case http.StatusRequestEntityTooLarge:
		return &refusedError{err: se, tooLarge: true}
	case http.StatusUnauthorized, http.StatusForbidden:
		return &sink.ConfigError{Setting: h.cfg.setting("otlp_headers"), Err: fmt.Errorf("%s refused the credentials: %w", service, se)}
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return &sink.ConfigError{Setting: h.cfg.setting("address"), Err: fmt.Errorf("%s has no OTLP logs endpoint at %s: %w", service, h.url, se)}
	case http.StatusUnsupportedMediaType:
		return &sink.ConfigError{Setting: h.cfg.setting("otlp_protocol"), Err: fmt.Errorf("%s does not take %s: %w", service, h.contentType(), se)}
	}
	// 429, 502, 503, 504 are the retryable answers, with Retry-After; the caller retries any
	// other answer too (a 500 is often a pipeline's passing fault), slowly.
	return se
}
