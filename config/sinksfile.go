package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Sinks returns the destinations: every entry of SIEM_SINKS_FILE, or the one sink of the
// SIEM_* variables. Errors are *Error naming the file, the sink and the key.
func (c *Config) Sinks() ([]Sink, error) {
	if c.SIEMSinksFile == "" {
		return []Sink{c.EnvSink()}, nil
	}
	var p problems
	out := c.sinksFromFile(&p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// sinkEntry is one element of SIEM_SINKS_FILE. Pointers tell "not set" (the default) from a
// zero that means something (udp_rate: 0 is unlimited).
type sinkEntry struct {
	Name                  string   `json:"name" yaml:"name"`
	Sources               []string `json:"sources" yaml:"sources"`
	Format                string   `json:"format" yaml:"format"`
	LEEFVersion           string   `json:"leef_version" yaml:"leef_version"`
	Transport             string   `json:"transport" yaml:"transport"`
	Address               string   `json:"address" yaml:"address"`
	Header                string   `json:"header" yaml:"header"`
	Framing               string   `json:"framing" yaml:"framing"`
	Facility              string   `json:"facility" yaml:"facility"`
	AppName               string   `json:"app_name" yaml:"app_name"`
	TLSCAFile             string   `json:"tls_ca_file" yaml:"tls_ca_file"`
	TLSCertFile           string   `json:"tls_cert_file" yaml:"tls_cert_file"`
	TLSKeyFile            string   `json:"tls_key_file" yaml:"tls_key_file"`
	TLSServerName         string   `json:"tls_server_name" yaml:"tls_server_name"`
	TLSInsecureSkipVerify bool     `json:"tls_insecure_skip_verify" yaml:"tls_insecure_skip_verify"`
	RELPWindow            *int     `json:"relp_window" yaml:"relp_window"`
	RELPTLS               bool     `json:"relp_tls" yaml:"relp_tls"`
	MaxMessageBytes       *int     `json:"max_message_bytes" yaml:"max_message_bytes"`
	Timeout               string   `json:"timeout" yaml:"timeout"`
	UDPRate               *int     `json:"udp_rate" yaml:"udp_rate"`
	HECToken              string   `json:"hec_token" yaml:"hec_token"`
	HECTokenFile          string   `json:"hec_token_file" yaml:"hec_token_file"`
	HECAck                *bool    `json:"hec_ack" yaml:"hec_ack"`
	HECAckTimeout         string   `json:"hec_ack_timeout" yaml:"hec_ack_timeout"`
	HECIndex              string   `json:"hec_index" yaml:"hec_index"`
	HECSourcetype         string   `json:"hec_sourcetype" yaml:"hec_sourcetype"`
	OTLPProtocol          string   `json:"otlp_protocol" yaml:"otlp_protocol"`
	OTLPHeaders           string   `json:"otlp_headers" yaml:"otlp_headers"`
	OTLPHeadersFile       string   `json:"otlp_headers_file" yaml:"otlp_headers_file"`

	SentinelDCRID                 string `json:"sentinel_dcr_id" yaml:"sentinel_dcr_id"`
	SentinelTenantID              string `json:"sentinel_tenant_id" yaml:"sentinel_tenant_id"`
	SentinelClientID              string `json:"sentinel_client_id" yaml:"sentinel_client_id"`
	SentinelClientSecret          string `json:"sentinel_client_secret" yaml:"sentinel_client_secret"`
	SentinelClientSecretFile      string `json:"sentinel_client_secret_file" yaml:"sentinel_client_secret_file"`
	SentinelClientCertificateFile string `json:"sentinel_client_certificate_file" yaml:"sentinel_client_certificate_file"`
	SentinelAuthority             string `json:"sentinel_authority" yaml:"sentinel_authority"`
	SentinelStreamModelAlerts     string `json:"sentinel_stream_model_alerts" yaml:"sentinel_stream_model_alerts"`
	SentinelStreamIncidents       string `json:"sentinel_stream_incidents" yaml:"sentinel_stream_incidents"`
	SentinelStreamResponseActions string `json:"sentinel_stream_response_actions" yaml:"sentinel_stream_response_actions"`

	Appliances selectionEntry `json:"appliances" yaml:"appliances"`
}

// sinksFileConflicts reports SIEM_* variables set next to SIEM_SINKS_FILE, which replaces
// them: silently ignoring one would send somewhere the operator did not mean.
func sinksFileConflicts(c *Config, getenv func(string) string) problems {
	var p problems
	if c.SIEMSinksFile == "" {
		return nil
	}
	for _, n := range knownNames() {
		if strings.HasPrefix(n, "SIEM_") && n != sinksVar && getenv(n) != "" {
			p.add(n, "cannot be combined with %s; set %s per sink in %s",
				sinksVar, strings.ToLower(strings.TrimPrefix(n, "SIEM_")), c.SIEMSinksFile)
		}
	}
	return p
}

// sinksFromFile reads and checks SIEM_SINKS_FILE, adding every problem to p.
func (c *Config) sinksFromFile(p *problems) []Sink {
	path := c.SIEMSinksFile
	entries, ok := readList[sinkEntry](p, sinksVar, path, "sinks")
	if !ok {
		return nil
	}
	var defaults Config
	defaults.decode(func(string) string { return "" })
	dir := filepath.Dir(path)
	seen := map[string]int{}
	out := make([]Sink, 0, len(entries))
	for i, e := range entries {
		where := fmt.Sprintf("%s: sink %d", path, i+1)
		if e.Name != "" {
			where += fmt.Sprintf(" (%q)", e.Name)
		}
		add := func(key, format string, args ...any) {
			p.add(sinksVar, "%s: %s: %s", where, key, fmt.Sprintf(format, args...))
		}
		s := Sink{
			Name: e.Name, Sources: e.Sources,
			Format: cmpOr(e.Format, defaults.SIEMFormat), LEEFVersion: cmpOr(e.LEEFVersion, defaults.SIEMLEEFVersion),
			Transport: e.Transport, Address: e.Address, Header: e.Header, Framing: e.Framing,
			Facility: cmpOr(e.Facility, defaults.SIEMFacility), AppName: e.AppName,
			TLSCAFile: relTo(dir, e.TLSCAFile), TLSCertFile: relTo(dir, e.TLSCertFile), TLSKeyFile: relTo(dir, e.TLSKeyFile),
			TLSServerName: e.TLSServerName, TLSInsecureSkipVerify: e.TLSInsecureSkipVerify,
			RELPWindow: intOr(e.RELPWindow, defaults.SIEMRELPWindow), RELPTLS: e.RELPTLS,
			MaxMessageBytes: intOr(e.MaxMessageBytes, defaults.SIEMMaxMessageBytes),
			Timeout:         defaults.SIEMTimeout, UDPRate: intOr(e.UDPRate, defaults.SIEMUDPRate),
			HECAck: defaults.SIEMHECAck, HECAckTimeout: defaults.SIEMHECAckTimeout,
			HECIndex: e.HECIndex, HECSourcetype: e.HECSourcetype,
			OTLPProtocol: e.OTLPProtocol,
			Sentinel: c.withWorkloadIdentity(Sentinel{
				DCRID: e.SentinelDCRID, TenantID: e.SentinelTenantID, ClientID: e.SentinelClientID,
				ClientCertificateFile: relTo(dir, e.SentinelClientCertificateFile), Authority: e.SentinelAuthority,
				Streams: streams(e.SentinelStreamModelAlerts, e.SentinelStreamIncidents, e.SentinelStreamResponseActions),
			}),
		}
		if e.HECAck != nil {
			s.HECAck = *e.HECAck
		}
		var tokenFileRead bool
		s.HECToken, tokenFileRead = secretOf(e.HECToken, e.HECTokenFile, "hec_token", dir, add)
		if e.HECAckTimeout != "" {
			if d, err := time.ParseDuration(e.HECAckTimeout); err != nil {
				add("hec_ack_timeout", "%q is not a duration (e.g. 60s)", e.HECAckTimeout)
			} else {
				s.HECAckTimeout = d
			}
		}
		s.OTLPHeaders, _ = secretOf(e.OTLPHeaders, e.OTLPHeadersFile, "otlp_headers", dir, add)
		s.Sentinel.ClientSecret, _ = secretOf(e.SentinelClientSecret, e.SentinelClientSecretFile, "sentinel_client_secret", dir, add)
		if s.Sentinel.ClientSecret != "" {
			// The file's own secret wins over workload identity.
			s.Sentinel.FederatedTokenFile = ""
			if !tokenLike(s.Sentinel.ClientSecret.Value()) {
				add("sentinel_client_secret", "contains whitespace or control characters (value not shown)")
			}
		}
		if e.Appliances.set {
			c.checkSelection(e.Appliances, &s, add)
		}
		switch {
		case e.Name == "":
			add("name", "required (%s)", sinkNameRule)
		case !sinkName.MatchString(e.Name):
			add("name", "%q is not a safe name: %s", e.Name, sinkNameRule)
		default:
			if j, dup := seen[e.Name]; dup {
				add("name", "%q is also used by sink %d; names must be unique", e.Name, j+1)
			} else {
				seen[e.Name] = i
			}
		}
		if e.Transport == "" {
			add("transport", "required (one of %s)", strings.Join(Transports(), ", "))
		}
		if e.Timeout != "" {
			if d, err := time.ParseDuration(e.Timeout); err != nil {
				add("timeout", "%q is not a duration (e.g. 10s)", e.Timeout)
			} else {
				s.Timeout = d
			}
		}
		if e.Sources != nil && len(e.Sources) == 0 {
			add("sources", "empty; leave it out for every POLL_SOURCES source, or list some of %s", strings.Join(c.PollSources, ", "))
		}
		dup := map[string]bool{}
		for _, src := range e.Sources {
			switch {
			case !slices.Contains(Sources, src):
				add("sources", "%q is not one of %s", src, strings.Join(Sources, ", "))
			case !slices.Contains(c.PollSources, src):
				add("sources", "%q is not polled; add it to POLL_SOURCES (%s)", src, strings.Join(c.PollSources, ","))
			case dup[src]:
				add("sources", "%q is listed twice", src)
			}
			dup[src] = true
		}
		if e.Transport != "" {
			addSink := add
			if !tokenFileRead {
				// Already reported as unreadable; "required" would only repeat it.
				addSink = func(key, format string, args ...any) {
					if key != "hec_token" {
						add(key, format, args...)
					}
				}
			}
			s.validate(addSink, func(key string) string { return key })
		}
		out = append(out, s)
	}
	return out
}

// secretOf is the secret an entry gives inline (key) or in a file (key_file), never both.
// read is false when the file could not be read (already reported).
func secretOf(inline, file, key, dir string, add func(key, format string, args ...any)) (_ Secret, read bool) {
	switch {
	case inline != "" && file != "":
		add(key, "set %s or %s_file, not both", key, key)
		return "", true
	case file != "":
		v, err := readSecretFile(relTo(dir, file))
		if err != nil {
			add(key+"_file", "%v", err)
			return "", false
		}
		return Secret(v), true
	}
	return Secret(inline), true
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func intOr(v *int, def int) int {
	if v == nil {
		return def
	}
	return *v
}

// readList reads the list file path named by variable name, reporting to p an unreadable
// file, a decoding error or an empty list; ok is false after any of them.
func readList[T any](p *problems, name, path, what string) (entries []T, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		addUnreadable(p, name, path, err)
		return nil, false
	}
	entries, err = decodeList[T](data, what)
	if err != nil {
		// Decoder messages quote at most a key or a type, not values, so no token leaks here.
		p.add(name, "%s: %v", path, err)
		return nil, false
	}
	if len(entries) == 0 {
		p.add(name, "%s lists no %s", path, what)
		return nil, false
	}
	return entries, true
}

// decodeList reads a JSON array, or failing the JSON sniff, a YAML list of T. JSON goes
// through encoding/json because JSON files are often indented with tabs, which YAML forbids.
// Unknown keys are errors: a misspelt key must not silently leave a setting at its default.
func decodeList[T any](data []byte, what string) ([]T, error) {
	var entries []T
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{') {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&entries); err != nil {
			return nil, fmt.Errorf("not a JSON list of %s: %v", what, err)
		}
		return entries, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&entries); err != nil {
		// yaml.v3 quotes the offending scalar in backticks and spreads errors over lines; the
		// scalar may be a token, and the message must stay one line.
		msg := yamlQuoted.ReplaceAllString(err.Error(), "a value")
		msg = strings.Join(strings.Fields(msg), " ")
		return nil, fmt.Errorf("not a YAML list of %s: %s", what, msg)
	}
	return entries, nil
}
