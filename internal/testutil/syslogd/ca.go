package syslogd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority with one server certificate (valid for 127.0.0.1 and
// localhost) and one client certificate, written as PEM files into a test temp directory.
// Receivers present the server certificate; clients trust CAFile and, for mutual TLS, present
// ClientCert/ClientKey.
type CA struct {
	Dir        string
	CAFile     string // the CA certificate to trust
	ServerCert string
	ServerKey  string
	ClientCert string
	ClientKey  string
}

// NewCA creates a fresh CA and its certificates under t.TempDir(). ECDSA P-256 keeps it fast
// (a few milliseconds), and both GnuTLS (rsyslog gtls) and OpenSSL (syslog-ng) accept it.
func NewCA(t testing.TB) *CA {
	t.Helper()
	dir := t.TempDir()
	c := &CA{
		Dir:        dir,
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client.key"),
	}
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dtforward throwaway test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("syslogd: creating CA: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("syslogd: parsing CA: %v", err)
	}
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, certFile, keyFile string, server bool) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("syslogd: creating %s certificate: %v", cn, err)
		}
		writePEM(t, certFile, "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("syslogd: encoding key: %v", err)
		}
		writePEM(t, keyFile, "PRIVATE KEY", kder)
	}
	issue(2, "localhost", x509.ExtKeyUsageServerAuth, c.ServerCert, c.ServerKey, true)
	issue(3, "dtforward-test-client", x509.ExtKeyUsageClientAuth, c.ClientCert, c.ClientKey, false)
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("syslogd: generating key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("syslogd: %v", err)
	}
}
