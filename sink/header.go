package sink

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// RFC 5424 §6 field limits (printable US-ASCII, no spaces).
const (
	maxHostname = 255
	maxAppName  = 48
	maxMsgID    = 32
	maxTag3164  = 32 // RFC 3164 §4.1.3
)

// header renders the syslog header in front of each line and the framing around it. It is
// the one place that decides what a message looks like on the wire; the stream sinks and the
// srslog formatter/framer all call it.
type header struct {
	kind     string // HeaderRFC5424 | HeaderRFC3164 | HeaderNone
	framing  string // FramingLF | FramingOctet | "" (datagram: no framing)
	facility int
	hostname string // sanitised for the header kind
	appName  string
	procID   string
	now      func() time.Time
}

func newHeader(cfg Config, framing string) *header {
	h := &header{
		kind:     cfg.Header,
		framing:  framing,
		facility: facilities[cfg.Facility],
		procID:   strconv.Itoa(os.Getpid()),
		now:      time.Now,
	}
	if h.kind == HeaderRFC3164 {
		h.hostname = sanitizeField(cfg.Hostname, maxHostname)
		h.appName = sanitizeTag(cfg.AppName)
	} else {
		h.hostname = sanitizeField(cfg.Hostname, maxHostname)
		h.appName = sanitizeField(cfg.AppName, maxAppName)
	}
	return h
}

// pri is the PRI value for an alert severity.
func (h *header) pri(alertSeverity int) int {
	return h.facility*8 + SyslogSeverity(alertSeverity)
}

// appendPRI appends "<PRI>".
func appendPRI(dst []byte, pri int) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	return append(dst, '>')
}

// appendHostApp appends " HOSTNAME APP-NAME", which both headers carry after the timestamp.
func (h *header) appendHostApp(dst []byte) []byte {
	dst = append(dst, ' ')
	dst = append(dst, h.hostname...)
	dst = append(dst, ' ')
	return append(dst, h.appName...)
}

// appendHeader appends the header (with its trailing space) for a message of kind msgID and
// syslog priority pri.
func (h *header) appendHeader(dst []byte, pri int, msgID string) []byte {
	switch h.kind {
	case HeaderRFC5424:
		// <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD SP — no BOM before MSG: a BOM
		// in front of "CEF:" breaks consumers that look for it right after the header.
		dst = appendPRI(dst, pri)
		dst = append(dst, "1 "...)
		dst = h.now().UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
		dst = h.appendHostApp(dst)
		dst = append(dst, ' ')
		dst = append(dst, h.procID...)
		dst = append(dst, ' ')
		dst = appendSanitized(dst, msgID, maxMsgID)
		dst = append(dst, " - "...)
	case HeaderRFC3164:
		// <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: — local time, no year, as the RFC has it.
		dst = appendPRI(dst, pri)
		dst = h.now().AppendFormat(dst, time.Stamp)
		dst = h.appendHostApp(dst)
		dst = append(dst, '[')
		dst = append(dst, h.procID...)
		dst = append(dst, "]: "...)
	}
	return dst
}

// appendFramed appends the complete framed message: header, line and framing.
func (h *header) appendFramed(dst []byte, pri int, msgID string, line []byte) []byte {
	start := len(dst)
	if h.framing == FramingOctet {
		// Reserve nothing: the length is only known afterwards, so build the frame and
		// prepend the length by shifting; messages are short, so the copy is cheap.
		dst = h.appendHeader(dst, pri, msgID)
		dst = append(dst, line...)
		n := len(dst) - start
		var lenBuf [24]byte
		prefix := strconv.AppendInt(lenBuf[:0], int64(n), 10)
		prefix = append(prefix, ' ')
		dst = append(dst, prefix...) // grow
		copy(dst[start+len(prefix):], dst[start:start+n])
		copy(dst[start:], prefix)
		return dst
	}
	dst = h.appendHeader(dst, pri, msgID)
	dst = append(dst, line...)
	if h.framing == FramingLF {
		dst = append(dst, '\n')
	}
	return dst
}

// headerLen is the length of the header for msgID (timestamps have a fixed width).
func (h *header) headerLen(msgID string) int {
	var buf [512]byte
	return len(h.appendHeader(buf[:0], 191, msgID))
}

// sanitizeField makes s a valid RFC 5424 header field: printable US-ASCII without space
// (anything else becomes '_'), at most max bytes, "-" (the nil value) when empty.
func sanitizeField(s string, max int) string {
	return string(appendSanitized(nil, s, max))
}

func appendSanitized(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// sanitizeTag makes s a valid RFC 3164 TAG: alphanumerics plus "-", "_" and ".", at most 32.
func sanitizeTag(s string) string {
	if len(s) > maxTag3164 {
		s = s[:maxTag3164]
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "dtforward"
	}
	return string(b)
}

// cleanLine returns line with every CR and LF replaced by a space, and whether it changed
// anything. Lines from the formatter never hold either; this is the last line of defence
// against a message that would split (LF framing) or forge a second message downstream.
func cleanLine(line []byte) ([]byte, bool) {
	// Two IndexByte scans (vectorised) are several times faster than IndexAny on the
	// common path, where the line is clean.
	if bytes.IndexByte(line, '\n') < 0 && bytes.IndexByte(line, '\r') < 0 {
		return line, false
	}
	out := bytes.Clone(line)
	for i, c := range out {
		if c == '\r' || c == '\n' {
			out[i] = ' '
		}
	}
	return out, true
}
