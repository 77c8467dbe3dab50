package config

import (
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/otlp"
)

// OTLPConfig returns the sink/otlp configuration of an otlp sink; name turns a sinks-file key
// into the name the user wrote (SIEM_OTLP_HEADERS, or the key in SIEM_SINKS_FILE); version is
// dtforward's, the service.version the collector sees. Headers that do not parse are left out
// of the configuration and are the error, a *sink.SettingError: the one reading of them, for
// validation and for the sink.
func (s *Sink) OTLPConfig(name func(string) string, version string) (otlp.Config, error) {
	headers, err := otlp.ParseHeaders(s.OTLPHeaders.Value())
	if err != nil {
		err = &sink.SettingError{Setting: name("otlp_headers"), Problem: err.Error()}
	}
	return otlp.Config{
		Endpoint: s.Address, Protocol: s.OTLPProtocol, Headers: headers, Format: s.Format,
		Version: version, Timeout: s.Timeout, Setting: name,
		TLS: tlsconfig.Options{
			CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile,
			ServerName: s.TLSServerName, InsecureSkipVerify: s.TLSInsecureSkipVerify,
		},
	}, err
}

// validateOTLP checks an otlp sink with the otlp sink's own rules (otlp.Config.Validate), the
// ones it meets when "run" builds it, and that no other transport carries otlp settings.
func (s *Sink) validateOTLP(add func(name, format string, args ...any), name func(string) string) {
	if s.Transport != "otlp" {
		if s.OTLPHeaders != "" {
			add(name("otlp_headers"), "only applies to %s=otlp (it is %s)", name("transport"), s.Transport)
		}
		if s.OTLPProtocol != "" {
			add(name("otlp_protocol"), "only applies to %s=otlp (it is %s)", name("transport"), s.Transport)
		}
		return
	}
	c, err := s.OTLPConfig(name, "")
	addSettingErrors(err, add, name)
	addSettingErrors(c.Validate(), add, name)
	if s.Timeout == 0 { // a negative one is the sink's own rule, reported above
		add(name("timeout"), "%s must be positive (e.g. 10s)", s.Timeout)
	}
}
