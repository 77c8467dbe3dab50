package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Mode is the command a configuration is validated for: the commands need different variables
// (run needs an appliance, demo needs none).
type Mode int

// The modes Validate knows. ModeAny checks every value that is set but requires nothing.
const (
	ModeAny      Mode = iota // value syntax and consistency only; no variable is required
	ModeRun                  // dtforward run: appliance and tokens required
	ModeBackfill             // dtforward backfill: appliance and tokens required
	ModeCheck                // dtforward check: appliance and tokens required
	ModeDemo                 // dtforward demo: the built-in simulator is the appliance
)

var modeNames = map[Mode]string{
	ModeAny: "any", ModeRun: "run", ModeBackfill: "backfill", ModeCheck: "check",
	ModeDemo: "demo",
}

// String returns the command name of m.
func (m Mode) String() string {
	if n, ok := modeNames[m]; ok {
		return n
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// needsAppliance reports whether m talks to a real appliance.
func (m Mode) needsAppliance() bool { return m == ModeRun || m == ModeBackfill || m == ModeCheck }

// VarError is one configuration problem, tied to the variable (or variables) it is about.
type VarError struct {
	Var string // the variable's name, e.g. SIEM_FRAMING
	Msg string // what is wrong and what is expected; never contains a secret
}

// Error returns "VAR: message", or just the message when it already starts with the variable
// ("SIEM_TLS_CERT_FILE and SIEM_TLS_KEY_FILE must be set together").
func (e *VarError) Error() string {
	if strings.HasPrefix(e.Msg, e.Var+" ") {
		return e.Msg
	}
	return e.Var + ": " + e.Msg
}

// Error is every problem found in a configuration. The CLI prints one line per problem and
// exits with status 2.
type Error struct {
	Problems []error
}

// Error returns the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As access to each problem.
func (e *Error) Unwrap() []error { return e.Problems }

// problems collects VarErrors in the order they are found.
type problems []error

func (p *problems) add(name, format string, args ...any) {
	*p = append(*p, &VarError{Var: name, Msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

// LoadFor reads the configuration from the environment with no prefix, resolves the *_FILE
// secret variants, applies defaults and rejects unknown variables under dtforward's prefixes,
// then checks every value for mode (ModeAny: values only; the commands' modes also report the
// variables they need), so a command reports missing and malformed variables in one go.
//
// getenv returns a variable's value (os.Getenv in production; an empty value counts as unset,
// so the default applies). environ lists "NAME=value" pairs (os.Environ()) and is used to find
// unknown variables; when getenv is nil, values are taken from environ. Any problem is returned
// as *Error, with every problem at once.
func LoadFor(mode Mode, getenv func(string) string, environ []string) (*Config, error) {
	return load(mode, getenv, environ, nil)
}

// FromProcess loads the real process environment for mode. Values are decoded by
// github.com/kelseyhightower/envconfig (envconfig.Process), the library the project's users
// chose; before it runs, the same pass as LoadFor checks every variable, because envconfig
// stops at the first bad value and dtforward reports every problem at once. Variables that are
// set but empty are unset first: envconfig would try to parse "" (compose files turn an unset
// ${VAR} into an empty one), while dtforward documents an empty variable as unset.
func FromProcess(mode Mode) (*Config, error) {
	return load(mode, os.Getenv, os.Environ(), func(c *Config) error {
		for _, f := range fields() {
			if v, ok := os.LookupEnv(f.name); ok && v == "" {
				os.Unsetenv(f.name)
			}
		}
		if err := envconfig.Process("", c); err != nil {
			return err
		}
		// envconfig splits lists on "," without trimming; "modelbreaches, antigena" is meant.
		for i, s := range c.PollSources {
			c.PollSources[i] = strings.TrimSpace(s)
		}
		return nil
	})
}

// load is LoadFor with an optional process decoder. When decodeProcess is set it replaces the
// reflective decoder's values once that decoder found every syntax problem (it must find none
// for decodeProcess to run); secrets and validation are shared.
func load(mode Mode, getenv func(string) string, environ []string, decodeProcess func(*Config) error) (*Config, error) {
	if getenv == nil {
		m := make(map[string]string, len(environ))
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		getenv = func(k string) string { return m[k] }
	}
	c := &Config{}
	var probs problems
	probs = append(probs, unknownVars(environ, getenv)...)
	probs = append(probs, c.decode(getenv)...)
	if decodeProcess != nil && len(probs) == 0 {
		*c = Config{}
		if err := decodeProcess(c); err != nil {
			// The reflective pass accepts exactly what envconfig accepts (TestLoadMatchesEnvconfig),
			// so this is only reached if the two ever drift apart.
			probs = append(probs, fmt.Errorf("configuration: %w", err))
		}
	}
	probs = append(probs, c.resolveSecrets(getenv)...)
	probs = append(probs, sinksFileConflicts(c, getenv)...)
	// A variable that did not parse keeps its default (or stays empty), so Validate may
	// complain about it again ("required"); one problem per variable is clearer.
	reported := map[string]bool{}
	for _, e := range probs {
		var ve *VarError
		if errors.As(e, &ve) {
			reported[strings.TrimSuffix(ve.Var, "_FILE")] = true
		}
	}
	if err := c.Validate(mode); err != nil {
		for _, e := range unjoin(err) {
			var ve *VarError
			if errors.As(e, &ve) && reported[ve.Var] {
				continue
			}
			probs = append(probs, e)
		}
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// field is one struct field and its tags.
type field struct {
	index    int
	name     string // environment variable
	def      string
	desc     string
	isSecret bool
	// spaced: a secret whose own parser checks it, so spaces are allowed (a header list:
	// "authorization=Bearer abc, x-tenant=t1"); tag secret:"spaced".
	spaced bool
}

// fields lists Config's variables in declaration order. It reads the same `envconfig` and
// `default` tags as github.com/kelseyhightower/envconfig (TestLoadMatchesEnvconfig holds the two
// to the same result). The reflective decoder checks every variable at once and serves
// injected environments (tests, in-process commands); for the real process environment
// FromProcess hands the decoding to envconfig itself.
func fields() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		if name == "" || f.Tag.Get("ignored") == "true" {
			continue
		}
		out = append(out, field{
			index: i, name: name, def: f.Tag.Get("default"), desc: f.Tag.Get("desc"),
			isSecret: f.Type == reflect.TypeFor[Secret](), spaced: f.Tag.Get("secret") == "spaced",
		})
	}
	return out
}

var durationType = reflect.TypeFor[time.Duration]()

// decode fills c from getenv and the defaults. A value that does not parse leaves the default
// in place, so Validate does not report the same variable a second time.
func (c *Config) decode(getenv func(string) string) problems {
	var probs problems
	v := reflect.ValueOf(c).Elem()
	for _, f := range fields() {
		fv := v.Field(f.index)
		if f.def != "" {
			if err := setField(fv, f.def); err != nil {
				panic(fmt.Sprintf("config: bad default for %s: %v", f.name, err)) // a programming error
			}
		}
		raw := getenv(f.name)
		if raw == "" || f.isSecret { // secrets are resolved with their _FILE variant
			continue
		}
		if err := setField(fv, raw); err != nil {
			probs.add(f.name, "%q is not %s", raw, typeHint(fv.Type()))
		}
	}
	return probs
}

// setField parses s into fv the way envconfig does for the kinds Config uses; strings in
// lists are trimmed so that "modelbreaches, antigena" works.
func setField(fv reflect.Value, s string) error {
	switch {
	case fv.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
		if err != nil {
			return err
		}
		fv.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return err
		}
		fv.SetFloat(x)
	case reflect.Slice:
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		fv.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported kind %s", fv.Kind())
	}
	return nil
}

// typeHint completes `"x" is not …` for a field's type.
func typeHint(t reflect.Type) string {
	if t == durationType {
		return "a duration (e.g. 60s, 5m)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	}
	return "valid"
}

// prefixes are dtforward's variable namespaces; exactNames are its variables outside them.
var (
	prefixes   = []string{"DARKTRACE_", "POLL_", "FILTER_", "SIEM_", "SHARD_"}
	exactNames = []string{"STATE_DIR", "LOG_LEVEL", "LOG_FORMAT", "HTTP_ADDRESS", "SHUTDOWN_TIMEOUT"}
)

// kubeServiceLink matches the variables Kubernetes (enableServiceLinks, on by default) and
// Docker links inject for a service named e.g. "siem" or "darktrace": SIEM_SERVICE_HOST,
// SIEM_PORT_514_TCP_ADDR, ... They share our prefixes but are not ours to reject.
var kubeServiceLink = regexp.MustCompile(`^[A-Z0-9_]+_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)$`)

// serviceLinkPort matches the value of Kubernetes' NAME_PORT variable (tcp://10.0.0.11:514):
// only with such a value is SIEM_PORT a service link rather than a mistaken setting.
var serviceLinkPort = regexp.MustCompile(`^(tcp|udp|sctp)://`)

// hints are guesses people make that no edit distance finds.
var hints = map[string]string{ //nolint:gosec // G101: variable names, not credentials
	"SIEM_HOST":                "SIEM_ADDRESS",
	"SIEM_PORT":                "SIEM_ADDRESS",
	"SIEM_PROTOCOL":            "SIEM_TRANSPORT",
	"DARKTRACE_HOST":           "DARKTRACE_URL",
	"DARKTRACE_TOKEN":          "DARKTRACE_PUBLIC_TOKEN",
	"DARKTRACE_SECRET":         "DARKTRACE_PRIVATE_TOKEN",
	"DARKTRACE_VERIFY_TLS":     "DARKTRACE_INSECURE_SKIP_VERIFY",
	"DARKTRACE_VERIFY_SSL":     "DARKTRACE_INSECURE_SKIP_VERIFY",
	"DARKTRACE_SKIP_VERIFY":    "DARKTRACE_INSECURE_SKIP_VERIFY",
	"SIEM_TLS_SKIP_VERIFY":     "SIEM_TLS_INSECURE_SKIP_VERIFY",
	"POLL_SOURCE":              "POLL_SOURCES",
	"FILTER_MODEL":             "FILTER_MODELS",
	"FILTER_TAG":               "FILTER_TAGS",
	"DARKTRACE_APPLIANCE_FILE": "DARKTRACE_APPLIANCES_FILE",
	"SIEM_SINK_FILE":           "SIEM_SINKS_FILE",
}

// knownNames is every variable dtforward reads.
func knownNames() []string {
	var names []string
	for _, f := range fields() {
		names = append(names, f.name)
		if f.isSecret {
			names = append(names, f.name+"_FILE")
		}
	}
	return names
}

// unknownVars reports variables under our prefixes that dtforward does not read, which are
// almost always typos that would otherwise be silently ignored.
func unknownVars(environ []string, getenv func(string) string) problems {
	known := map[string]bool{}
	names := knownNames()
	for _, n := range names {
		known[n] = true
	}
	var probs problems
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if known[name] || seen[name] || !ours(name) {
			continue
		}
		seen[name] = true
		if kubeServiceLink.MatchString(name) {
			continue
		}
		if strings.HasSuffix(name, "_PORT") && serviceLinkPort.MatchString(getenv(name)) {
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && known[base] {
			probs.add(name, "unknown variable; only the tokens have a _FILE variant: set %s itself", base)
		} else if s := hints[name]; s != "" {
			probs.add(name, "unknown variable; did you mean %s?", s)
		} else if s := suggest(name, names); s != "" {
			probs.add(name, "unknown variable; did you mean %s?", s)
		} else {
			probs.add(name, "unknown variable (see the configuration reference in README.md)")
		}
	}
	return probs
}

func ours(name string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, n := range exactNames {
		if name == n {
			return true
		}
	}
	return false
}

// suggest returns the known name closest to name, if it is close enough to be a typo.
func suggest(name string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := levenshtein(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= max(2, len(name)/5) {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
