package main

import (
	"context"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/parsecheck"

	"github.com/dtforward/dtforward/simulator"
)

func TestHealthCommand(t *testing.T) {
	_, url := startSim(t, simulator.Options{HistoryCount: 10})
	dir := t.TempDir()
	addr := freeAddr(t)
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["HTTP_ADDRESS"] = addr
	b := startRun(t, vars, testInterval)
	waitUntil(t, 10*time.Second, "/healthz", func() bool { code, _ := httpGet("http://" + addr + "/healthz"); return code == http.StatusOK })

	tests := []struct {
		name string
		vars map[string]string
		args []string
		want int
	}{
		{"healthz via HTTP_ADDRESS", map[string]string{"HTTP_ADDRESS": addr}, nil, exitOK},
		{"readyz via flag", nil, []string{"--ready", "--address", addr}, exitOK},
		{"wildcard address probed on loopback", map[string]string{"HTTP_ADDRESS": ":" + addr[strings.LastIndexByte(addr, ':')+1:]}, nil, exitOK},
		{"nothing listening", map[string]string{"HTTP_ADDRESS": freeAddr(t)}, nil, exitFailure},
		{"HTTP_ADDRESS unset, no dtforward run process", nil, nil, exitFailure},
		{"HTTP_ADDRESS unset, readiness asked", nil, []string{"--ready"}, exitUsage},
		{"malformed address", map[string]string{"HTTP_ADDRESS": "nonsense"}, nil, exitUsage},
	}
	// The daemon above runs in this process, not as "dtforward run": an empty proc tree makes
	// sure no dtforward that another test package started is taken for it.
	defer func(old string) { procRoot = old }(procRoot)
	procRoot = t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			var stderr string
			// /readyz turns green after the first cycle; allow a moment.
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, _, stderr = runCmd(t, context.Background(), tt.vars, append([]string{"health"}, tt.args...)...)
				if code == tt.want || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if code != tt.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.want, stderr)
			}
		})
	}
	b.stop(t)
	if code, _, _ := runCmd(t, context.Background(), map[string]string{"HTTP_ADDRESS": addr}, "health"); code != exitFailure {
		t.Fatalf("health after the daemon stopped: exit %d, want %d", code, exitFailure)
	}
}

func TestCheckCommand(t *testing.T) {
	sim, url := startSim(t, simulator.Options{HistoryCount: 10})
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["SIEM_FORMAT"] = "cef"
	vars["POLL_SOURCES"] = "modelbreaches,antigena,aianalyst"

	t.Run("everything reachable", func(t *testing.T) {
		code, out, stderr := runCmd(t, context.Background(), vars, "check")
		if code != exitOK {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
		}
		for _, w := range []string{"appliance sim", "modelbreaches: ok (", "records in the last minute)", "antigena: ok (", "current records)", "aianalyst: ok (", "\nsink file " + vars["SIEM_ADDRESS"] + ": reachable\n",
			"\nsample cef line (a built-in example breach, not appliance data):\nCEF:0|Darktrace|DCIP|"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	})
	t.Run("clock skew warned", func(t *testing.T) {
		sim.SetClockOffset(10 * time.Minute)
		defer sim.SetClockOffset(0)
		code, out, _ := runCmd(t, context.Background(), vars, "check")
		if code != exitOK || !strings.Contains(out, "WARN appliance sim: clock skew 10m") {
			t.Fatalf("exit %d, want 0 with a skew warning:\n%s", code, out)
		}
	})
	t.Run("stdout sink", func(t *testing.T) {
		v := maps.Clone(vars)
		v["SIEM_TRANSPORT"], v["SIEM_ADDRESS"] = "stdout", ""
		code, out, _ := runCmd(t, context.Background(), v, "check")
		if code != exitOK || !strings.Contains(out, "\nsink stdout: reachable\n") {
			t.Fatalf("exit %d, want 0 and \"sink stdout: reachable\":\n%s", code, out)
		}
	})
	t.Run("appliance error run would retry", func(t *testing.T) {
		faults, err := simulator.ParseFaults("modelbreaches:503")
		if err != nil {
			t.Fatal(err)
		}
		sim.SetFaults(faults)
		defer sim.SetFaults(nil)
		start := time.Now()
		code, out, _ := runCmd(t, context.Background(), vars, "check")
		if code != exitFailure || !strings.Contains(out, "FAIL appliance sim: modelbreaches: darktrace /modelbreaches: HTTP 503") ||
			!strings.Contains(out, "(temporary: run keeps retrying this; check tries once)") || strings.Contains(out, "will retry") {
			t.Fatalf("exit %d, want 1 with a 503 marked temporary and no promise to retry:\n%s", code, out)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("check took %s: it must try once, not retry", d)
		}
	})
	t.Run("sink unreachable", func(t *testing.T) {
		v := map[string]string{}
		for k, x := range vars {
			v[k] = x
		}
		v["SIEM_TRANSPORT"], v["SIEM_ADDRESS"] = "tcp", freeAddr(t)
		code, out, _ := runCmd(t, context.Background(), v, "check")
		if code != exitFailure || !strings.Contains(out, "FAIL sink tcp") {
			t.Fatalf("exit %d, want 1 naming the sink:\n%s", code, out)
		}
	})
	t.Run("permission missing", func(t *testing.T) {
		sim.SetPermissions("pub-0123456789abcdef", []string{"modelbreaches", "status"})
		defer sim.SetPermissions("pub-0123456789abcdef", nil)
		code, out, _ := runCmd(t, context.Background(), vars, "check")
		if code != exitFailure || !strings.Contains(out, "FAIL appliance sim: antigena") {
			t.Fatalf("exit %d, want 1 naming antigena:\n%s", code, out)
		}
	})
	t.Run("config error", func(t *testing.T) {
		code, _, stderr := runCmd(t, context.Background(), map[string]string{"SIEM_FORMAT": "ceff"}, "check")
		if code != exitUsage || !strings.Contains(stderr, "DARKTRACE_URL") || !strings.Contains(stderr, "SIEM_FORMAT") {
			t.Fatalf("exit %d, want 2 naming DARKTRACE_URL and SIEM_FORMAT:\n%s", code, stderr)
		}
	})
}

func TestDemoPrintsCEF(t *testing.T) {
	b := startCmd(t, map[string]string{"LOG_LEVEL": "warn"}, "demo", "--interval", "1s")
	// Antigena lines too (the comparison of link hosts below needs both kinds); the bound only
	// limits a failure, a loaded machine may take a while to get there.
	waitUntil(t, 90*time.Second, "CEF lines", func() bool {
		out := b.stdout.String()
		return strings.Count(out, "\n") >= 50 && strings.Contains(out, " act=")
	})
	if code := b.stop(t); code != exitOK {
		t.Fatalf("demo exit %d; stderr:\n%s", code, tail(b.stderr.String(), 2000))
	}
	var lines [][]byte
	for i, l := range strings.Split(strings.TrimSuffix(b.stdout.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "CEF:0|Darktrace|DCIP|") {
			t.Fatalf("line %d is not a bare CEF line: %q", i, l)
		}
		lines = append(lines, []byte(l))
	}
	// The README's first command must print lines an independent CEF parser (liblognorm, as
	// used by rsyslog's mmnormalize) accepts, with the fields a SOC analyst triages on.
	hosts := map[string][]string{}
	for i, c := range parsecheck.ParseCEF(t, lines) {
		if c.Rejected {
			t.Fatalf("liblognorm rejected demo line %d: %s", i, lines[i])
		}
		if c.Vendor != "Darktrace" || c.Product != "DCIP" || c.SignatureID == "" || c.Name == "" {
			t.Errorf("demo line %d header parsed as %+v", i, c)
		}
		if c.Ext["externalId"] == "" || c.Ext["rt"] == "" || c.Ext["cs4"] != "demo" {
			t.Errorf("demo line %d lacks externalId/rt/appliance after parsing: %v", i, c.Ext)
		}
		// Every breach links back to the appliance; a manual Antigena action has no breach.
		if c.Ext["act"] == "" && !strings.HasPrefix(c.Ext["darktraceUrl"], "https://") {
			t.Errorf("demo breach line %d has no darktraceUrl after parsing: %v", i, c.Ext)
		}
		// Breach links come from the appliance, Antigena links are built from DARKTRACE_URL:
		// both must name the same appliance address.
		if u := c.Ext["darktraceUrl"]; u != "" {
			host := strings.SplitN(strings.TrimPrefix(u, "https://"), "/", 2)[0]
			kind := "breach"
			if c.Ext["act"] != "" {
				kind = "antigena"
			}
			hosts[kind] = append(hosts[kind], host)
		}
	}
	if len(hosts["breach"]) == 0 || len(hosts["antigena"]) == 0 {
		t.Fatalf("darktraceUrl hosts %v: want breach and Antigena lines to compare", hosts)
	}
	all := append(hosts["breach"], hosts["antigena"]...)
	for _, h := range all {
		if h != all[0] || !strings.HasPrefix(h, "127.0.0.1:") {
			t.Fatalf("darktraceUrl hosts differ: breaches %v, Antigena %v; want the simulator's address everywhere", slices.Compact(hosts["breach"]), slices.Compact(hosts["antigena"]))
		}
	}
}

// TestCheckUDPSaysWhatItVerified runs the real binary's check against a UDP port with nothing
// behind it (the kernel answers with ICMP port unreachable: a failure, exit 1) and against a
// listening socket (no refusal: check says that is all UDP can tell, not "reachable"); the
// listener is sent no message, at most an empty datagram.
func TestCheckUDPSaysWhatItVerified(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 1})
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))
	vars["SIEM_TRANSPORT"] = "udp"

	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars["SIEM_ADDRESS"] = closed.LocalAddr().String()
	closed.Close()
	code, out := runBinary(t, bin, vars, "check")
	if code != exitFailure || !strings.Contains(out, "FAIL sink udp "+vars["SIEM_ADDRESS"]+": refused") || strings.Contains(out, "reachable\n") {
		t.Errorf("nothing listening: exit %d, want 1 with the sink refused:\n%s", code, out)
	}

	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	vars["SIEM_ADDRESS"] = l.LocalAddr().String()
	code, out = runBinary(t, bin, vars, "check")
	want := "sink udp " + vars["SIEM_ADDRESS"] + ": no ICMP refusal seen; UDP cannot confirm a listener"
	if code != exitOK || !strings.Contains(out, want) || strings.Contains(out, "sink udp "+vars["SIEM_ADDRESS"]+": reachable") {
		t.Errorf("listening: exit %d, want 0 and %q:\n%s", code, want, out)
	}
	if err := l.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		n, _, err := l.ReadFrom(buf)
		if err != nil {
			break
		}
		if n > 0 {
			t.Errorf("check sent the collector %d bytes: %q", n, buf[:n])
		}
	}
}

// TestCheckSinkMessages runs the real binary's check against collectors that fail: a TLS sink
// pointed at a port that speaks plain HTTP says the server does not speak TLS there, and a
// RELP sink with nothing listening names the sink once, not once per layer.
func TestCheckSinkMessages(t *testing.T) {
	bin := buildBinary(t)
	_, url := startSim(t, simulator.Options{HistoryCount: 1})
	dir := t.TempDir()
	vars := baseVars(url, filepath.Join(dir, "out"), filepath.Join(dir, "state"))

	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "tls", strings.TrimPrefix(url, "http://")
	code, out := runBinary(t, bin, vars, "check", "--timeout", "10s")
	if code != exitFailure || !strings.Contains(out, "FAIL sink tls "+vars["SIEM_ADDRESS"]+": TLS handshake failed (nothing was sent): the server does not speak TLS on this port") {
		t.Errorf("TLS to a plain HTTP port: exit %d, want 1 saying the server does not speak TLS there:\n%s", code, out)
	}

	vars["SIEM_TRANSPORT"], vars["SIEM_ADDRESS"] = "relp", freeAddr(t)
	code, out = runBinary(t, bin, vars, "check", "--timeout", "10s")
	prefix := "FAIL sink relp " + vars["SIEM_ADDRESS"] + ": "
	i := strings.Index(out, prefix)
	if code != exitFailure || i < 0 {
		t.Fatalf("RELP with nothing listening: exit %d, want 1 and %q:\n%s", code, prefix, out)
	}
	line, _, _ := strings.Cut(out[i+len(prefix):], "\n")
	if strings.Contains(line, "sink") || strings.Contains(line, "relp "+vars["SIEM_ADDRESS"]) {
		t.Errorf("the RELP failure repeats its prefix: %s%s", prefix, line)
	}
}
