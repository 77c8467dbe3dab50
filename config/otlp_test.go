package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestOTLPSettings: the same otlp settings from the SIEM_* variables and from a sinks file
// (headers from a file next to it) give the same sink/otlp configuration.
func TestOTLPSettings(t *testing.T) {
	c, err := loadFor(ModeRun, with("SIEM_TRANSPORT", "otlp", "SIEM_ADDRESS", "collector:4317", "SIEM_OTLP_PROTOCOL", "grpc",
		"SIEM_OTLP_HEADERS", "authorization=Bearer%20abc,x-tenant=t1"))
	if err != nil {
		t.Fatal(err)
	}
	env := c.EnvSink()
	fromEnv, err := env.OTLPConfig(env.SettingName, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"authorization": "Bearer abc", "x-tenant": "t1"}
	if fromEnv.Endpoint != "collector:4317" || fromEnv.Protocol != "grpc" || !reflect.DeepEqual(fromEnv.Headers, want) || fromEnv.Version != "1.2.3" {
		t.Errorf("from the environment: %+v", fromEnv)
	}
	if got := fromEnv.Setting("otlp_headers"); got != "SIEM_OTLP_HEADERS" {
		t.Errorf("setting name %q", got)
	}
	path := writeSinks(t, "- name: otel\n  transport: otlp\n  address: collector:4317\n  otlp_protocol: grpc\n  otlp_headers_file: headers\n")
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "headers"), []byte("authorization=Bearer%20abc,x-tenant=t1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = loadFor(ModeRun, with("SIEM_SINKS_FILE", path))
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := c.Sinks()
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := sinks[0].OTLPConfig(sinks[0].SettingName, "1.2.3")
	if err != nil || !reflect.DeepEqual(fromFile.Headers, want) || fromFile.Protocol != "grpc" {
		t.Errorf("from the sinks file: %+v", fromFile)
	}
	// Spaces around pairs, as OTEL_EXPORTER_OTLP_HEADERS allows, are accepted from the
	// environment as from the sinks file (the token check refused them).
	c, err = loadFor(ModeRun, with("SIEM_TRANSPORT", "otlp", "SIEM_ADDRESS", "collector:4317", "SIEM_OTLP_PROTOCOL", "grpc",
		"SIEM_OTLP_HEADERS", "authorization=Bearer%20abc, x-tenant=t1"))
	if err != nil {
		t.Fatalf("spaced header list refused: %v", err)
	}
	env = c.EnvSink()
	if spaced, err := env.OTLPConfig(env.SettingName, ""); err != nil || !reflect.DeepEqual(spaced.Headers, want) {
		t.Errorf("spaced header list: %+v, %v", spaced.Headers, err)
	}
	if sinks[0].OTLPHeaders.String() != "<secret>" {
		t.Errorf("the headers print as %q", sinks[0].OTLPHeaders.String())
	}
}
