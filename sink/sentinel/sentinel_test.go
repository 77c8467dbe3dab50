package sentinel_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/testutil/sentinelsim"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/sentinel"
	"github.com/dtforward/dtforward/sink/sentinel/row"
)

func startSim(t *testing.T, o sentinelsim.Options) *sentinelsim.Server {
	t.Helper()
	srv, err := sentinelsim.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func config(srv *sentinelsim.Server) sentinel.Config {
	o := srv.Options()
	return sentinel.Config{
		Endpoint: srv.URL(), DCRID: o.DCRID, TenantID: o.TenantID, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Authority: srv.URL(), TLS: tlsconfig.Options{CAFile: srv.CAFile()}, Timeout: 10 * time.Second,
	}
}

func newSink(t *testing.T, cfg sentinel.Config) *sentinel.Sink {
	t.Helper()
	s, err := sentinel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// breaches returns n breach messages with pbids from first on.
func breaches(t *testing.T, first, n int) []sink.Message {
	t.Helper()
	out := make([]sink.Message, 0, n)
	for i := range n {
		raw := fmt.Sprintf(`{"pbid":%d,"time":1700000000000,"score":0.5,"model":{"name":"Model %d","pid":7,"category":"Suspicious","description":"%s"},"device":{"did":3,"ip":"10.0.0.3"}}`,
			first+i, i, strings.Repeat("x", 200))
		a, err := alert.Decode(alert.SourceBreaches, []byte(raw), "dt-1", "dt.example.com")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sink.Message{Kind: a.Kind, Alert: a})
	}
	return out
}

func threatIDs(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = fmt.Sprint(r["threatId"])
	}
	return out
}

func wantIDs(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(first + i)
	}
	return out
}

func TestSendDeliversEveryRowOnceWithOneToken(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	cfg := config(srv)
	var sentCalls, sentRows, sentBytes int // Hooks.Sent: dtforward_sink_bytes_total
	cfg.Hooks.Sent = func(rows, bytes int) { sentCalls++; sentRows += rows; sentBytes += bytes }
	s := newSink(t, cfg)
	ctx := context.Background()
	for b := range 5 {
		if err := s.Send(ctx, breaches(t, 100*b+1, 20)); err != nil {
			t.Fatal(err)
		}
	}
	got := threatIDs(srv.Rows(row.ModelAlerts))
	var want []string
	for b := range 5 {
		want = append(want, wantIDs(100*b+1, 20)...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	if st := srv.Stats(); st.TokenRequests != 1 || st.Calls != 5 || len(st.Refused) > 0 {
		t.Errorf("stats %+v: want one token for five calls, nothing refused", st)
	}
	if sentCalls != 5 || sentRows != 100 || sentBytes < 5*20 {
		t.Errorf("Hooks.Sent saw %d calls of %d rows in %d bytes, want 5 calls of 100 rows, each at least gzip's 20 bytes", sentCalls, sentRows, sentBytes)
	}
}

func TestSendSplitsAtTheCallLimit(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	cfg := config(srv)
	cfg.MaxCallBytes = 4096
	s := newSink(t, cfg)
	if err := s.Send(context.Background(), breaches(t, 1, 60)); err != nil {
		t.Fatal(err)
	}
	if got := threatIDs(srv.Rows(row.ModelAlerts)); fmt.Sprint(got) != fmt.Sprint(wantIDs(1, 60)) {
		t.Fatalf("rows %v", got)
	}
	if st := srv.Stats(); st.Calls < 5 {
		t.Errorf("%d calls for 60 rows of ~600 bytes under 4 KiB per call", st.Calls)
	}
}

func TestSend413SplitsTheCall(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	s := newSink(t, config(srv))
	srv.Inject(sentinelsim.Fault{Status: 413, Times: 2})
	if err := s.Send(context.Background(), breaches(t, 1, 10)); err != nil {
		t.Fatal(err)
	}
	if got := threatIDs(srv.Rows(row.ModelAlerts)); fmt.Sprint(got) != fmt.Sprint(wantIDs(1, 10)) {
		t.Fatalf("rows %v: want each once, in order", got)
	}
}

func TestSend429HonoursRetryAfter(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	s := newSink(t, config(srv))
	srv.Inject(sentinelsim.Fault{Status: 429, RetryAfter: "1"})
	msgs := breaches(t, 1, 3)
	err := s.Send(context.Background(), msgs)
	if ra := sink.RetryAfterOf(err); ra != time.Second {
		t.Fatalf("Send = %v (Retry-After %v), want a RetryAfterError of 1s", err, ra)
	}
	start := time.Now()
	if err := s.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("the next call left after %v, before the second the service asked for", el)
	}
	if n := len(srv.Rows(row.ModelAlerts)); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	// A cancelled context ends the wait.
	srv.Inject(sentinelsim.Fault{Status: 503, RetryAfter: "60"})
	if err := s.Send(context.Background(), msgs); sink.RetryAfterOf(err) != time.Minute {
		t.Fatalf("503: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Send(ctx, msgs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send during the wait = %v, want the context's error", err)
	}
}

func TestSendRefreshesAnExpiredToken(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	s := newSink(t, config(srv))
	ctx := context.Background()
	if err := s.Send(ctx, breaches(t, 1, 2)); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	if err := s.Send(ctx, breaches(t, 3, 2)); err != nil {
		t.Fatal(err)
	}
	srv.Inject(sentinelsim.Fault{Status: 401})
	if err := s.Send(ctx, breaches(t, 5, 2)); err != nil {
		t.Fatal(err)
	}
	if got := threatIDs(srv.Rows(row.ModelAlerts)); fmt.Sprint(got) != fmt.Sprint(wantIDs(1, 6)) {
		t.Fatalf("rows %v", got)
	}
	if st := srv.Stats(); st.TokenRequests != 3 {
		t.Errorf("%d token requests, want 3 (first, after expiry, after the 401)", st.TokenRequests)
	}
}

func TestSendShortTokenLifetimeRefreshesBeforeExpiry(t *testing.T) {
	// A token that lives less than the refresh margin is renewed for every call: none is
	// ever sent about to expire.
	srv := startSim(t, sentinelsim.Options{TokenLifetime: 2 * time.Minute})
	s := newSink(t, config(srv))
	for i := range 3 {
		if err := s.Send(context.Background(), breaches(t, i+1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.Stats(); st.TokenRequests != 3 || st.Statuses[401] != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSendConfigErrorsNameTheSetting(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	name := func(k string) string { return "SIEM_" + strings.ToUpper(k) }
	cases := []struct {
		name    string
		mod     func(*sentinel.Config)
		o       sentinelsim.Options
		setting string
	}{
		{"wrong secret", func(c *sentinel.Config) { c.ClientSecret = "wrong" }, sentinelsim.Options{}, "SIEM_SENTINEL_CLIENT_SECRET"},
		{"wrong tenant", func(c *sentinel.Config) { c.TenantID = "00000000-0000-4000-8000-00000000dead" }, sentinelsim.Options{}, "SIEM_SENTINEL_TENANT_ID"},
		{"wrong client", func(c *sentinel.Config) { c.ClientID = "00000000-0000-4000-8000-00000000beef" }, sentinelsim.Options{}, "SIEM_SENTINEL_CLIENT_ID"},
		{"wrong dcr", func(c *sentinel.Config) { c.DCRID = "dcr-00000000000000000000000000000000" }, sentinelsim.Options{}, "SIEM_SENTINEL_DCR_ID"},
		{"unknown stream", func(c *sentinel.Config) {
			c.Streams = map[string]string{alert.KindBreach: "Custom-Nope"}
		}, sentinelsim.Options{}, "SIEM_SENTINEL_STREAM_MODEL_ALERTS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config(srv)
			cfg.Setting = name
			c.mod(&cfg)
			s := newSink(t, cfg)
			for _, f := range []func() error{
				func() error { return s.Send(context.Background(), breaches(t, 1, 1)) },
				func() error { return s.Check(context.Background()) },
			} {
				err := f()
				var ce *sink.ConfigError
				if !errors.As(err, &ce) || !strings.Contains(ce.Setting, c.setting) {
					t.Errorf("error %v, want a ConfigError naming %s", err, c.setting)
				}
				if strings.Contains(fmt.Sprint(err), srv.Options().ClientSecret) {
					t.Errorf("the error shows the secret: %v", err)
				}
			}
		})
	}
	t.Run("no role", func(t *testing.T) {
		srv := startSim(t, sentinelsim.Options{NoRole: true})
		cfg := config(srv)
		cfg.Setting = name
		err := newSink(t, cfg).Send(context.Background(), breaches(t, 1, 1))
		var ce *sink.ConfigError
		if !errors.As(err, &ce) || !strings.Contains(ce.Setting, "Monitoring Metrics Publisher") {
			t.Errorf("error %v, want a ConfigError naming the role", err)
		}
	})
}

func TestSendRejectedRowIsNamed(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	cfg := config(srv)
	// Antigena rows sent to the model alerts stream carry columns it does not declare: the
	// service refuses every call holding one.
	cfg.Streams = map[string]string{alert.KindAntigena: row.ModelAlerts}
	s := newSink(t, cfg)
	msgs := breaches(t, 1, 9)
	act, err := alert.Decode(alert.SourceAntigena, []byte(`{"codeid":77,"did":3,"action":"quarantine","label":"Quarantine","start":1700000000000,"expires":1700003600000,"updated":"1700000001000","active":true,"score":0.8}`), "dt-1", "")
	if err != nil {
		t.Fatal(err)
	}
	msgs = append(msgs[:6], append([]sink.Message{{Kind: act.Kind, Alert: act}}, msgs[6:]...)...)
	err = s.Send(context.Background(), msgs)
	var re *sink.RejectedError
	if !errors.As(err, &re) || re.Index != 6 || !strings.Contains(re.Reason, "antigena 77") {
		t.Fatalf("Send = %v, want RejectedError for message 7 (antigena 77)", err)
	}
	if got := threatIDs(srv.Rows(row.ModelAlerts)); fmt.Sprint(got) != fmt.Sprint(wantIDs(1, 6)) {
		t.Errorf("accepted %v, want exactly the rows before the refused one", got)
	}
	// The caller resends the rest; they arrive.
	if err := s.Send(context.Background(), msgs[7:]); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Rows(row.ModelAlerts)); n != 9 {
		t.Errorf("%d rows, want 9", n)
	}
}

func TestWorkloadIdentityAndCertificate(t *testing.T) {
	t.Run("federated token", func(t *testing.T) {
		srv := startSim(t, sentinelsim.Options{FederatedToken: "eyJ.federated.jwt"})
		cfg := config(srv)
		cfg.ClientSecret = ""
		cfg.FederatedTokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(cfg.FederatedTokenFile, []byte("eyJ.federated.jwt\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := newSink(t, cfg).Send(context.Background(), breaches(t, 1, 2)); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(cfg.FederatedTokenFile, []byte("stale"), 0o600)
		err := newSink(t, cfg).Send(context.Background(), breaches(t, 1, 2))
		var ce *sink.ConfigError
		if !errors.As(err, &ce) || ce.Setting != "AZURE_FEDERATED_TOKEN_FILE" {
			t.Errorf("stale federated token: %v", err)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dtforward"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		srv := startSim(t, sentinelsim.Options{Certificate: cert})
		cfg := config(srv)
		cfg.ClientSecret = ""
		cfg.ClientCertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
		if err := newSink(t, cfg).Send(context.Background(), breaches(t, 1, 2)); err != nil {
			t.Fatal(err)
		}
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		cfg.ClientCertificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
			string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)}))
		if _, err := sentinel.New(cfg); err == nil {
			t.Error("a key that does not match the certificate was accepted")
		}
	})
}

func TestValidate(t *testing.T) {
	var c sentinel.Config
	keys := map[string]bool{}
	for _, p := range c.Validate() {
		keys[p.Key] = true
	}
	for _, k := range []string{"address", "sentinel_dcr_id", "sentinel_tenant_id", "sentinel_client_id", "sentinel_client_secret"} {
		if !keys[k] {
			t.Errorf("empty config: no problem reported for %s (got %v)", k, keys)
		}
	}
	c = sentinel.Config{Endpoint: "http://ingest.example", DCRID: "dcr-1", TenantID: "t", ClientID: "c", ClientSecret: "s"}
	if p := c.Validate(); len(p) != 1 || p[0].Key != "address" {
		t.Errorf("plain http to a remote host: %v", p)
	}
	c.Endpoint, c.Streams = "https://ingest.example", map[string]string{alert.KindBreach: "DarktraceModelAlerts_CL"}
	if p := c.Validate(); len(p) != 1 || p[0].Key != "sentinel_stream_model_alerts" {
		t.Errorf("table name as stream: %v", p)
	}
}

// TestSendRowAtTheLimit: a row as large as a call may be goes alone, and the rows around it
// too.
func TestSendRowAtTheLimit(t *testing.T) {
	srv := startSim(t, sentinelsim.Options{})
	cfg := config(srv)
	msgs := breaches(t, 1, 3)
	r, err := row.Build(msgs[1].Alert)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	cfg.MaxCallBytes = len(b) + 2 // exactly "[" + row + "]"
	s := newSink(t, cfg)
	done := make(chan error, 1)
	go func() { done <- s.Send(context.Background(), msgs) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send did not return")
	}
	if got := threatIDs(srv.Rows(row.ModelAlerts)); fmt.Sprint(got) != fmt.Sprint(wantIDs(1, 3)) {
		t.Fatalf("rows %v", got)
	}
	cfg.MaxCallBytes = len(b) + 1
	err = newSink(t, cfg).Send(context.Background(), msgs[1:2])
	var re *sink.RejectedError
	if !errors.As(err, &re) || re.Index != 0 {
		t.Errorf("a row larger than a call: %v, want RejectedError", err)
	}
}
