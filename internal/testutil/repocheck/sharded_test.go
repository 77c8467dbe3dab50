package repocheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/config"
)

// TestKubernetesShardedStatefulSet checks the sharded example (issue 13 item 4): a StatefulSet
// whose pods take SHARD_INDEX from their name, SHARD_COUNT equal to its replicas, one state
// volume per pod, non-root, probes on HTTP_ADDRESS; and, with dtforward's own loader, that the
// replicas' configurations cover every appliance of the example file exactly once.
func TestKubernetesShardedStatefulSet(t *testing.T) {
	const dir = "deploy/kubernetes/sharded"
	byKind, find := manifests(t, dir)
	if len(byKind["StatefulSet"]) != 1 {
		t.Fatalf("want one StatefulSet, have %d", len(byKind["StatefulSet"]))
	}
	sts := byKind["StatefulSet"][0]
	svc := find("Service", str(sts, "spec", "serviceName"))
	if dig(svc, "spec", "clusterIP") != "None" {
		t.Errorf("the governing Service %s is not headless", str(svc, "metadata", "name"))
	}
	replicas, _ := dig(sts, "spec", "replicas").(int)
	pod := dig(sts, "spec", "template", "spec")
	if dig(pod, "enableServiceLinks") != false {
		t.Errorf("enableServiceLinks is not false")
	}
	fw := dig(pod, "containers", 0).(map[string]any)
	if str(fw, "args", 0) != "run" {
		t.Fatalf("first container does not run \"run\"")
	}
	sc := dig(fw, "securityContext")
	for key, want := range map[string]any{"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false} {
		if dig(sc, key) != want {
			t.Errorf("securityContext.%s = %v, want %v", key, dig(sc, key), want)
		}
	}
	if uid, _ := dig(sc, "runAsUser").(int); uid == 0 {
		t.Errorf("runAsUser = %v, want a non-zero uid", dig(sc, "runAsUser"))
	}

	// SHARD_INDEX comes from the pod name; the rest from the ConfigMap.
	var fromPodName bool
	for _, e := range dig(fw, "env").([]any) {
		if str(e, "name") == "SHARD_INDEX" && str(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.name" {
			fromPodName = true
		}
	}
	if !fromPodName {
		t.Errorf("SHARD_INDEX is not read from metadata.name")
	}
	env := map[string]string{}
	for k, v := range dig(find("ConfigMap", str(fw, "envFrom", 0, "configMapRef", "name")), "data").(map[string]any) {
		s, ok := v.(string)
		if !ok {
			t.Errorf("ConfigMap value %s = %v is not a string", k, v)
		}
		env[k] = s
	}
	if env["SHARD_COUNT"] != strconv.Itoa(replicas) {
		t.Errorf("SHARD_COUNT = %q but replicas = %d; appliances of the missing shards would never be polled", env["SHARD_COUNT"], replicas)
	}

	// Mounts: state from volumeClaimTemplates (one volume per pod), config and secrets.
	mounts := map[string]string{}
	for _, m := range dig(fw, "volumeMounts").([]any) {
		mounts[str(m, "mountPath")] = str(m, "name")
	}
	stateVol := mounts[env["STATE_DIR"]]
	var claimed bool
	for _, c := range dig(sts, "spec", "volumeClaimTemplates").([]any) {
		if str(c, "metadata", "name") == stateVol && slices.Contains(dig(c, "spec", "accessModes").([]any), any("ReadWriteOnce")) {
			claimed = true
		}
	}
	if stateVol == "" || !claimed {
		t.Errorf("STATE_DIR %q is not a ReadWriteOnce volumeClaimTemplate (volume %q)", env["STATE_DIR"], stateVol)
	}
	volumes := map[string]any{}
	for _, v := range dig(pod, "volumes").([]any) {
		volumes[str(v, "name")] = v
		if str(v, "name") == stateVol {
			t.Errorf("the state volume is a pod volume, shared by every replica; it must come from volumeClaimTemplates")
		}
	}
	appsPath := env["DARKTRACE_APPLIANCES_FILE"]
	appsVol := volumes[mounts[filepath.Dir(appsPath)]]
	cm := find("ConfigMap", str(appsVol, "configMap", "name"))
	appsYAML := str(cm, "data", filepath.Base(appsPath))
	if appsYAML == "" {
		t.Fatalf("DARKTRACE_APPLIANCES_FILE %s is not in a mounted ConfigMap", appsPath)
	}
	// Every token file the appliances file names is a key of the mounted Secret.
	secretDir := ""
	for path, vol := range mounts {
		if name := str(volumes[vol], "secret", "secretName"); name != "" {
			secret := find("Secret", name)
			for k := range dig(secret, "stringData").(map[string]any) {
				if strings.Contains(appsYAML, path+"/"+k+"\n") {
					secretDir = path
				}
			}
		}
	}
	if secretDir == "" {
		t.Errorf("no mounted Secret holds the token files of the appliances file")
	}

	// Probes on HTTP_ADDRESS.
	_, port, _ := strings.Cut(env["HTTP_ADDRESS"], ":")
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(fw, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %s", probe, got, path)
		}
		if p := dig(fw, probe, "httpGet", "port"); p != "metrics" && itoa(p) != port {
			t.Errorf("%s port = %v", probe, p)
		}
	}

	// Load every replica's configuration with dtforward's own loader (files moved into a temp
	// dir) and check the shards cover each appliance exactly once.
	tmp := t.TempDir()
	localSecrets := filepath.Join(tmp, "secrets")
	if err := os.MkdirAll(localSecrets, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, vol := range volumes {
		if name := str(vol, "secret", "secretName"); name != "" {
			for k := range dig(find("Secret", name), "stringData").(map[string]any) {
				if err := os.WriteFile(filepath.Join(localSecrets, k), placeholder(t, k), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	localApps := filepath.Join(tmp, "appliances.yaml")
	if err := os.WriteFile(localApps, []byte(strings.ReplaceAll(appsYAML, secretDir+"/", localSecrets+"/")), 0o600); err != nil {
		t.Fatal(err)
	}
	owner := map[string]int{}
	total := 0
	for i := range replicas {
		vals := map[string]string{}
		for k, v := range env {
			vals[k] = v
		}
		vals["DARKTRACE_APPLIANCES_FILE"] = localApps
		vals["SIEM_TLS_CA_FILE"] = filepath.Join(localSecrets, filepath.Base(env["SIEM_TLS_CA_FILE"]))
		vals["STATE_DIR"] = filepath.Join(tmp, "state")
		vals["SHARD_INDEX"] = fmt.Sprintf("%s-%d", str(sts, "metadata", "name"), i)
		var environ []string
		for k, v := range vals {
			environ = append(environ, k+"="+v)
		}
		cfg, err := config.LoadFor(config.ModeRun, func(k string) string { return vals[k] }, environ)
		if err != nil {
			t.Fatalf("pod %s: not a valid run configuration:\n%v", vals["SHARD_INDEX"], err)
		}
		all, _ := cfg.Appliances()
		total = len(all)
		apps, err := cfg.ShardAppliances()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			if prev, dup := owner[a.Name]; dup {
				t.Errorf("%s is polled by pods %d and %d", a.Name, prev, i)
			}
			owner[a.Name] = i
		}
	}
	if len(owner) != total || total == 0 {
		t.Errorf("the %d replicas poll %d of the %d appliances", replicas, len(owner), total)
	}
}
