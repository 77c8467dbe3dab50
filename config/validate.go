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
	oneOf(p, "SIEM_FORMAT", c.SIEMFormat, Formats)
	oneOf(p, "SIEM_LEEF_VERSION", c.SIEMLEEFVersion, LEEFVersion)
	oneOf(p, "SIEM_HEADER", c.SIEMHeader, Headers)
	if c.SIEMFraming != "" {
		oneOf(p, "SIEM_FRAMING", c.SIEMFraming, Framings)
	}
	if _, ok := Facilities[c.SIEMFacility]; !ok {
		p.add("SIEM_FACILITY", "%q is not a syslog facility (%s)", c.SIEMFacility, strings.Join(facilityNames(), ", "))
	}
	if oneOf(p, "SIEM_TRANSPORT", c.SIEMTransport, Transports) {
		switch c.SIEMTransport {
		case "udp", "tcp", "tls", "relp":
			if c.SIEMAddress == "" {
				if mode != ModeFormat {
					p.add("SIEM_ADDRESS", "required for transport %s (host:port)", c.SIEMTransport)
				}
			} else if err := checkHostPort(c.SIEMAddress, true); err != nil {
				p.add("SIEM_ADDRESS", "%v", err)
			}
		case "file":
			if c.SIEMAddress == "" && mode != ModeFormat {
				p.add("SIEM_ADDRESS", "required for transport file (the path to append to)")
			}
		case "stdout":
			if c.SIEMAddress != "" {
				p.add("SIEM_ADDRESS", "%q is set but SIEM_TRANSPORT is stdout; set SIEM_TRANSPORT to udp, tcp, tls, relp or file", c.SIEMAddress)
			}
		}
		c.validateRELP(p)
		if c.SIEMTransport != "tls" && !(c.SIEMTransport == "relp" && c.SIEMRELPTLS) {
			for _, v := range []struct {
				name string
				set  bool
			}{
				{"SIEM_TLS_CA_FILE", c.SIEMTLSCAFile != ""},
				{"SIEM_TLS_CERT_FILE", c.SIEMTLSCertFile != ""},
				{"SIEM_TLS_KEY_FILE", c.SIEMTLSKeyFile != ""},
				{"SIEM_TLS_SERVER_NAME", c.SIEMTLSServerName != ""},
				{"SIEM_TLS_INSECURE_SKIP_VERIFY", c.SIEMTLSInsecureSkipVerify},
			} {
				switch {
				case v.set && c.SIEMTransport == "relp":
					p.add(v.name, "only applies to SIEM_TRANSPORT=relp with SIEM_RELP_TLS=true")
				case v.set:
					p.add(v.name, "only applies to SIEM_TRANSPORT=tls (it is %s)", c.SIEMTransport)
				}
			}
		}
		if c.SIEMTransport == "udp" && c.SIEMMaxMessageBytes > MaxUDPMessageBytes {
			p.add("SIEM_MAX_MESSAGE_BYTES", "%d is more than a UDP datagram holds (%d)", c.SIEMMaxMessageBytes, MaxUDPMessageBytes)
		}
	}
	if (c.SIEMTLSCertFile == "") != (c.SIEMTLSKeyFile == "") {
		p.add("SIEM_TLS_CERT_FILE", "SIEM_TLS_CERT_FILE and SIEM_TLS_KEY_FILE must be set together")
	}
	checkFile(p, "SIEM_TLS_CA_FILE", c.SIEMTLSCAFile)
	checkFile(p, "SIEM_TLS_CERT_FILE", c.SIEMTLSCertFile)
	checkFile(p, "SIEM_TLS_KEY_FILE", c.SIEMTLSKeyFile)
	if c.SIEMMaxMessageBytes < MinMessageBytes || c.SIEMMaxMessageBytes > MaxMessageBytes {
		p.add("SIEM_MAX_MESSAGE_BYTES", "%d is outside %d–%d", c.SIEMMaxMessageBytes, MinMessageBytes, MaxMessageBytes)
	}
	if c.SIEMTimeout <= 0 {
		p.add("SIEM_TIMEOUT", "%s must be positive (e.g. 10s)", c.SIEMTimeout)
	}
	if c.SIEMUDPRate < 0 || c.SIEMUDPRate > MaxUDPRate {
		p.add("SIEM_UDP_RATE", "%d is outside 0–%d (datagrams per second; 0 = unlimited)", c.SIEMUDPRate, MaxUDPRate)
	}
}

// validateRELP checks the relp settings, and the settings relp has no use for.
func (c *Config) validateRELP(p *problems) {
	if c.SIEMRELPWindow < 1 || c.SIEMRELPWindow > MaxRELPWindow {
		p.add("SIEM_RELP_WINDOW", "%d is outside 1–%d", c.SIEMRELPWindow, MaxRELPWindow)
	}
	if c.SIEMTransport != "relp" {
		if c.SIEMRELPTLS {
			p.add("SIEM_RELP_TLS", "only applies to SIEM_TRANSPORT=relp (it is %s); for syslog over TLS set SIEM_TRANSPORT=tls", c.SIEMTransport)
		}
		return
	}
	if c.SIEMFraming != "" {
		p.add("SIEM_FRAMING", "does not apply to SIEM_TRANSPORT=relp: RELP frames every message itself")
	}
}

// Framing returns SIEM_FRAMING, or its default for the transport: octet-counting for tls
// (RFC 5425 allows nothing else), lf otherwise.
func (c *Config) Framing() string {
	if c.SIEMFraming != "" {
		return c.SIEMFraming
	}
	if c.SIEMTransport == "tls" {
		return "octet-counting"
	}
	return "lf"
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

// checkFile reports a named file that cannot be opened. It reads nothing, so a key file's
// content cannot end up in a message.
func checkFile(p *problems, name, path string) {
	if path == "" {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		p.add(name, "cannot read %s: %v", path, err)
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
