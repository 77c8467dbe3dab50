package repocheck

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dtforward/dtforward/config"
)

// root is the repository root, relative to this package.
const root = "../../.."

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// yamlDocs parses every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, rel string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(read(t, rel))))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", rel)
	}
	return docs
}

// dig walks nested maps and lists: dig(doc, "spec", "template", "spec", "containers", 0).
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := dig(v, path...).(string)
	return s
}

// validateEnv loads env with dtforward's own configuration loader for "run", after moving
// every path under one of the remapped prefixes (a secret mount, a credentials directory) to a
// file that exists here, and reports every problem.
func validateEnv(t *testing.T, what string, env map[string]string, remap map[string]string) {
	t.Helper()
	tmp := t.TempDir()
	vals := map[string]string{}
	for k, v := range env {
		for prefix, to := range remap {
			if strings.HasPrefix(v, prefix) {
				if to == "" {
					to = filepath.Join(tmp, strings.ReplaceAll(strings.TrimPrefix(v, prefix), "/", "_"))
					if err := os.WriteFile(to, placeholder(t, to), 0o600); err != nil {
						t.Fatal(err)
					}
				} else {
					to = filepath.Join(to, strings.TrimPrefix(v, prefix))
				}
				v = to
			}
		}
		vals[k] = v
	}
	var environ []string
	for k, v := range vals {
		environ = append(environ, k+"="+v)
	}
	if _, err := config.LoadFor(config.ModeRun, func(k string) string { return vals[k] }, environ); err != nil {
		t.Errorf("%s is not a valid dtforward run configuration:\n%v", what, err)
	}
}

// manifests reads the Kubernetes manifests of dir (every *.yaml file), checks that each
// document has apiVersion and kind and that kustomization.yaml lists every file, and returns
// the documents by kind with a lookup of one by kind and name (fatal when missing).
func manifests(t *testing.T, dir string) (byKind map[string][]map[string]any, find func(kind, name string) map[string]any) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	byKind = map[string][]map[string]any{}
	var resources []string
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		for _, d := range yamlDocs(t, rel) {
			kind := str(d, "kind")
			if kind == "" || str(d, "apiVersion") == "" {
				t.Errorf("%s: a document lacks apiVersion or kind", rel)
			}
			if kind == "Kustomization" {
				for _, r := range dig(d, "resources").([]any) {
					resources = append(resources, r.(string))
				}
				continue
			}
			byKind[kind] = append(byKind[kind], d)
		}
	}
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" && !slices.Contains(resources, name) {
			t.Errorf("kustomization.yaml does not list %s", name)
		}
	}
	find = func(kind, name string) map[string]any {
		t.Helper()
		for _, d := range byKind[kind] {
			if str(d, "metadata", "name") == name {
				return d
			}
		}
		t.Fatalf("no %s named %q", kind, name)
		return nil
	}
	return byKind, find
}

// placeholder is what a test writes for a file a manifest or example names: a CA certificate
// for a .pem or .crt (configuration validation loads CA bundles as the TLS client will), a
// token otherwise.
func placeholder(t *testing.T, name string) []byte {
	t.Helper()
	if ext := filepath.Ext(name); ext != ".pem" && ext != ".crt" {
		return []byte("token0123\n")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "repocheck CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
