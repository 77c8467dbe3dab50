package config

import (
	"os"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink/sentinel"
)

// SentinelConfig returns the sink/sentinel configuration of a sentinel sink; name turns a
// sinks-file key into the name the user wrote (SIEM_SENTINEL_DCR_ID, or the key in
// SIEM_SINKS_FILE). The certificate file, when set, is read here.
func (s *Sink) SentinelConfig(name func(string) string) (sentinel.Config, error) {
	st := s.Sentinel
	cfg := sentinel.Config{
		Endpoint: s.Address, DCRID: st.DCRID, TenantID: st.TenantID, ClientID: st.ClientID,
		ClientSecret: st.ClientSecret.Value(), FederatedTokenFile: st.FederatedTokenFile,
		Authority: st.Authority, Streams: st.Streams, Timeout: s.Timeout,
		TLS: tlsconfig.Options{
			CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile,
			ServerName: s.TLSServerName, InsecureSkipVerify: s.TLSInsecureSkipVerify,
		},
		Setting: func(key string) string {
			if key == "sentinel_client_certificate" {
				key = "sentinel_client_certificate_file"
			}
			return name(key)
		},
	}
	if st.ClientCertificateFile != "" {
		b, err := os.ReadFile(st.ClientCertificateFile)
		if err != nil {
			return cfg, err
		}
		cfg.ClientCertificate = string(b)
	}
	return cfg, nil
}

// validateSentinel checks the sentinel settings of a sentinel sink, and that no other
// transport carries any.
func (s *Sink) validateSentinel(add func(name, format string, args ...any), name func(string) string) {
	st := s.Sentinel
	if s.Transport != "sentinel" {
		for _, v := range []struct {
			key string
			set bool
		}{
			{"sentinel_dcr_id", st.DCRID != ""}, {"sentinel_tenant_id", st.TenantID != "" && st.FederatedTokenFile == ""},
			{"sentinel_client_id", st.ClientID != "" && st.FederatedTokenFile == ""}, {"sentinel_client_secret", st.ClientSecret != ""},
			{"sentinel_client_certificate_file", st.ClientCertificateFile != ""}, {"sentinel_authority", st.Authority != "" && st.FederatedTokenFile == ""},
			{"sentinel_stream_model_alerts", st.Streams["modelbreach"] != ""}, {"sentinel_stream_incidents", st.Streams["aianalyst"] != ""},
			{"sentinel_stream_response_actions", st.Streams["antigena"] != ""},
		} {
			if v.set {
				add(name(v.key), "only applies to %s=sentinel (it is %s)", name("transport"), s.Transport)
			}
		}
		return
	}
	cfg, err := s.SentinelConfig(name)
	if err != nil {
		add(name("sentinel_client_certificate_file"), "%v", err)
	}
	for _, p := range cfg.Validate() {
		if p.Key == "sentinel_client_certificate" {
			p.Key = "sentinel_client_certificate_file"
		}
		add(name(p.Key), "%s", p.Msg)
	}
	// The TLS files are loaded as the sink will load them (a private CA for a TLS-inspecting
	// proxy, or mutual TLS).
	for _, p := range cfg.TLS.Check() {
		add(name("tls_"+p.Option), "%s", p.Msg)
	}
	if s.Timeout <= 0 {
		add(name("timeout"), "%s must be positive (e.g. 30s)", s.Timeout)
	}
}

// SettingName names a sink setting as the user wrote it: SIEM_TLS_CA_FILE for the SIEM_*
// sink, "SIEM_SINKS_FILE sink NAME: tls_ca_file" for a sink of the sinks file.
func (s *Sink) SettingName(key string) string {
	if s.Name == "" {
		return envKey(key)
	}
	return sinksVar + " sink " + s.Name + ": " + key
}
