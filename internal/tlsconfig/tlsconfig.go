// Package tlsconfig builds the one TLS client configuration shared by the Darktrace API client
// and the syslog TLS sink, so both get the same secure defaults, and checks the files it reads
// so that configuration validation rejects exactly what Client would reject.
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

// The option names Problem.Option uses, as the settings files spell them.
const (
	OptCAFile   = "ca_file"
	OptCertFile = "cert_file"
	OptKeyFile  = "key_file"
)

// Problem is one unusable option: Option is OptCAFile, OptCertFile or OptKeyFile, Msg says what
// is wrong with the file (its path and the cause, never its content).
type Problem struct {
	Option string
	Msg    string
}

// Client returns a *tls.Config with TLS 1.2 as the minimum and verification on unless
// InsecureSkipVerify. Errors name the file that could not be used.
func Client(o Options) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // explicit opt-in, warned about by callers
	}
	pool, certs, probs := o.load()
	if len(probs) > 0 {
		p := probs[0]
		switch p.Option {
		case OptCAFile:
			return nil, fmt.Errorf("CA file: %s", p.Msg)
		case OptKeyFile:
			return nil, fmt.Errorf("client key: %s", p.Msg)
		}
		return nil, fmt.Errorf("client certificate: %s", p.Msg)
	}
	cfg.RootCAs = pool
	cfg.Certificates = certs
	return cfg, nil
}

// Check loads every file Client would load and reports each problem, so that a configuration
// is rejected at start-up, naming the option, for exactly the reasons Client would fail later.
func (o Options) Check() []Problem {
	_, _, probs := o.load()
	return probs
}

// load reads the CA bundle and the client key pair. Reading happens here only, so Check and
// Client cannot disagree.
func (o Options) load() (*x509.CertPool, []tls.Certificate, []Problem) {
	var probs []Problem
	add := func(opt, format string, args ...any) {
		probs = append(probs, Problem{Option: opt, Msg: fmt.Sprintf(format, args...)})
	}
	var pool *x509.CertPool
	if o.CAFile != "" {
		if pem, err := readFile(o.CAFile); err != nil {
			add(OptCAFile, "%v", err)
		} else {
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				add(OptCAFile, "%s holds no PEM certificate", o.CAFile)
				pool = nil
			}
		}
	}
	var certs []tls.Certificate
	switch {
	case (o.CertFile == "") != (o.KeyFile == ""):
		add(OptCertFile, "the client certificate and key must be set together")
	case o.CertFile != "":
		certPEM, cerr := readFile(o.CertFile)
		if cerr != nil {
			add(OptCertFile, "%v", cerr)
		}
		keyPEM, kerr := readFile(o.KeyFile)
		if kerr != nil {
			add(OptKeyFile, "%v", kerr)
		}
		if cerr == nil && kerr == nil {
			// The parser's messages name what is missing ("failed to find any PEM data in key
			// input"), never the key's bytes.
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				add(OptCertFile, "%s with key %s: %v", o.CertFile, o.KeyFile, err)
			} else {
				certs = []tls.Certificate{cert}
			}
		}
	}
	return pool, certs, probs
}

// readFile reads a named file; the error gives the path and the cause only.
func readFile(path string) ([]byte, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s: %v", path, err)
	}
	return b, nil
}
