package config

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
