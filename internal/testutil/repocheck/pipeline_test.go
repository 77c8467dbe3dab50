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
	"syscall"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
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

// freePort returns a loopback port that was free a moment ago (the daemons cannot listen on 0
// and report the port).
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

// process is a started subprocess that is killed at the end of the test if still running.
type process struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error // valid after done is closed
	stderr *lockedBuffer
}

func start(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, done: make(chan struct{}), stderr: &lockedBuffer{}}
	if cmd.Stderr == nil {
		cmd.Stderr = p.stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// lockedBuffer is shared with the other packages that run commands in tests.
type lockedBuffer = testtools.SyncBuffer

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

// startSimulator runs "dtforward simulate" with args (its --listen moved to loopback) and
// returns the URL it serves.
func startSimulator(t *testing.T, bin string, args, env []string) string {
	t.Helper()
	args = append([]string(nil), args...)
	listen := false
	for i := range args {
		if i > 0 && args[i-1] == "--listen" {
			args[i], listen = "127.0.0.1:0", true
		}
	}
	if !listen {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	sim := exec.Command(bin, args...)
	sim.Env = env
	out, err := sim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, sim)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "DARKTRACE_URL="); ok {
			go func() {
				_ = sc.Err()
				for sc.Scan() {
				}
			}() // keep draining until it exits
			return url
		}
	}
	<-p.done
	t.Fatalf("the simulator printed no DARKTRACE_URL: %v\n%s", p.err, p.stderr.String())
	return ""
}

// rfc5424CEF is a line as dtforward sends it by default.
var rfc5424CEF = regexp.MustCompile(`^<\d{1,3}>1 \S+ \S+ dtforward \S+ (modelbreach|antigena|aianalyst) - CEF:0\|Darktrace\|DCIP\|`)

// checkDelivery runs "dtforward run" with env until the collector's file out holds n lines,
// checks every line, the container HEALTHCHECK command against httpAddr and a clean exit on
// SIGTERM (what "docker stop" and Kubernetes send).
func checkDelivery(t *testing.T, bin string, env []string, httpAddr, out string, n int) {
	t.Helper()
	cmd := exec.Command(bin, "run")
	cmd.Env = env
	run := start(t, cmd)

	deadline := time.Now().Add(30 * time.Second)
	var lines []string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 {
			lines = nil
		}
		if len(lines) >= n {
			break
		}
		select {
		case <-run.done:
			t.Fatalf("dtforward run exited early: %v\n%s", run.err, run.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if len(lines) < n {
		t.Fatalf("the collector received %d lines in 30s, want at least %d\ndtforward stderr:\n%s", len(lines), n, run.stderr.String())
	}
	for _, l := range lines {
		if !rfc5424CEF.MatchString(l) {
			t.Fatalf("collector line is not RFC 5424 + CEF from dtforward: %q", l)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := exec.CommandContext(ctx, bin, "health")
	hc.Env = []string{"HTTP_ADDRESS=" + httpAddr}
	if b, err := hc.CombinedOutput(); err != nil {
		t.Errorf("dtforward health: %v\n%s", err, b)
	}

	if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.done:
		if run.err != nil {
			t.Errorf("dtforward run after SIGTERM: %v\n%s", run.err, run.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("dtforward run did not exit within 20s of SIGTERM")
	}
	for _, tok := range []string{strings.TrimSpace(read(t, "deploy/secrets/darktrace_public_token")), strings.TrimSpace(read(t, "deploy/secrets/darktrace_private_token"))} {
		if strings.Contains(run.stderr.String(), tok) {
			t.Errorf("a token appears in dtforward's log")
		}
	}
}

// setEnv replaces or adds NAME=value in env.
func setEnv(env []string, name, value string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			env[i] = name + "=" + value
			return env
		}
	}
	return append(env, name+"="+value)
}

// TestComposePipeline runs the docker-compose stack's three services as local processes, with
// the compose file's own commands, environment, secrets and collector configuration (only
// addresses and directories moved): the simulator, dtforward run and rsyslog with
// deploy/rsyslog/rsyslog.conf.
func TestComposePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	rs := testtools.FindRsyslog(t)
	bin := buildBinary(t)
	doc := yamlDocs(t, "deploy/docker-compose.yml")[0]
	dir := t.TempDir()
	envOf := func(svc string) []string {
		env := []string{"PATH=" + os.Getenv("PATH")}
		if m, ok := dig(doc, "services", svc, "environment").(map[string]any); ok {
			for k, v := range m {
				val := v.(string)
				if rest, ok := strings.CutPrefix(val, "/run/secrets/"); ok {
					val = filepath.Join(root, "deploy", str(doc, "secrets", rest, "file"))
				}
				env = append(env, k+"="+val)
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

	siemPort := freePort(t)
	conf := strings.NewReplacer(
		"/var/spool/rsyslog", dir,
		"/var/log/collector", dir,
		`port="514"`, `address="127.0.0.1" port="`+siemPort+`"`,
	).Replace(read(t, "deploy/rsyslog/rsyslog.conf"))
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, exec.Command(rs.Bin, "-n", "-f", confPath, "-M", rs.ModDir, "-i", filepath.Join(dir, "rsyslogd.pid")))
	waitListening(t, "127.0.0.1:"+siemPort)

	url := startSimulator(t, bin, args("simulator"), envOf("simulator"))

	if got := args("dtforward"); len(got) != 1 || got[0] != "run" {
		t.Fatalf("dtforward command %q, want [run]", got)
	}
	httpAddr := "127.0.0.1:" + freePort(t)
	env := envOf("dtforward")
	env = setEnv(env, "DARKTRACE_URL", url)
	env = setEnv(env, "SIEM_ADDRESS", "127.0.0.1:"+siemPort)
	env = setEnv(env, "STATE_DIR", t.TempDir())
	env = setEnv(env, "HTTP_ADDRESS", httpAddr)
	checkDelivery(t, bin, env, httpAddr, filepath.Join(dir, "siem.log"), 50)
}

// TestKubernetesPipeline runs the Kubernetes pod's two containers as local processes: the
// syslog-ng collector with the ConfigMap's configuration (loopback, RFC 5425 octet-counted
// syslog() source) and dtforward with the ConfigMap's environment, against the simulator.
func TestKubernetesPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	sng := testtools.FindSyslogNG(t)
	bin := buildBinary(t)
	var env []string
	var conf string
	for _, d := range yamlDocs(t, "deploy/kubernetes/configmap.yaml") {
		switch str(d, "metadata", "name") {
		case "dtforward":
			env = []string{"PATH=" + os.Getenv("PATH")}
			for k, v := range dig(d, "data").(map[string]any) {
				env = append(env, k+"="+v.(string))
			}
		case "siem-collector":
			conf = str(d, "data", "syslog-ng.conf")
		}
	}
	if env == nil || conf == "" {
		t.Fatal("deploy/kubernetes/configmap.yaml lacks the dtforward or siem-collector ConfigMap")
	}
	dir := t.TempDir()
	siemPort := freePort(t)
	portRe := regexp.MustCompile(`ip\("127\.0\.0\.1"\) port\((\d+)\)`)
	if !portRe.MatchString(conf) {
		t.Fatal("the collector has no loopback listener")
	}
	conf = portRe.ReplaceAllString(conf, `ip("127.0.0.1") port(`+siemPort+`)`)
	conf = strings.ReplaceAll(conf, "/var/log/collector", dir)
	confPath := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, sng.Command("-F", "--no-caps", "-f", confPath, "-R", filepath.Join(dir, "persist"),
		"-c", filepath.Join(dir, "ctl"), "-p", filepath.Join(dir, "syslog-ng.pid")))
	waitListening(t, "127.0.0.1:"+siemPort)

	// The Secret's files, holding the token pair the simulator is started with.
	secretDir := t.TempDir()
	pub := strings.TrimSpace(read(t, "deploy/secrets/darktrace_public_token"))
	priv := strings.TrimSpace(read(t, "deploy/secrets/darktrace_private_token"))
	simEnv := []string{"DARKTRACE_PUBLIC_TOKEN=" + pub, "DARKTRACE_PRIVATE_TOKEN=" + priv}
	url := startSimulator(t, bin, []string{"simulate"}, simEnv)
	for i, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if rest, ok := strings.CutPrefix(v, "/var/run/secrets/darktrace/"); ok {
			tok := pub
			if strings.Contains(k, "PRIVATE") {
				tok = priv
			}
			path := filepath.Join(secretDir, rest)
			if err := os.WriteFile(path, []byte(tok+"\n"), 0o400); err != nil {
				t.Fatal(err)
			}
			env[i] = k + "=" + path
		}
	}
	httpAddr := "127.0.0.1:" + freePort(t)
	env = setEnv(env, "DARKTRACE_URL", url)
	env = setEnv(env, "DARKTRACE_ALLOW_HTTP", "true") // the simulator serves plain HTTP
	env = setEnv(env, "SIEM_ADDRESS", "127.0.0.1:"+siemPort)
	env = setEnv(env, "STATE_DIR", t.TempDir())
	env = setEnv(env, "HTTP_ADDRESS", httpAddr)
	checkDelivery(t, bin, env, httpAddr, filepath.Join(dir, "siem.log"), 20)
}
