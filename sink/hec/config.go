package hec

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
)

// Config configures the sink. Zero values mean the documented defaults.
type Config struct {
	URL   string // base URL, e.g. https://splunk.example:8088
	Token string
	// Ack turns indexer acknowledgement on: Send returns nil only when /services/collector/ack
	// confirmed every request of the batch. Off, HEC's 200 is all there is.
	Ack         bool
	AckTimeout  time.Duration     // how long to wait for acknowledgements before sending again
	Index       string            // "" = the token's default index
	Format      string            // the formatter's name: cef and leef lines go as strings
	Sourcetypes map[string]string // overrides by alert kind (ParseSourcetypes)
	TLS         tlsconfig.Options
	Timeout     time.Duration // per HTTP request
	// MaxBatchBytes bounds one request's uncompressed body; DefaultMaxBatchBytes when 0.
	MaxBatchBytes int
	// StateDir is the sink's state directory, where its channel is kept; "" derives the
	// channel from Name and URL instead.
	StateDir string
	Name     string // the sink's label, for the derived channel
	// Setting names a setting for error messages (SIEM_HEC_TOKEN, or hec_token of a sink in
	// SIEM_SINKS_FILE); nil means the SIEM_* names.
	Setting func(key string) string
	Logger  *zerolog.Logger
	// PollInterval is the first wait before asking for acknowledgements; it doubles up to 1 s,
	// so a quick indexer is asked a few times and a slow one about once a second. 0 means 20 ms.
	PollInterval time.Duration
	// Hooks.Sent is called after each request HEC answered, with its events (0 for an
	// acknowledgement query) and its body's bytes as sent (gzip). The other hooks are not called.
	Hooks sink.Hooks
}

// SettingError is one problem of a Config, naming the setting (Config.Setting's name).
type SettingError = sink.SettingError

// Validate checks c the way New does, without opening anything. It returns every problem as
// a *SettingError, joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &SettingError{Setting: c.setting(key), Problem: fmt.Sprintf(format, args...)})
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		add("address", "required for transport hec (the HEC base URL, e.g. https://splunk.example:8088)")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		add("address", "%q is not an http(s) URL (e.g. https://splunk.example:8088)", c.URL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		add("address", "give the HEC base URL only, without user, query or fragment")
	}
	if c.Token == "" {
		add("hec_token", "required for transport hec (or %s)", c.setting("hec_token_file"))
	} else if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("hec_token", "contains whitespace or control characters (value not shown)")
	}
	if err := CheckIndex(c.Index); err != nil {
		add("hec_index", "%v", err)
	}
	if c.AckTimeout < 0 {
		add("hec_ack_timeout", "%s must be positive", c.AckTimeout)
	}
	for _, p := range c.TLS.Check() { // the files the client will load, for the same reasons
		add("tls_"+p.Option, "%s", p.Msg)
	}
	if c.Timeout < 0 {
		add("timeout", "%s must be positive", c.Timeout)
	}
	return errors.Join(errs...)
}

func (c *Config) setting(key string) string {
	if c.Setting != nil {
		return c.Setting(key)
	}
	return "SIEM_" + strings.ToUpper(key)
}
