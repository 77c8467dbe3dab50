package sink

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
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

// constructors is the one table of sinks.
var constructors = map[string]func(Config) (Sink, error){
	"udp":    newSyslog,
	"tcp":    newSyslog,
	"tls":    newSyslog,
	"relp":   newRELP,
	"stdout": newStdout,
	"file":   newFile,
}

// Transports returns the valid Config.Transport values, sorted.
func Transports() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New validates cfg, applies defaults and returns the sink. It reports every problem at once
// and does no network I/O: a network sink connects on its first Send.
func New(cfg Config) (Sink, error) {
	ctor, ok := constructors[cfg.Transport]
	if !ok {
		return nil, fmt.Errorf("sink: transport %q is not one of %s", cfg.Transport, strings.Join(Transports(), ", "))
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return ctor(cfg)
}

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func facilityNames() string {
	names := make([]string, 0, len(facilities))
	for n := range facilities {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return facilities[a] - facilities[b] })
	return strings.Join(names, ", ")
}

func isNetwork(transport string) bool {
	return transport == "udp" || transport == "tcp" || transport == "tls" || transport == "relp"
}

// normalize fills defaults and checks every field, joining all problems.
func (c *Config) normalize() error {
	var errs []error
	if c.Header == "" {
		c.Header = HeaderRFC5424
		if !isNetwork(c.Transport) {
			c.Header = HeaderNone
		}
	}
	switch c.Header {
	case HeaderRFC5424, HeaderRFC3164, HeaderNone:
	default:
		errs = append(errs, fmt.Errorf("header %q is not one of rfc5424, rfc3164, none", c.Header))
	}
	if c.Framing == "" {
		c.Framing = FramingLF
		if c.Transport == "tls" {
			c.Framing = FramingOctet
		}
	}
	if c.Framing != FramingLF && c.Framing != FramingOctet {
		errs = append(errs, fmt.Errorf("framing %q is not one of lf, octet-counting", c.Framing))
	}
	if c.Facility == "" {
		c.Facility = "local4"
	}
	if _, ok := facilities[c.Facility]; !ok {
		errs = append(errs, fmt.Errorf("facility %q is not one of %s", c.Facility, facilityNames()))
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
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v must be positive", c.Timeout))
	}
	if c.UDPRate < 0 {
		errs = append(errs, fmt.Errorf("udp rate %d must be 0 (unlimited) or a number of messages per second", c.UDPRate))
	}
	switch {
	case isNetwork(c.Transport):
		if _, p, err := net.SplitHostPort(c.Address); err != nil || p == "" {
			errs = append(errs, fmt.Errorf("address %q for transport %s must be host:port", c.Address, c.Transport))
		}
	case c.Transport == "file":
		if c.Address == "" {
			errs = append(errs, errors.New("address must be a file path for transport file"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("sink: %w", errors.Join(errs...))
	}
	return nil
}

// SyslogSeverity maps an alert severity (0..10) to a syslog severity per DESIGN §7:
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
