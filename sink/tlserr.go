package sink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// handshakeError says what a failed TLS handshake with the collector means and what to change,
// as the appliance side does; the library's own error follows for the details. Nothing was
// sent: the handshake comes before any message.
func handshakeError(err error, serverName string) error {
	var (
		record    tls.RecordHeaderError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	hint := ""
	switch {
	case errors.As(err, &record), strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		hint = "the server does not speak TLS on this port (check the port in the address, or use transport tcp if the collector takes plain syslog there)"
	case errors.As(err, &unknownCA):
		hint = "the collector's certificate is not signed by a trusted CA; set SIEM_TLS_CA_FILE (tls_ca_file in SIEM_SINKS_FILE) to its CA certificate (PEM)"
	case errors.As(err, &hostErr):
		hint = fmt.Sprintf("the collector's certificate does not name %s; address it by a name the certificate holds, or set SIEM_TLS_SERVER_NAME (tls_server_name) to one", serverName)
	case errors.As(err, &invalid):
		hint = "the collector's certificate is not valid (expired, not yet valid, or not for server use)"
	}
	if hint == "" {
		return fmt.Errorf("TLS handshake failed (nothing was sent): %w", err)
	}
	return fmt.Errorf("TLS handshake failed (nothing was sent): %s: %w", hint, err)
}
