package darktrace

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a throwaway certificate authority for the HTTPS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // PEM of cert
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// issue signs a server certificate for the given names (IP literals become IP SANs).
func (ca *testCA) issue(t *testing.T, notAfter time.Time, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newTLSServer(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `[{"pbid":1}]`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshake failures are the point of some cases; keep them out of the test output.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPS(t *testing.T) {
	ca := newTestCA(t, "test-ca")
	otherCA := newTestCA(t, "other-ca")
	valid := time.Now().Add(time.Hour)
	ipSrv := newTLSServer(t, ca.issue(t, valid, "appliance.test", "127.0.0.1"))
	nameOnlySrv := newTLSServer(t, ca.issue(t, valid, "appliance.test"))
	expiredSrv := newTLSServer(t, ca.issue(t, time.Now().Add(-time.Hour), "127.0.0.1"))
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)

	tests := []struct {
		name  string
		url   string
		tls   func(*Config)
		class Class
		msg   string
	}{
		{"CA file", ipSrv.URL, func(c *Config) { c.TLS.CAFile = ca.file }, ClassOK, ""},
		{"system roots reject self-signed", ipSrv.URL, func(*Config) {}, ClassPermanent, "set DARKTRACE_CA_FILE"},
		{"wrong CA", ipSrv.URL, func(c *Config) { c.TLS.CAFile = otherCA.file }, ClassPermanent, "not signed by a trusted CA"},
		{"server name override", nameOnlySrv.URL, func(c *Config) { c.TLS.CAFile = ca.file; c.TLS.ServerName = "appliance.test" }, ClassOK, ""},
		{"name mismatch", nameOnlySrv.URL, func(c *Config) { c.TLS.CAFile = ca.file }, ClassPermanent, "does not name 127.0.0.1 (it names appliance.test); use a name in the certificate in DARKTRACE_URL, or set DARKTRACE_SERVER_NAME"},
		{"expired certificate", expiredSrv.URL, func(c *Config) { c.TLS.CAFile = ca.file }, ClassPermanent, "not valid"},
		{"insecure skip verify", ipSrv.URL, func(c *Config) { c.TLS.InsecureSkipVerify = true }, ClassOK, ""},
		{"https to a plain HTTP port", strings.Replace(plain.URL, "http://", "https://", 1), func(c *Config) { c.TLS.CAFile = ca.file }, ClassPermanent, "does not speak TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{URL: tc.url, PublicToken: testPublic, PrivateToken: testPrivate, Timeout: 5 * time.Second}
			tc.tls(&cfg)
			c := newTestClient(t, cfg)
			n := 0
			err := c.Stream(context.Background(), "/modelbreaches", func([]byte) error { n++; return nil })
			if ClassOf(err) != tc.class {
				t.Fatalf("class = %s, want %s (err %v)", ClassOf(err), tc.class, err)
			}
			if tc.class == ClassOK {
				if n != 1 {
					t.Errorf("got %d records, want 1", n)
				}
				return
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}
