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

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/tlsconfig"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/hec"
)

// The allowed values of the enumerated variables that dtforward's own code reads, in the order
// error messages list them. The sink's (transport, header, framing, facility) belong to the
// sink package and the formats to the formatter package: Validate asks them.
var (
	Sources     = darktrace.SourceNames() // the source table's names
	LEEFVersion = []string{"2.0", "1.0"}
	LogLevels   = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats  = []string{"json", "console"}
)

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
	MaxPoisonRetries   = 100   // SIEM_POISON_RETRIES: past that, a refusal is not going away
	MinDeadLetterBytes = 65536 // DEAD_LETTER_MAX_BYTES: room for a few large lines
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
	c.validateSIEM(&p)
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
		} else if _, err := darktrace.CheckURL(c.DarktraceURL, c.DarktraceAllowHTTP, "DARKTRACE_ALLOW_HTTP=true"); err != nil {
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
		checkCA(p, "DARKTRACE_CA_FILE", c.DarktraceCAFile)
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

// Filter is the FILTER_* variables, ready to apply: the one place they are turned into a
// filter, for run and backfill alike. Its fields are those of poller.Filter, so the poller
// takes it by conversion (source.Filter(cfg.Filter())) without importing the configuration.
type Filter struct {
	MinScore            float64
	IncludeAcknowledged bool
	HideSuppressed      bool
	Models, Tags        *regexp.Regexp // nil: no filter
}

// Filter returns the filter of FILTER_*; the expressions are compiled (Validate has reported
// one that does not compile, which is left nil here).
func (c *Config) Filter() Filter {
	return Filter{
		MinScore:            c.FilterMinScore,
		IncludeAcknowledged: c.FilterIncludeAcknowledged,
		HideSuppressed:      !c.FilterIncludeSuppressed,
		Models:              compileOrNil(c.FilterModels),
		Tags:                compileOrNil(c.FilterTags),
	}
}

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

func (c *Config) validateSIEM(p *problems) {
	if c.SIEMSinksFile != "" {
		c.sinksFromFile(p)
		return
	}
	s := c.EnvSink()
	s.validate(p.add, envKey)
}

// envKey names a sink setting as its SIEM_* variable: "tls_ca_file" is SIEM_TLS_CA_FILE.
func envKey(key string) string { return "SIEM_" + strings.ToUpper(key) }

// CheckMaxMessageBytes is the rule for a line limit (SIEM_MAX_MESSAGE_BYTES, max_message_bytes),
// shared by run and the format command so that neither accepts what the other refuses.
func CheckMaxMessageBytes(n int) error {
	if n < MinMessageBytes || n > MaxMessageBytes {
		return fmt.Errorf("%d is outside %d–%d", n, MinMessageBytes, MaxMessageBytes)
	}
	return nil
}

// validate checks one sink's settings. add reports a problem about a setting named by
// name(key) (SIEM_FORMAT for the environment, format in SIEM_SINKS_FILE), so both report the
// same rules in their own words. The format's settings are checked here; the transport's are
// the sink package's own rules (sink.Config.Validate), the same ones "run" meets when it
// builds the sink.
func (s *Sink) validate(add func(name, format string, args ...any), name func(string) string) {
	if !slices.Contains(formatter.Names(), s.Format) {
		add(name("format"), "%q is not one of %s", s.Format, strings.Join(formatter.Names(), ", "))
	}
	if !slices.Contains(LEEFVersion, s.LEEFVersion) {
		add(name("leef_version"), "%q is not one of %s", s.LEEFVersion, strings.Join(LEEFVersion, ", "))
	}
	if err := CheckMaxMessageBytes(s.MaxMessageBytes); err != nil {
		add(name("max_message_bytes"), "%v", err)
	} else if s.Transport == "udp" && s.MaxMessageBytes > MaxUDPMessageBytes {
		add(name("max_message_bytes"), "%d is more than a UDP datagram holds (%d)", s.MaxMessageBytes, MaxUDPMessageBytes)
	}
	s.validateSentinel(add, name)
	if s.Transport == "sentinel" {
		// Built by sink/sentinel (route.NewSink), whose rules validateSentinel applied.
		return
	}
	s.validateOTLP(add, name)
	if s.Transport == "otlp" {
		// Built by sink/otlp (route.NewSink), whose rules validateOTLP applied.
		s.validateNotHEC(add, name)
		return
	}
	if s.Transport == "hec" {
		s.validateHEC(add, name)
		return
	}
	s.validateNotHEC(add, name)
	sc := s.SinkConfig()
	var se *sink.SettingsError
	if errors.As(sc.Validate(name), &se) {
		for _, p := range se.Problems {
			if p.Setting == name("transport") && !slices.Contains(Transports(), s.Transport) {
				// The sink package lists its own transports; hec is another package's.
				add(p.Setting, "%q is not one of %s", s.Transport, strings.Join(Transports(), ", "))
				continue
			}
			add(p.Setting, "%s", p.Msg)
		}
	}
}

// Transports are the valid transports: the sink package's, hec (package sink/hec), sentinel
// (package sink/sentinel) and otlp (package sink/otlp).
func Transports() []string {
	t := sink.Transports()
	i := slices.Index(t, "relp") + 1
	return append(slices.Insert(t, i, "hec"), "sentinel", "otlp")
}

// validateHEC checks a hec sink with the hec sink's own rules (hec.Config.Validate), the ones
// it meets when "run" builds it.
func (s *Sink) validateHEC(add func(name, format string, args ...any), name func(string) string) {
	c := s.HECConfig()
	c.Setting = name
	addSettingErrors(c.Validate(), add, name)
	if _, err := hec.ParseSourcetypes(s.HECSourcetype); err != nil {
		add(name("hec_sourcetype"), "%v", err)
	}
}

// validateNotHEC reports hec settings on another transport.
func (s *Sink) validateNotHEC(add func(name, format string, args ...any), name func(string) string) {
	for _, v := range []struct {
		key string
		set bool
	}{
		{"hec_token", s.HECToken != ""},
		{"hec_index", s.HECIndex != ""},
		{"hec_sourcetype", s.HECSourcetype != ""},
	} {
		if v.set {
			add(name(v.key), "only applies to %s=hec (it is %s)", name("transport"), s.Transport)
		}
	}
}

// addSettingErrors reports the problems a sink's own Validate returned: each *sink.SettingError
// under the setting it names, anything else under transport.
func addSettingErrors(err error, add func(name, format string, args ...any), name func(string) string) {
	for _, e := range unwrapJoined(err) {
		var se *sink.SettingError
		if errors.As(e, &se) {
			add(se.Setting, "%s", se.Problem)
		} else {
			add(name("transport"), "%v", e)
		}
	}
}

func unwrapJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (c *Config) validateProcess(mode Mode, p *problems) {
	if c.StateDir == "" && (mode == ModeRun || mode == ModeBackfill) {
		p.add("STATE_DIR", "required for %s (a writable directory for checkpoints)", mode)
	}
	if c.SIEMPoisonRetries < 1 || c.SIEMPoisonRetries > MaxPoisonRetries {
		p.add("SIEM_POISON_RETRIES", "%d is outside 1–%d", c.SIEMPoisonRetries, MaxPoisonRetries)
	}
	if c.DeadLetterMaxBytes < MinDeadLetterBytes {
		p.add("DEAD_LETTER_MAX_BYTES", "%d is below %d", c.DeadLetterMaxBytes, MinDeadLetterBytes)
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

// checkCA reports a CA bundle the appliance client could not use, for the reasons it would
// fail (unreadable, a directory, no PEM certificate): tlsconfig does both the check and the
// loading. Nothing of the file's content reaches a message.
func checkCA(p *problems, name, path string) {
	if path == "" {
		return
	}
	for _, e := range (tlsconfig.Options{CAFile: path}).Check() {
		p.add(name, "%s", e.Msg)
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
