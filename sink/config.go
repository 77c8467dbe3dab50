package sink

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/internal/tlsconfig"
)

// Config selects and configures a sink. Zero values mean the documented defaults.
type Config struct {
	Transport string // udp, tcp, tls, relp, stdout, file
	Address   string // host:port for udp/tcp/tls/relp, a path for file
	// Header is rfc5424, rfc3164 or none. "" means rfc5424 for udp/tcp/tls and none (bare
	// lines) for stdout and file.
	Header string
	// Framing is lf or octet-counting (RFC 6587). "" means lf, except octet-counting for tls
	// (RFC 5425 allows nothing else). UDP sends one datagram per message and ignores it.
	Framing  string
	Facility string // syslog facility name (kern, user, ..., local0..local7); default local4
	AppName  string // RFC 5424 APP-NAME / RFC 3164 TAG; default "dtforward"
	Hostname string // "" = os.Hostname()
	TLS      tlsconfig.Options
	RELP     RELPOptions // transport relp only
	// Timeout bounds every dial, TLS handshake and write, the wait for a TCP/TLS batch to be
	// acknowledged by the peer's kernel and (relp) the wait for an answer; default 10s.
	Timeout time.Duration
	// UDPRate limits transport udp to this many datagrams per second; 0 means unlimited
	// (the zero value is not the default here: cmd passes SIEM_UDP_RATE, whose default is
	// DefaultUDPRate). Other transports ignore it.
	UDPRate int
	Stdout  io.Writer // for transport stdout; nil = os.Stdout
	Hooks   Hooks
	// Logger is optional; it receives the one-time warning when TLS verification is off.
	Logger *zerolog.Logger
}

// Hooks let the caller count what a sink does (Prometheus metrics). Nil funcs are skipped.
// They are called synchronously from Send, so they must be quick.
type Hooks struct {
	Sent      func(msgs, bytes int) // a batch was handed to the transport; bytes as written, framing included
	Error     func(err error)       // a Send failed (the caller will resend the batch)
	Reconnect func()                // a new connection is being dialled after a failure or drop
	// Sanitized is called with the number of messages in a batch that contained CR or LF,
	// which the sink replaced with spaces so that they cannot split or forge a message.
	Sanitized func(msgs int)
	// Datagrams is called after each UDP batch, failed or not, with the number of datagrams
	// the kernel accepted in it.
	Datagrams func(n int)
}

// Reopener is implemented by sinks that write to a file: cmd calls Reopen on SIGHUP, after
// logrotate renamed the file, so that writing continues in a new file at the configured path.
// Reopen may be called concurrently with Send.
type Reopener interface {
	Reopen() error
}

// ErrMessageTooLarge marks a batch that holds a message too large for its transport (a UDP
// datagram over MaxDatagram bytes). Nothing of the batch was sent; resending it cannot
// succeed, so the caller should treat it as permanent.
var ErrMessageTooLarge = errors.New("message too large for the transport")

// MaxDatagram is the largest UDP datagram the sink sends (header included). The IPv4 limit is
// 65507 bytes; we stay a little below it. Lines this long are already far beyond what
// receivers accept (rsyslog truncates at 8 KiB by default), so the formatter's size limit
// should keep every message well under it.
const MaxDatagram = 65000

// Transport, header and framing names.
const (
	HeaderRFC5424 = "rfc5424"
	HeaderRFC3164 = "rfc3164"
	HeaderNone    = "none"
	FramingLF     = "lf"
	FramingOctet  = "octet-counting"
)

const defaultTimeout = 10 * time.Second

// transports lists the valid Config.Transport values in the order messages name them.
var transports = []string{"udp", "tcp", "tls", "relp", "stdout", "file"}

// constructors is the one table of sinks.
var constructors = map[string]func(Config) (Sink, error){
	"udp":    newSyslog,
	"tcp":    newSyslog,
	"tls":    newSyslog,
	"relp":   newRELP,
	"stdout": newStdout,
	"file":   newFile,
}

// Transports returns the valid Config.Transport values.
func Transports() []string { return slices.Clone(transports) }

// Headers and Framings return the valid Config.Header and Config.Framing values.
func Headers() []string  { return []string{HeaderRFC5424, HeaderRFC3164, HeaderNone} }
func Framings() []string { return []string{FramingLF, FramingOctet} }

// facilities maps the syslog facility names Config.Facility accepts to their codes
// (RFC 5424 §6.2.1; 12–14 under the names BSD syslog gives them). It is the one table: the
// configuration's validation asks Validate, so what "check" accepts the sink can send.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "security": 13, "console": 14,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Facilities returns the facility names Config.Facility accepts, in code order.
func Facilities() []string {
	names := make([]string, 0, len(facilities))
	for n := range facilities {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return facilities[a] - facilities[b] })
	return names
}

// MaxUDPRate bounds Config.UDPRate: above what one socket sends, so a larger value is a unit
// mistake.
const MaxUDPRate = 1_000_000

// DefaultHeader is the header for a transport when Config.Header is empty: none (bare lines,
// what people pipe and tail) for stdout and file, rfc5424 for the network transports.
func DefaultHeader(transport string) string {
	if isNetwork(transport) {
		return HeaderRFC5424
	}
	return HeaderNone
}

// DefaultFraming is the framing for a transport when Config.Framing is empty: octet-counting
// for tls (RFC 5425 allows nothing else), lf otherwise.
func DefaultFraming(transport string) string {
	if transport == "tls" {
		return FramingOctet
	}
	return FramingLF
}

// New validates cfg, applies defaults and returns the sink. It reports every problem at once
// and does no network I/O: a network sink connects on its first Send.
func New(cfg Config) (Sink, error) {
	cfg.setDefaults()
	if err := cfg.Validate(nil); err != nil {
		return nil, err
	}
	if cfg.Header == "" {
		cfg.Header = DefaultHeader(cfg.Transport)
	}
	if cfg.Framing == "" {
		cfg.Framing = DefaultFraming(cfg.Transport)
	}
	return constructors[cfg.Transport](cfg)
}

func isNetwork(transport string) bool {
	return transport == "udp" || transport == "tcp" || transport == "tls" || transport == "relp"
}

// setDefaults fills the zero fields New documents as defaults. Header and Framing stay empty:
// their defaults depend on the transport and Validate needs to see whether they were set.
func (c *Config) setDefaults() {
	if c.Facility == "" {
		c.Facility = "local4"
	}
	if c.AppName == "" {
		c.AppName = "dtforward"
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.RELP.Window == 0 {
		c.RELP.Window = DefaultRELPWindow
	}
}

// Problem is one invalid setting of a Config. Setting is the setting's key as the sinks file
// spells it ("facility", "tls_ca_file"), passed through the caller's naming function.
type Problem struct {
	Setting string
	Msg     string
}

// SettingsError is every problem of a Config: settings the sink cannot work with.
type SettingsError struct {
	Problems []Problem
}

// Error returns "sink: setting: message", one problem per line.
func (e *SettingsError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Setting + ": " + p.Msg
	}
	return "sink: " + strings.Join(lines, "\n")
}

// appName is RFC 5424 APP-NAME: 1*48PRINTUSASCII.
var appName = regexp.MustCompile(`^[!-~]{1,48}$`)

// Validate reports every problem of c as *SettingsError, or nil. It is the one set of rules for
// sink settings: New applies it, and the configuration applies it to every SIEM_* sink and
// sinks-file entry, so nothing the configuration accepts fails when the sink is built. name
// turns a setting's key into the caller's word for it (SIEM_FACILITY for the environment);
// nil keeps the key. An empty Header or Framing means the transport's default; every other
// field is taken as given (New fills the zero ones with defaults first), so an explicit zero
// timeout or RELP window is reported. It reads the TLS files the sink would load, and does no
// network I/O.
func (c *Config) Validate(name func(key string) string) error {
	if name == nil {
		name = func(key string) string { return key }
	}
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{Setting: name(key), Msg: fmt.Sprintf(format, args...)})
	}
	oneOf := func(key, value string, allowed []string) bool {
		if slices.Contains(allowed, value) {
			return true
		}
		add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
		return false
	}
	if c.Header != "" {
		oneOf("header", c.Header, Headers())
	}
	if c.Framing != "" {
		oneOf("framing", c.Framing, Framings())
	}
	if _, ok := facilities[c.Facility]; !ok {
		add("facility", "%q is not a syslog facility (%s)", c.Facility, strings.Join(Facilities(), ", "))
	}
	if !appName.MatchString(c.AppName) {
		add("app_name", "%q is not a syslog APP-NAME: use 1–48 printable ASCII characters, no spaces", c.AppName)
	}
	if oneOf("transport", c.Transport, transports) {
		c.validateTransport(add, name)
	}
	if c.Timeout <= 0 {
		add("timeout", "%s must be positive (e.g. 10s)", c.Timeout)
	}
	if c.UDPRate < 0 || c.UDPRate > MaxUDPRate {
		add("udp_rate", "%d is outside 0–%d (datagrams per second; 0 = unlimited)", c.UDPRate, MaxUDPRate)
	}
	if len(probs) == 0 {
		return nil
	}
	return &SettingsError{Problems: probs}
}

// validateTransport checks the settings whose meaning depends on the (valid) transport.
func (c *Config) validateTransport(add func(key, format string, args ...any), name func(string) string) {
	switch c.Transport {
	case "udp", "tcp", "tls", "relp":
		if c.Address == "" {
			add("address", "required for transport %s (host:port)", c.Transport)
		} else if err := checkHostPort(c.Address); err != nil {
			add("address", "%v", err)
		}
	case "file":
		if c.Address == "" {
			add("address", "required for transport file (the path to append to)")
		} else if err := checkAppendPath(c.Address); err != nil {
			add("address", "%v", err)
		}
	case "stdout":
		if c.Address != "" {
			add("address", "%q is set but %s is stdout; set %s to udp, tcp, tls, relp or file", c.Address, name("transport"), name("transport"))
		}
	}
	if c.RELP.Window < 1 || c.RELP.Window > MaxRELPWindow {
		add("relp_window", "%d is outside 1–%d", c.RELP.Window, MaxRELPWindow)
	}
	if c.Transport == "relp" {
		if c.Framing != "" {
			add("framing", "does not apply to %s=relp: RELP frames every message itself", name("transport"))
		}
	} else if c.RELP.TLS {
		add("relp_tls", "only applies to %s=relp (it is %s); for syslog over TLS set %s=tls", name("transport"), c.Transport, name("transport"))
	}
	usesTLS := c.Transport == "tls" || (c.Transport == "relp" && c.RELP.TLS)
	if !usesTLS {
		for _, v := range []struct {
			key string
			set bool
		}{
			{"tls_ca_file", c.TLS.CAFile != ""},
			{"tls_cert_file", c.TLS.CertFile != ""},
			{"tls_key_file", c.TLS.KeyFile != ""},
			{"tls_server_name", c.TLS.ServerName != ""},
			{"tls_insecure_skip_verify", c.TLS.InsecureSkipVerify},
		} {
			switch {
			case v.set && c.Transport == "relp":
				add(v.key, "only applies to %s=relp with %s=true", name("transport"), name("relp_tls"))
			case v.set:
				add(v.key, "only applies to %s=tls (it is %s)", name("transport"), c.Transport)
			}
		}
		return
	}
	for _, p := range c.TLS.Check() {
		key := "tls_" + p.Option
		if p.Option == tlsconfig.OptCertFile && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
			add(key, "%s and %s must be set together", name("tls_cert_file"), name("tls_key_file"))
			continue
		}
		add(key, "%s", p.Msg)
	}
}

// checkAppendPath reports a path the file sink could not open for appending, for the reasons
// that can be told without creating it: a directory, a missing directory, an existing file that
// does not open for writing.
func checkAppendPath(path string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%s is a directory; give the path of a file to append to", path)
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("cannot open %s for appending: %v", path, causeOf(err))
		}
		return f.Close()
	case errors.Is(err, fs.ErrNotExist):
		dir := filepath.Dir(path)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("directory %s does not exist; create it or give another path", dir)
		}
		return nil
	}
	return fmt.Errorf("cannot use %s: %v", path, causeOf(err))
}

// causeOf drops the operation and path that *os.PathError repeats.
func causeOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkHostPort accepts host:port with a host and a numeric port 1–65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host (expected host:port)", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has an invalid port (expected 1–65535)", s)
	}
	return nil
}

// SyslogSeverity maps an alert severity (0..10) to a syslog severity, as README.md ("Output
// formats") documents:
// 9–10 crit, 7–8 err, 5–6 warning, 3–4 notice, anything else info.
func SyslogSeverity(alertSeverity int) int {
	switch {
	case alertSeverity >= 9 && alertSeverity <= 10:
		return 2 // crit
	case alertSeverity >= 7 && alertSeverity <= 8:
		return 3 // err
	case alertSeverity >= 5 && alertSeverity <= 6:
		return 4 // warning
	case alertSeverity >= 3 && alertSeverity <= 4:
		return 5 // notice
	default:
		return 6 // info
	}
}
