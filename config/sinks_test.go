package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeSinks(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sinks")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const sinksYAML = `
- name: siem
  format: cef
  transport: tcp
  address: 127.0.0.1:514
  app_name: dt-cef
- name: elastic-ai
  sources: [aianalyst]
  format: json
  transport: relp
  address: 127.0.0.1:2514
  relp_window: 64
  timeout: 3s
- name: archive
  format: darktrace-json
  transport: file
  address: /var/log/dt.jsonl
  udp_rate: 0
- name: splunk
  format: json
  transport: hec
  address: https://splunk.example:8088
  hec_token: hec-0123
  hec_ack: false
  hec_ack_timeout: 2m
  hec_index: darktrace
  hec_sourcetype: modelbreach=darktrace:alert
`

const sinksJSON = `[
	{"name": "siem", "format": "cef", "transport": "tcp", "address": "127.0.0.1:514", "app_name": "dt-cef"},
	{"name": "elastic-ai", "sources": ["aianalyst"], "format": "json", "transport": "relp", "address": "127.0.0.1:2514",
	 "relp_window": 64, "timeout": "3s"},
	{"name": "archive", "format": "darktrace-json", "transport": "file", "address": "/var/log/dt.jsonl", "udp_rate": 0},
	{"name": "splunk", "format": "json", "transport": "hec", "address": "https://splunk.example:8088", "hec_token_file": "hec.token",
	 "hec_ack": false, "hec_ack_timeout": "2m", "hec_index": "darktrace", "hec_sourcetype": "modelbreach=darktrace:alert"}
]`

func TestSinksFile(t *testing.T) {
	want := []Sink{
		{Name: "siem", Format: "cef", LEEFVersion: "2.0", Transport: "tcp", Address: "127.0.0.1:514", Facility: "local4",
			AppName: "dt-cef", RELPWindow: 128, MaxMessageBytes: 8192, Timeout: 10 * time.Second, UDPRate: 1000,
			HECAck: true, HECAckTimeout: time.Minute},
		{Name: "elastic-ai", Sources: []string{"aianalyst"}, Format: "json", LEEFVersion: "2.0", Transport: "relp",
			Address: "127.0.0.1:2514", Facility: "local4", RELPWindow: 64, MaxMessageBytes: 8192, Timeout: 3 * time.Second, UDPRate: 1000,
			HECAck: true, HECAckTimeout: time.Minute},
		{Name: "archive", Format: "darktrace-json", LEEFVersion: "2.0", Transport: "file", Address: "/var/log/dt.jsonl",
			Facility: "local4", RELPWindow: 128, MaxMessageBytes: 8192, Timeout: 10 * time.Second, UDPRate: 0,
			HECAck: true, HECAckTimeout: time.Minute},
		{Name: "splunk", Format: "json", LEEFVersion: "2.0", Transport: "hec", Address: "https://splunk.example:8088",
			Facility: "local4", RELPWindow: 128, MaxMessageBytes: 8192, Timeout: 10 * time.Second, UDPRate: 1000,
			HECToken: "hec-0123", HECAck: false, HECAckTimeout: 2 * time.Minute, HECIndex: "darktrace", HECSourcetype: "modelbreach=darktrace:alert"},
	}
	for _, tc := range []struct{ name, content string }{{"yaml", sinksYAML}, {"json", sinksJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSinks(t, tc.content)
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), "hec.token"), []byte("hec-0123\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := loadFor(ModeRun, with("SIEM_SINKS_FILE", path, "POLL_SOURCES", "modelbreaches,aianalyst"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Sinks()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Sinks():\n got %+v\nwant %+v", got, want)
			}
			if got[2].AppNameOrDefault() != "darktrace" || got[1].AppNameOrDefault() != "dtforward" || got[0].AppNameOrDefault() != "dt-cef" {
				t.Errorf("app names %q %q %q", got[0].AppNameOrDefault(), got[1].AppNameOrDefault(), got[2].AppNameOrDefault())
			}
			if got[2].HeaderOrDefault() != "none" || got[0].HeaderOrDefault() != "rfc5424" {
				t.Errorf("headers %q %q", got[0].HeaderOrDefault(), got[2].HeaderOrDefault())
			}
		})
	}
}

func TestSinksFileProblems(t *testing.T) {
	tests := []struct {
		name    string
		content string
		env     []string
		want    []string // every problem, in order
	}{
		{"both set", sinksYAML, []string{"SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", "127.0.0.1:514", "POLL_SOURCES", "aianalyst"}, []string{
			"SIEM_TRANSPORT: cannot be combined with SIEM_SINKS_FILE; set transport per sink in FILE",
			"SIEM_ADDRESS: cannot be combined with SIEM_SINKS_FILE; set address per sink in FILE",
		}},
		{"every problem at once (yaml)", `
- name: a/b
  transport: tcp
  format: xml
- transport: carrier-pigeon
- name: ok
  transport: udp
  address: nowhere
  sources: [aianalyst, modelbreaches, modelbreaches, logs]
  app_name: "has space"
  timeout: soon
  tls_ca_file: ca.pem
- name: ok
  transport: stdout
  relp_tls: true
`, nil, []string{
			`SIEM_SINKS_FILE: FILE: sink 1 ("a/b"): name: "a/b" is not a safe name: ` + sinkNameRule,
			`SIEM_SINKS_FILE: FILE: sink 1 ("a/b"): format: "xml" is not one of cef, darktrace-json, json, leef, ocsf`,
			`SIEM_SINKS_FILE: FILE: sink 1 ("a/b"): address: required for transport tcp (host:port)`,
			`SIEM_SINKS_FILE: FILE: sink 2: name: required (` + sinkNameRule + `)`,
			`SIEM_SINKS_FILE: FILE: sink 2: transport: "carrier-pigeon" is not one of udp, tcp, tls, relp, hec, stdout, file, sentinel, otlp`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): timeout: "soon" is not a duration (e.g. 10s)`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): sources: "aianalyst" is not polled; add it to POLL_SOURCES (modelbreaches,antigena)`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): sources: "modelbreaches" is listed twice`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): sources: "logs" is not one of modelbreaches, antigena, aianalyst`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): app_name: "has space" is not a syslog APP-NAME: use 1–48 printable ASCII characters, no spaces`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): address: "nowhere" is not host:port`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("ok"): tls_ca_file: only applies to transport=tls (it is udp)`,
			`SIEM_SINKS_FILE: FILE: sink 4 ("ok"): name: "ok" is also used by sink 3; names must be unique`,
			`SIEM_SINKS_FILE: FILE: sink 4 ("ok"): relp_tls: only applies to transport=relp (it is stdout); for syslog over TLS set transport=tls`,
		}},
		{"unknown key (json)", `[{"name": "a", "transport": "stdout", "tls_ca": "x"}]`, nil, []string{
			`SIEM_SINKS_FILE: FILE: not a JSON list of sinks: json: unknown field "tls_ca"`,
		}},
		{"unknown key (yaml)", "- name: a\n  transport: stdout\n  adress: x\n", nil, []string{
			`SIEM_SINKS_FILE: FILE: not a YAML list of sinks: yaml: unmarshal errors: line 3: field adress not found in type config.sinkEntry`,
		}},
		{"otlp", `
- name: otel
  transport: otlp
  address: collector:4318
  otlp_protocol: thrift
  otlp_headers: "a=1"
  otlp_headers_file: headers.txt
- name: otel2
  transport: otlp
  address: https://collector:4318
  otlp_headers: "no-equals"
- name: syslog
  transport: udp
  address: 127.0.0.1:514
  otlp_headers: "a=1"
  otlp_protocol: grpc
`, nil, []string{
			`SIEM_SINKS_FILE: FILE: sink 1 ("otel"): otlp_headers: set otlp_headers or otlp_headers_file, not both`,
			`SIEM_SINKS_FILE: FILE: sink 1 ("otel"): otlp_protocol: "thrift" is not one of http/protobuf, http/json, grpc`,
			`SIEM_SINKS_FILE: FILE: sink 1 ("otel"): address: "collector:4318" is not an http(s) URL (e.g. https://collector.example:4318); for gRPC set otlp_protocol=grpc`,
			`SIEM_SINKS_FILE: FILE: sink 2 ("otel2"): otlp_headers: pair 1 is not key=value`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("syslog"): otlp_headers: only applies to transport=otlp (it is udp)`,
			`SIEM_SINKS_FILE: FILE: sink 3 ("syslog"): otlp_protocol: only applies to transport=otlp (it is udp)`,
		}},
		{"empty list", "[]", nil, []string{"SIEM_SINKS_FILE: FILE lists no sinks"}},
		{"empty sources", "- name: a\n  transport: stdout\n  sources: []\n", nil, []string{
			`SIEM_SINKS_FILE: FILE: sink 1 ("a"): sources: empty; leave it out for every POLL_SOURCES source, or list some of modelbreaches, antigena`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeSinks(t, tc.content)
			env := with(append([]string{"SIEM_SINKS_FILE", path}, tc.env...)...)
			_, err := loadFor(ModeRun, env)
			got := problemsOf(t, err)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], path, "FILE")
				got[i] = strings.ReplaceAll(got[i], filepath.Dir(path), "DIR")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSIEMAppName(t *testing.T) {
	c, err := loadFor(ModeRun, with("SIEM_APP_NAME", "dt-prod"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.EnvSink(); s.AppNameOrDefault() != "dt-prod" {
		t.Errorf("app name %q", s.AppNameOrDefault())
	}
	_, err = loadFor(ModeRun, with("SIEM_APP_NAME", "dt prod"))
	if got := problemsOf(t, err); len(got) != 1 || !strings.HasPrefix(got[0], `SIEM_APP_NAME: "dt prod" is not a syslog APP-NAME`) {
		t.Errorf("problems %q", got)
	}
	c, err = loadFor(ModeRun, with("SIEM_FORMAT", "darktrace-json"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.EnvSink(); s.AppNameOrDefault() != "darktrace" {
		t.Errorf("darktrace-json app name %q", s.AppNameOrDefault())
	}
}

// The example in deploy/ is valid as shipped (next to its CA file).
func TestSinksExampleFile(t *testing.T) {
	b, err := os.ReadFile("../deploy/sinks.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The file sink's directory must exist (validation checks that the sink can append there).
	path := writeSinks(t, strings.ReplaceAll(string(b), "/var/log/dtforward/", t.TempDir()+"/"))
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "ca.pem"), []byte(testCAPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadFor(ModeRun, with("SIEM_SINKS_FILE", path, "POLL_SOURCES", "modelbreaches,antigena,aianalyst"))
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := c.Sinks()
	if err != nil {
		t.Fatal(err)
	}
	if len(sinks) != 3 || sinks[1].Sources[0] != "aianalyst" || sinks[2].AppNameOrDefault() != "darktrace" {
		t.Errorf("example sinks: %+v", sinks)
	}
}
