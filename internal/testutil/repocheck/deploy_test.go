package repocheck

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

func TestComposeFile(t *testing.T) {
	doc := yamlDocs(t, "deploy/docker-compose.yml")[0]
	for _, svc := range []string{"simulator", "dtforward", "collector"} {
		if dig(doc, "services", svc) == nil {
			t.Fatalf("service %q missing", svc)
		}
	}
	fw := dig(doc, "services", "dtforward")
	if got := str(fw, "command", 0); got != "run" {
		t.Errorf("dtforward command = %q, want run", got)
	}
	if got := str(dig(doc, "services", "simulator"), "command", 0); got != "simulate" {
		t.Errorf("simulator command = %q, want simulate", got)
	}
	if u := str(fw, "user"); u == "" || strings.HasPrefix(u, "0") || u == "root" {
		t.Errorf("dtforward user = %q, want a non-root uid", u)
	}

	env := map[string]string{}
	for k, v := range dig(fw, "environment").(map[string]any) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("environment %s = %v: quote it, compose passes YAML booleans and numbers inconsistently", k, v)
		}
		env[k] = s
	}
	// Tokens travel as Docker secrets read through *_FILE, never as plain variables.
	for _, name := range []string{"DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN"} {
		if _, ok := env[name]; ok {
			t.Errorf("%s is set as a plain variable; use %s_FILE and a secret", name, name)
		}
		path := env[name+"_FILE"]
		secret, ok := strings.CutPrefix(path, "/run/secrets/")
		if !ok {
			t.Errorf("%s_FILE = %q, want /run/secrets/<secret>", name, path)
			continue
		}
		if !slices.Contains(dig(fw, "secrets").([]any), any(secret)) {
			t.Errorf("dtforward does not mount secret %q", secret)
		}
		file := str(doc, "secrets", secret, "file")
		if file == "" {
			t.Errorf("top-level secret %q has no file", secret)
		} else if _, err := os.Stat(filepath.Join(root, "deploy", file)); err != nil {
			t.Errorf("secret %q: %v", secret, err)
		}
	}
	// The state directory is a volume.
	var stateMounted bool
	for _, v := range dig(fw, "volumes").([]any) {
		if s, _ := v.(string); strings.HasSuffix(s, ":"+env["STATE_DIR"]) {
			stateMounted = true
		}
	}
	if !stateMounted {
		t.Errorf("STATE_DIR %q is not a mounted volume", env["STATE_DIR"])
	}
	// The collector named in SIEM_ADDRESS exists and listens on that port.
	host, port, err := net.SplitHostPort(env["SIEM_ADDRESS"])
	if err != nil || dig(doc, "services", host) == nil {
		t.Errorf("SIEM_ADDRESS %q does not name a compose service", env["SIEM_ADDRESS"])
	}
	conf := read(t, "deploy/rsyslog/rsyslog.conf")
	if !strings.Contains(conf, `type="im`+env["SIEM_TRANSPORT"]+`" port="`+port+`"`) {
		t.Errorf("deploy/rsyslog/rsyslog.conf has no %s input on port %s", env["SIEM_TRANSPORT"], port)
	}

	validateEnv(t, "the dtforward service's environment", env, map[string]string{
		"/run/secrets/": filepath.Join(root, "deploy", "secrets"),
	})
}

// TestComposeCollectorConfig runs the real rsyslogd in config-check mode on the collector's
// configuration (with its directories moved into a temp dir).
func TestComposeCollectorConfig(t *testing.T) {
	rs := testtools.FindRsyslog(t)
	dir := t.TempDir()
	conf := read(t, "deploy/rsyslog/rsyslog.conf")
	conf = strings.NewReplacer("/var/spool/rsyslog", dir, "/var/log/collector", dir).Replace(conf)
	path := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(rs.Bin, "-N1", "-f", path, "-M", rs.ModDir).CombinedOutput()
	if err != nil {
		t.Fatalf("rsyslogd -N1 rejects deploy/rsyslog/rsyslog.conf: %v\n%s", err, out)
	}
}

func TestKubernetesManifests(t *testing.T) {
	byKind, find := manifests(t, "deploy/kubernetes")
	if len(byKind["Deployment"]) != 1 {
		t.Fatalf("want one Deployment, have %d", len(byKind["Deployment"]))
	}
	dep := byKind["Deployment"][0]
	if r, _ := dig(dep, "spec", "replicas").(int); r != 1 {
		t.Errorf("replicas = %v; two pollers would each deliver every alert", dig(dep, "spec", "replicas"))
	}
	pod := dig(dep, "spec", "template", "spec")
	if dig(pod, "enableServiceLinks") != false {
		t.Errorf("enableServiceLinks is not false: service variables like SIEM_SERVICE_HOST share dtforward's prefixes")
	}
	var fw, collector map[string]any
	for _, c := range dig(pod, "containers").([]any) {
		c := c.(map[string]any)
		if slices.Contains([]string{"run"}, str(c, "args", 0)) {
			fw = c
		} else {
			collector = c
		}
	}
	if fw == nil || collector == nil {
		t.Fatalf("want a collector container and a dtforward sidecar running \"run\"")
	}

	sc := dig(fw, "securityContext")
	for key, want := range map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false} {
		if dig(sc, key) != want {
			t.Errorf("dtforward securityContext.%s = %v, want %v", key, dig(sc, key), want)
		}
	}
	if uid, _ := dig(sc, "runAsUser").(int); uid == 0 {
		t.Errorf("dtforward runAsUser = %v, want a non-zero uid", dig(sc, "runAsUser"))
	}

	// Environment: the ConfigMap referenced by envFrom.
	cmName := str(fw, "envFrom", 0, "configMapRef", "name")
	env := map[string]string{}
	for k, v := range dig(find("ConfigMap", cmName), "data").(map[string]any) {
		env[k] = v.(string)
	}
	for _, name := range []string{"DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN"} {
		if _, ok := env[name]; ok {
			t.Errorf("%s is in the ConfigMap; tokens belong in the Secret, read through %s_FILE", name, name)
		}
	}
	if dig(fw, "env") != nil {
		for _, e := range dig(fw, "env").([]any) {
			if strings.Contains(str(e, "name"), "TOKEN") && !strings.HasSuffix(str(e, "name"), "_FILE") {
				t.Errorf("container env sets %s; tokens are read from files", str(e, "name"))
			}
		}
	}

	// Mounts: the token Secret as files where *_FILE points, the PVC at STATE_DIR.
	volumes := map[string]any{}
	for _, v := range dig(pod, "volumes").([]any) {
		volumes[str(v, "name")] = v
	}
	mounts := map[string]string{} // mountPath -> volume name
	for _, m := range dig(fw, "volumeMounts").([]any) {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	secretMount := ""
	for path, vol := range mounts {
		if name := str(volumes[vol], "secret", "secretName"); name != "" {
			secretMount = path
			secret := find("Secret", name)
			for _, v := range []string{"DARKTRACE_PUBLIC_TOKEN_FILE", "DARKTRACE_PRIVATE_TOKEN_FILE"} {
				key, ok := strings.CutPrefix(env[v], path+"/")
				if !ok {
					t.Errorf("%s = %q is not under the secret mount %s", v, env[v], path)
				} else if dig(secret, "stringData", key) == nil && dig(secret, "data", key) == nil {
					t.Errorf("%s names key %q, which Secret %s lacks", v, key, name)
				}
			}
		}
	}
	if secretMount == "" {
		t.Errorf("dtforward mounts no Secret")
	}
	if vol := mounts[env["STATE_DIR"]]; vol == "" {
		t.Errorf("STATE_DIR %q is not mounted", env["STATE_DIR"])
	} else if claim := str(volumes[vol], "persistentVolumeClaim", "claimName"); claim == "" {
		t.Errorf("STATE_DIR volume %q is not a PersistentVolumeClaim", vol)
	} else {
		find("PersistentVolumeClaim", claim)
	}

	// Probes and scraping on the HTTP_ADDRESS port.
	_, port, err := net.SplitHostPort(env["HTTP_ADDRESS"])
	if err != nil {
		t.Fatalf("HTTP_ADDRESS %q: %v", env["HTTP_ADDRESS"], err)
	}
	portName := ""
	for _, p := range dig(fw, "ports").([]any) {
		if itoa(dig(p, "containerPort")) == port {
			portName = str(p, "name")
		}
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(fw, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %s", probe, got, path)
		}
		if p := dig(fw, probe, "httpGet", "port"); p != portName && itoa(p) != port {
			t.Errorf("%s port = %v, want %s (HTTP_ADDRESS)", probe, p, port)
		}
	}
	ann := dig(dep, "spec", "template", "metadata", "annotations")
	if str(ann, "prometheus.io/scrape") != "true" || str(ann, "prometheus.io/port") != port || str(ann, "prometheus.io/path") != "/metrics" {
		t.Errorf("prometheus.io annotations = %v, want scrape true on port %s, /metrics", ann, port)
	}

	// The sidecar's sink is the collector's loopback input.
	sng := str(find("ConfigMap", "siem-collector"), "data", "syslog-ng.conf")
	_, siemPort, _ := net.SplitHostPort(env["SIEM_ADDRESS"])
	if !regexp.MustCompile(`ip\("127\.0\.0\.1"\) port\(` + siemPort + `\)`).MatchString(sng) {
		t.Errorf("the collector does not listen on SIEM_ADDRESS %s", env["SIEM_ADDRESS"])
	}
	if strings.Contains(sng, "syslog(") && env["SIEM_FRAMING"] != "octet-counting" {
		t.Errorf("syslog-ng's syslog() source needs SIEM_FRAMING=octet-counting")
	}

	validateEnv(t, "the dtforward ConfigMap", env, map[string]string{secretMount + "/": ""})
}

// TestKubernetesCollectorConfig checks the collector's syslog-ng configuration with the real
// syslog-ng.
func TestKubernetesCollectorConfig(t *testing.T) {
	sng := testtools.FindSyslogNG(t)
	var conf string
	for _, d := range yamlDocs(t, "deploy/kubernetes/configmap.yaml") {
		if c := str(d, "data", "syslog-ng.conf"); c != "" {
			conf = c
		}
	}
	if conf == "" {
		t.Fatal("no syslog-ng.conf in deploy/kubernetes/configmap.yaml")
	}
	path := filepath.Join(t.TempDir(), "syslog-ng.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sng.Command("--syntax-only", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("syslog-ng --syntax-only rejects the collector configuration: %v\n%s", err, out)
	}
}

// itoa renders a YAML port (an int or a name) as a string.
func itoa(v any) string {
	switch n := v.(type) {
	case int:
		return strconv.Itoa(n)
	case string:
		return n
	}
	return ""
}

// TestKubernetesImageIsTheUsersOwn: nobody publishes a dtforward image, so the manifests must
// not pull one by name (ghcr.io/dtforward/dtforward:latest did, and failed as written). The
// dtforward container names the placeholder "dtforward", which each kustomization's "images"
// override turns into the image the user built and pushed.
func TestKubernetesImageIsTheUsersOwn(t *testing.T) {
	for _, dir := range []string{"deploy/kubernetes", "deploy/kubernetes/sharded"} {
		overrides := map[string]string{}
		for _, d := range yamlDocs(t, dir+"/kustomization.yaml") {
			images, _ := dig(d, "images").([]any)
			for _, im := range images {
				overrides[str(im, "name")] = str(im, "newName")
			}
		}
		byKind, _ := manifests(t, dir)
		found := false
		for _, kind := range []string{"Deployment", "StatefulSet"} {
			for _, d := range byKind[kind] {
				containers, _ := dig(d, "spec", "template", "spec", "containers").([]any)
				for _, c := range containers {
					if str(c, "name") != "dtforward" {
						continue
					}
					found = true
					image := str(c, "image")
					newName, ok := overrides[image]
					switch {
					case !ok:
						t.Errorf("%s: the dtforward container pulls %q, which no \"images\" override in kustomization.yaml replaces", dir, image)
					case newName == "" || strings.Contains(newName, "ghcr.io/dtforward"):
						t.Errorf("%s: the images override turns %q into %q, not the user's registry", dir, image, newName)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no dtforward container found", dir)
		}
	}
}
