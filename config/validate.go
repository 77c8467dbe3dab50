package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The allowed values of the enumerated variables, in the order error messages list them.
var (
	Sources     = []string{"modelbreaches", "antigena", "aianalyst"}
	Formats     = []string{"cef", "leef", "json", "darktrace-json"}
	Transports  = []string{"udp", "tcp", "tls", "relp", "stdout", "file"}
	Headers     = []string{"rfc5424", "rfc3164", "none"}
	Framings    = []string{"lf", "octet-counting"}
	LEEFVersion = []string{"2.0", "1.0"}
	LogLevels   = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats  = []string{"json", "console"}
)

// Facilities maps the syslog facility names SIEM_FACILITY accepts to their codes (RFC 5424 §6.2.1).
var Facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// facilityNames lists Facilities in code order, for error messages.
func facilityNames() []string {
	names := make([]string, 0, len(Facilities))
	for n := range Facilities {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return Facilities[a] - Facilities[b] })
	return names
}

// Limits checked by Validate.
const (
	MinMessageBytes    = 480     // RFC 5424 §6.1: every receiver must accept 480 octets
	MaxMessageBytes    = 1 << 20 // far above any receiver's limit; catches a unit mistake
	MaxUDPMessageBytes = 65507   // the largest IPv4 UDP payload; sendto fails above it
	MaxOverlap         = 24 * time.Hour
	// MinOverlap: breaches are created seconds after their activity and reach the API later
	// still; a shorter overlap loses the ones created just before a window's end.
	MinOverlap         = time.Minute
	MaxRefreshHorizon  = 7 * 24 * time.Hour
	MinRefreshInterval = time.Minute
	MaxUDPRate         = 1_000_000 // above what one socket sends; catches a unit mistake
	MaxRELPWindow      = 65536     // sink.MaxRELPWindow
)

// Validate checks c for mode and returns every problem at once as *Error, or nil. It does no
// network I/O; it does look at the files named by *_FILE variables (existence and
// readability), because a missing CA or key file is a configuration mistake best reported at
// start-up.
func (c *Config) Validate(mode Mode) error {
	var p problems
	c.validateAppliance(mode, &p)
	c.validatePoll(&p)
	c.validateFilter(&p)
	c.validateSIEM(mode, &p)
	c.validateProcess(mode, &p)
	c.validateScale(&p)
	return p.err()
}

func (c *Config) validateAppliance(mode Mode, p *problems) {
	if c.DarktraceAppliancesFile != "" {
		conflict := false
		for _, name := range []string{"DARKTRACE_URL", "DARKTRACE_PUBLIC_TOKEN", "DARKTRACE_PRIVATE_TOKEN", "DARKTRACE_NAME", "DARKTRACE_CA_FILE", "DARKTRACE_SERVER_NAME"} {
			if c.stringVar(name) != "" {
				conflict = true
				p.add(name, "cannot be combined with DARKTRACE_APPLIANCES_FILE; set it per appliance in %s", c.DarktraceAppliancesFile)
			}
		}
		if !conflict {
			if _, err := c.Appliances(); err != nil {
				*p = append(*p, unjoin(err)...)
			}
		}
	} else {
		if c.DarktraceURL == "" {
			if mode.needsAppliance() {
				p.add("DARKTRACE_URL", "required for %s (e.g. https://appliance.example), or set DARKTRACE_APPLIANCES_FILE", mode)
			}
		} else if err := checkURL(c.DarktraceURL, c.DarktraceAllowHTTP, "DARKTRACE_ALLOW_HTTP=true"); err != nil {
			p.add("DARKTRACE_URL", "%v", err)
		}
		if mode.needsAppliance() {
			if c.DarktracePublicToken == "" {
				p.add("DARKTRACE_PUBLIC_TOKEN", "required for %s (or DARKTRACE_PUBLIC_TOKEN_FILE)", mode)
			}
			if c.DarktracePrivateToken == "" {
				p.add("DARKTRACE_PRIVATE_TOKEN", "required for %s (or DARKTRACE_PRIVATE_TOKEN_FILE)", mode)
			}
		}
		if c.DarktraceName != "" && !safeName.MatchString(c.DarktraceName) {
			p.add("DARKTRACE_NAME", "%q is not a safe name: %s", c.DarktraceName, safeNameRule)
		}
		checkFile(p, "DARKTRACE_CA_FILE", c.DarktraceCAFile)
	}
	if c.DarktraceTimeout <= 0 {
		p.add("DARKTRACE_TIMEOUT", "%s must be positive (e.g. 60s)", c.DarktraceTimeout)
	}
}

// stringVar returns the raw string of a Darktrace variable that has no meaning next to an
// appliances file, so the error can name it.
func (c *Config) stringVar(name string) string {
	switch name {
	case "DARKTRACE_URL":
		return c.DarktraceURL
	case "DARKTRACE_PUBLIC_TOKEN":
		return c.DarktracePublicToken.Value()
	case "DARKTRACE_PRIVATE_TOKEN":
		return c.DarktracePrivateToken.Value()
	case "DARKTRACE_NAME":
		return c.DarktraceName
	case "DARKTRACE_CA_FILE":
		return c.DarktraceCAFile
	case "DARKTRACE_SERVER_NAME":
		return c.DarktraceServerName
	}
	return ""
}

func (c *Config) validatePoll(p *problems) {
	if len(c.PollSources) == 0 {
		p.add("POLL_SOURCES", "empty; set one or more of %s", strings.Join(Sources, ", "))
	}
	seen := map[string]bool{}
	for _, s := range c.PollSources {
		if !slices.Contains(Sources, s) {
			p.add("POLL_SOURCES", "%q is not one of %s", s, strings.Join(Sources, ", "))
		} else if seen[s] {
			p.add("POLL_SOURCES", "%q is listed twice", s)
		}
		seen[s] = true
	}
	if c.PollInterval < time.Second {
		p.add("POLL_INTERVAL", "%s is too short; use at least 1s (e.g. 60s)", c.PollInterval)
	}
	if _, err := c.StartTime(time.Now()); err != nil {
		p.add("POLL_START", "%v", err)
	}
	if c.PollOverlap < MinOverlap || c.PollOverlap > MaxOverlap {
		// The dedupe set holds every id seen inside the overlap, so it must stay bounded.
		p.add("POLL_OVERLAP", "%s is outside %s–%s", c.PollOverlap, shortDuration(MinOverlap), shortDuration(MaxOverlap))
	}
	if c.PollAIAnalystRefreshHorizon < 0 || c.PollAIAnalystRefreshHorizon > MaxRefreshHorizon {
		// Every event inside the horizon is remembered: bounded, like the overlap.
		p.add("POLL_AIANALYST_REFRESH_HORIZON", "%s is outside 0 (off)–%s", c.PollAIAnalystRefreshHorizon, shortDuration(MaxRefreshHorizon))
	}
	if c.PollAIAnalystRefreshInterval < MinRefreshInterval {
		p.add("POLL_AIANALYST_REFRESH_INTERVAL", "%s is too short; use at least %s (e.g. 10m)", c.PollAIAnalystRefreshInterval, shortDuration(MinRefreshInterval))
	}
}

// StartTime resolves POLL_START against now: where the very first poll begins.
func (c *Config) StartTime(now time.Time) (time.Time, error) {
	t, err := ParseTime(c.PollStart, now)
	if err != nil {
		return time.Time{}, err
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%q is in the future", c.PollStart)
	}
	return t, nil
}

func (c *Config) validateFilter(p *problems) {
	if math.IsNaN(c.FilterMinScore) || c.FilterMinScore < 0 || c.FilterMinScore > 1 {
		p.add("FILTER_MIN_SCORE", "%s is outside 0–1", strconv.FormatFloat(c.FilterMinScore, 'g', -1, 64))
	}
	for _, r := range []struct{ name, expr string }{{"FILTER_MODELS", c.FilterModels}, {"FILTER_TAGS", c.FilterTags}} {
		if _, err := regexp.Compile(r.expr); err != nil {
			p.add(r.name, "invalid regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
}

// ModelsRegexp returns FILTER_MODELS compiled, or nil when it is empty (no filter).
func (c *Config) ModelsRegexp() *regexp.Regexp { return compileOrNil(c.FilterModels) }

// TagsRegexp returns FILTER_TAGS compiled, or nil when it is empty (no filter).
func (c *Config) TagsRegexp() *regexp.Regexp { return compileOrNil(c.FilterTags) }

// compileOrNil compiles a validated expression; Validate has already reported a bad one.
func compileOrNil(expr string) *regexp.Regexp {
	if expr == "" {
		return nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	return re
}

func (c *Config) validateSIEM(mode Mode, p *problems) {
	if c.SIEMSinksFile != "" {
		c.validateSinksFile(mode, p)
		return
	}
	s := c.EnvSink()
	s.validate(mode, p.add, envKey)
}

// envKey names a sink setting as its SIEM_* variable: "tls_ca_file" is SIEM_TLS_CA_FILE.
func envKey(key string) string { return "SIEM_" + strings.ToUpper(key) }

// validate checks one sink's settings for mode. add reports a problem about a setting named
// by name(key) (SIEM_FORMAT for the environment, format in SIEM_SINKS_FILE), so both report
// the same rules in their own words.
func (s *Sink) validate(mode Mode, add func(name, format string, args ...any), name func(string) string) {
	one := func(key, value string, allowed []string) bool {
		if slices.Contains(allowed, value) {
			return true
		}
		add(name(key), "%q is not one of %s", value, strings.Join(allowed, ", "))
		return false
	}
	one("format", s.Format, Formats)
	one("leef_version", s.LEEFVersion, LEEFVersion)
	if s.Header != "" {
		one("header", s.Header, Headers)
	}
	if s.Framing != "" {
		one("framing", s.Framing, Framings)
	}
	if _, ok := Facilities[s.Facility]; !ok {
		add(name("facility"), "%q is not a syslog facility (%s)", s.Facility, strings.Join(facilityNames(), ", "))
	}
	if s.AppName != "" && !appName.MatchString(s.AppName) {
		add(name("app_name"), "%q is not a syslog APP-NAME: use 1–48 printable ASCII characters, no spaces", s.AppName)
	}
	if one("transport", s.Transport, Transports) {
		switch s.Transport {
		case "udp", "tcp", "tls", "relp":
			if s.Address == "" {
				if mode != ModeFormat {
					add(name("address"), "required for transport %s (host:port)", s.Transport)
				}
			} else if err := checkHostPort(s.Address, true); err != nil {
				add(name("address"), "%v", err)
			}
		case "file":
			if s.Address == "" && mode != ModeFormat {
				add(name("address"), "required for transport file (the path to append to)")
			}
		case "stdout":
			if s.Address != "" {
				add(name("address"), "%q is set but %s is stdout; set %s to udp, tcp, tls, relp or file", s.Address, name("transport"), name("transport"))
			}
		}
		s.validateRELP(add, name)
		if s.Transport != "tls" && !(s.Transport == "relp" && s.RELPTLS) {
			for _, v := range []struct {
				key string
				set bool
			}{
				{"tls_ca_file", s.TLSCAFile != ""},
				{"tls_cert_file", s.TLSCertFile != ""},
				{"tls_key_file", s.TLSKeyFile != ""},
				{"tls_server_name", s.TLSServerName != ""},
				{"tls_insecure_skip_verify", s.TLSInsecureSkipVerify},
			} {
				switch {
				case v.set && s.Transport == "relp":
					add(name(v.key), "only applies to %s=relp with %s=true", name("transport"), name("relp_tls"))
				case v.set:
					add(name(v.key), "only applies to %s=tls (it is %s)", name("transport"), s.Transport)
				}
			}
		}
		if s.Transport == "udp" && s.MaxMessageBytes > MaxUDPMessageBytes {
			add(name("max_message_bytes"), "%d is more than a UDP datagram holds (%d)", s.MaxMessageBytes, MaxUDPMessageBytes)
		}
	}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		add(name("tls_cert_file"), "%s and %s must be set together", name("tls_cert_file"), name("tls_key_file"))
	}
	var fp problems
	checkFile(&fp, name("tls_ca_file"), s.TLSCAFile)
	checkFile(&fp, name("tls_cert_file"), s.TLSCertFile)
	checkFile(&fp, name("tls_key_file"), s.TLSKeyFile)
	for _, e := range fp {
		var ve *VarError
		if errors.As(e, &ve) {
			add(ve.Var, "%s", ve.Msg)
		}
	}
	if s.MaxMessageBytes < MinMessageBytes || s.MaxMessageBytes > MaxMessageBytes {
		add(name("max_message_bytes"), "%d is outside %d–%d", s.MaxMessageBytes, MinMessageBytes, MaxMessageBytes)
	}
	if s.Timeout <= 0 {
		add(name("timeout"), "%s must be positive (e.g. 10s)", s.Timeout)
	}
	if s.UDPRate < 0 || s.UDPRate > MaxUDPRate {
		add(name("udp_rate"), "%d is outside 0–%d (datagrams per second; 0 = unlimited)", s.UDPRate, MaxUDPRate)
	}
}

// validateRELP checks the relp settings, and the settings relp has no use for.
func (s *Sink) validateRELP(add func(name, format string, args ...any), name func(string) string) {
	if s.RELPWindow < 1 || s.RELPWindow > MaxRELPWindow {
		add(name("relp_window"), "%d is outside 1–%d", s.RELPWindow, MaxRELPWindow)
	}
	if s.Transport != "relp" {
		if s.RELPTLS {
			add(name("relp_tls"), "only applies to %s=relp (it is %s); for syslog over TLS set %s=tls", name("transport"), s.Transport, name("transport"))
		}
		return
	}
	if s.Framing != "" {
		add(name("framing"), "does not apply to %s=relp: RELP frames every message itself", name("transport"))
	}
}

// Framing returns SIEM_FRAMING, or its default for the transport: octet-counting for tls
// (RFC 5425 allows nothing else), lf otherwise.
func (c *Config) Framing() string {
	s := c.EnvSink()
	return s.FramingOrDefault()
}

// Facility returns the numeric code of SIEM_FACILITY (local4 = 20 when it is unknown, which
// Validate has already reported).
func (c *Config) Facility() int {
	if f, ok := Facilities[c.SIEMFacility]; ok {
		return f
	}
	return Facilities["local4"]
}

func (c *Config) validateProcess(mode Mode, p *problems) {
	if c.StateDir == "" && (mode == ModeRun || mode == ModeBackfill) {
		p.add("STATE_DIR", "required for %s (a writable directory for checkpoints)", mode)
	}
	if c.ShutdownTimeout <= 0 {
		p.add("SHUTDOWN_TIMEOUT", "%s must be positive (e.g. 10s)", c.ShutdownTimeout)
	}
	oneOf(p, "LOG_LEVEL", c.LogLevel, LogLevels)
	if c.LogFormat != "" {
		oneOf(p, "LOG_FORMAT", c.LogFormat, LogFormats)
	}
	if c.HTTPAddress != "" {
		if err := checkHostPort(c.HTTPAddress, false); err != nil {
			p.add("HTTP_ADDRESS", "%v", err)
		}
	}
}

// oneOf reports value if it is not in allowed and says whether it was.
func oneOf(p *problems, name, value string, allowed []string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	p.add(name, "%q is not one of %s", value, strings.Join(allowed, ", "))
	return false
}

// checkHostPort accepts host:port with a numeric port 1–65535; the host may be empty only for
// a listen address (":9090").
func checkHostPort(s string, needHost bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if needHost && host == "" {
		return fmt.Errorf("%q has no host (expected host:port)", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has an invalid port (expected 1–65535)", s)
	}
	return nil
}

// addUnreadable reports that the file path named by name cannot be read, with the cause
// only (the path is already in the message).
func addUnreadable(p *problems, name, path string, err error) {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	p.add(name, "cannot read %s: %v", path, err)
}

// checkFile reports a named file that cannot be opened. It reads nothing, so a key file's
// content cannot end up in a message.
func checkFile(p *problems, name, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		addUnreadable(p, name, path, err)
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		p.add(name, "%s is a directory, not a file", path)
	}
}

// shortDuration prints 24h rather than 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// unjoin flattens an *Error into its problems.
func unjoin(err error) []error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Problems
	}
	return []error{err}
}
