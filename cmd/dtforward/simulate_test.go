package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/simulator"
)

var simTokens = map[string]string{"DARKTRACE_PUBLIC_TOKEN": "simpub", "DARKTRACE_PRIVATE_TOKEN": "simpriv"}

func TestSimulateUsageErrors(t *testing.T) {
	spacedTokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(spacedTokenFile, []byte(" priv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string // in stderr
	}{
		{"no tokens", nil, nil, []string{"DARKTRACE_PUBLIC_TOKEN is not set", "DARKTRACE_PRIVATE_TOKEN is not set", "--public-token"}},
		{"one token", map[string]string{"DARKTRACE_PUBLIC_TOKEN": "x"}, nil, []string{"DARKTRACE_PRIVATE_TOKEN is not set"}},
		{"bad rate", simTokens, []string{"--rate", "fast"}, []string{`--rate "fast"`}},
		{"bad rate unit", simTokens, []string{"--rate", "5/d"}, []string{`--rate "5/d"`}},
		{"bad fraction", simTokens, []string{"--late-fraction", "1.5"}, []string{"--late-fraction 1.5: want a share from 0 to 1"}},
		{"bad faults", simTokens, []string{"--faults", "modelbreaches:418"}, []string{`--faults: fault "418"`}},
		{"cert without key", simTokens, []string{"--cert", "c.pem"}, []string{"--cert and --key must be given together"}},
		{"short late delay", simTokens, []string{"--late-delay", "10s"}, []string{"--late-delay 10s: want at least 1m"}},
		{"unknown flag", simTokens, []string{"--nope"}, []string{"flag provided but not defined: -nope", "--help"}},
		{"stray argument", simTokens, []string{"extra"}, []string{`unexpected argument "extra"`}},
		{"missing token file", map[string]string{"DARKTRACE_PUBLIC_TOKEN": "x", "DARKTRACE_PRIVATE_TOKEN_FILE": "/nonexistent/token"}, nil,
			[]string{"DARKTRACE_PRIVATE_TOKEN_FILE: cannot read /nonexistent/token"}},
		// The simulator reads its tokens by run's rule, so the two accept the same settings
		// and see the same token; it used to take the variable over the file (run refuses the
		// pair) and trim every space (run keeps an inner or leading one, and refuses it).
		{"token and token file", map[string]string{"DARKTRACE_PUBLIC_TOKEN": "x", "DARKTRACE_PRIVATE_TOKEN": "y", "DARKTRACE_PRIVATE_TOKEN_FILE": "/nonexistent/token"}, nil,
			[]string{"DARKTRACE_PRIVATE_TOKEN and DARKTRACE_PRIVATE_TOKEN_FILE are mutually exclusive"}},
		{"token file with a space", map[string]string{"DARKTRACE_PUBLIC_TOKEN": "x", "DARKTRACE_PRIVATE_TOKEN_FILE": spacedTokenFile}, nil,
			[]string{"DARKTRACE_PRIVATE_TOKEN: contains whitespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, context.Background(), tt.vars, append([]string{"simulate"}, tt.args...)...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
}

func TestSimulateHelp(t *testing.T) {
	code, stdout, _ := runCmd(t, context.Background(), nil, "simulate", "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"SYNOPSIS", "DESCRIPTION", "FAULTS", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES",
		"--listen", "--tls", "--cert", "--key", "--seed", "--history", "--history-count", "--rate", "--late-fraction",
		"--late-delay", "--hostile-fraction", "--system-fraction", "--ack-fraction", "--clock-offset", "--hostname",
		"--faults", "--newest-first", "--verbose", "--no-urls", "--missing-creation-fraction", "--public-token", "--private-token", "DARKTRACE_PUBLIC_TOKEN",
		"--appliances", "--appliances-file", "DARKTRACE_APPLIANCES_FILE"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("help does not mention %s", w)
		}
	}
	for _, k := range simulator.FaultKinds() {
		if !strings.Contains(stdout, " "+string(k)) {
			t.Errorf("help does not list fault kind %s", k)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{{"0", 0}, {"5", 5}, {"5/s", 5}, {"300/m", 5}, {"7200/h", 2}, {"0.5/s", 0.5}}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRate(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "-1", "x/s", "5/d", "NaN"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// TestSimulateServes runs the command in-process over HTTPS with the token pair from a file
// and a scripted fault, talks to it as a client would, and stops it.
func TestSimulateServes(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "private")
	if err := os.WriteFile(tokenFile, []byte("simpriv\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"DARKTRACE_PUBLIC_TOKEN": "simpub", "DARKTRACE_PRIVATE_TOKEN_FILE": tokenFile}
	bg := startCmd(t, vars, "simulate", "--listen", "127.0.0.1:0", "--tls", "--seed", "5",
		"--history", "2h", "--history-count", "30", "--ack-fraction", "0", "--faults", "status:503*1", "--verbose")
	var url, ca string
	waitUntil(t, 10*time.Second, "the URL and CA lines on stdout", func() bool {
		for _, line := range strings.Split(bg.stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "DARKTRACE_URL="); ok {
				url = v
			}
			if v, ok := strings.CutPrefix(line, "DARKTRACE_CA_FILE="); ok {
				ca = v
			}
		}
		return url != "" && ca != ""
	})
	cfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	get := func(p string) (int, []byte) {
		t.Helper()
		date := darktrace.FormatDate(time.Now())
		req, _ := http.NewRequest(http.MethodGet, url+p, nil)
		req.Header.Set("DTAPI-Token", "simpub")
		req.Header.Set("DTAPI-Date", date)
		req.Header.Set("DTAPI-Signature", darktrace.Signature("simpriv", "simpub", p, date))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get("/status"); code != http.StatusServiceUnavailable {
		t.Errorf("first /status %d, want the scripted 503", code)
	}
	if code, _ := get("/status"); code != http.StatusOK {
		t.Errorf("second /status %d, want 200", code)
	}
	code, body := get("/modelbreaches?includesuppressed=true")
	var got []darktrace.Breach
	if err := json.Unmarshal(body, &got); code != 200 || err != nil || len(got) != 30 {
		t.Errorf("/modelbreaches: %d, %d records (%v); want the 30 of --history-count", code, len(got), err)
	}
	if code := bg.stop(t); code != exitOK {
		t.Errorf("exit %d after cancel, want 0; stderr %s", code, bg.stderr.String())
	}
	if _, err := os.Stat(ca); !os.IsNotExist(err) {
		t.Errorf("CA file left behind: %v", err)
	}
	for _, w := range []string{"GET /status -> fault:503", "GET /status -> ok", "GET /modelbreaches?includesuppressed=true -> ok"} {
		if !strings.Contains(bg.stderr.String(), w) {
			t.Errorf("--verbose log lacks %q:\n%s", w, bg.stderr.String())
		}
	}
	if strings.Contains(bg.stderr.String(), "simpriv") || strings.Contains(bg.stdout.String(), "simpriv") {
		t.Error("private token printed")
	}
}

func TestSimulateListenError(t *testing.T) {
	code, _, stderr := runCmd(t, context.Background(), simTokens, "simulate", "--listen", "127.0.0.1:notaport", "--history-count", "1")
	if code != exitFailure || !strings.Contains(stderr, "notaport") {
		t.Errorf("exit %d stderr %q, want 1 naming the address", code, stderr)
	}
}

// TestSimulatePortInUse: a second simulator on the same port says what to do about it.
func TestSimulatePortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, stdout, stderr := runCmd(t, context.Background(), simTokens, "simulate", "--listen", l.Addr().String(), "--history-count", "1")
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, "address already in use (another simulator still running? stop it, or pick a free port with --listen 127.0.0.1:0)") {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the hint", code, stdout, stderr)
	}
}
