package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/dtforward/dtforward/darktrace"
)

// Appliance is one Darktrace appliance to poll, from DARKTRACE_URL and friends or from one
// entry of DARKTRACE_APPLIANCES_FILE.
type Appliance struct {
	Name               string // label in output, metrics and the state file name; safe for file names
	URL                string // base URL without a trailing slash, e.g. https://dt.example
	PublicToken        Secret
	PrivateToken       Secret
	CAFile             string
	ServerName         string
	InsecureSkipVerify bool
	AllowHTTP          bool
	Labels             map[string]string // extra labels from the appliances file (nil otherwise)
}

// safeName is what an appliance name may look like: it becomes part of a file name in
// STATE_DIR and a metric label, so no path separators, no dot-only names, nothing odd.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$`)

const safeNameRule = "use 1–63 letters, digits, '.', '_' or '-', starting with a letter, digit or '_'"

var yamlQuoted = regexp.MustCompile("`[^`]*`")

var labelKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Appliances returns the appliances to poll: the one described by DARKTRACE_URL,
// DARKTRACE_PUBLIC_TOKEN, ... or every entry of DARKTRACE_APPLIANCES_FILE (a JSON or YAML
// list). Names default to the URL's host (with ":" replaced by "_"), must be unique and are
// safe to use in file names. Errors are *Error, naming the variable, the file and the entry.
func (c *Config) Appliances() ([]Appliance, error) {
	if c.DarktraceAppliancesFile != "" {
		return c.appliancesFromFile(c.DarktraceAppliancesFile)
	}
	var p problems
	if c.DarktraceURL == "" {
		p.add("DARKTRACE_URL", "required (e.g. https://appliance.example), or set DARKTRACE_APPLIANCES_FILE")
		return nil, p.err()
	}
	if _, err := darktrace.CheckURL(c.DarktraceURL, c.DarktraceAllowHTTP, "DARKTRACE_ALLOW_HTTP=true"); err != nil {
		p.add("DARKTRACE_URL", "%v", err)
		return nil, p.err()
	}
	if c.DarktracePublicToken == "" {
		p.add("DARKTRACE_PUBLIC_TOKEN", "required (or DARKTRACE_PUBLIC_TOKEN_FILE)")
	}
	if c.DarktracePrivateToken == "" {
		p.add("DARKTRACE_PRIVATE_TOKEN", "required (or DARKTRACE_PRIVATE_TOKEN_FILE)")
	}
	name := c.DarktraceName
	if name == "" {
		name = defaultName(c.DarktraceURL)
	}
	if !safeName.MatchString(name) {
		p.add("DARKTRACE_NAME", "%q is not a safe name: %s", name, safeNameRule)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return []Appliance{{
		Name:               name,
		URL:                strings.TrimRight(c.DarktraceURL, "/"),
		PublicToken:        c.DarktracePublicToken,
		PrivateToken:       c.DarktracePrivateToken,
		CAFile:             c.DarktraceCAFile,
		ServerName:         c.DarktraceServerName,
		InsecureSkipVerify: c.DarktraceInsecureSkipVerify,
		AllowHTTP:          c.DarktraceAllowHTTP,
	}}, nil
}

// applianceEntry is one element of DARKTRACE_APPLIANCES_FILE.
type applianceEntry struct {
	Name               string            `json:"name" yaml:"name"`
	URL                string            `json:"url" yaml:"url"`
	PublicToken        string            `json:"public_token" yaml:"public_token"`
	PublicTokenFile    string            `json:"public_token_file" yaml:"public_token_file"`
	PrivateToken       string            `json:"private_token" yaml:"private_token"`
	PrivateTokenFile   string            `json:"private_token_file" yaml:"private_token_file"`
	CAFile             string            `json:"ca_file" yaml:"ca_file"`
	ServerName         string            `json:"server_name" yaml:"server_name"`
	InsecureSkipVerify bool              `json:"insecure_skip_verify" yaml:"insecure_skip_verify"`
	AllowHTTP          bool              `json:"allow_http" yaml:"allow_http"`
	Labels             map[string]string `json:"labels" yaml:"labels"`
}

const filesVar = "DARKTRACE_APPLIANCES_FILE"

func (c *Config) appliancesFromFile(path string) ([]Appliance, error) {
	var p problems
	entries, ok := readList[applianceEntry](&p, filesVar, path, "appliances")
	if !ok {
		return nil, p.err()
	}
	dir := filepath.Dir(path)
	seen := map[string]int{}
	out := make([]Appliance, 0, len(entries))
	for i, e := range entries {
		where := fmt.Sprintf("%s: appliance %d", path, i+1)
		if e.Name != "" {
			where += fmt.Sprintf(" (%q)", e.Name)
		}
		bad := func(format string, args ...any) {
			p.add(filesVar, "%s: %s", where, fmt.Sprintf(format, args...))
		}
		a := Appliance{
			Name: e.Name, URL: strings.TrimRight(e.URL, "/"),
			CAFile: relTo(dir, e.CAFile), ServerName: e.ServerName,
			InsecureSkipVerify: e.InsecureSkipVerify || c.DarktraceInsecureSkipVerify,
			AllowHTTP:          e.AllowHTTP || c.DarktraceAllowHTTP,
			Labels:             e.Labels,
		}
		if e.URL == "" {
			bad("url: required (e.g. https://appliance.example)")
		} else if _, err := darktrace.CheckURL(e.URL, a.AllowHTTP, "allow_http: true"); err != nil {
			bad("url: %v", err)
		} else if a.Name == "" {
			a.Name = defaultName(e.URL)
		}
		if a.Name != "" {
			if !safeName.MatchString(a.Name) {
				bad("name: %q is not a safe name: %s", a.Name, safeNameRule)
			} else if j, dup := seen[a.Name]; dup {
				bad("name: %q is also used by appliance %d; names must be unique", a.Name, j+1)
			} else {
				seen[a.Name] = i
			}
		}
		for _, t := range []struct {
			key    string
			dst    *Secret
			direct string
			file   string
		}{
			{key: "public_token", dst: &a.PublicToken, direct: e.PublicToken, file: e.PublicTokenFile},
			{key: "private_token", dst: &a.PrivateToken, direct: e.PrivateToken, file: e.PrivateTokenFile},
		} {
			if t.direct == "" && t.file == "" {
				bad("%s: required (or %s_file)", t.key, t.key)
			}
			*t.dst, _ = secretOf(t.direct, t.file, t.key, dir, func(key, format string, args ...any) {
				bad(key+": "+format, args...)
			})
			if *t.dst != "" && !tokenLike(t.dst.Value()) {
				bad("%s: contains whitespace or control characters (value not shown)", t.key)
			}
		}
		if a.CAFile != "" {
			var fp problems
			checkCA(&fp, "ca_file", a.CAFile)
			for _, e := range fp {
				bad("%v", e)
			}
		}
		for k, v := range e.Labels {
			if !labelKey.MatchString(k) {
				bad("labels: key %q must be letters, digits and '_' (not starting with a digit)", k)
			}
			if !printable(v) {
				bad("labels: value of %q contains control characters", k)
			}
		}
		out = append(out, a)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// relTo resolves a path in the appliances file relative to the file's directory, so a file
// and its token files can move together.
func relTo(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// defaultName derives an appliance name from a URL host: "dt.example" or "127.0.0.1_8443".
func defaultName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	h := strings.Trim(u.Host, "[]")
	return strings.NewReplacer(":", "_", "[", "", "]", "").Replace(h)
}

func printable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
