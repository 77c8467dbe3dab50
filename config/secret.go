package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
)

// Secret holds a credential. It never prints: String, GoString, %v and JSON all give "<secret>",
// so a token cannot leak through a log line or an error that formats the config.
type Secret string

const redacted = "<secret>"

// Value returns the credential itself, for the one place that needs it (the request signer).
func (s Secret) Value() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return s.String() }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// secretVars are the variables with a *_FILE variant.
func secretVars() []field {
	var out []field
	for _, f := range fields() {
		if f.isSecret {
			out = append(out, f)
		}
	}
	return out
}

// resolveSecrets sets each Secret from X or X_FILE (readSecret).
func (c *Config) resolveSecrets(getenv func(string) string) problems {
	var probs problems
	v := reflect.ValueOf(c).Elem()
	for _, f := range secretVars() {
		s, bad, err := readSecret(getenv, f.name, f.spaced)
		if err != nil {
			probs.add(bad, "%v", err)
			continue
		}
		v.Field(f.index).SetString(s)
	}
	return probs
}

// readSecret returns the credential in the variable name or in the file named by name_FILE
// (mutually exclusive; neither is "", nil). A file's trailing newline is dropped because
// `echo token > file` and Docker/Kubernetes secrets usually end with one. Unless spaced, a
// value with whitespace or control characters is refused: it would break or forge a header.
// On error, bad is the variable at fault; errors name it and the path, never the content.
func readSecret(getenv func(string) string, name string, spaced bool) (value, bad string, err error) {
	direct, path := getenv(name), getenv(name+"_FILE")
	switch {
	case direct != "" && path != "":
		return "", name, fmt.Errorf("%s and %s_FILE are mutually exclusive; set only one", name, name)
	case path != "":
		s, err := readSecretFile(path)
		if err != nil {
			return "", name + "_FILE", err
		}
		direct = s
	}
	if direct != "" && !spaced && !tokenLike(direct) {
		return "", name, errors.New("contains whitespace or control characters (value not shown)")
	}
	return direct, "", nil
}

// SecretFromEnv reads a credential from name or name_FILE by the rule run reads its own with,
// for a command that takes one outside the configuration (simulate), so both accept the same
// files and see the same token. The error starts with the variable at fault.
func SecretFromEnv(getenv func(string) string, name string) (string, error) {
	s, bad, err := readSecret(getenv, name, false)
	if err != nil {
		return "", fmt.Errorf("%s: %w", bad, err)
	}
	return s, nil
}

// readSecretFile reads a token file. The error mentions the path and the cause only.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("cannot read %s: %v", path, pe.Err)
		}
		return "", fmt.Errorf("cannot read %s", path)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// tokenLike rejects values that would break or forge an HTTP header line.
func tokenLike(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
