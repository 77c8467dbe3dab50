package otlpcollector

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"gopkg.in/yaml.v3"

	"github.com/dtforward/dtforward/internal/testutil/syslogd"
)

// readmeCollectorConfig is the collector configuration of README.md's OpenTelemetry section.
func readmeCollectorConfig(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\\*\\*A collector forwarding to Splunk HEC and to Kafka\\.\\*\\*.*?```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no collector configuration under \"A collector forwarding to Splunk HEC and to Kafka\"")
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(m[1], &cfg); err != nil {
		t.Fatalf("the README's collector configuration is not YAML: %v", err)
	}
	return cfg
}

func keys(m any) []string {
	mm, _ := m.(map[string]any)
	var out []string
	for k := range mm {
		out = append(out, k)
	}
	return out
}

func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestREADMECollectorConfig checks the README's collector configuration: its otlp receiver
// section is decoded and validated by the Collector's own receiver (unknown keys are errors),
// and started with test certificates in place of the paths it names; the pipeline names only
// components the file declares. The exporter and extension sections are not validated by
// their own modules here (README says so).
func TestREADMECollectorConfig(t *testing.T) {
	cfg := readmeCollectorConfig(t)
	f := otlpreceiver.NewFactory()
	rcfg := f.CreateDefaultConfig().(*otlpreceiver.Config)
	sub, err := confmap.NewFromStringMap(cfg).Sub("receivers::otlp")
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Unmarshal(rcfg); err != nil {
		t.Fatalf("the otlp receiver does not take the README's section: %v", err)
	}
	if err := confmap.Validate(rcfg); err != nil {
		t.Fatalf("the otlp receiver refuses the README's section: %v", err)
	}
	if !rcfg.Protocols.HTTP.HasValue() || !rcfg.Protocols.GRPC.HasValue() {
		t.Fatal("the README's receiver does not serve both OTLP/HTTP and OTLP/gRPC")
	}
	h, g := rcfg.Protocols.HTTP.Get(), rcfg.Protocols.GRPC.Get()
	if h.ServerConfig.NetAddr.Endpoint != "0.0.0.0:4318" || g.NetAddr.Endpoint != "0.0.0.0:4317" || !h.ServerConfig.TLS.HasValue() || !g.TLS.HasValue() {
		t.Errorf("receiver: http %q, grpc %q, TLS %v %v", h.ServerConfig.NetAddr.Endpoint, g.NetAddr.Endpoint, h.ServerConfig.TLS.HasValue(), g.TLS.HasValue())
	}
	authID := h.ServerConfig.Auth.Get().Config.AuthenticatorID.String()
	// Started as configured, on test ports and certificates, and without the authenticator (a
	// contrib extension): the TLS settings load and the receiver serves.
	ca := syslogd.NewCA(t)
	h.ServerConfig.NetAddr.Endpoint, g.NetAddr.Endpoint = freeAddr(t), freeAddr(t)
	for _, tc := range []*configtls.ServerConfig{h.ServerConfig.TLS.Get(), g.TLS.Get()} {
		tc.CertFile, tc.KeyFile = ca.ServerCert, ca.ServerKey
	}
	h.ServerConfig.Auth = configoptional.None[confighttp.AuthConfig]()
	g.Auth = configoptional.None[configauth.Config]()
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), rcfg, new(consumertest.LogsSink))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatalf("the README's receiver does not start: %v", err)
	}
	_ = r.Shutdown(context.Background())

	ext, rcv, exp := keys(cfg["extensions"]), keys(cfg["receivers"]), keys(cfg["exporters"])
	service, _ := cfg["service"].(map[string]any)
	for _, e := range strs(service["extensions"]) {
		if !slices.Contains(ext, e) {
			t.Errorf("service.extensions names %q, which extensions does not declare", e)
		}
	}
	pipelines, _ := service["pipelines"].(map[string]any)
	logs, _ := pipelines["logs"].(map[string]any)
	for _, r := range strs(logs["receivers"]) {
		if !slices.Contains(rcv, r) {
			t.Errorf("the logs pipeline names receiver %q, which is not declared", r)
		}
	}
	for _, e := range strs(logs["exporters"]) {
		if !slices.Contains(exp, e) {
			t.Errorf("the logs pipeline names exporter %q, which is not declared", e)
		}
	}
	if !slices.Contains(strs(logs["exporters"]), "splunk_hec") || !slices.Contains(strs(logs["exporters"]), "kafka") {
		t.Errorf("the logs pipeline does not export to splunk_hec and kafka: %v", logs["exporters"])
	}
	if !slices.Contains(strs(service["extensions"]), authID) {
		t.Errorf("the receiver authenticates with %q, which the service does not run", authID)
	}
	for _, e := range exp {
		q, _ := cfg["exporters"].(map[string]any)[e].(map[string]any)["sending_queue"].(map[string]any)
		if st, _ := q["storage"].(string); st != "" && !slices.Contains(strs(service["extensions"]), st) {
			t.Errorf("exporter %s queues in %q, which the service does not run", e, st)
		}
	}
}
