// Package sentinelsim is a receiver for tests: the Microsoft Entra ID token endpoint and the
// Azure Monitor Logs Ingestion API, as their public documentation describes them, on one
// HTTPS server on 127.0.0.1. It validates every row of every call against the columns and
// types its Data Collection Rule declares (streams.json: the stream declarations of
// Darktrace's Sentinel solution) and refuses a call the way the service does. Faults are
// injected per call: throttling with Retry-After, 503, 413, 401, slow answers, token expiry,
// and a receiver that is down.
package sentinelsim

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t thumbprints are SHA-1
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// APIVersion is the only api-version the ingestion endpoint accepts.
const APIVersion = "2023-01-01"

// MaxBody is the largest call the ingestion endpoint takes (JSON, after decompression).
const MaxBody = 1 << 20

// Scope is the scope a token must be asked for.
const Scope = "https://monitor.azure.com/.default"

//go:embed streams.json
var streamsJSON []byte

// Column is one declared column.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Declarations returns the stream declarations the receiver validates against.
func Declarations() map[string][]Column {
	var d struct {
		StreamDeclarations map[string]struct {
			Columns []Column `json:"columns"`
		} `json:"streamDeclarations"`
	}
	if err := json.Unmarshal(streamsJSON, &d); err != nil {
		panic(err)
	}
	out := map[string][]Column{}
	for name, s := range d.StreamDeclarations {
		out[name] = s.Columns
	}
	return out
}

// Options configure the receiver. Zero values get test defaults.
type Options struct {
	TenantID, ClientID, ClientSecret, DCRID string
	// FederatedToken, when set, is accepted as a client assertion (workload identity).
	FederatedToken string
	// Certificate, when set, is the app's registered certificate: a client assertion signed
	// with its key (RS256, x5t its SHA-1 thumbprint, aud the token URL) is accepted.
	Certificate *x509.Certificate
	// NoRole answers every ingestion call 403, as the service does when the app lacks the
	// "Monitoring Metrics Publisher" role on the DCR.
	NoRole        bool
	TokenLifetime time.Duration // expires_in of issued tokens; default 1h
}

// Fault is the answer to inject into the next ingestion calls.
type Fault struct {
	Status     int           // 429, 503, 413, 401, ...; 0 only delays
	RetryAfter string        // Retry-After header value, e.g. "2"
	Delay      time.Duration // wait before answering
	Times      int           // how many calls get it; 0 = 1
}

// Server is a running receiver.
type Server struct {
	opts   Options
	srv    *httptest.Server
	decl   map[string]map[string]string // stream -> column -> type
	caFile string

	mu       sync.Mutex
	tokens   map[string]time.Time // issued token -> expiry
	faults   []Fault
	down     bool
	rows     map[string][]map[string]any
	calls    int
	statuses map[int]int
	tokenReq int
	refused  []string // why calls were refused (400/413), for test failures
}

// Start starts a receiver; t.Cleanup-style stopping is the caller's (Close).
func Start(dir string, o Options) (*Server, error) {
	if o.TenantID == "" {
		o.TenantID = "00000000-0000-4000-8000-000000000001"
	}
	if o.ClientID == "" {
		o.ClientID = "00000000-0000-4000-8000-000000000002"
	}
	if o.ClientSecret == "" && o.FederatedToken == "" {
		o.ClientSecret = "sim-secret-" + randHex(8)
	}
	if o.DCRID == "" {
		o.DCRID = "dcr-" + randHex(16)
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = time.Hour
	}
	s := &Server{opts: o, decl: map[string]map[string]string{}, tokens: map[string]time.Time{},
		rows: map[string][]map[string]any{}, statuses: map[int]int{}}
	for name, cols := range Declarations() {
		m := map[string]string{}
		for _, c := range cols {
			m[c.Name] = c.Type
		}
		s.decl[name] = m
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.srv.Listener = ln
	s.srv.StartTLS()
	s.caFile = filepath.Join(dir, "sentinelsim-ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	if err := os.WriteFile(s.caFile, ca, 0o600); err != nil {
		s.srv.Close()
		return nil, err
	}
	return s, nil
}

// Close stops the receiver.
func (s *Server) Close() { s.srv.Close() }

// URL is the base URL: the ingestion endpoint and the authority.
func (s *Server) URL() string { return s.srv.URL }

// CAFile is a PEM file trusting the receiver's certificate (SIEM_TLS_CA_FILE).
func (s *Server) CAFile() string { return s.caFile }

// Options returns the receiver's identities (tenant, client, secret, DCR id).
func (s *Server) Options() Options { return s.opts }

// Env returns the SIEM_* variables of a sentinel sink pointed at this receiver.
func (s *Server) Env() []string {
	env := []string{
		"SIEM_TRANSPORT=sentinel", "SIEM_ADDRESS=" + s.URL(), "SIEM_SENTINEL_DCR_ID=" + s.opts.DCRID,
		"SIEM_SENTINEL_TENANT_ID=" + s.opts.TenantID, "SIEM_SENTINEL_CLIENT_ID=" + s.opts.ClientID,
		"SIEM_SENTINEL_AUTHORITY=" + s.URL(), "SIEM_TLS_CA_FILE=" + s.caFile,
	}
	if s.opts.ClientSecret != "" {
		env = append(env, "SIEM_SENTINEL_CLIENT_SECRET="+s.opts.ClientSecret)
	}
	return env
}

// SinksEntry returns the sinks-file keys of a sentinel sink pointed at this receiver.
func (s *Server) SinksEntry() map[string]any {
	return map[string]any{
		"transport": "sentinel", "address": s.URL(), "sentinel_dcr_id": s.opts.DCRID,
		"sentinel_tenant_id": s.opts.TenantID, "sentinel_client_id": s.opts.ClientID,
		"sentinel_client_secret": s.opts.ClientSecret, "sentinel_authority": s.URL(), "tls_ca_file": s.caFile,
	}
}

// Inject queues faults for the next ingestion calls, in order.
func (s *Server) Inject(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// ExpireTokens makes every token issued so far invalid, as if it had expired.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	for t := range s.tokens {
		s.tokens[t] = time.Time{}
	}
	s.mu.Unlock()
}

// SetDown makes the receiver drop every connection without answering (true) or serve again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.srv.CloseClientConnections()
	}
}

// Rows returns a copy of the rows accepted for stream, in arrival order. Numbers are
// json.Number.
func (s *Server) Rows(stream string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.rows[stream]...)
}

// Stats are counters of the calls so far.
type Stats struct {
	Calls         int         // ingestion calls answered
	Statuses      map[int]int // ingestion answers by status
	TokenRequests int         // token requests answered
	Refused       []string    // reasons of 400/413 answers
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Calls: s.calls, Statuses: map[int]int{}, TokenRequests: s.tokenReq, Refused: append([]string(nil), s.refused...)}
	for k, v := range s.statuses {
		st.Statuses[k] = v
	}
	return st
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		s.token(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/dataCollectionRules/") {
		code := s.ingest(w, r)
		s.mu.Lock()
		s.calls++
		s.statuses[code]++
		s.mu.Unlock()
		return
	}
	http.NotFound(w, r)
}

// aadError writes an Entra ID error answer.
func aadError(w http.ResponseWriter, status int, code string, aadsts int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Timestamp: %s", aadsts, msg, randHex(8), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          randHex(16),
		"correlation_id":    randHex(16),
	})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReq++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		aadError(w, http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	tenant := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/oauth2/v2.0/token")
	if tenant != s.opts.TenantID {
		aadError(w, http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found.", tenant))
		return
	}
	if err := r.ParseForm(); err != nil {
		aadError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		aadError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	case f.Get("scope") != Scope:
		aadError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope is not valid.")
		return
	case f.Get("client_id") != s.opts.ClientID:
		aadError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory.", f.Get("client_id")))
		return
	}
	switch {
	case f.Get("client_secret") != "":
		if s.opts.ClientSecret == "" || f.Get("client_secret") != s.opts.ClientSecret {
			aadError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	case f.Get("client_assertion") != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			aadError(w, http.StatusBadRequest, "invalid_request", 50027, "Invalid client assertion type.")
			return
		}
		a := f.Get("client_assertion")
		if s.opts.Certificate != nil && strings.Count(a, ".") == 2 && a != s.opts.FederatedToken {
			if err := s.verifyAssertion(a, "https://"+r.Host+r.URL.Path); err != nil {
				aadError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation: "+err.Error())
				return
			}
			break
		}
		if s.opts.FederatedToken == "" || a != s.opts.FederatedToken {
			aadError(w, http.StatusUnauthorized, "invalid_client", 700213, "No matching federated identity record found for presented assertion.")
			return
		}
	default:
		aadError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	tok := "sim." + randHex(24)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenLifetime)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	secs := int(s.opts.TokenLifetime / time.Second)
	_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok})
}

// ingestError writes a Logs Ingestion API error answer.
func ingestError(w http.ResponseWriter, status int, code, format string, args ...any) int {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}})
	return status
}

func (s *Server) ingest(w http.ResponseWriter, r *http.Request) int {
	s.mu.Lock()
	var f *Fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		if f.Times <= 1 {
			s.faults = s.faults[1:]
		} else {
			f.Times--
		}
		g := *f
		f = &g
	}
	s.mu.Unlock()
	if f != nil {
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return 0
			}
		}
		if f.Status != 0 {
			_, _ = io.Copy(io.Discard, r.Body)
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			switch f.Status {
			case http.StatusTooManyRequests:
				return ingestError(w, f.Status, "TooManyRequests", "Request rate is too high; retry after the time in the Retry-After header.")
			case http.StatusRequestEntityTooLarge:
				return ingestError(w, f.Status, "ContentLengthLimitExceeded", "Maximum allowed content length: %d bytes (1 MB).", MaxBody)
			case http.StatusUnauthorized:
				return ingestError(w, f.Status, "InvalidToken", "The provided authentication token is not valid or has expired.")
			default:
				return ingestError(w, f.Status, "ServiceUnavailable", "The service is temporarily unavailable.")
			}
		}
	}
	if r.Method != http.MethodPost {
		return ingestError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Only POST is supported.")
	}
	if v := r.URL.Query().Get("api-version"); v != APIVersion {
		return ingestError(w, http.StatusBadRequest, "InvalidApiVersion", "The api-version '%s' is not supported.", v)
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !time.Now().Before(exp) {
		return ingestError(w, http.StatusUnauthorized, "InvalidToken", "The provided authentication token is not valid or has expired.")
	}
	// /dataCollectionRules/{dcr}/streams/{stream}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/dataCollectionRules/"), "/")
	if len(parts) != 3 || parts[1] != "streams" {
		return ingestError(w, http.StatusNotFound, "NotFound", "The requested resource was not found.")
	}
	if parts[0] != s.opts.DCRID || s.opts.NoRole {
		return ingestError(w, http.StatusForbidden, "OperationFailed",
			"The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '%s'.", parts[0])
	}
	stream := parts[2]
	decl, ok := s.decl[stream]
	if !ok {
		return ingestError(w, http.StatusBadRequest, "InvalidStream", "Stream '%s' is not declared in the data collection rule.", stream)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return ingestError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Content-Type must be application/json, not %q.", ct)
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, 2*MaxBody)
	if enc := r.Header.Get("Content-Encoding"); enc == "gzip" {
		zr, err := gzip.NewReader(body)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return ingestError(w, http.StatusBadRequest, "InvalidPayload", "The body ended early: %v", err)
		}
		if err != nil {
			return s.refuse(w, http.StatusBadRequest, "InvalidContentEncoding", "The body is not valid gzip: %v", err)
		}
		body = zr
	} else if enc != "" {
		return s.refuse(w, http.StatusBadRequest, "InvalidContentEncoding", "Content-Encoding %q is not supported.", enc)
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxBody+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			// The body ended early: the client went away mid-upload (killed, timed out).
			// Nobody reads this answer, and it is no refusal of what the client sent.
			return ingestError(w, http.StatusBadRequest, "InvalidPayload", "The body ended early: %v", err)
		}
		return s.refuse(w, http.StatusBadRequest, "InvalidPayload", "The body could not be read: %v", err)
	}
	if len(data) > MaxBody {
		return s.refuse(w, http.StatusRequestEntityTooLarge, "ContentLengthLimitExceeded", "Maximum allowed content length: %d bytes (1 MB).", MaxBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil {
		return s.refuse(w, http.StatusBadRequest, "InvalidPayload", "The body is not a JSON array of objects: %v", err)
	}
	for i, row := range rows {
		if row == nil {
			return s.refuse(w, http.StatusBadRequest, "InvalidPayload", "Item %d is not an object.", i)
		}
		for col, v := range row {
			t, ok := decl[col]
			if !ok {
				return s.refuse(w, http.StatusBadRequest, "InvalidPayload", "Column '%s' is not declared in stream '%s'.", col, stream)
			}
			if err := fits(t, v); err != nil {
				return s.refuse(w, http.StatusBadRequest, "InvalidPayload", "Column '%s' of type '%s': %v.", col, t, err)
			}
		}
	}
	s.mu.Lock()
	s.rows[stream] = append(s.rows[stream], rows...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (s *Server) refuse(w http.ResponseWriter, status int, code, format string, args ...any) int {
	s.mu.Lock()
	s.refused = append(s.refused, fmt.Sprintf("%d %s: %s", status, code, fmt.Sprintf(format, args...)))
	s.mu.Unlock()
	return ingestError(w, status, code, format, args...)
}

// fits checks a decoded JSON value against a declared column type.
func fits(t string, v any) error {
	if v == nil {
		return nil
	}
	switch t {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%v is not a string", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%v is not a boolean", v)
		}
	case "int", "long":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%v is not a number", v)
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return fmt.Errorf("%s is not an integer", n)
		}
		if t == "int" && (i < math.MinInt32 || i > math.MaxInt32) {
			return fmt.Errorf("%d is out of the int range", i)
		}
	case "real":
		if _, ok := v.(json.Number); !ok {
			return fmt.Errorf("%v is not a number", v)
		}
	case "datetime":
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%v is not an ISO 8601 string", v)
		}
		ts, err := time.Parse(time.RFC3339Nano, str)
		if err != nil {
			return fmt.Errorf("%q is not ISO 8601", str)
		}
		if _, off := ts.Zone(); off != 0 {
			return fmt.Errorf("%q is not UTC", str)
		}
	case "dynamic":
		switch v.(type) {
		case []any, map[string]any:
		default:
			return fmt.Errorf("%v is not an array or object", v)
		}
	default:
		return fmt.Errorf("unknown type %s", t)
	}
	return nil
}

// verifyAssertion checks a certificate client assertion as Entra ID does.
func (s *Server) verifyAssertion(jwt, aud string) error {
	parts := strings.Split(jwt, ".")
	dec := base64.RawURLEncoding
	hb, err1 := dec.DecodeString(parts[0])
	cb, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("not a compact JWS")
	}
	var h struct{ Alg, X5t string }
	var c struct {
		Aud, Iss, Sub, Jti string
		Exp, Nbf           int64
	}
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return fmt.Errorf("unreadable header or claims")
	}
	thumb := sha1.Sum(s.opts.Certificate.Raw) //nolint:gosec // x5t is a SHA-1 thumbprint
	if h.Alg != "RS256" || h.X5t != dec.EncodeToString(thumb[:]) {
		return fmt.Errorf("alg %q / x5t %q does not name the registered certificate", h.Alg, h.X5t)
	}
	pub, ok := s.opts.Certificate.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("registered certificate has no RSA key")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return err
	}
	now := time.Now().Unix()
	switch {
	case c.Aud != aud:
		return fmt.Errorf("aud %q is not %q", c.Aud, aud)
	case c.Iss != s.opts.ClientID || c.Sub != s.opts.ClientID:
		return fmt.Errorf("iss/sub is not the client id")
	case c.Exp <= now || c.Nbf > now+300 || c.Jti == "":
		return fmt.Errorf("expired, not yet valid or without jti")
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Client returns an HTTP client that trusts the receiver.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// TokenFrom reads the access token of a token endpoint answer, failing t otherwise.
func (s *Server) TokenFrom(t interface {
	Helper()
	Fatalf(string, ...any)
}, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var a struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusOK || a.AccessToken == "" {
		t.Fatalf("token answer %d: %v", resp.StatusCode, err)
	}
	return a.AccessToken
}
