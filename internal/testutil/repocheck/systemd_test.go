package repocheck

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// unitFile is a parsed systemd unit: section -> key -> values (keys may repeat).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %d: %q is not key=value inside a section", n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnit(t *testing.T) {
	text := read(t, "deploy/systemd/dtforward.service")
	u := parseUnit(t, text)
	if !strings.HasSuffix(u.get("Service", "ExecStart"), "dtforward run") {
		t.Errorf("ExecStart = %q, want .../dtforward run", u.get("Service", "ExecStart"))
	}
	if u.get("Service", "DynamicUser") != "yes" && u.get("Service", "User") == "" {
		t.Errorf("the service runs as root: set DynamicUser=yes or User=")
	}
	for key, want := range map[string]string{
		"StateDirectory":  "dtforward",
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"ProtectHome":     "yes",
		"PrivateTmp":      "yes",
		"Restart":         "on-failure",
	} {
		if got := u.get("Service", key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	// The state directory systemd creates is the one dtforward writes.
	var stateDir string
	for _, e := range u["Service"]["Environment"] {
		if v, ok := strings.CutPrefix(e, "STATE_DIR="); ok {
			stateDir = v
		}
	}
	if stateDir != "/var/lib/"+u.get("Service", "StateDirectory") {
		t.Errorf("STATE_DIR=%q does not match StateDirectory=%s", stateDir, u.get("Service", "StateDirectory"))
	}
	// Windows follow the appliance clock, but POLL_START and the first DTAPI-Date use ours
	// until the appliance answers: start only once NTP has set it (issue 11).
	for _, key := range []string{"After", "Wants"} {
		var targets []string
		for _, v := range u["Unit"][key] {
			targets = append(targets, strings.Fields(v)...)
		}
		if !slices.Contains(targets, "time-sync.target") {
			t.Errorf("%s= lists %v, want time-sync.target among them", key, targets)
		}
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("WantedBy=%q, want multi-user.target", u.get("Install", "WantedBy"))
	}

	// The example environment file is a valid run configuration once the credentials exist.
	env := map[string]string{"STATE_DIR": stateDir}
	sc := bufio.NewScanner(strings.NewReader(read(t, "deploy/systemd/dtforward.env.example")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("dtforward.env.example: %q is not KEY=value", line)
		}
		env[k] = v
	}
	credDir := "/run/credentials/dtforward.service/"
	for _, name := range []string{"DARKTRACE_PUBLIC_TOKEN_FILE", "DARKTRACE_PRIVATE_TOKEN_FILE"} {
		cred, ok := strings.CutPrefix(env[name], credDir)
		if !ok {
			t.Errorf("%s=%q is not under %s", name, env[name], credDir)
			continue
		}
		var loaded bool
		for _, lc := range u["Service"]["LoadCredential"] {
			loaded = loaded || strings.HasPrefix(lc, cred+":")
		}
		if !loaded {
			t.Errorf("%s names credential %q, which no LoadCredential= provides", name, cred)
		}
	}
	validateEnv(t, "deploy/systemd/dtforward.env.example", env, map[string]string{credDir: ""})
}

// TestSystemdAnalyze runs systemd's own checks on the unit: "verify" must print no warning
// (it exits 0 even for unknown keys, so its output is what counts), and the offline security
// analysis must rate the exposure at most 2.0 ("OK").
func TestSystemdAnalyze(t *testing.T) {
	sa := testtools.FindCommand(t, "systemd-analyze", "systemd")
	text := read(t, "deploy/systemd/dtforward.service")
	// verify checks that ExecStart exists; point it at a binary this machine has.
	bin, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	text = strings.ReplaceAll(text, "/usr/local/bin/dtforward", bin)
	path := filepath.Join(t.TempDir(), "dtforward.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), path) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--threshold=20", "--no-pager", path).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v): %s", err, lines[len(lines)-1])
	}
}

// TestSystemdInstallOnCleanRoot runs the documented install steps (deploy/systemd/install.sh)
// into an empty directory standing for a fresh machine's /, and checks that everything the
// unit reads is then there: a missing /etc/dtforward made the old hand-written steps fail.
func TestSystemdInstallOnCleanRoot(t *testing.T) {
	dir := t.TempDir()
	rootDir := filepath.Join(dir, "root")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"dtforward": "#!/bin/true\n", "public": "pub\n", "private": "priv\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	install := func() string {
		cmd := exec.Command("sh", filepath.Join(root, "deploy/systemd/install.sh"),
			filepath.Join(dir, "dtforward"), filepath.Join(dir, "public"), filepath.Join(dir, "private"))
		cmd.Env = append(os.Environ(), "ROOT="+rootDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh on a clean root: %v\n%s", err, out)
		}
		return string(out)
	}
	install()

	u := parseUnit(t, read(t, "deploy/systemd/dtforward.service"))
	wanted := map[string]os.FileMode{
		"/usr/local/bin/dtforward":              0o755,
		"/etc/systemd/system/dtforward.service": 0o644,
	}
	exec0, _, _ := strings.Cut(u.get("Service", "ExecStart"), " ")
	if exec0 != "/usr/local/bin/dtforward" {
		t.Errorf("ExecStart runs %s, which install.sh does not install", exec0)
	}
	wanted[strings.TrimPrefix(u.get("Service", "EnvironmentFile"), "-")] = 0o640
	for _, lc := range u["Service"]["LoadCredential"] {
		_, src, _ := strings.Cut(lc, ":")
		wanted[src] = 0o600
	}
	for path, mode := range wanted {
		fi, err := os.Stat(filepath.Join(rootDir, path))
		if err != nil {
			t.Errorf("the unit needs %s; after install.sh: %v", path, err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", path, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(rootDir, "etc/dtforward")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("/etc/dtforward: %v (mode %v), want a 0750 directory", err, fi)
	}

	// A second run (an upgrade) keeps the operator's edited env file.
	envFile := filepath.Join(rootDir, "etc/dtforward/dtforward.env")
	if err := os.WriteFile(envFile, []byte("DARKTRACE_URL=https://edited.example\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if out := install(); !strings.Contains(out, "kept the existing") {
		t.Errorf("second install did not say it kept the env file:\n%s", out)
	}
	if b, _ := os.ReadFile(envFile); !strings.Contains(string(b), "edited.example") {
		t.Errorf("second install overwrote the edited env file: %q", b)
	}
}

// TestSystemdDoesNotRestartAConfigurationError: dtforward exits 2 on a configuration error,
// which a restart cannot fix; Restart=on-failure alone retried it every 5 s forever.
func TestSystemdDoesNotRestartAConfigurationError(t *testing.T) {
	u := parseUnit(t, read(t, "deploy/systemd/dtforward.service"))
	if !slices.Contains(strings.Fields(u.get("Service", "RestartPreventExitStatus")), "2") {
		t.Errorf("RestartPreventExitStatus=%q, want it to list 2 (configuration error)", u.get("Service", "RestartPreventExitStatus"))
	}
}
