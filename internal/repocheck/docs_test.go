package repocheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/config"
)

func TestREADMESections(t *testing.T) {
	readme := read(t, "README.md")
	if !strings.HasPrefix(readme, "# dtforward\n") {
		t.Errorf("README.md does not start with the title")
	}
	// The sections of the reference part, in the agreed order.
	want := []string{
		"## Connecting to a real appliance",
		"## Configuration reference",
		"## Output formats",
		"### CEF",
		"### LEEF",
		"### JSON",
		"### darktrace-json",
		"## SIEM recipes",
		"## Backfill",
		"## Operations",
		"## Security",
	}
	last := -1
	for _, h := range want {
		i := strings.Index(readme, "\n"+h)
		if i < 0 {
			t.Errorf("README.md lacks section %q", h)
			continue
		}
		if i < last {
			t.Errorf("README.md section %q is out of order", h)
		}
		last = i
	}
	for _, siem := range []string{"Splunk", "QRadar", "Sentinel", "ArcSight", "Elastic", "rsyslog", "syslog-ng"} {
		if !strings.Contains(readme, siem) {
			t.Errorf("SIEM recipes do not cover %s", siem)
		}
	}
}

// TestREADMEVariables catches documentation of variables that do not exist (or no longer do).
func TestREADMEVariables(t *testing.T) {
	known := map[string]bool{}
	for _, v := range config.Table() {
		known[v.Name] = true
	}
	// Names the README mentions on purpose although dtforward does not read them.
	examples := map[string]bool{"SIEM_ADRESS": true, "SIEM_SERVICE_HOST": true, "SIEM_PORT_514_TCP": true}
	re := regexp.MustCompile("`((?:DARKTRACE|POLL|FILTER|SIEM)_[A-Z0-9_]+)")
	for _, file := range []string{"README.md", "CHANGELOG.md"} {
		for _, m := range re.FindAllStringSubmatch(read(t, file), -1) {
			name := m[1]
			if strings.HasSuffix(name, "_") || examples[name] {
				continue // a prefix such as `SIEM_`
			}
			if !known[name] {
				t.Errorf("%s mentions %s, which dtforward does not read", file, name)
			}
		}
	}
}

// TestREADMEMetrics checks that every metric the program registers is documented.
func TestREADMEMetrics(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(root, "internal/metrics/*.go"))
	re := regexp.MustCompile(`"(dtforward_[a-z_]+)"`)
	readme := read(t, "README.md")
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("found no dtforward_* metric in internal/metrics: the README check would be empty")
	}
	for _, n := range names {
		if !strings.Contains(readme, "`"+n) {
			t.Errorf("metric %s is not documented in README.md (Operations)", n)
		}
	}
}

func TestLicenseAndChangelog(t *testing.T) {
	lic := read(t, "LICENSE")
	for _, want := range []string{"Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", "END OF TERMS AND CONDITIONS", "APPENDIX: How to apply the Apache License to your work."} {
		if !strings.Contains(lic, want) {
			t.Errorf("LICENSE is not the full Apache-2.0 text: lacks %q", want)
		}
	}
	cl := read(t, "CHANGELOG.md")
	if !strings.HasPrefix(cl, "# Changelog\n") || !strings.Contains(cl, "keepachangelog.com") || !strings.Contains(cl, "\n## [Unreleased]\n") {
		t.Errorf("CHANGELOG.md does not follow Keep a Changelog with an Unreleased section")
	}
	for _, line := range strings.Split(cl, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok && !slices.Contains([]string{"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, h) {
			t.Errorf("CHANGELOG.md: %q is not a Keep a Changelog change type", h)
		}
	}
}

func TestGolangciConfig(t *testing.T) {
	doc := yamlDocs(t, ".golangci.yml")[0]
	if v := str(doc, "version"); v != "2" {
		t.Errorf(".golangci.yml version = %q, want \"2\" (golangci-lint v2 format)", v)
	}
	for _, l := range []string{"govet", "staticcheck", "errcheck", "ineffassign", "unused"} {
		if !slices.Contains(dig(doc, "linters", "enable").([]any), any(l)) {
			t.Errorf(".golangci.yml does not enable %s", l)
		}
	}
}

// TestREADMEAppliancesExample loads the README's DARKTRACE_APPLIANCES_FILE example with the
// real loader, after creating the files it names.
func TestREADMEAppliancesExample(t *testing.T) {
	readme := read(t, "README.md")
	i := strings.Index(readme, "**Several appliances in one process.**")
	if i < 0 {
		t.Fatal("README.md lacks the appliances file example")
	}
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(readme[i:])
	if block == nil {
		t.Fatal("no yaml block after the appliances paragraph")
	}
	dir := t.TempDir()
	example := block[1]
	for _, m := range regexp.MustCompile(`(?m)(?:_file|ca_file): (\S+)$`).FindAllStringSubmatch(example, -1) {
		path := m[1]
		local := filepath.Join(dir, filepath.Base(path))
		if err := os.WriteFile(local, []byte("x0123\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if filepath.IsAbs(path) {
			example = strings.ReplaceAll(example, path, local)
		}
	}
	file := filepath.Join(dir, "appliances.yaml")
	if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DARKTRACE_APPLIANCES_FILE": file}
	cfg, err := config.LoadFor(config.ModeRun, func(k string) string { return env[k] }, []string{"DARKTRACE_APPLIANCES_FILE=" + file})
	if err != nil {
		t.Fatalf("the README example does not load:\n%v", err)
	}
	apps, err := cfg.Appliances()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"london", "nyc"}) {
		t.Errorf("appliances %q, want london and nyc", names)
	}
}
