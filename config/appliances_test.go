package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestAppliancesFromURL(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantName string
		wantURL  string
	}{
		{"name from host", base(), "dt.example", "https://dt.example"},
		{"port kept in name", with("DARKTRACE_URL", "https://127.0.0.1:8443/"), "127.0.0.1_8443", "https://127.0.0.1:8443"},
		{"ipv6 host", with("DARKTRACE_URL", "https://[::1]:8443"), "__1_8443", "https://[::1]:8443"},
		{"explicit name", with("DARKTRACE_NAME", "London-DC.1"), "London-DC.1", "https://dt.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadFor(ModeRun, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			apps, err := c.Appliances()
			if err != nil {
				t.Fatal(err)
			}
			if len(apps) != 1 || apps[0].Name != tc.wantName || apps[0].URL != tc.wantURL {
				t.Fatalf("Appliances() = %+v, want one named %q at %q", apps, tc.wantName, tc.wantURL)
			}
			if apps[0].PublicToken.Value() != "pub" || apps[0].PrivateToken.Value() != "priv" {
				t.Errorf("tokens not carried over")
			}
		})
	}
	t.Run("no URL", func(t *testing.T) {
		c, err := loadFor(ModeDemo, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Appliances()
		if got := problemsOf(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "DARKTRACE_URL: required") {
			t.Errorf("problems %q, want DARKTRACE_URL required", got)
		}
	})
}

func TestAppliancesFile(t *testing.T) {
	dir := t.TempDir()
	mustWrite := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustWrite("dc2.public", "pub2\n")
	mustWrite("dc2.private", "priv2\n")
	ca := mustWrite("ca.pem", testCAPEM(t))

	yamlFile := mustWrite("appliances.yaml", `
- name: dc1
  url: https://dt1.example/
  public_token: pub1
  private_token: priv1
  ca_file: ca.pem
  labels: {site: london}
- url: https://dt2.example:8443
  public_token_file: dc2.public
  private_token_file: `+filepath.Join(dir, "dc2.private")+`
  server_name: dt2.internal
`)
	jsonFile := mustWrite("appliances.json", "[\n\t{\"name\": \"dc1\", \"url\": \"https://dt1.example/\", \"public_token\": \"pub1\", \"private_token\": \"priv1\",\n\t \"ca_file\": \"ca.pem\", \"labels\": {\"site\": \"london\"}},\n\t{\"url\": \"https://dt2.example:8443\", \"public_token_file\": \"dc2.public\", \"private_token_file\": \"dc2.private\", \"server_name\": \"dt2.internal\"}\n]\n")
	want := []Appliance{
		{Name: "dc1", URL: "https://dt1.example", PublicToken: "pub1", PrivateToken: "priv1", CAFile: ca, Labels: map[string]string{"site": "london"}},
		{Name: "dt2.example_8443", URL: "https://dt2.example:8443", PublicToken: "pub2", PrivateToken: "priv2", ServerName: "dt2.internal"},
	}
	for _, file := range []string{yamlFile, jsonFile} {
		t.Run(filepath.Ext(file), func(t *testing.T) {
			c, err := loadFor(ModeRun, map[string]string{"DARKTRACE_APPLIANCES_FILE": file})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Appliances()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Appliances():\n got %#v\nwant %#v", got, want)
				for i := range got {
					t.Logf("tokens %d: %q %q", i, got[i].PublicToken.Value(), got[i].PrivateToken.Value())
				}
			}
		})
	}

	tests := []struct {
		name    string
		content string
		want    []string // problem suffixes after "DARKTRACE_APPLIANCES_FILE: <path>: "
	}{
		{"duplicate names", `[{"name":"a","url":"https://x","public_token":"p","private_token":"q"},{"name":"a","url":"https://y","public_token":"p","private_token":"q"}]`,
			[]string{`appliance 2 ("a"): name: "a" is also used by appliance 1; names must be unique`}},
		{"duplicate default names", `[{"url":"https://x","public_token":"p","private_token":"q"},{"url":"https://x/","public_token":"p","private_token":"q"}]`,
			[]string{`appliance 2: name: "x" is also used by appliance 1; names must be unique`}},
		{"unsafe name", `[{"name":"../../etc/passwd","url":"https://x","public_token":"p","private_token":"q"}]`,
			[]string{`appliance 1 ("../../etc/passwd"): name: "../../etc/passwd" is not a safe name: ` + safeNameRule}},
		{"missing tokens and url", `[{"name":"a"}]`,
			[]string{`appliance 1 ("a"): url: required (e.g. https://appliance.example)`,
				`appliance 1 ("a"): public_token: required (or public_token_file)`,
				`appliance 1 ("a"): private_token: required (or private_token_file)`}},
		{"token and token file", `[{"url":"https://x","public_token":"p","public_token_file":"dc2.public","private_token":"q"}]`,
			[]string{`appliance 1: public_token: set public_token or public_token_file, not both`}},
		{"unreadable token file", `[{"url":"https://x","public_token":"p","private_token_file":"nope"}]`,
			[]string{`appliance 1: private_token_file: cannot read ` + filepath.Join(dir, "nope") + `: no such file or directory`}},
		{"http without allow_http", `[{"url":"http://x","public_token":"p","private_token":"q"}]`,
			[]string{`appliance 1: url: "http://x" uses http; set allow_http: true or use https`}},
		{"unknown key in YAML", "- url: https://x\n  public_token: p\n  privte_token: q\n",
			[]string{`not a YAML list of appliances: yaml: unmarshal errors: line 3: field privte_token not found in type config.applianceEntry`}},
		{"unknown key in JSON", `[{"url":"https://x","public_token":"p","privte_token":"q"}]`,
			[]string{`not a JSON list of appliances: json: unknown field "privte_token"`}},
		{"empty list", `[]`, []string{`lists no appliances`}},
		{"bad label", `[{"url":"https://x","public_token":"p","private_token":"q","labels":{"bad key":"v"}}]`,
			[]string{`appliance 1: labels: key "bad key" must be letters, digits and '_' (not starting with a digit)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := mustWrite(strings.ReplaceAll(tc.name, " ", "_")+".conf", tc.content)
			_, err := loadFor(ModeRun, map[string]string{"DARKTRACE_APPLIANCES_FILE": path})
			var want []string
			for _, w := range tc.want {
				sep := ": "
				if w == "lists no appliances" {
					sep = " "
				}
				want = append(want, "DARKTRACE_APPLIANCES_FILE: "+path+sep+w)
			}
			if got := problemsOf(t, err); !sameSet(got, want) {
				t.Errorf("problems:\n got %q\nwant %q", got, want)
			}
		})
	}
	t.Run("YAML error hides the scalar", func(t *testing.T) {
		path := mustWrite("scalar.yaml", "- url: https://x\n  public_token: [SECRETVALUE]\n  private_token: q\n")
		_, err := loadFor(ModeRun, map[string]string{"DARKTRACE_APPLIANCES_FILE": path})
		if err == nil || strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("error %v, want one that does not quote the value", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(dir, "absent.yaml")
		_, err := loadFor(ModeRun, map[string]string{"DARKTRACE_APPLIANCES_FILE": path})
		want := []string{"DARKTRACE_APPLIANCES_FILE: cannot read " + path + ": no such file or directory"}
		if got := problemsOf(t, err); !sameSet(got, want) {
			t.Errorf("problems %q, want %q", got, want)
		}
	})
}
