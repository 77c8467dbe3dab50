// Package tlsconfig builds the one TLS client configuration shared by the Darktrace API client
// and the syslog TLS sink, so both get the same secure defaults.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Options are the user-facing TLS settings.
type Options struct {
	CAFile             string // PEM bundle; empty means the system roots
	CertFile, KeyFile  string // client certificate for mutual TLS; both or neither
	ServerName         string // verify this name instead of the dialled host
	InsecureSkipVerify bool   // off unless the user asks; callers warn when set
}

// Client returns a *tls.Config with TLS 1.2 as the minimum and verification on unless
// InsecureSkipVerify. Errors name the file that could not be used.
func Client(o Options) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // explicit opt-in, warned about by callers
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("client certificate and key must be given together")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
