// Package sentinel is the sink for Microsoft Sentinel: it sends alerts as rows of Darktrace's
// own stream schemas (package row) to a Data Collection Rule through the Azure Monitor Logs
// Ingestion API, authenticated with Microsoft Entra ID.
//
// The calls: POST {endpoint}/dataCollectionRules/{DCR immutable id}/streams/{stream}
// ?api-version=2023-01-01 with a gzip JSON array of rows, at most MaxCallBytes of JSON per
// call; 204 accepts the call. The token comes from {authority}/{tenant}/oauth2/v2.0/token
// (client credentials: a secret, a certificate, or a workload identity's federated token)
// for the scope https://monitor.azure.com/.default.
package sentinel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
	"github.com/dtforward/dtforward/sink/sentinel/row"
)

// APIVersion is the Logs Ingestion API version the sink speaks.
const APIVersion = "2023-01-01"

// MaxCallBytes is the most JSON (before compression) one call carries: the service refuses
// calls over 1 MB.
const MaxCallBytes = 1 << 20

// DefaultAuthority is Entra ID in Azure's public cloud.
const DefaultAuthority = "https://login.microsoftonline.com"

const service = "Logs Ingestion API"

// Config configures the sink. Setting names (for errors) are the sinks-file keys; Setting
// turns them into the names the user wrote.
type Config struct {
	Endpoint string // the DCE or DCR logs ingestion endpoint, https://…ingest.monitor.azure.com
	DCRID    string // the DCR's immutable id, dcr-…

	TenantID string
	ClientID string
	// One credential: ClientSecret, ClientCertificate (PEM: certificate and RSA key), or
	// FederatedTokenFile (workload identity; AZURE_FEDERATED_TOKEN_FILE).
	ClientSecret       string
	ClientCertificate  string
	FederatedTokenFile string
	Authority          string // "" = DefaultAuthority

	// Streams overrides the stream of an alert kind (alert.KindBreach, ...) for a custom DCR.
	Streams map[string]string

	TLS     tlsconfig.Options
	Timeout time.Duration // per HTTP request; default 30s
	// MaxCallBytes lowers the per-call limit (tests); 0 or more than MaxCallBytes means
	// MaxCallBytes.
	MaxCallBytes int
	Now          func() time.Time // default time.Now
	// Setting names a setting in errors, e.g. "sentinel_dcr_id" -> "SIEM_SENTINEL_DCR_ID";
	// nil leaves the key as it is.
	Setting func(key string) string
	// Hooks.Sent is called after each call the service answered, with its rows and its body's
	// bytes as sent (gzip); token requests are not counted. The other hooks are not called.
	Hooks sink.Hooks
}

func (c *Config) setting(key string) string {
	if c.Setting == nil {
		return key
	}
	return c.Setting(key)
}

// Problem is one invalid setting found by Validate.
type Problem struct {
	Key string // the sinks-file key, e.g. sentinel_dcr_id
	Msg string
}

// Validate reports every missing or malformed setting. It does no I/O.
func (c *Config) Validate() []Problem {
	var out []Problem
	add := func(key, format string, args ...any) {
		out = append(out, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Endpoint == "" {
		add("address", "required for transport sentinel: the DCE or DCR logs ingestion endpoint, https://….ingest.monitor.azure.com")
	} else if u, err := url.Parse(c.Endpoint); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" {
		add("address", "%q is not an https:// ingestion endpoint URL", c.Endpoint)
	} else if u.Scheme == "http" && !loopback(u.Hostname()) {
		add("address", "%q: plain http carries the bearer token in clear; use https", c.Endpoint)
	}
	if c.DCRID == "" {
		add("sentinel_dcr_id", "required: the immutable id (dcr-…) of the Data Collection Rule")
	} else if strings.ContainsAny(c.DCRID, "/?#% ") {
		add("sentinel_dcr_id", "%q is not an immutable id (dcr-…)", c.DCRID)
	}
	// With workload identity they default to AZURE_TENANT_ID and AZURE_CLIENT_ID.
	if c.TenantID == "" {
		add("sentinel_tenant_id", "required: the Entra ID tenant (directory) id")
	}
	if c.ClientID == "" {
		add("sentinel_client_id", "required: the application (client) id of the Entra app")
	}
	switch {
	case c.ClientSecret != "" && c.ClientCertificate != "":
		add("sentinel_client_secret", "set a client secret or a client certificate, not both")
	case c.ClientSecret == "" && c.ClientCertificate == "" && c.FederatedTokenFile == "":
		add("sentinel_client_secret", "required (or sentinel_client_certificate, or a workload identity's AZURE_FEDERATED_TOKEN_FILE)")
	case c.ClientCertificate != "":
		if _, err := parseCertificate(c.ClientCertificate); err != nil {
			add("sentinel_client_certificate", "%v", err)
		}
	}
	if c.Authority != "" {
		if u, err := url.Parse(c.Authority); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
			add("sentinel_authority", "%q is not an https:// URL (e.g. %s)", c.Authority, DefaultAuthority)
		}
	}
	for kind, s := range c.Streams {
		if s != "" && !strings.HasPrefix(s, "Custom-") {
			add(streamKey(kind), "%q: a custom stream name starts with Custom-", s)
		}
	}
	return out
}

// StreamKeys maps each alert kind to the setting that overrides its stream.
var StreamKeys = map[string]string{
	alert.KindBreach:    "sentinel_stream_model_alerts",
	alert.KindAIAnalyst: "sentinel_stream_incidents",
	alert.KindAntigena:  "sentinel_stream_response_actions",
}

func streamKey(kind string) string {
	if k, ok := StreamKeys[kind]; ok {
		return k
	}
	return "sentinel_stream_" + kind
}

// streamKeyOf names the setting that chooses stream.
func streamKeyOf(stream string) string {
	for kind, key := range StreamKeys {
		if row.StreamOf(kind) == stream {
			return key
		}
	}
	return "sentinel_stream_model_alerts"
}

func loopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// Sink sends to one DCR. Send is not called concurrently (sink.Sink).
type Sink struct {
	cfg    Config
	client *http.Client
	tokens *tokens
	now    func() time.Time
	base   string // {endpoint}/dataCollectionRules/{dcr}/streams/
	max    int
	gz     bytes.Buffer

	notBefore httpsink.NotBefore // the service asked us to wait until then (429/503 Retry-After)
}

// New validates cfg and returns the sink; it does no network I/O.
func New(cfg Config) (*Sink, error) {
	if probs := cfg.Validate(); len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = fmt.Errorf("%s: %s", cfg.setting(p.Key), p.Msg)
		}
		return nil, fmt.Errorf("sink sentinel: %w", errors.Join(errs...))
	}
	if cfg.Authority == "" {
		cfg.Authority = DefaultAuthority
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	client, err := httpsink.NewClient(cfg.TLS, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("sink sentinel: %w", err)
	}
	s := &Sink{cfg: cfg, client: client, now: cfg.Now, max: MaxCallBytes}
	if cfg.MaxCallBytes > 0 && cfg.MaxCallBytes < MaxCallBytes {
		s.max = cfg.MaxCallBytes
	}
	s.tokens, err = newTokens(client, &s.cfg)
	if err != nil {
		return nil, err
	}
	s.base = strings.TrimRight(cfg.Endpoint, "/") + "/dataCollectionRules/" + url.PathEscape(cfg.DCRID) + "/streams/"
	return s, nil
}

// Stream returns the stream that receives alerts of kind.
func (s *Sink) Stream(kind string) string {
	if v := s.cfg.Streams[kind]; v != "" {
		return v
	}
	return row.StreamOf(kind)
}

// encoded is one message as a row, ready to join a call.
type encoded struct {
	index  int // in the batch given to Send
	stream string
	json   []byte
}

// Send implements sink.Sink. It returns nil only after the service answered 204 for every
// row of msgs. A row the service refuses is a *sink.RejectedError naming its message; rows
// before it were accepted.
func (s *Sink) Send(ctx context.Context, msgs []sink.Message) error {
	if err := s.notBefore.Wait(ctx, s.now()); err != nil {
		return err
	}
	rows := make([]encoded, 0, len(msgs))
	for i, m := range msgs {
		if m.Alert == nil {
			return &sink.RejectedError{Index: i, Reason: "no alert to build a Sentinel row from"}
		}
		r, err := row.Build(m.Alert)
		if err != nil {
			return &sink.RejectedError{Index: i, Reason: fmt.Sprintf("%s %s: %v", m.Alert.Kind, m.Alert.ID, err)}
		}
		b, err := json.Marshal(r)
		if err != nil {
			return &sink.RejectedError{Index: i, Reason: fmt.Sprintf("%s %s: %v", m.Alert.Kind, m.Alert.ID, err)}
		}
		if len(b)+2 > s.max {
			return &sink.RejectedError{Index: i, Reason: fmt.Sprintf("%s %s: row of %d bytes exceeds the %d bytes of a call", m.Alert.Kind, m.Alert.ID, len(b), s.max)}
		}
		rows = append(rows, encoded{index: i, stream: s.Stream(m.Alert.Kind), json: b})
	}
	// Calls in order: consecutive rows of one stream, up to the size limit.
	for start := 0; start < len(rows); {
		end, size := start, 1 // the opening '['
		for end < len(rows) && rows[end].stream == rows[start].stream {
			add := len(rows[end].json) + 1 // the row and the ',' or ']' after it
			if end > start && size+add > s.max {
				break
			}
			size += add
			end++
		}
		if err := s.sendRows(ctx, msgs, rows[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// sendRows sends rows of one stream. A refusal of the call's size splits it; a refusal of
// its content (400) bisects it down to the first refused row.
func (s *Sink) sendRows(ctx context.Context, msgs []sink.Message, rows []encoded) error {
	err := s.call(ctx, rows)
	var se *httpsink.StatusError
	var ce *sink.ConfigError
	if err == nil || errors.As(err, &ce) || !errors.As(err, &se) {
		return err
	}
	if se.Code == http.StatusBadRequest && strings.Contains(se.Body, "InvalidStream") {
		// The DCR does not declare the stream: no row of it can ever be taken.
		return &sink.ConfigError{Setting: s.cfg.setting(streamKeyOf(rows[0].stream)) + " (the DCR declares no stream " + rows[0].stream + ")", Err: se}
	}
	switch se.Code {
	case http.StatusRequestEntityTooLarge, http.StatusBadRequest:
		if len(rows) == 1 {
			m := msgs[rows[0].index]
			return &sink.RejectedError{Index: rows[0].index, Reason: fmt.Sprintf("%s %s (%s): %v", m.Alert.Kind, m.Alert.ID, rows[0].stream, se)}
		}
		half := len(rows) / 2
		if err := s.sendRows(ctx, msgs, rows[:half]); err != nil {
			return err
		}
		return s.sendRows(ctx, msgs, rows[half:])
	}
	return err
}

// call makes one ingestion call. A 401 (a token the service no longer takes) is retried once
// with a new token.
func (s *Sink) call(ctx context.Context, rows []encoded) error {
	n := 2
	for _, r := range rows {
		n += len(r.json) + 1
	}
	body := make([]byte, 0, n)
	body = append(body, '[')
	for i, r := range rows {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, r.json...)
	}
	body = append(body, ']')
	gz, err := httpsink.Gzip(&s.gz, body)
	if err != nil {
		return err
	}
	target := s.base + url.PathEscape(rows[0].stream) + "?api-version=" + APIVersion
	for attempt := 0; ; attempt++ {
		token, err := s.tokens.get(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(gz))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", service, err)
		}
		if s.cfg.Hooks.Sent != nil { // answered, so it went out whole
			s.cfg.Hooks.Sent(len(rows), len(gz))
		}
		if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusOK {
			_ = resp.Body.Close()
			return nil
		}
		se := httpsink.ReadError(service, resp, s.now())
		_ = resp.Body.Close()
		switch se.Code {
		case http.StatusUnauthorized:
			s.tokens.drop(token)
			if attempt == 0 {
				continue
			}
			return &sink.ConfigError{Setting: s.cfg.setting("sentinel_client_id") + " / " + s.credentialSetting(), Err: se}
		case http.StatusForbidden:
			return &sink.ConfigError{Setting: s.cfg.setting("sentinel_dcr_id") + ` (the immutable id) and the app's "Monitoring Metrics Publisher" role on that DCR`, Err: se}
		case http.StatusNotFound:
			return &sink.ConfigError{Setting: s.cfg.setting("address") + ", " + s.cfg.setting("sentinel_dcr_id") + " and the stream name " + rows[0].stream, Err: se}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if se.Wait > 0 {
				s.notBefore.Set(s.now().Add(se.Wait))
			}
		}
		return se
	}
}

func (s *Sink) credentialSetting() string {
	switch {
	case s.cfg.ClientSecret != "":
		return s.cfg.setting("sentinel_client_secret")
	case s.cfg.ClientCertificate != "":
		return s.cfg.setting("sentinel_client_certificate")
	}
	return "AZURE_FEDERATED_TOKEN_FILE"
}

// Check proves the sink can deliver without sending a row: it fetches a token (the tenant,
// client id and credential are right) and posts an empty array to each stream: an answer
// past authentication and authorization (204, or 400 for the empty content) proves the
// endpoint, the DCR id and the role. A *sink.ConfigError names the setting to fix.
func (s *Sink) Check(ctx context.Context) error {
	if _, err := s.tokens.get(ctx); err != nil {
		return err
	}
	for _, kind := range []string{alert.KindBreach, alert.KindAIAnalyst, alert.KindAntigena} {
		stream := s.Stream(kind)
		err := s.call(ctx, []encoded{{stream: stream}})
		var se *httpsink.StatusError
		if errors.As(err, &se) && se.Code == http.StatusBadRequest {
			if strings.Contains(se.Body, "InvalidStream") {
				return &sink.ConfigError{Setting: s.cfg.setting(StreamKeys[kind]) + " (the DCR declares no stream " + stream + ")", Err: se}
			}
			err = nil
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", stream, err)
		}
	}
	return nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
