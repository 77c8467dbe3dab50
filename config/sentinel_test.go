package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sentinelEnv(kv ...string) map[string]string {
	return with(append([]string{"SIEM_TRANSPORT", "sentinel", "SIEM_ADDRESS", "https://dce.westeurope-1.ingest.monitor.azure.com",
		"SIEM_SENTINEL_DCR_ID", "dcr-0123456789abcdef0123456789abcdef", "SIEM_SENTINEL_TENANT_ID", "t-1",
		"SIEM_SENTINEL_CLIENT_ID", "c-1", "SIEM_SENTINEL_CLIENT_SECRET", "s3cret"}, kv...)...)
}

func TestSentinelEnv(t *testing.T) {
	c, err := loadFor(ModeRun, sentinelEnv("SIEM_SENTINEL_STREAM_INCIDENTS", "Custom-MyIncidents"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.EnvSink()
	if s.Sentinel.DCRID != "dcr-0123456789abcdef0123456789abcdef" || s.Sentinel.ClientSecret.Value() != "s3cret" ||
		!reflect.DeepEqual(s.Sentinel.Streams, map[string]string{"aianalyst": "Custom-MyIncidents"}) {
		t.Errorf("sentinel settings %+v", s.Sentinel)
	}
	sc, err := s.SentinelConfig(s.SettingName)
	if err != nil || sc.Endpoint != "https://dce.westeurope-1.ingest.monitor.azure.com" || sc.Setting("sentinel_dcr_id") != "SIEM_SENTINEL_DCR_ID" {
		t.Errorf("SentinelConfig = %+v, %v", sc, err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	_ = os.WriteFile(secret, []byte("from-file\n"), 0o600)
	env := sentinelEnv("SIEM_SENTINEL_CLIENT_SECRET_FILE", secret)
	delete(env, "SIEM_SENTINEL_CLIENT_SECRET")
	if c, err := loadFor(ModeRun, env); err != nil || c.EnvSink().Sentinel.ClientSecret.Value() != "from-file" {
		t.Errorf("secret file: %v", err)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing", with("SIEM_TRANSPORT", "sentinel"), []string{
			"SIEM_ADDRESS: required for transport sentinel",
			"SIEM_SENTINEL_DCR_ID: required",
			"SIEM_SENTINEL_TENANT_ID: required",
			"SIEM_SENTINEL_CLIENT_ID: required",
			"SIEM_SENTINEL_CLIENT_SECRET: required"}},
		{"not a URL", sentinelEnv("SIEM_ADDRESS", "dce.example:443"), []string{`SIEM_ADDRESS: "dce.example:443" is not an https:// ingestion endpoint URL`}},
		{"table name as stream", sentinelEnv("SIEM_SENTINEL_STREAM_MODEL_ALERTS", "DarktraceModelAlerts_CL"),
			[]string{`SIEM_SENTINEL_STREAM_MODEL_ALERTS: "DarktraceModelAlerts_CL": a custom stream name starts with Custom-`}},
		{"sentinel key on tcp", with("SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", "127.0.0.1:514", "SIEM_SENTINEL_DCR_ID", "dcr-1"),
			[]string{"SIEM_SENTINEL_DCR_ID: only applies to SIEM_TRANSPORT=sentinel (it is tcp)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadFor(ModeRun, tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the secret is in the error: %v", err)
			}
		})
	}
}

func TestSentinelWorkloadIdentity(t *testing.T) {
	env := sentinelEnv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token",
		"AZURE_CLIENT_ID", "aks-client", "AZURE_TENANT_ID", "aks-tenant", "AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/")
	for _, k := range []string{"SIEM_SENTINEL_CLIENT_SECRET", "SIEM_SENTINEL_CLIENT_ID", "SIEM_SENTINEL_TENANT_ID"} {
		delete(env, k)
	}
	c, err := loadFor(ModeRun, env)
	if err != nil {
		t.Fatal(err)
	}
	got := c.EnvSink().Sentinel
	if got.FederatedTokenFile == "" || got.ClientID != "aks-client" || got.TenantID != "aks-tenant" || got.Authority != "https://login.microsoftonline.com" {
		t.Errorf("workload identity not taken: %+v", got)
	}
}

func TestSinksFileAppliancesAndSentinel(t *testing.T) {
	dir := t.TempDir()
	apps := filepath.Join(dir, "appliances.yaml")
	_ = os.WriteFile(apps, []byte(`
- {name: acme-1, url: "https://a1.example", public_token: p, private_token: q, labels: {customer: acme}}
- {name: acme-2, url: "https://a2.example", public_token: p, private_token: q, labels: {customer: acme, site: lon}}
- {name: globex, url: "https://g.example", public_token: p, private_token: q, labels: {customer: globex}}
`), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "acme.secret"), []byte("acme-secret\n"), 0o600)
	sinks := filepath.Join(dir, "sinks.yaml")
	_ = os.WriteFile(sinks, []byte(`
- name: acme
  transport: sentinel
  address: https://acme.ingest.monitor.azure.com
  sentinel_dcr_id: dcr-acme
  sentinel_tenant_id: tenant-acme
  sentinel_client_id: client-acme
  sentinel_client_secret_file: acme.secret
  appliances: {customer: acme}
- name: globex
  transport: sentinel
  address: https://globex.ingest.monitor.azure.com
  sentinel_dcr_id: dcr-globex
  sentinel_tenant_id: tenant-globex
  sentinel_client_id: client-globex
  sentinel_client_secret: globex-secret
  appliances: [globex]
- name: archive
  transport: file
  address: /tmp/all.jsonl
`), 0o600)
	env := with("SIEM_SINKS_FILE", sinks, "DARKTRACE_APPLIANCES_FILE", apps)
	for _, k := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "SIEM_TRANSPORT", "SIEM_ADDRESS", "SIEM_FORMAT"} {
		delete(env, k)
	}
	c, err := loadFor(ModeRun, env)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := c.Sinks()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]string{"acme-1": {"customer": "acme"}, "acme-2": {"customer": "acme", "site": "lon"}, "globex": {"customer": "globex"}}
	want := map[string][]string{"acme": {"acme-1", "acme-2"}, "globex": {"globex"}, "archive": {"acme-1", "acme-2", "globex"}}
	for _, s := range ss {
		var got []string
		for _, a := range []string{"acme-1", "acme-2", "globex"} {
			if s.Selects(a, labels[a]) {
				got = append(got, a)
			}
		}
		if !reflect.DeepEqual(got, want[s.Name]) {
			t.Errorf("sink %s selects %v, want %v", s.Name, got, want[s.Name])
		}
	}
	if ss[0].Sentinel.ClientSecret.Value() != "acme-secret" || ss[1].Sentinel.ClientSecret.Value() != "globex-secret" {
		t.Errorf("secrets not read")
	}
	if n := ss[0].SettingName("sentinel_dcr_id"); n != "SIEM_SINKS_FILE sink acme: sentinel_dcr_id" {
		t.Errorf("SettingName = %q", n)
	}

	// Problems: a name that is no appliance, an empty selection, a selection of the wrong shape.
	_ = os.WriteFile(sinks, []byte(`
- {name: a, transport: stdout, appliances: [acme-3]}
- {name: b, transport: stdout, appliances: []}
- {name: c, transport: stdout, appliances: "acme-1"}
`), 0o600)
	_, err = loadFor(ModeRun, env)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{`appliances: want a list of appliance names or a map of labels`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no %q in %v", w, err)
		}
	}
	_ = os.WriteFile(sinks, []byte(`
- {name: a, transport: stdout, appliances: [acme-3]}
- {name: b, transport: stdout, appliances: []}
`), 0o600)
	_, err = loadFor(ModeRun, env)
	for _, w := range []string{`sink 1 ("a"): appliances: "acme-3" is not an appliance (known: acme-1, acme-2, globex)`, `sink 2 ("b"): appliances: empty`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("no %q in %v", w, err)
		}
	}
}
