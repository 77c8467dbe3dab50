package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/config"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/testutil/syslogd"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/sink"
)

// agreeValue is one value to try for a variable, with the other variables it needs to mean
// something (SIEM_RELP_WINDOW needs SIEM_TRANSPORT=relp). An empty companion unsets the
// variable.
type agreeValue struct {
	value string
	also  map[string]string
}

func v(value string, also ...string) agreeValue {
	a := agreeValue{value: value, also: map[string]string{}}
	for i := 0; i+1 < len(also); i += 2 {
		a.also[also[i]] = also[i+1]
	}
	return a
}

// readFile returns a file's content for a test.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckAndRunAgree holds "dtforward check" and "dtforward run" to one verdict on every
// configuration: for every variable of the configuration table (config.Table, the README's
// table), with its allowed values and the values at and beyond its edges, the real binary's
// check accepts the configuration (exit 0, or 1 when something is unreachable) exactly when
// its run starts with it (rather than exiting 2 at start), and a check that refuses it has
// called nothing ok first. SIEM_FACILITY=ntp was accepted by
// check and refused by run when the two validated sink settings with different tables.
func TestCheckAndRunAgree(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 3})
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := syslogd.NewCA(t)
	notPEM := write("not-a-cert.pem", "this file holds no certificate\n")
	missing := filepath.Join(dir, "missing.pem")
	token := write("token", "pub-0123456789abcdef\n")
	empty := write("empty", "")
	notADir := write("state-is-a-file", "")
	appliances := write("appliances.yaml", fmt.Sprintf("- name: sim\n  url: %s\n  public_token: pub-0123456789abcdef\n  private_token: priv-fedcba9876543210\n  allow_http: true\n", url))
	sinksFile := write("sinks.yaml", fmt.Sprintf("- name: archive\n  transport: file\n  address: %s\n  format: json\n- name: ntp\n  transport: udp\n  address: 127.0.0.1:5514\n  facility: ntp\n", filepath.Join(dir, "archive.jsonl")))
	sinksBad := write("sinks-bad.yaml", "- name: a\n  transport: udp\n  address: 127.0.0.1:5514\n  facility: local9\n")
	udp, tcp := "127.0.0.1:5514", freeAddr(t)
	noURL := []string{"DARKTRACE_URL", "", "DARKTRACE_PUBLIC_TOKEN", "", "DARKTRACE_PRIVATE_TOKEN", "", "DARKTRACE_NAME", ""}
	noSIEM := []string{"SIEM_FORMAT", "", "SIEM_TRANSPORT", "", "SIEM_ADDRESS", ""}
	tls := []string{"SIEM_TRANSPORT", "tls", "SIEM_ADDRESS", tcp}
	relp := []string{"SIEM_TRANSPORT", "relp", "SIEM_ADDRESS", tcp}
	relpTLS := append(slices.Clone(relp), "SIEM_RELP_TLS", "true")
	udpSink := []string{"SIEM_TRANSPORT", "udp", "SIEM_ADDRESS", udp}
	hecSink := []string{"SIEM_TRANSPORT", "hec", "SIEM_ADDRESS", "https://127.0.0.1:1", "SIEM_HEC_TOKEN", "0d3b9a52-6f1e-4c2a-9b7d-5e8f1a2b3c4d"}
	hecFile := append(slices.Clone(hecSink), "SIEM_HEC_TOKEN", "")

	// Sentinel: an endpoint nothing answers on, so check says unreachable (1) and run starts.
	sentinel := []string{"SIEM_TRANSPORT", "sentinel", "SIEM_ADDRESS", "https://127.0.0.1:1", "SIEM_SENTINEL_DCR_ID", "dcr-0123",
		"SIEM_SENTINEL_TENANT_ID", "t-1", "SIEM_SENTINEL_CLIENT_ID", "c-1", "SIEM_SENTINEL_CLIENT_SECRET", "s-1", "SIEM_SENTINEL_AUTHORITY", "https://127.0.0.1:1"}
	with := func(base []string, kv ...string) []string { return append(slices.Clone(base), kv...) }
	// OTLP: a collector nothing answers on, so check says unreachable (1) and run starts.
	otlpSink := []string{"SIEM_TRANSPORT", "otlp", "SIEM_ADDRESS", "https://127.0.0.1:1"}
	otlpGRPC := with(otlpSink, "SIEM_OTLP_PROTOCOL", "grpc", "SIEM_ADDRESS", "127.0.0.1:1")
	otlpFile := with(otlpSink, "SIEM_OTLP_HEADERS", "")
	headers := write("otlp-headers", "authorization=Bearer%20abc\n")
	noSecret := with(sentinel, "SIEM_SENTINEL_CLIENT_SECRET", "")
	federated := with(noSecret, "AZURE_FEDERATED_TOKEN_FILE", token)
	certAndKey := write("client-cert-and-key.pem", readFile(t, ca.ClientCert)+readFile(t, ca.ClientKey))

	// Appliances no sink selects: run builds no client for them (wire.go), so only config's URL
	// rule stood between them and a start, while check builds every client, with
	// darktrace.New's rule. The two rules disagreed on a base path (config took it) and on
	// spaces around the URL (darktrace.New trimmed them); now they are one, CheckURL.
	unselected := func(file, appURL string) string {
		return write(file, fmt.Sprintf("- name: sim\n  url: %s\n  public_token: pub-0123456789abcdef\n  private_token: priv-fedcba9876543210\n  allow_http: true\n"+
			"- name: idle\n  url: %q\n  public_token: pub-0123456789abcdef\n  private_token: priv-fedcba9876543210\n", url, appURL))
	}
	idlePath := unselected("appliances-idle-path.yaml", "https://127.0.0.1:1/api")
	idleSpace := unselected("appliances-idle-space.yaml", "https://127.0.0.1:1\n")
	idleNoHost := unselected("appliances-idle-no-host.yaml", "https://:1")
	simOnly := append(append(slices.Clone(noURL), noSIEM...), "SIEM_SINKS_FILE",
		write("sinks-sim-only.yaml", fmt.Sprintf("- name: archive\n  transport: file\n  address: %s\n  format: json\n  appliances: [sim]\n", filepath.Join(dir, "archive-sim.jsonl"))))

	values := map[string][]agreeValue{
		"DARKTRACE_URL":                         {v(url), v(url + "/"), v(url + "/api"), v("https://127.0.0.1:1"), v("http://127.0.0.1:1", "DARKTRACE_ALLOW_HTTP", "false"), v("ftp://dt.example"), v("dt.example"), v("https://u:p@dt.example"), v(url + "\n"), v(" " + url), v("https://:1"), v("https://127.0.0.1:65536")},
		"DARKTRACE_PUBLIC_TOKEN":                {v("pub-0123456789abcdef"), v("wrong-token"), v("has space"), v("", "DARKTRACE_PUBLIC_TOKEN_FILE", token)},
		"DARKTRACE_PUBLIC_TOKEN_FILE":           {v(token, "DARKTRACE_PUBLIC_TOKEN", ""), v(missing, "DARKTRACE_PUBLIC_TOKEN", ""), v(empty, "DARKTRACE_PUBLIC_TOKEN", ""), v(token)},
		"DARKTRACE_PRIVATE_TOKEN":               {v("priv-fedcba9876543210"), v("x\ty")},
		"DARKTRACE_PRIVATE_TOKEN_FILE":          {v(missing, "DARKTRACE_PRIVATE_TOKEN", ""), v(dir, "DARKTRACE_PRIVATE_TOKEN", "")},
		"DARKTRACE_CA_FILE":                     {v(ca.CAFile), v(notPEM), v(missing), v(dir)},
		"DARKTRACE_SERVER_NAME":                 {v("dt.example")},
		"DARKTRACE_INSECURE_SKIP_VERIFY":        {v("true"), v("false"), v("yes")},
		"DARKTRACE_ALLOW_HTTP":                  {v("true"), v("false"), v("1")},
		"DARKTRACE_TIMEOUT":                     {v("1s"), v("1ns"), v("0s"), v("-1s"), v("60")},
		"DARKTRACE_NAME":                        {v("dc-1"), v("../etc"), v("a b")},
		"DARKTRACE_APPLIANCES_FILE":             {v(appliances, noURL...), v(missing, noURL...), v(empty, noURL...), v(appliances), v(idlePath, simOnly...), v(idleSpace, simOnly...), v(idleNoHost, simOnly...)},
		"DARKTRACE_MAX_CONCURRENT_REQUESTS":     {v("1"), v("1024"), v("0"), v("1025"), v("many")},
		"DARKTRACE_MAX_REQUESTS_PER_MINUTE":     {v("1"), v("6000"), v("0"), v("6001"), v("-5"), v("fast")},
		"SHARD_COUNT":                           {v("1"), v("2", "SHARD_INDEX", "1"), v("1000", "SHARD_INDEX", "999"), v("0"), v("1001", "SHARD_INDEX", "0"), v("2")},
		"SHARD_INDEX":                           {v("0"), v("0", "SHARD_COUNT", "2"), v("dtforward-1", "SHARD_COUNT", "2"), v("2", "SHARD_COUNT", "2"), v("x", "SHARD_COUNT", "2")},
		"POLL_SOURCES":                          {v("modelbreaches"), v("antigena"), v("aianalyst"), v("modelbreaches, antigena,aianalyst"), v("breaches"), v(" , "), v("antigena,antigena")},
		"POLL_INTERVAL":                         {v("1s"), v("24h"), v("999ms"), v("60")},
		"POLL_START":                            {v("1h"), v("7d"), v("2020-01-01"), v("2020-01-01T00:00:00Z"), v("1577836800000"), v("2999-01-01"), v("yesterday")},
		"POLL_OVERLAP":                          {v("1m"), v("24h"), v("59s"), v("25h")},
		"POLL_AIANALYST_REFRESH_HORIZON":        {v("0s"), v("168h"), v("169h"), v("-1h")},
		"POLL_AIANALYST_REFRESH_INTERVAL":       {v("1m"), v("59s")},
		"FILTER_MIN_SCORE":                      {v("0"), v("1"), v("0.5"), v("-0.1"), v("1.1"), v("NaN")},
		"FILTER_INCLUDE_ACKNOWLEDGED":           {v("true"), v("false"), v("no")},
		"FILTER_INCLUDE_SUPPRESSED":             {v("true"), v("false"), v("on")},
		"FILTER_MODELS":                         {v("^Anomalous"), v("(")},
		"FILTER_TAGS":                           {v("(?i)critical"), v("*x")},
		"SIEM_FORMAT":                           {v("xml"), v("CEF")},
		"SIEM_LEEF_VERSION":                     {v("2.0", "SIEM_FORMAT", "leef"), v("1.0", "SIEM_FORMAT", "leef"), v("2", "SIEM_FORMAT", "leef"), v("3.0", "SIEM_FORMAT", "leef")},
		"SIEM_TRANSPORT":                        {v("udp", "SIEM_ADDRESS", udp), v("tcp", "SIEM_ADDRESS", tcp), v("tls", "SIEM_ADDRESS", tcp), v("relp", "SIEM_ADDRESS", tcp), v("stdout", "SIEM_ADDRESS", ""), v("file"), v("syslog"), v("tcp"), v("hec", hecSink[2:]...), v("hec"), v("otlp", otlpSink[2:]...), v("otlp")},
		"SIEM_ADDRESS":                          {v(filepath.Join(dir, "out2")), v(filepath.Join(dir, "no-such-dir", "out")), v(dir), v("siem.example:514", udpSink...), v("siem.example", udpSink...), v("siem.example:0", udpSink...), v(":514", udpSink...), v("127.0.0.1:65536", udpSink...), v("https://splunk.example:8088/services/collector", hecSink...), v("splunk.example:8088", hecSink...), v("https://u:p@splunk.example", hecSink...), v("http://127.0.0.1:1/v1/logs", otlpSink...), v("collector:4318", otlpSink...), v("http://127.0.0.1:1", otlpGRPC...), v("collector", otlpGRPC...)},
		"SIEM_HEADER":                           {v("5424"), v("rfc5424", tls...)},
		"SIEM_FRAMING":                          {v("octets"), v("lf", tls...), v("lf", relp...)},
		"SIEM_FACILITY":                         {v("ntp"), v("security"), v("console"), v("local8"), v("LOCAL4"), v("15")},
		"SIEM_TLS_CA_FILE":                      {v(ca.CAFile, tls...), v(notPEM, tls...), v(missing, tls...), v(ca.CAFile, relpTLS...), v(notPEM, relpTLS...), v(ca.CAFile, relp...), v(ca.CAFile), v(ca.CAFile, hecSink...), v(notPEM, hecSink...)},
		"SIEM_TLS_CERT_FILE":                    {v(ca.ClientCert, append(slices.Clone(tls), "SIEM_TLS_KEY_FILE", ca.ClientKey)...), v(ca.ClientCert, tls...), v(ca.ClientCert, append(slices.Clone(tls), "SIEM_TLS_KEY_FILE", ca.ServerKey)...), v(notPEM, append(slices.Clone(tls), "SIEM_TLS_KEY_FILE", ca.ClientKey)...)},
		"SIEM_TLS_KEY_FILE":                     {v(ca.ClientKey, tls...), v(notPEM, append(slices.Clone(tls), "SIEM_TLS_CERT_FILE", ca.ClientCert)...)},
		"SIEM_TLS_SERVER_NAME":                  {v("siem.example", tls...), v("siem.example")},
		"SIEM_TLS_INSECURE_SKIP_VERIFY":         {v("true", tls...), v("false", tls...), v("true")},
		"SIEM_RELP_WINDOW":                      {v("1", relp...), v("65536", relp...), v("0", relp...), v("65537", relp...), v("128")},
		"SIEM_RELP_TLS":                         {v("true", relp...), v("true", tls...), v("true")},
		"SIEM_MAX_MESSAGE_BYTES":                {v("480"), v("511"), v("512"), v("1048576"), v("479"), v("1048577"), v("65507", udpSink...), v("65508", udpSink...), v("0")},
		"SIEM_TIMEOUT":                          {v("1ns"), v("10s"), v("0s"), v("-1s")},
		"SIEM_UDP_RATE":                         {v("0", udpSink...), v("1000000", udpSink...), v("-1", udpSink...), v("1000001", udpSink...)},
		"SIEM_APP_NAME":                         {v("dt"), v(strings.Repeat("a", 48)), v(strings.Repeat("a", 49)), v("a b"), v("é")},
		"SIEM_HEC_TOKEN":                        {v("t", hecSink...), v("has space", hecSink...), v("", hecSink...), v("t")},
		"SIEM_HEC_TOKEN_FILE":                   {v(token, hecFile...), v(missing, hecFile...), v(empty, hecFile...), v(token, hecSink...)},
		"SIEM_HEC_ACK":                          {v("true", hecSink...), v("false", hecSink...), v("maybe", hecSink...)},
		"SIEM_HEC_ACK_TIMEOUT":                  {v("1s", hecSink...), v("0s", hecSink...), v("-1s", hecSink...), v("60", hecSink...)},
		"SIEM_HEC_INDEX":                        {v("darktrace", hecSink...), v("Main", hecSink...), v("_internal", hecSink...), v("main")},
		"SIEM_HEC_SOURCETYPE":                   {v("darktrace", hecSink...), v("modelbreach=darktrace:alert,antigena=x", hecSink...), v("breach=x", hecSink...), v("a b", hecSink...), v("darktrace")},
		"SIEM_OTLP_PROTOCOL":                    {v("http/protobuf", otlpSink...), v("http/json", otlpSink...), v("grpc", otlpGRPC...), v("grpc", otlpSink...), v("thrift", otlpSink...), v("grpc")},
		"SIEM_OTLP_HEADERS":                     {v("authorization=Bearer%20abc,x-tenant=a", otlpSink...), v("no-equals", otlpSink...), v("a=%zz", otlpSink...), v("a=1", otlpGRPC...), v("a=1")},
		"SIEM_OTLP_HEADERS_FILE":                {v(headers, otlpFile...), v(missing, otlpFile...), v(headers, otlpSink...), v(headers, with(otlpSink, "SIEM_OTLP_HEADERS", "a=1")...)},
		"SIEM_SENTINEL_DCR_ID":                  {v("dcr-abc", sentinel...), v("", sentinel...), v("dcr/../x", sentinel...), v("dcr-abc")},
		"SIEM_SENTINEL_TENANT_ID":               {v("t-2", sentinel...), v("", sentinel...), v("t-2")},
		"SIEM_SENTINEL_CLIENT_ID":               {v("c-2", sentinel...), v("", sentinel...), v("c-2", federated...)},
		"SIEM_SENTINEL_CLIENT_SECRET":           {v("s-2", sentinel...), v("has space", sentinel...), v("", noSecret...), v("s-2")},
		"SIEM_SENTINEL_CLIENT_SECRET_FILE":      {v(token, noSecret...), v(missing, noSecret...), v(empty, noSecret...), v(token, sentinel...)},
		"SIEM_SENTINEL_CLIENT_CERTIFICATE_FILE": {v(certAndKey, noSecret...), v(ca.ClientCert, noSecret...), v(notPEM, noSecret...), v(missing, noSecret...), v(certAndKey, sentinel...)},
		"SIEM_SENTINEL_AUTHORITY":               {v("https://login.example", sentinel...), v("login.example", sentinel...), v("http://login.example", sentinel...), v("https://login.example")},
		"SIEM_SENTINEL_STREAM_MODEL_ALERTS":     {v("Custom-MyAlerts", sentinel...), v("MyAlerts_CL", sentinel...), v("Custom-MyAlerts")},
		"SIEM_SENTINEL_STREAM_INCIDENTS":        {v("Custom-MyIncidents", sentinel...), v("MyIncidents_CL", sentinel...)},
		"SIEM_SENTINEL_STREAM_RESPONSE_ACTIONS": {v("Custom-MyActions", sentinel...), v("MyActions_CL", sentinel...)},
		"AZURE_FEDERATED_TOKEN_FILE":            {v(token, noSecret...), v(missing, noSecret...), v(token, sentinel...), v(token)},
		"AZURE_CLIENT_ID":                       {v("c-3", with(federated, "SIEM_SENTINEL_CLIENT_ID", "")...), v("", with(federated, "SIEM_SENTINEL_CLIENT_ID", "")...), v("c-3")},
		"AZURE_TENANT_ID":                       {v("t-3", with(federated, "SIEM_SENTINEL_TENANT_ID", "")...), v("", with(federated, "SIEM_SENTINEL_TENANT_ID", "")...)},
		"AZURE_AUTHORITY_HOST":                  {v("https://127.0.0.1:1/", with(federated, "SIEM_SENTINEL_AUTHORITY", "")...), v("not a url", with(federated, "SIEM_SENTINEL_AUTHORITY", "")...)},
		"SIEM_SINKS_FILE":                       {v(sinksFile, noSIEM...), v(sinksBad, noSIEM...), v(missing, noSIEM...), v(sinksFile)},
		"SIEM_POISON_RETRIES":                   {v("1"), v("100"), v("0"), v("101"), v("-1")},
		"DEAD_LETTER_MAX_BYTES":                 {v("65536"), v("65535"), v("0"), v("1099511627776")},
		"STATE_DIR":                             {v(filepath.Join(dir, "state2")), v(filepath.Join(dir, "new", "deeper"))},
		"SHUTDOWN_TIMEOUT":                      {v("1s"), v("0s"), v("-1s")},
		"LOG_LEVEL":                             {v("verbose"), v("INFO")},
		"LOG_FORMAT":                            {v("json"), v("console"), v("text")},
		"HTTP_ADDRESS":                          {v("127.0.0.1:0"), v("9090"), v("127.0.0.1:99999")},
	}
	// Every value of the enumerations, from the tables that own them.
	for _, f := range formatter.Names() {
		values["SIEM_FORMAT"] = append(values["SIEM_FORMAT"], v(f))
	}
	for _, h := range sink.Headers() {
		values["SIEM_HEADER"] = append(values["SIEM_HEADER"], v(h), v(h, udpSink...))
	}
	for _, f := range sink.Framings() {
		values["SIEM_FRAMING"] = append(values["SIEM_FRAMING"], v(f, "SIEM_TRANSPORT", "tcp", "SIEM_ADDRESS", tcp))
	}
	for _, f := range sink.Facilities() {
		values["SIEM_FACILITY"] = append(values["SIEM_FACILITY"], v(f, udpSink...))
	}
	for _, l := range config.LogLevels {
		values["LOG_LEVEL"] = append(values["LOG_LEVEL"], v(l))
	}
	_ = notADir // a STATE_DIR that is a file: run refuses it, check does not look (see the report)

	for _, tv := range config.Table() {
		if len(values[tv.Name]) == 0 {
			t.Errorf("%s: no values to try; add its allowed and edge values to TestCheckAndRunAgree", tv.Name)
		}
	}
	base := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	base["LOG_LEVEL"] = "error"
	names := slices.Sorted(maps.Keys(values))
	for _, name := range names {
		for i, val := range values[name] {
			env := maps.Clone(base)
			// Each run its own state: run locks its state directory, and the runs are parallel.
			env["STATE_DIR"] = filepath.Join(dir, "state", fmt.Sprintf("%s-%d", name, i))
			maps.Copy(env, val.also)
			env[name] = val.value
			t.Run(fmt.Sprintf("%s/%d=%s", name, i, val.value), func(t *testing.T) {
				t.Parallel()
				// The two are independent: run them side by side.
				var runCode int
				var runOut string
				ran := make(chan struct{})
				go func() { defer close(ran); runCode, runOut = startAndStop(t, bin, env) }()
				checkCode, checkOut := runBinary(t, bin, env, "check", "--timeout", "5s")
				<-ran
				checkOK, runOK := checkCode != exitUsage, runCode != exitUsage
				if runCode < 0 {
					return
				}
				if !checkOK && (strings.Contains(checkOut, "configuration: ok") || strings.Contains(checkOut, "reachable")) {
					t.Errorf("%s=%q (with %v): check exits 2 after calling something ok:\n%s", name, val.value, val.also, tail(checkOut, 1500))
				}
				if checkOK != runOK {
					t.Errorf("%s=%q (with %v): check exit %d, run exit %d\ncheck:\n%s\nrun:\n%s",
						name, val.value, val.also, checkCode, runCode, tail(checkOut, 1500), tail(runOut, 1500))
				}
			})
		}
	}
}

// processEnv is env as a process environment; an empty value leaves the variable out.
func processEnv(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, x := range env {
		if x != "" {
			out = append(out, k+"="+x)
		}
	}
	return out
}

// runBinary runs a command of the real binary to completion and returns its exit code and
// its output.
func runBinary(t *testing.T, bin string, env map[string]string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = processEnv(env)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("dtforward %s did not finish in 2 minutes:\n%s", strings.Join(args, " "), tail(out.String(), 2000))
		return 0, ""
	}
}

// startAndStop starts the real "dtforward run" and sends it SIGTERM: a configuration it
// refuses makes it exit 2 whenever the signal arrives (it validates before it looks at the
// signal), one it accepts makes it start and then stop cleanly with 0. A signal that lands
// before the binary installed its handler kills it; then it is tried again, waiting longer.
// It may run on a goroutine of its own, so it reports with t.Error and exit code -1.
func startAndStop(t *testing.T, bin string, env map[string]string) (int, string) {
	t.Helper()
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		cmd := exec.Command(bin, "run")
		cmd.Env = processEnv(env)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return -1, ""
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(wait):
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("run did not stop within 2 minutes of SIGTERM:\n%s", tail(out.String(), 2000))
				return -1, out.String()
			}
		}
		st := cmd.ProcessState
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if wait > 10*time.Second {
				t.Errorf("run was killed by SIGTERM before it could handle it, %s after start", wait)
				return -1, out.String()
			}
			continue
		}
		return st.ExitCode(), out.String()
	}
}
