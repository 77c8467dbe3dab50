package formatter

import (
	"bytes"
	"strings"

	"github.com/dtforward/dtforward/alert"
)

// leefTimeFormat is sent as devTimeFormat (Java SimpleDateFormat) with every devTime.
const (
	leefTimeFormat   = "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
	leefSpace        = " \t\r\n"
	leefDelimiter    = '\t'
	leefDelimiterHex = "x09"
)

// leefFormatter writes IBM QRadar LEEF 2.0 (TAB-delimited, declared as x09) or LEEF 1.0 lines.
type leefFormatter struct {
	header string // "LEEF:2.0|Darktrace|DCIP|<version>|"
	v2     bool
	max    int
}

func newLEEF(o Options) (Formatter, error) {
	f := &leefFormatter{max: o.MaxBytes}
	switch o.LEEFVersion {
	case "", "2.0", "2":
		f.v2 = true
	case "1.0", "1":
	default:
		return nil, errBadOption("LEEFVersion", o.LEEFVersion, "2.0, 1.0")
	}
	h := "LEEF:1.0|Darktrace|DCIP|"
	if f.v2 {
		h = "LEEF:2.0|Darktrace|DCIP|"
	}
	f.header = string(appendEsc([]byte(h), strings.TrimSpace(o.Version), leefHdrEsc)) + "|"
	return f, nil
}

// Append implements Formatter.
func (l *leefFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	r := getRecord(a)
	defer putRecord(r)
	leefFields(r, a)
	return fit(dst, r, l.max, l)
}

// leefTrimOrder is the documented trimming order (first = trimmed first).
var leefTrimOrder = []string{"msg", "tags", "mitreTechniques", "url", "dstHost", "applianceLabels",
	"ackUser", "groupingId", "groupCategory", "hostname", "modelUuid", "appliance", "cat", "name",
	"modelName", "usrName", "action", "actionState", "proto", "eventId"}

func leefFields(r *record, a *alert.Alert) {
	ts := func(s string) string { return trimSpace(s, leefSpace) }
	// The header EventID is a field so that it can be trimmed; the renderer writes it.
	r.add(field{key: "eventId", kind: kStr, s: ts(signatureID(a))})
	t := a.Time
	if t.IsZero() {
		t = a.Created
	}
	if !t.IsZero() {
		r.add(field{key: "devTime", kind: kTime, n: t.UnixMilli()})
		r.add(field{key: "devTimeFormat", kind: kStr, s: leefTimeFormat})
	}
	// LEEF sev is 1..10.
	r.add(field{key: "sev", kind: kInt, n: int64(clampSeverity(a.Severity, 1))})
	r.str("cat", ts(a.Category), 0)
	r.str("src", a.Device.IP, 0)
	r.str("srcMAC", a.Device.MAC, 0)
	r.str("dst", a.Dest.IP, 0)
	if a.Dest.Port > 0 {
		r.add(field{key: "dstPort", kind: kInt, n: int64(a.Dest.Port)})
	}
	r.str("proto", ts(a.Dest.Protocol), 0)
	r.str("url", ts(a.URL), 0)
	r.str("kind", a.Kind, 0)
	r.str("id", ts(a.ID), 0)
	r.str("name", ts(a.Name), 0)
	r.str("modelName", ts(a.Model.Name), 0)
	if a.Model.PID != 0 {
		r.add(field{key: "modelPid", kind: kInt, n: a.Model.PID})
	}
	r.str("modelUuid", ts(a.Model.UUID), 0)
	switch {
	case a.Kind == alert.KindBreach:
		r.str("pbid", ts(a.ID), 0)
	case a.Action != nil && a.Action.PBID > 0:
		r.add(field{key: "pbid", kind: kInt, n: a.Action.PBID})
	}
	if a.Device.DID != 0 {
		r.add(field{key: "did", kind: kInt, n: a.Device.DID})
	}
	// The device's name with the same fallbacks as CEF's dvchost: hostname, label, placeholder.
	r.str("hostname", ts(deviceName(&a.Device)), 0)
	r.str("dstHost", ts(a.Dest.Host), 0)
	r.add(field{key: "score", kind: kFloat, f: a.Score})
	if hasPriority(a) {
		r.add(field{key: "priority", kind: kInt, n: int64(a.Priority)})
	}
	if len(a.Model.Tags) > 0 {
		r.add(field{key: "tags", kind: kList, l: a.Model.Tags, cut: leefSpace})
	}
	if len(a.Model.MITRE) > 0 {
		r.add(field{key: "mitreTechniques", kind: kList, l: a.Model.MITRE, cut: leefSpace})
	}
	r.str("appliance", ts(a.Appliance), 0)
	if a.Action != nil {
		r.str("action", ts(a.Action.Type), 0)
		r.str("actionState", ts(a.Action.State), 0)
		r.str("usrName", ts(a.Action.Triggerer), 0)
	}
	r.groupAckLabels(a, kTime, ts)
	r.str("msg", ts(a.Message), 0)
	r.order = leefTrimOrder
}

func (l *leefFormatter) valueLen(s string) int {
	n := escLen(s, leefValEsc)
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		n += 2 // the typographic quote is 3 bytes
	}
	return n
}

func (l *leefFormatter) cut(s string, budget int) string {
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		budget -= 2
		if budget < 3 {
			return ""
		}
	}
	return trimRight(cutEsc(s, budget, leefValEsc), leefSpace)
}

func (l *leefFormatter) render(dst []byte, r *record) []byte {
	dst = append(dst, l.header...)
	fs := r.fields()
	sig := fs[0].s
	if sig == "" {
		sig = unknownSignature(r.a.Kind) // trimmed away: the header field must not be empty
	}
	dst = appendEsc(dst, sig, leefHdrEsc)
	dst = append(dst, '|')
	if l.v2 {
		dst = append(dst, leefDelimiterHex...)
		dst = append(dst, '|')
	}
	sep := false
	for i := 1; i < len(fs); i++ {
		f := &fs[i]
		if f.key == "msg" && r.anyTrimmed() {
			dst = l.marker(dst, r, sep)
			sep = true
		}
		if f.empty() {
			continue
		}
		if sep {
			dst = append(dst, leefDelimiter)
		}
		sep = true
		dst = append(dst, f.key...)
		dst = append(dst, '=')
		switch f.kind {
		case kStr:
			dst = appendLEEFValue(dst, f.s)
		case kInt, kFloat:
			dst = appendNumber(dst, f)
		case kTime:
			dst = appendTimeMillis(dst, f.n, "+0000")
		case kList:
			start := len(dst)
			dst = appendItems(dst, f.l, leefValEsc, leefSpace, false)
			dst = fixLEEFValue(dst, start)
		case kPairs:
			start := len(dst)
			dst = appendItems(dst, f.l, leefValEsc, leefSpace, true)
			dst = fixLEEFValue(dst, start)
		}
	}
	if r.anyTrimmed() && r.f[r.n-1].key != "msg" {
		dst = l.marker(dst, r, sep)
	}
	return dst
}

func (l *leefFormatter) marker(dst []byte, r *record, sep bool) []byte {
	if sep {
		dst = append(dst, leefDelimiter)
	}
	dst = append(dst, "trimmed="...)
	return r.trimmedKeys(dst)
}

// appendLEEFValue writes s as a LEEF value. LEEF has no escapes, so besides the table
// (delimiter and line breaks to spaces) two things that key=value parsers such as syslog-ng's
// kv-parser misread are neutralised: a value starting with a quote (the parser strips it, or
// runs to the next quote and swallows the following attributes) gets a typographic quote
// instead, and an '=' that ends a space-preceded key-like word, optionally followed by spaces
// (" dst=x" or " dst = x" inside a value would forge a dst attribute), is written as ':'.
func appendLEEFValue(dst []byte, s string) []byte {
	start := len(dst)
	dst = appendEsc(dst, s, leefValEsc)
	return fixLEEFValue(dst, start)
}

// fixLEEFValue applies appendLEEFValue's quote and '=' rules to the value in dst[start:].
func fixLEEFValue(dst []byte, start int) []byte {
	if start < len(dst) && (dst[start] == '"' || dst[start] == '\'') {
		q := "\u201c" // “
		if dst[start] == '\'' {
			q = "\u2018" // ‘
		}
		dst = append(dst, 0, 0)
		copy(dst[start+3:], dst[start+1:len(dst)-2])
		copy(dst[start:], q)
	}
	v := dst[start:]
	for i := 1; i < len(v); i++ {
		n := bytes.IndexByte(v[i:], '=')
		if n < 0 {
			break
		}
		i += n
		k := i
		for k > 0 && v[k-1] == ' ' {
			k--
		}
		j := k
		for j > 0 && isLEEFKeyByte(v[j-1]) {
			j--
		}
		if j < k && j > 0 && v[j-1] == ' ' {
			v[i] = ':'
		}
	}
	return dst
}

// isLEEFKeyByte reports the bytes syslog-ng's kv-parser accepts in a key.
func isLEEFKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}
