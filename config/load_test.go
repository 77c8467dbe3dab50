package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// envOf turns a map into the (getenv, environ) pair Load takes.
func envOf(m map[string]string) (func(string) string, []string) {
	environ := make([]string, 0, len(m))
	for k, v := range m {
		environ = append(environ, k+"="+v)
	}
	slices.Sort(environ)
	return func(k string) string { return m[k] }, environ
}

// problemsOf returns the lines of a *Error, failing the test for any other error type.
func problemsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, want *config.Error: %v", err, err)
	}
	var out []string
	for _, p := range ce.Problems {
		var ve *VarError
		if !errors.As(p, &ve) {
			t.Errorf("problem %q is %T, want *VarError naming a variable", p, p)
		}
		if strings.ContainsAny(p.Error(), "\r\n") {
			t.Errorf("problem %q spans lines; the CLI prints one line per problem", p)
		}
		out = append(out, p.Error())
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := loadFor(ModeAny, nil)
	if err != nil {
		t.Fatalf("Load with an empty environment: %v", err)
	}
	want := &Config{
		DarktraceTimeout:          60 * time.Second,
		PollSources:               []string{"modelbreaches", "antigena"},
		PollInterval:              60 * time.Second,
		PollStart:                 "1h",
		PollOverlap:               10 * time.Minute,
		FilterIncludeAcknowledged: true,
		FilterIncludeSuppressed:   true,
		SIEMFormat:                "cef",
		SIEMLEEFVersion:           "2.0",
		SIEMTransport:             "stdout",
		SIEMFacility:              "local4",
		SIEMMaxMessageBytes:       8192,
		SIEMRELPWindow:            128,
		SIEMTimeout:               10 * time.Second,
		SIEMUDPRate:               1000,
		SIEMHECAck:                true,
		SIEMHECAckTimeout:         time.Minute,
		SIEMPoisonRetries:         3,
		DeadLetterMaxBytes:        64 << 20,
		StateDir:                  "./state",
		ShutdownTimeout:           10 * time.Second,
		LogLevel:                  "info",

		PollAIAnalystRefreshHorizon:    24 * time.Hour,
		PollAIAnalystRefreshInterval:   10 * time.Minute,
		DarktraceMaxConcurrentRequests: 16,
		DarktraceMaxRequestsPerMinute:  120,
		ShardCount:                     1,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

// TestLoadMatchesEnvconfig holds Load to envconfig's reading of the same struct tags, so the
// struct stays a valid envconfig specification and the two never disagree on a value.
func TestLoadMatchesEnvconfig(t *testing.T) {
	vars := map[string]string{
		"DARKTRACE_URL":                  "https://dt.example:8443",
		"DARKTRACE_PUBLIC_TOKEN":         "pub123",
		"DARKTRACE_PRIVATE_TOKEN":        "priv456",
		"DARKTRACE_SERVER_NAME":          "dt.internal",
		"DARKTRACE_INSECURE_SKIP_VERIFY": "true",
		"DARKTRACE_TIMEOUT":              "90s",
		"DARKTRACE_NAME":                 "dc-1",
		"POLL_SOURCES":                   "modelbreaches,aianalyst",
		"POLL_INTERVAL":                  "2m",
		"POLL_START":                     "2024-05-01",
		"POLL_OVERLAP":                   "90s",
		"FILTER_MIN_SCORE":               "0.25",
		"FILTER_INCLUDE_ACKNOWLEDGED":    "false",
		"FILTER_INCLUDE_SUPPRESSED":      "1",
		"FILTER_MODELS":                  "^Anomalous",
		"SIEM_FORMAT":                    "leef",
		"SIEM_LEEF_VERSION":              "1.0",
		"SIEM_TRANSPORT":                 "tcp",
		"SIEM_ADDRESS":                   "127.0.0.1:514",
		"SIEM_HEADER":                    "rfc3164",
		"SIEM_FRAMING":                   "octet-counting",
		"SIEM_FACILITY":                  "local7",
		"SIEM_MAX_MESSAGE_BYTES":         "0x4000",
		"SIEM_TIMEOUT":                   "3s",
		"SIEM_RELP_WINDOW":               "512",
		"STATE_DIR":                      "/var/lib/dtforward",
		"SHUTDOWN_TIMEOUT":               "30s",
		"LOG_LEVEL":                      "debug",
		"LOG_FORMAT":                     "console",
		"HTTP_ADDRESS":                   ":9090",
	}
	// envconfig reads the process environment: pin every variable it knows, unsetting the
	// ones this test leaves out (t.Setenv restores them afterwards).
	for _, v := range Table() {
		t.Setenv(v.Name, "")
		os.Unsetenv(v.Name)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	var want Config
	if err := envconfig.Process("", &want); err != nil {
		t.Fatalf("envconfig.Process: %v", err)
	}
	got, err := loadFor(ModeRun, (vars))
	if err != nil {
		t.Fatalf("LoadFor: %v", err)
	}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("Load and envconfig disagree:\n  Load      %+v\n  envconfig %+v", got, &want)
	}
	if got.SIEMMaxMessageBytes != 16384 || got.SIEMFacility != "local7" {
		t.Errorf("values not taken from the environment: %+v", got)
	}
}

// base is a valid run configuration the error cases start from.
func base() map[string]string {
	return map[string]string{
		"DARKTRACE_URL":           "https://dt.example",
		"DARKTRACE_PUBLIC_TOKEN":  "pub",
		"DARKTRACE_PRIVATE_TOKEN": "priv",
	}
}

func with(kv ...string) map[string]string {
	m := base()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestLoadProblems(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name string
		env  map[string]string
		mode Mode
		want []string // the exact problem lines, in any order
	}{
		{"valid run", base(), ModeRun, nil},
		{"framing misspelt", with("SIEM_FRAMING", "octets"), ModeRun,
			[]string{`SIEM_FRAMING: "octets" is not one of lf, octet-counting`}},
		{"format misspelt", with("SIEM_FORMAT", "cef2"), ModeRun,
			[]string{`SIEM_FORMAT: "cef2" is not one of cef, darktrace-json, json, leef, ocsf`}},
		{"transport misspelt", with("SIEM_TRANSPORT", "tcp+tls"), ModeRun,
			[]string{`SIEM_TRANSPORT: "tcp+tls" is not one of udp, tcp, tls, relp, hec, stdout, file, sentinel, otlp`}},
		{"header misspelt", with("SIEM_HEADER", "5424"), ModeRun,
			[]string{`SIEM_HEADER: "5424" is not one of rfc5424, rfc3164, none`}},
		{"facility misspelt", with("SIEM_FACILITY", "local8"), ModeRun,
			[]string{`SIEM_FACILITY: "local8" is not a syslog facility (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, security, console, local0, local1, local2, local3, local4, local5, local6, local7)`}},
		{"log level misspelt", with("LOG_LEVEL", "verbose"), ModeRun,
			[]string{`LOG_LEVEL: "verbose" is not one of trace, debug, info, warn, error`}},
		{"log format misspelt", with("LOG_FORMAT", "text"), ModeRun,
			[]string{`LOG_FORMAT: "text" is not one of json, console`}},
		{"leef version misspelt", with("SIEM_LEEF_VERSION", "2"), ModeRun,
			[]string{`SIEM_LEEF_VERSION: "2" is not one of 2.0, 1.0`}},
		{"source misspelt", with("POLL_SOURCES", "modelbreaches,breaches"), ModeRun,
			[]string{`POLL_SOURCES: "breaches" is not one of modelbreaches, antigena, aianalyst`}},
		{"source twice", with("POLL_SOURCES", "antigena, antigena"), ModeRun,
			[]string{`POLL_SOURCES: "antigena" is listed twice`}},
		{"sources empty", with("POLL_SOURCES", " , "), ModeRun,
			[]string{`POLL_SOURCES: empty; set one or more of modelbreaches, antigena, aianalyst`}},
		{"interval not a duration", with("POLL_INTERVAL", "5"), ModeRun,
			[]string{`POLL_INTERVAL: "5" is not a duration (e.g. 60s, 5m)`}},
		{"interval too short", with("POLL_INTERVAL", "10ms"), ModeRun,
			[]string{`POLL_INTERVAL: 10ms is too short; use at least 1s (e.g. 60s)`}},
		{"start not a time", with("POLL_START", "yesterday"), ModeRun,
			[]string{`POLL_START: "yesterday" is not a duration (1h, 7d), an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01) or epoch milliseconds`}},
		{"start in the future", with("POLL_START", "2999-01-01"), ModeRun,
			[]string{`POLL_START: "2999-01-01" is in the future`}},
		{"overlap negative", with("POLL_OVERLAP", "-1m"), ModeRun,
			[]string{`POLL_OVERLAP: -1m0s is outside 1m–24h`}},
		{"overlap zero", with("POLL_OVERLAP", "0s"), ModeRun,
			[]string{`POLL_OVERLAP: 0s is outside 1m–24h`}},
		{"overlap too short", with("POLL_OVERLAP", "30s"), ModeRun,
			[]string{`POLL_OVERLAP: 30s is outside 1m–24h`}},
		{"overlap too long", with("POLL_OVERLAP", "25h"), ModeRun,
			[]string{`POLL_OVERLAP: 25h0m0s is outside 1m–24h`}},
		{"refresh horizon negative", with("POLL_AIANALYST_REFRESH_HORIZON", "-1h"), ModeRun,
			[]string{`POLL_AIANALYST_REFRESH_HORIZON: -1h0m0s is outside 0 (off)–168h`}},
		{"refresh horizon too long", with("POLL_AIANALYST_REFRESH_HORIZON", "200h"), ModeRun,
			[]string{`POLL_AIANALYST_REFRESH_HORIZON: 200h0m0s is outside 0 (off)–168h`}},
		{"refresh interval too short", with("POLL_AIANALYST_REFRESH_INTERVAL", "10s"), ModeRun,
			[]string{`POLL_AIANALYST_REFRESH_INTERVAL: 10s is too short; use at least 1m (e.g. 10m)`}},
		{"min score above 1", with("FILTER_MIN_SCORE", "1.5"), ModeRun,
			[]string{`FILTER_MIN_SCORE: 1.5 is outside 0–1`}},
		{"min score not a number", with("FILTER_MIN_SCORE", "high"), ModeRun,
			[]string{`FILTER_MIN_SCORE: "high" is not a number`}},
		{"bool not a bool", with("FILTER_INCLUDE_SUPPRESSED", "yes"), ModeRun,
			[]string{`FILTER_INCLUDE_SUPPRESSED: "yes" is not a boolean (true or false)`}},
		{"models regexp", with("FILTER_MODELS", "Anomalous (Connection"), ModeRun,
			[]string{"FILTER_MODELS: invalid regular expression: missing closing ): `Anomalous (Connection`"}},
		{"tags regexp", with("FILTER_TAGS", "*AP"), ModeRun,
			[]string{"FILTER_TAGS: invalid regular expression: missing argument to repetition operator: `*`"}},
		{"address required for tcp", with("SIEM_TRANSPORT", "tcp"), ModeRun,
			[]string{`SIEM_ADDRESS: required for transport tcp (host:port)`}},
		{"address required for file", with("SIEM_TRANSPORT", "file"), ModeRun,
			[]string{`SIEM_ADDRESS: required for transport file (the path to append to)`}},
		{"address without port", with("SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", "siem.example"), ModeRun,
			[]string{`SIEM_ADDRESS: "siem.example" is not host:port`}},
		{"address bad port", with("SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", "siem.example:70000"), ModeRun,
			[]string{`SIEM_ADDRESS: "siem.example:70000" has an invalid port (expected 1–65535)`}},
		{"address with stdout", with("SIEM_ADDRESS", "siem.example:514"), ModeRun,
			[]string{`SIEM_ADDRESS: "siem.example:514" is set but SIEM_TRANSPORT is stdout; set SIEM_TRANSPORT to udp, tcp, tls, relp or file`}},
		{"cert without key", with("SIEM_TRANSPORT", "tls", "SIEM_ADDRESS", "siem:6514", "SIEM_TLS_CERT_FILE", "/dev/null"), ModeRun,
			[]string{`SIEM_TLS_CERT_FILE and SIEM_TLS_KEY_FILE must be set together`}},
		{"key without cert", with("SIEM_TRANSPORT", "tls", "SIEM_ADDRESS", "siem:6514", "SIEM_TLS_KEY_FILE", "/dev/null"), ModeRun,
			[]string{`SIEM_TLS_CERT_FILE and SIEM_TLS_KEY_FILE must be set together`}},
		{"tls option without tls", with("SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", "siem:514", "SIEM_TLS_SERVER_NAME", "siem"), ModeRun,
			[]string{`SIEM_TLS_SERVER_NAME: only applies to SIEM_TRANSPORT=tls (it is tcp)`}},
		{"hec needs URL and token", with("SIEM_TRANSPORT", "hec"), ModeRun, []string{
			`SIEM_ADDRESS: required for transport hec (the HEC base URL, e.g. https://splunk.example:8088)`,
			`SIEM_HEC_TOKEN: required for transport hec (or SIEM_HEC_TOKEN_FILE)`}},
		{"hec bad settings", with("SIEM_TRANSPORT", "hec", "SIEM_ADDRESS", "splunk:8088", "SIEM_HEC_TOKEN", "t",
			"SIEM_HEC_INDEX", "Main", "SIEM_HEC_SOURCETYPE", "breach=x"), ModeRun, []string{
			`SIEM_ADDRESS: "splunk:8088" is not an http(s) URL (e.g. https://splunk.example:8088)`,
			`SIEM_HEC_INDEX: "Main" is not a Splunk index name (lower case letters, digits, '_' and '-', not starting with '_' or '-')`,
			`SIEM_HEC_SOURCETYPE: "breach=x" is not kind=sourcetype with a kind of modelbreach, aianalyst, antigena`}},
		{"hec setting on tcp", with("SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", "siem:514", "SIEM_HEC_INDEX", "main"), ModeRun,
			[]string{`SIEM_HEC_INDEX: only applies to SIEM_TRANSPORT=hec (it is tcp)`}},
		{"tls CA missing", with("SIEM_TRANSPORT", "tls", "SIEM_ADDRESS", "siem:6514", "SIEM_TLS_CA_FILE", missing), ModeRun,
			[]string{`SIEM_TLS_CA_FILE: cannot read ` + missing + `: no such file or directory`}},
		{"relp address required", with("SIEM_TRANSPORT", "relp"), ModeRun,
			[]string{`SIEM_ADDRESS: required for transport relp (host:port)`}},
		{"relp valid", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_RELP_WINDOW", "1"), ModeRun, nil},
		{"relp tls valid", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_RELP_TLS", "true", "SIEM_TLS_SERVER_NAME", "siem"), ModeRun, nil},
		{"relp window out of range", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_RELP_WINDOW", "0"), ModeRun,
			[]string{`SIEM_RELP_WINDOW: 0 is outside 1–65536`}},
		{"relp window too large", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_RELP_WINDOW", "65537"), ModeRun,
			[]string{`SIEM_RELP_WINDOW: 65537 is outside 1–65536`}},
		{"relp tls without relp", with("SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", "siem:514", "SIEM_RELP_TLS", "true"), ModeRun,
			[]string{`SIEM_RELP_TLS: only applies to SIEM_TRANSPORT=relp (it is tcp); for syslog over TLS set SIEM_TRANSPORT=tls`}},
		{"tls option for relp without tls", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_TLS_CA_FILE", "/dev/null"), ModeRun,
			[]string{`SIEM_TLS_CA_FILE: only applies to SIEM_TRANSPORT=relp with SIEM_RELP_TLS=true`}},
		{"framing with relp", with("SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", "siem:2514", "SIEM_FRAMING", "lf"), ModeRun,
			[]string{`SIEM_FRAMING: does not apply to SIEM_TRANSPORT=relp: RELP frames every message itself`}},
		{"max message too small", with("SIEM_MAX_MESSAGE_BYTES", "100"), ModeRun,
			[]string{`SIEM_MAX_MESSAGE_BYTES: 100 is outside 480–1048576`}},
		{"max message too big for udp", with("SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", "siem:514", "SIEM_MAX_MESSAGE_BYTES", "65508"), ModeRun,
			[]string{`SIEM_MAX_MESSAGE_BYTES: 65508 is more than a UDP datagram holds (65507)`}},
		{"max message not an integer", with("SIEM_MAX_MESSAGE_BYTES", "8k"), ModeRun,
			[]string{`SIEM_MAX_MESSAGE_BYTES: "8k" is not an integer`}},
		{"timeouts not positive", with("SIEM_TIMEOUT", "0s", "DARKTRACE_TIMEOUT", "-1s", "SHUTDOWN_TIMEOUT", "0s"), ModeRun,
			[]string{`SIEM_TIMEOUT: 0s must be positive (e.g. 10s)`, `DARKTRACE_TIMEOUT: -1s must be positive (e.g. 60s)`, `SHUTDOWN_TIMEOUT: 0s must be positive (e.g. 10s)`}},
		{"udp rate negative", with("SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", "siem:514", "SIEM_UDP_RATE", "-1"), ModeRun,
			[]string{`SIEM_UDP_RATE: -1 is outside 0–1000000 (datagrams per second; 0 = unlimited)`}},
		{"udp rate absurd", with("SIEM_UDP_RATE", "5000000"), ModeRun,
			[]string{`SIEM_UDP_RATE: 5000000 is outside 0–1000000 (datagrams per second; 0 = unlimited)`}},
		{"udp rate not an integer", with("SIEM_UDP_RATE", "2k/s"), ModeRun,
			[]string{`SIEM_UDP_RATE: "2k/s" is not an integer`}},
		{"udp rate unlimited", with("SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", "siem:514", "SIEM_UDP_RATE", "0"), ModeRun, nil},
		{"http address", with("HTTP_ADDRESS", "9090"), ModeRun,
			[]string{`HTTP_ADDRESS: "9090" is not host:port`}},
		{"http url", with("DARKTRACE_URL", "http://x"), ModeRun,
			[]string{`DARKTRACE_URL: "http://x" uses http; set DARKTRACE_ALLOW_HTTP=true or use https`}},
		{"http url allowed", with("DARKTRACE_URL", "http://127.0.0.1:8080", "DARKTRACE_ALLOW_HTTP", "true"), ModeRun, nil},
		{"url without scheme", with("DARKTRACE_URL", "dt.example"), ModeRun,
			[]string{`DARKTRACE_URL: "dt.example" is not an http(s) URL (e.g. https://appliance.example)`}},
		{"url with password", with("DARKTRACE_URL", "https://u:hunter2@dt.example"), ModeRun,
			[]string{`DARKTRACE_URL: "https://xxxxx@dt.example" contains user info; tokens go in their own variables`}},
		// The client's rule (darktrace.CheckURL), so that no URL passes here and fails there.
		{"url with a path", with("DARKTRACE_URL", "https://dt.example/api"), ModeRun,
			[]string{`DARKTRACE_URL: "https://dt.example/api" has a path; give scheme://host[:port] only, dtforward adds the API paths`}},
		{"url without host name", with("DARKTRACE_URL", "https://:8443"), ModeRun,
			[]string{`DARKTRACE_URL: "https://:8443" has no host name (e.g. https://appliance.example)`}},
		{"unsafe name", with("DARKTRACE_NAME", "../etc"), ModeRun,
			[]string{`DARKTRACE_NAME: "../etc" is not a safe name: use 1–63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'`}},
		{"state dir empty", with("STATE_DIR", ""), ModeRun, nil}, // empty means unset: the default applies
		{"unknown SIEM variable", with("SIEM_ADRESS", "siem:514"), ModeRun,
			[]string{`SIEM_ADRESS: unknown variable; did you mean SIEM_ADDRESS?`}},
		{"unknown _FILE variant", with("DARKTRACE_URL_FILE", "/x"), ModeRun,
			[]string{`DARKTRACE_URL_FILE: unknown variable; only the tokens have a _FILE variant: set DARKTRACE_URL itself`}},
		{"misspelt _FILE variant", with("DARKTRACE_PRIVATE_TOKEN_FIEL", "/x"), ModeRun,
			[]string{`DARKTRACE_PRIVATE_TOKEN_FIEL: unknown variable; did you mean DARKTRACE_PRIVATE_TOKEN_FILE?`}},
		{"unknown far from any", with("POLL_EVERYTHING_AT_ONCE", "1"), ModeRun,
			[]string{`POLL_EVERYTHING_AT_ONCE: unknown variable (see the configuration reference in README.md)`}},
		{"exact name misspelt", with("LOG_LEVL", "debug"), ModeRun, nil}, // not under a prefix: not ours
		{"kubernetes service links are not ours", with("SIEM_SERVICE_HOST", "10.0.0.11", "SIEM_SERVICE_PORT", "514",
			"SIEM_SERVICE_PORT_SYSLOG", "514", "SIEM_PORT", "tcp://10.0.0.11:514", "SIEM_PORT_514_TCP", "tcp://10.0.0.11:514",
			"SIEM_PORT_514_TCP_PROTO", "tcp", "SIEM_PORT_514_TCP_ADDR", "10.0.0.11", "DARKTRACE_SERVICE_HOST", "10.0.0.12"), ModeRun, nil},
		{"SIEM_PORT as a setting", with("SIEM_PORT", "514"), ModeRun,
			[]string{`SIEM_PORT: unknown variable; did you mean SIEM_ADDRESS?`}},
		{"test variables are not ours", with("DTFORWARD_REQUIRE_TOOLS", "1"), ModeRun, nil},
		{"both URL and appliances file", with("DARKTRACE_APPLIANCES_FILE", "/x.yaml"), ModeRun,
			[]string{
				`DARKTRACE_URL: cannot be combined with DARKTRACE_APPLIANCES_FILE; set it per appliance in /x.yaml`,
				`DARKTRACE_PUBLIC_TOKEN: cannot be combined with DARKTRACE_APPLIANCES_FILE; set it per appliance in /x.yaml`,
				`DARKTRACE_PRIVATE_TOKEN: cannot be combined with DARKTRACE_APPLIANCES_FILE; set it per appliance in /x.yaml`,
			}},
		{"several problems at once", with("SIEM_FORMAT", "xml", "POLL_INTERVAL", "soon", "DARKTRACE_URL", "<unset>"), ModeRun,
			[]string{
				`SIEM_FORMAT: "xml" is not one of cef, darktrace-json, json, leef, ocsf`,
				`POLL_INTERVAL: "soon" is not a duration (e.g. 60s, 5m)`,
				`DARKTRACE_URL: required for run (e.g. https://appliance.example), or set DARKTRACE_APPLIANCES_FILE`,
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadFor(tc.mode, (tc.env))
			got := problemsOf(t, err)
			if !sameSet(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestRequiredPerMode checks which variables each command demands of an empty environment.
func TestRequiredPerMode(t *testing.T) {
	need := func(m Mode) []string {
		return []string{
			fmt.Sprintf("DARKTRACE_URL: required for %s (e.g. https://appliance.example), or set DARKTRACE_APPLIANCES_FILE", m),
			fmt.Sprintf("DARKTRACE_PUBLIC_TOKEN: required for %s (or DARKTRACE_PUBLIC_TOKEN_FILE)", m),
			fmt.Sprintf("DARKTRACE_PRIVATE_TOKEN: required for %s (or DARKTRACE_PRIVATE_TOKEN_FILE)", m),
		}
	}
	tests := []struct {
		mode Mode
		want []string
	}{
		{ModeAny, nil},
		{ModeRun, need(ModeRun)},
		{ModeBackfill, need(ModeBackfill)},
		{ModeCheck, need(ModeCheck)},
		{ModeDemo, nil},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			_, err := loadFor(tc.mode, (nil))
			if got := problemsOf(t, err); !sameSet(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
			// Each required variable alone is reported when it is the only one missing.
			for _, v := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN"} {
				_, err := loadFor(tc.mode, (with(v, "<unset>")))
				got := problemsOf(t, err)
				if tc.want == nil {
					if got != nil {
						t.Errorf("without %s: unexpected problems %q", v, got)
					}
				} else if len(got) != 1 || !strings.HasPrefix(got[0], v+": required for "+tc.mode.String()) {
					t.Errorf("without %s: problems %q, want only that it is required", v, got)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSecretFiles(t *testing.T) {
	pub := writeFile(t, "pub", "filepub\n")
	priv := writeFile(t, "priv", "filepriv\r\n")
	empty := writeFile(t, "empty", "\n")
	spaced := writeFile(t, "spaced", "two words\n")
	missing := filepath.Join(t.TempDir(), "missing")

	t.Run("read and trimmed", func(t *testing.T) {
		c, err := loadFor(ModeRun, (with("DARKTRACE_PUBLIC_TOKEN", "<unset>", "DARKTRACE_PRIVATE_TOKEN", "<unset>",
			"DARKTRACE_PUBLIC_TOKEN_FILE", pub, "DARKTRACE_PRIVATE_TOKEN_FILE", priv)))
		if err != nil {
			t.Fatal(err)
		}
		if c.DarktracePublicToken.Value() != "filepub" || c.DarktracePrivateToken.Value() != "filepriv" {
			t.Errorf("tokens from files = %q, %q", c.DarktracePublicToken.Value(), c.DarktracePrivateToken.Value())
		}
	})
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"both variable and file", with("DARKTRACE_PUBLIC_TOKEN_FILE", pub),
			[]string{"DARKTRACE_PUBLIC_TOKEN and DARKTRACE_PUBLIC_TOKEN_FILE are mutually exclusive; set only one"}},
		{"unreadable file", with("DARKTRACE_PRIVATE_TOKEN", "<unset>", "DARKTRACE_PRIVATE_TOKEN_FILE", missing),
			[]string{"DARKTRACE_PRIVATE_TOKEN_FILE: cannot read " + missing + ": no such file or directory"}},
		{"file is a directory", with("DARKTRACE_PRIVATE_TOKEN", "<unset>", "DARKTRACE_PRIVATE_TOKEN_FILE", t.TempDir()),
			nil}, // checked below by prefix: the OS error text varies
		{"empty file", with("DARKTRACE_PUBLIC_TOKEN", "<unset>", "DARKTRACE_PUBLIC_TOKEN_FILE", empty),
			[]string{"DARKTRACE_PUBLIC_TOKEN_FILE: " + empty + " is empty"}},
		{"whitespace inside", with("DARKTRACE_PUBLIC_TOKEN", "<unset>", "DARKTRACE_PUBLIC_TOKEN_FILE", spaced),
			[]string{"DARKTRACE_PUBLIC_TOKEN: contains whitespace or control characters (value not shown)"}},
		{"header injection", with("DARKTRACE_PRIVATE_TOKEN", "abc\r\nX-Evil: 1"),
			[]string{"DARKTRACE_PRIVATE_TOKEN: contains whitespace or control characters (value not shown)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadFor(ModeRun, (tc.env))
			got := problemsOf(t, err)
			if tc.want == nil {
				if len(got) == 0 || !strings.HasPrefix(got[0], "DARKTRACE_PRIVATE_TOKEN_FILE: cannot read ") {
					t.Errorf("problems %q, want DARKTRACE_PRIVATE_TOKEN_FILE: cannot read …", got)
				}
				return
			}
			if !sameSet(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
			for _, line := range got {
				for _, secret := range []string{"filepub", "two words", "X-Evil"} {
					if strings.Contains(line, secret) {
						t.Errorf("problem %q shows secret content %q", line, secret)
					}
				}
			}
		})
	}
}

// TestSecretsNeverPrinted formats a loaded config, its appliances and the errors of broken
// configs every way a log line might, and looks for the tokens.
func TestSecretsNeverPrinted(t *testing.T) {
	const pub, priv = "PUBLICtoken0123", "PRIVATEtoken4567"
	c, err := loadFor(ModeRun, (with("DARKTRACE_PUBLIC_TOKEN", pub, "DARKTRACE_PRIVATE_TOKEN", priv)))
	if err != nil {
		t.Fatal(err)
	}
	apps, err := c.Appliances()
	if err != nil {
		t.Fatal(err)
	}
	if apps[0].PublicToken.Value() != pub || apps[0].PrivateToken.Value() != priv {
		t.Fatalf("tokens did not reach the appliance")
	}
	js, _ := json.Marshal(c)
	jsa, _ := json.Marshal(apps)
	outputs := map[string]string{
		"config %v %+v %#v":     fmt.Sprintf("%v %+v %#v", c, c, c),
		"config value %v %+v":   fmt.Sprintf("%v %+v %#v", *c, *c, *c),
		"appliances %v %+v %#v": fmt.Sprintf("%v %+v %#v", apps, apps, apps),
		"config JSON":           string(js),
		"appliances JSON":       string(jsa),
	}
	broken := []map[string]string{
		with("DARKTRACE_PUBLIC_TOKEN", pub, "DARKTRACE_PRIVATE_TOKEN", priv, "DARKTRACE_PUBLIC_TOKEN_FILE", "/nonexistent", "SIEM_FORMAT", "x"),
		with("DARKTRACE_PUBLIC_TOKEN", pub+" x", "DARKTRACE_PRIVATE_TOKEN", priv+"\n"),
		with("DARKTRACE_PUBLIC_TOKEN", pub, "DARKTRACE_PRIVATE_TOKEN", priv, "DARKTRACE_APPLIANCES_FILE", "/nonexistent"),
		with("DARKTRACE_URL", "https://"+pub+":"+priv+"@dt.example"),
		with("DARKTRACE_URL", "ht tp://"+pub+":"+priv+"@dt.example"),
	}
	for i, env := range broken {
		_, err := loadFor(ModeRun, (env))
		if err == nil {
			t.Fatalf("broken config %d loaded", i)
		}
		outputs[fmt.Sprintf("error %d", i)] = fmt.Sprintf("%v %+v %#v", err, err, err)
	}
	for what, out := range outputs {
		if strings.Contains(out, pub) || strings.Contains(out, priv) {
			t.Errorf("%s shows a token: %s", what, out)
		}
	}
	if !strings.Contains(outputs["config %v %+v %#v"], "<secret>") {
		t.Errorf("config output does not show the redaction marker: %s", outputs["config %v %+v %#v"])
	}
}

func TestFilter(t *testing.T) {
	c, err := loadFor(ModeAny, map[string]string{"FILTER_MODELS": "^Anomalous Connection::", "FILTER_TAGS": "(?i)critical",
		"FILTER_MIN_SCORE": "0.25", "FILTER_INCLUDE_ACKNOWLEDGED": "false", "FILTER_INCLUDE_SUPPRESSED": "false"})
	if err != nil {
		t.Fatal(err)
	}
	f := c.Filter()
	if !f.Models.MatchString("Anomalous Connection::Data Sent") || f.Models.MatchString("Device::New") {
		t.Errorf("Models does not follow FILTER_MODELS")
	}
	if !f.Tags.MatchString("AP: CRITICAL") {
		t.Errorf("Tags does not follow FILTER_TAGS")
	}
	if f.MinScore != 0.25 || f.IncludeAcknowledged || !f.HideSuppressed {
		t.Errorf("filter %+v does not follow FILTER_*", f)
	}
	if g := (&Config{}).Filter(); g.Models != nil || g.Tags != nil {
		t.Errorf("empty FILTER_MODELS and FILTER_TAGS should mean no filter (nil)")
	}
}

func TestTable(t *testing.T) {
	vars := Table()
	names := map[string]bool{}
	for _, v := range vars {
		if names[v.Name] {
			t.Errorf("%s listed twice", v.Name)
		}
		names[v.Name] = true
		if v.Description == "" {
			t.Errorf("%s has no description", v.Name)
		}
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if n := typ.Field(i).Tag.Get("envconfig"); !names[n] {
			t.Errorf("field %s (%s) missing from Table()", typ.Field(i).Name, n)
		}
	}
	for _, n := range []string{"DARKTRACE_PUBLIC_TOKEN_FILE", "DARKTRACE_PRIVATE_TOKEN_FILE"} {
		if !names[n] {
			t.Errorf("%s missing from Table()", n)
		}
	}
	if vars[0].Name != "DARKTRACE_URL" {
		t.Errorf("Table() should follow struct order; first is %s", vars[0].Name)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SIEM_ADRESS", "SIEM_ADDRESS"},
		{"SIEM_TRANSPROT", "SIEM_TRANSPORT"},
		{"DARKTRACE_PUBLIC_TOKENFILE", "DARKTRACE_PUBLIC_TOKEN_FILE"},
		{"POLL_INTERVALL", "POLL_INTERVAL"},
		{"FILTER_MINSCORE", "FILTER_MIN_SCORE"},
		{"SIEM_SOMETHING_ELSE_ENTIRELY", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := suggest(tc.in, knownNames()); got != tc.want {
				t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func loadFor(mode Mode, m map[string]string) (*Config, error) {
	getenv, environ := envOf(m)
	return LoadFor(mode, getenv, environ)
}
