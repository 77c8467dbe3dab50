package config

import (
	"cmp"
	"regexp"
	"strings"
	"time"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/hec"
)

// Sink is one destination: the SIEM_* variables, or one entry of SIEM_SINKS_FILE.
type Sink struct {
	// Name labels the sink in logs, metrics and /readyz, and names its checkpoint directory
	// STATE_DIR/<Name>/. It is "" for the single sink of the SIEM_* variables, whose
	// checkpoints stay in STATE_DIR itself.
	Name string
	// Sources are the sources this sink receives; nil means every POLL_SOURCES source.
	Sources []string

	Format      string
	LEEFVersion string
	Transport   string
	Address     string
	Header      string // "" = the transport's default (none for stdout and file, else rfc5424)
	Framing     string // "" = the transport's default
	Facility    string
	AppName     string // "" = the format's default (DefaultAppName)

	TLSCAFile, TLSCertFile, TLSKeyFile, TLSServerName string
	TLSInsecureSkipVerify                             bool

	RELPWindow      int
	RELPTLS         bool
	MaxMessageBytes int
	Timeout         time.Duration
	UDPRate         int

	// Transport hec.
	HECToken      Secret
	HECAck        bool
	HECAckTimeout time.Duration
	HECIndex      string
	HECSourcetype string

	Sentinel Sentinel // transport sentinel only

	// Transport otlp.
	OTLPProtocol string // http/protobuf, http/json or grpc
	OTLPHeaders  Secret // k=v,… (credentials)
	// Appliances selects the appliances whose records this sink receives; nil means every one.
	Appliances *ApplianceSelection
}

// Sentinel holds the settings of transport sentinel (Microsoft Sentinel's Logs Ingestion API).
type Sentinel struct {
	DCRID                 string
	TenantID              string
	ClientID              string
	ClientSecret          Secret
	ClientCertificateFile string // PEM: certificate and RSA private key
	FederatedTokenFile    string // workload identity (AZURE_FEDERATED_TOKEN_FILE)
	Authority             string
	// Streams overrides the stream per alert kind (modelbreach, aianalyst, antigena).
	Streams map[string]string
}

// Label is the sink's name for logs and metrics: its name, or "siem" for the SIEM_* sink.
func (s *Sink) Label() string {
	if s.Name == "" {
		return "siem"
	}
	return s.Name
}

// HeaderOrDefault returns the syslog header: the one set, else the sink package's default for
// the transport (none for stdout and file, rfc5424 otherwise).
func (s *Sink) HeaderOrDefault() string {
	if s.Transport == "hec" || s.Transport == "otlp" {
		return sink.HeaderNone // events or log records, not syslog lines
	}
	return cmp.Or(s.Header, sink.DefaultHeader(s.Transport))
}

// HECConfig is the hec sink's configuration of s, without what is not configuration (state
// directory, logger), which the caller adds.
func (s *Sink) HECConfig() hec.Config {
	st, _ := hec.ParseSourcetypes(s.HECSourcetype)
	return hec.Config{
		URL: s.Address, Token: s.HECToken.Value(), Ack: s.HECAck, AckTimeout: s.HECAckTimeout,
		Index: s.HECIndex, Format: s.Format, Sourcetypes: st, Timeout: s.Timeout, Name: s.Label(),
		TLS: tlsconfig.Options{
			CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile,
			ServerName: s.TLSServerName, InsecureSkipVerify: s.TLSInsecureSkipVerify,
		},
	}
}

// SinkConfig is the sink's transport settings as the sink package takes them; Header and
// Framing stay empty when unset, so that the sink applies its defaults. The caller adds what
// is not configuration (hostname, writer, hooks, logger).
func (s *Sink) SinkConfig() sink.Config {
	return sink.Config{
		Transport: s.Transport,
		Address:   s.Address,
		Header:    s.Header,
		Framing:   s.Framing,
		Facility:  s.Facility,
		AppName:   s.AppNameOrDefault(),
		TLS: tlsconfig.Options{
			CAFile: s.TLSCAFile, CertFile: s.TLSCertFile, KeyFile: s.TLSKeyFile,
			ServerName: s.TLSServerName, InsecureSkipVerify: s.TLSInsecureSkipVerify,
		},
		RELP:    sink.RELPOptions{Window: s.RELPWindow, TLS: s.RELPTLS},
		Timeout: s.Timeout,
		UDPRate: s.UDPRate,
	}
}

// AppNameOrDefault returns the APP-NAME: the one set, else DefaultAppName(format).
func (s *Sink) AppNameOrDefault() string {
	if s.AppName != "" {
		return s.AppName
	}
	return DefaultAppName(s.Format)
}

// DefaultAppName is the syslog APP-NAME for a format: "darktrace" for darktrace-json
// (Darktrace's own "Syslog JSON" alerts use it and existing parsers key on it), else
// "dtforward".
func DefaultAppName(format string) string {
	if format == "darktrace-json" {
		return "darktrace"
	}
	return "dtforward"
}

// sinkName is what a sink name may look like: it names a directory and a metric label.
var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

const sinkNameRule = "use 1–32 letters, digits, '_' or '-', starting with a letter or digit"

const sinksVar = "SIEM_SINKS_FILE"

// EnvSink returns the sink described by the SIEM_* variables.
func (c *Config) EnvSink() Sink {
	return Sink{
		Format: c.SIEMFormat, LEEFVersion: c.SIEMLEEFVersion, Transport: c.SIEMTransport, Address: c.SIEMAddress,
		Header: c.SIEMHeader, Framing: c.SIEMFraming, Facility: c.SIEMFacility, AppName: c.SIEMAppName,
		TLSCAFile: c.SIEMTLSCAFile, TLSCertFile: c.SIEMTLSCertFile, TLSKeyFile: c.SIEMTLSKeyFile,
		TLSServerName: c.SIEMTLSServerName, TLSInsecureSkipVerify: c.SIEMTLSInsecureSkipVerify,
		RELPWindow: c.SIEMRELPWindow, RELPTLS: c.SIEMRELPTLS, MaxMessageBytes: c.SIEMMaxMessageBytes,
		Timeout: c.SIEMTimeout, UDPRate: c.SIEMUDPRate,
		HECToken: c.SIEMHECToken, HECAck: c.SIEMHECAck, HECAckTimeout: c.SIEMHECAckTimeout,
		HECIndex: c.SIEMHECIndex, HECSourcetype: c.SIEMHECSourcetype,
		OTLPProtocol: c.SIEMOTLPProtocol, OTLPHeaders: c.SIEMOTLPHeaders,
		Sentinel: c.withWorkloadIdentity(Sentinel{
			DCRID: c.SIEMSentinelDCRID, TenantID: c.SIEMSentinelTenantID, ClientID: c.SIEMSentinelClientID,
			ClientSecret: c.SIEMSentinelClientSecret, ClientCertificateFile: c.SIEMSentinelClientCertificateFile,
			Authority: c.SIEMSentinelAuthority,
			Streams:   streams(c.SIEMSentinelStreamModelAlerts, c.SIEMSentinelStreamIncidents, c.SIEMSentinelStreamResponseActions),
		}),
	}
}

// withWorkloadIdentity fills what AKS workload identity injects (AZURE_*) into a sentinel
// sink that names no credential of its own.
func (c *Config) withWorkloadIdentity(s Sentinel) Sentinel {
	if s.ClientSecret != "" || s.ClientCertificateFile != "" || c.AzureFederatedTokenFile == "" {
		return s
	}
	s.FederatedTokenFile = c.AzureFederatedTokenFile
	s.TenantID = cmpOr(s.TenantID, c.AzureTenantID)
	s.ClientID = cmpOr(s.ClientID, c.AzureClientID)
	s.Authority = cmpOr(s.Authority, strings.TrimRight(c.AzureAuthorityHost, "/"))
	return s
}

// streams maps the alert kinds to the streams set for them, nil when none is.
func streams(modelAlerts, incidents, responseActions string) map[string]string {
	m := map[string]string{}
	for kind, v := range map[string]string{"modelbreach": modelAlerts, "aianalyst": incidents, "antigena": responseActions} {
		if v != "" {
			m[kind] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}
