package repocheck

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testtools"
)

// buildBinary builds cmd/dtforward into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dtforward")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dtforward")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort returns a loopback port that was free a moment ago (rsyslog cannot listen on 0).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// start runs cmd and stops it (SIGKILL) at the end of the test if it is still running.
func start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
}

// TestComposePipeline runs the docker-compose stack's three services as local processes, with
// the compose file's own commands, environment, secrets and collector configuration (only
// addresses moved to 127.0.0.1): the simulator, dtforward run and rsyslog with
// deploy/rsyslog/rsyslog.conf. It passes when CEF lines with an RFC 5424 header reach the
// collector's file, the container HEALTHCHECK command answers, and SIGTERM ends the daemon
// with status 0.
func TestComposePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	rs := testtools.FindRsyslog(t)
	bin := buildBinary(t)
	doc := yamlDocs(t, "deploy/docker-compose.yml")[0]
	dir := t.TempDir()
	secrets := filepath.Join(root, "deploy", "secrets")
	remap := func(v string) string {
		if rest, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			return filepath.Join(secrets, rest)
		}
		return v
	}
	envOf := func(svc string) []string {
		env := []string{"PATH=" + os.Getenv("PATH")}
		if m, ok := dig(doc, "services", svc, "environment").(map[string]any); ok {
			for k, v := range m {
				env = append(env, k+"="+remap(v.(string)))
			}
		}
		return env
	}
	args := func(svc string) []string {
		var out []string
		for _, a := range dig(doc, "services", svc, "command").([]any) {
			out = append(out, a.(string))
		}
		return out
	}

	// The collector, with the compose configuration.
	siemPort := freePort(t)
	conf := read(t, "deploy/rsyslog/rsyslog.conf")
	conf = strings.NewReplacer(
		"/var/spool/rsyslog", dir,
		"/var/log/collector", dir,
		`port="514"`, `address="127.0.0.1" port="`+siemPort+`"`,
	).Replace(conf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, exec.Command(rs.Bin, "-n", "-f", confPath, "-M", rs.ModDir, "-i", filepath.Join(dir, "rsyslogd.pid")))
	waitListening(t, "127.0.0.1:"+siemPort)

	// The simulator, with the compose command but on loopback.
	simArgs := args("simulator")
	for i := range simArgs {
		if i > 0 && simArgs[i-1] == "--listen" {
			simArgs[i] = "127.0.0.1:0"
		}
	}
	sim := exec.Command(bin, simArgs...)
	sim.Env = envOf("simulator")
	simOut, err := sim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start(t, sim)
	sc := bufio.NewScanner(simOut)
	var url string
	for url == "" && sc.Scan() {
		url, _ = strings.CutPrefix(sc.Text(), "DARKTRACE_URL=")
	}
	if url == "" {
		t.Fatal("the simulator printed no DARKTRACE_URL")
	}

	// dtforward run, with the compose environment.
	httpAddr := "127.0.0.1:" + freePort(t)
	env := envOf("dtforward")
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DARKTRACE_URL":
			env[i] = k + "=" + url
		case "SIEM_ADDRESS":
			env[i] = k + "=127.0.0.1:" + siemPort
		case "STATE_DIR":
			env[i] = k + "=" + filepath.Join(dir, "state")
		case "HTTP_ADDRESS":
			env[i] = k + "=" + httpAddr
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	run := exec.Command(bin, args("dtforward")...)
	run.Env = env
	stderr := &lockedBuffer{}
	run.Stderr = stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = run.Process.Kill()
			<-exited
		}
	})

	// CEF lines with the RFC 5424 header arrive at the collector.
	header := regexp.MustCompile(`^<\d{1,3}>1 \S+ \S+ dtforward \S+ (modelbreach|antigena|aianalyst) - CEF:0\|Darktrace\|DCIP\|`)
	out := filepath.Join(dir, "siem.log")
	deadline := time.Now().Add(30 * time.Second)
	var lines []string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) > 0 && len(lines) >= 50 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("dtforward run exited early: %v\n%s", runErr, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(lines) < 50 {
		t.Fatalf("the collector received %d lines in 30s, want at least 50\ndtforward stderr:\n%s", len(lines), stderr.String())
	}
	for _, l := range lines {
		if !header.MatchString(l) {
			t.Fatalf("collector line is not RFC 5424 + CEF from dtforward: %q", l)
		}
	}

	// The image's HEALTHCHECK command, with the daemon's HTTP_ADDRESS.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := exec.CommandContext(ctx, bin, "health")
	hc.Env = []string{"HTTP_ADDRESS=" + httpAddr}
	if b, err := hc.CombinedOutput(); err != nil {
		t.Errorf("dtforward health: %v\n%s", err, b)
	}

	// docker stop sends SIGTERM: the daemon finishes and exits 0.
	if err := run.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if runErr != nil {
			t.Errorf("dtforward run after SIGTERM: %v\n%s", runErr, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("dtforward run did not exit within 20s of SIGTERM")
	}
	if strings.Contains(stderr.String(), "2485df5aaa4278ed80a133e91ae58c5ccccb7862") || strings.Contains(stderr.String(), "417f88cedddd679e76cdf4eb0a3ef3d99a99f203") {
		t.Errorf("a token appears in dtforward's log")
	}
}

// lockedBuffer collects a subprocess's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after 10s", addr)
}
