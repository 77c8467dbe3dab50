package sentinel

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint of the certificate (RFC 7515 §4.1.7)
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/httpsink"
)

// Scope is the Entra ID scope of the Logs Ingestion API.
const Scope = "https://monitor.azure.com/.default"

// assertionType is the OAuth 2.0 client assertion type of a signed JWT (RFC 7523).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// refreshMargin is how long before its expiry a token is replaced, so that no request leaves
// with a token that expires on the way. Tokens live about an hour.
const refreshMargin = 5 * time.Minute

// tokens fetches Entra ID access tokens with the client credentials grant and caches the
// current one until refreshMargin before it expires (or until the service refuses it).
type tokens struct {
	client *http.Client
	url    string // {authority}/{tenant}/oauth2/v2.0/token
	cfg    *Config
	now    func() time.Time
	cert   *certCredential // nil unless a certificate is configured

	mu      sync.Mutex
	token   string
	expires time.Time
}

func newTokens(client *http.Client, cfg *Config) (*tokens, error) {
	t := &tokens{
		client: client,
		url:    strings.TrimRight(cfg.Authority, "/") + "/" + url.PathEscape(cfg.TenantID) + "/oauth2/v2.0/token",
		cfg:    cfg,
		now:    cfg.Now,
	}
	if cfg.ClientCertificate != "" {
		c, err := parseCertificate(cfg.ClientCertificate)
		if err != nil {
			return nil, &sink.ConfigError{Setting: cfg.setting("sentinel_client_certificate"), Err: err}
		}
		t.cert = c
	}
	return t, nil
}

// get returns a valid token, fetching one when none is cached or the cached one is about to
// expire.
func (t *tokens) get(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.now().Before(t.expires.Add(-refreshMargin)) {
		return t.token, nil
	}
	tok, life, err := t.fetch(ctx)
	if err != nil {
		return "", err
	}
	t.token, t.expires = tok, t.now().Add(life)
	return tok, nil
}

// drop forgets token if it is still the cached one: the service refused it (expired early,
// revoked), and the next get fetches a new one.
func (t *tokens) drop(token string) {
	t.mu.Lock()
	if t.token == token {
		t.token = ""
	}
	t.mu.Unlock()
}

// tokenAnswer is the token endpoint's answer, success or error.
type tokenAnswer struct {
	AccessToken      string          `json:"access_token"`
	TokenType        string          `json:"token_type"`
	ExpiresIn        json.RawMessage `json:"expires_in"` // a number, or a string of one
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
	ErrorCodes       []int           `json:"error_codes"`
}

func (t *tokens) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {t.cfg.ClientID},
		"scope":      {Scope},
	}
	switch {
	case t.cfg.ClientSecret != "":
		form.Set("client_secret", t.cfg.ClientSecret)
	case t.cert != nil:
		a, err := t.cert.assertion(t.url, t.cfg.ClientID, t.now())
		if err != nil {
			return "", 0, err
		}
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", a)
	case t.cfg.FederatedTokenFile != "":
		// Workload identity: the platform rotates this file; read it for every token.
		b, err := os.ReadFile(t.cfg.FederatedTokenFile)
		if err != nil {
			return "", 0, &sink.ConfigError{Setting: "AZURE_FEDERATED_TOKEN_FILE", Err: fmt.Errorf("reading the federated token: %w", err)}
		}
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", strings.TrimSpace(string(b)))
	default:
		return "", 0, &sink.ConfigError{Setting: t.cfg.setting("sentinel_client_secret"), Err: errors.New("no client secret, certificate or federated token configured")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("token request to Entra ID: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, fmt.Errorf("token request to Entra ID: %w", err)
	}
	var ans tokenAnswer
	_ = json.Unmarshal(body, &ans)
	if resp.StatusCode == http.StatusOK && ans.AccessToken != "" {
		life := time.Hour
		var n json.Number
		if json.Unmarshal(ans.ExpiresIn, &n) == nil {
			if s, err := n.Int64(); err == nil && s > 0 {
				life = time.Duration(s) * time.Second
			}
		} else {
			var s string
			if json.Unmarshal(ans.ExpiresIn, &s) == nil {
				if v, err := time.ParseDuration(s + "s"); err == nil && v > 0 {
					life = v
				}
			}
		}
		return ans.AccessToken, life, nil
	}
	se := &httpsink.StatusError{Service: "Entra ID token endpoint", Code: resp.StatusCode,
		Body: strings.TrimSpace(ans.Error + ": " + firstLine(ans.ErrorDescription)), Wait: httpsink.RetryAfter(resp.Header, t.now())}
	if ans.Error == "" {
		se.Body = strings.Join(strings.Fields(string(body[:min(len(body), 512)])), " ")
	}
	if se.Temporary() {
		return "", 0, se
	}
	return "", 0, &sink.ConfigError{Setting: t.settingFor(ans), Err: se}
}

// settingFor names the setting an Entra ID refusal points at, from its AADSTS code.
func (t *tokens) settingFor(a tokenAnswer) string {
	has := func(code int) bool {
		for _, c := range a.ErrorCodes {
			if c == code {
				return true
			}
		}
		return strings.Contains(a.ErrorDescription, fmt.Sprintf("AADSTS%d", code))
	}
	switch {
	case has(90002), has(900023), has(90013):
		return t.cfg.setting("sentinel_tenant_id") // tenant not found / not a tenant id
	case has(700016), has(700038):
		return t.cfg.setting("sentinel_client_id") // application not found in the tenant
	case t.cfg.ClientSecret != "":
		return t.cfg.setting("sentinel_client_secret")
	case t.cert != nil:
		return t.cfg.setting("sentinel_client_certificate")
	default:
		return "AZURE_FEDERATED_TOKEN_FILE"
	}
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// certCredential signs client assertions with an application certificate registered on the
// Entra app (RS256, x5t = the certificate's SHA-1 thumbprint, as Entra ID expects).
type certCredential struct {
	key *rsa.PrivateKey
	x5t string
}

// parseCertificate reads a PEM bundle holding the certificate and its RSA private key.
func parseCertificate(pemData string) (*certCredential, error) {
	pair, err := tls.X509KeyPair([]byte(pemData), []byte(pemData))
	if err != nil {
		return nil, fmt.Errorf("client certificate: want one PEM with the certificate and its private key: %w", err)
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("client certificate: Entra ID client assertions need an RSA key")
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	sum := sha1.Sum(leaf.Raw) //nolint:gosec // a thumbprint, not a signature
	return &certCredential{key: key, x5t: base64.RawURLEncoding.EncodeToString(sum[:])}, nil
}

// assertion returns a signed JWT for the token endpoint aud, valid for ten minutes.
func (c *certCredential) assertion(aud, clientID string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "x5t": c.x5t})
	claims, _ := json.Marshal(map[string]any{
		"aud": aud, "iss": clientID, "sub": clientID, "jti": hex.EncodeToString(jti[:]),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, c.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
