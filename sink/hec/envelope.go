package hec

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/jsontext"
	"github.com/dtforward/dtforward/sink"
)

// Source is the HEC "source" of every event.
const Source = "dtforward"

// kinds are the alert kinds a sourcetype can be set for.
var kinds = []string{alert.KindBreach, alert.KindAIAnalyst, alert.KindAntigena}

// DefaultSourcetype is the sourcetype of an alert of kind in format: darktrace:<kind> for the
// JSON formats, darktrace:cef or darktrace:leef for the text formats, whose lines Splunk must
// parse with a CEF or LEEF extraction rather than as JSON.
func DefaultSourcetype(format, kind string) string {
	if textFormat(format) {
		return "darktrace:" + format
	}
	if kind == "" {
		kind = "alert"
	}
	return "darktrace:" + kind
}

// textFormat reports whether a format's lines are text (sent as a JSON string), not JSON.
func textFormat(format string) bool { return format == "cef" || format == "leef" }

// sourcetypeName is what Splunk accepts as a sourcetype without quoting surprises.
var sourcetypeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_:.\-]{0,127}$`)

// indexName is a Splunk index name: lower case letters, digits, '_' and '-', not starting
// with '_' or '-' (those are Splunk's internal indexes).
var indexName = regexp.MustCompile(`^[a-z0-9][a-z0-9_\-]{0,79}$`)

// ParseSourcetypes reads the sourcetype setting: empty (the defaults), one sourcetype for
// every alert, or comma-separated kind=sourcetype pairs (modelbreach, aianalyst, antigena)
// that override the defaults of the kinds they name.
func ParseSourcetypes(s string) (map[string]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	if !strings.Contains(s, "=") {
		if !sourcetypeName.MatchString(s) {
			return nil, fmt.Errorf("%q is not a sourcetype name (letters, digits, '_', ':', '.', '-')", s)
		}
		for _, k := range kinds {
			out[k] = s
		}
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || !slices.Contains(kinds, k):
			return nil, fmt.Errorf("%q is not kind=sourcetype with a kind of %s", pair, strings.Join(kinds, ", "))
		case !sourcetypeName.MatchString(v):
			return nil, fmt.Errorf("%q is not a sourcetype name (letters, digits, '_', ':', '.', '-')", v)
		case out[k] != "":
			return nil, fmt.Errorf("kind %s is given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// CheckIndex validates an index name ("" = the token's default index).
func CheckIndex(s string) error {
	if s != "" && !indexName.MatchString(s) {
		return fmt.Errorf("%q is not a Splunk index name (lower case letters, digits, '_' and '-', not starting with '_' or '-')", s)
	}
	return nil
}

// reservedField are names HEC gives a meaning of its own; a label by such a name is not sent
// as an indexed field (it would shadow Splunk's default field).
var reservedField = map[string]bool{
	"appliance": true, "host": true, "source": true, "sourcetype": true, "index": true, "time": true,
	"linecount": true, "punct": true, "splunk_server": true, "timestamp": true,
}

// envelope encodes messages as HEC event envelopes.
type envelope struct {
	format      string
	index       string
	sourcetypes map[string]string // by kind, defaults filled in
}

func newEnvelope(format, index string, overrides map[string]string) *envelope {
	e := &envelope{format: format, index: index, sourcetypes: map[string]string{}}
	for _, k := range kinds {
		e.sourcetypes[k] = DefaultSourcetype(format, k)
		if v := overrides[k]; v != "" {
			e.sourcetypes[k] = v
		}
	}
	return e
}

func (e *envelope) sourcetype(kind string) string {
	if st, ok := e.sourcetypes[kind]; ok {
		return st
	}
	return DefaultSourcetype(e.format, kind)
}

// appendEvent appends one event envelope: time (seconds with milliseconds, from the record),
// host (the appliance), source, sourcetype, index, the indexed fields (appliance and its
// labels) and the event: the line itself for JSON formats, the line as a string otherwise.
func (e *envelope) appendEvent(dst []byte, m *sink.Message) []byte {
	a := m.Alert
	dst = append(dst, '{')
	if a != nil {
		if t := a.EventTime(); !t.IsZero() {
			dst = append(dst, `"time":`...)
			dst = appendSeconds(dst, t)
			dst = append(dst, ',')
		}
		if a.Appliance != "" {
			dst = append(dst, `"host":`...)
			dst = jsontext.Append(dst, a.Appliance)
			dst = append(dst, ',')
		}
	}
	dst = append(dst, `"source":"`+Source+`","sourcetype":`...)
	dst = jsontext.Append(dst, e.sourcetype(m.Kind))
	if e.index != "" {
		dst = append(dst, `,"index":`...)
		dst = jsontext.Append(dst, e.index)
	}
	if a != nil && (a.Appliance != "" || len(a.Labels) > 0) {
		dst = append(dst, `,"fields":{`...)
		sep := false
		if a.Appliance != "" {
			dst = append(dst, `"appliance":`...)
			dst = jsontext.Append(dst, a.Appliance)
			sep = true
		}
		for _, k := range sortedKeys(a.Labels) {
			if reservedField[k] || strings.HasPrefix(k, "_") {
				continue
			}
			if sep {
				dst = append(dst, ',')
			}
			dst = jsontext.Append(dst, k)
			dst = append(dst, ':')
			dst = jsontext.Append(dst, a.Labels[k])
			sep = true
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"event":`...)
	if textFormat(e.format) {
		dst = jsontext.Append(dst, string(m.Line))
	} else {
		dst = append(dst, m.Line...)
	}
	return append(dst, '}')
}

// appendSeconds writes t as epoch seconds with three decimals, HEC's "time".
func appendSeconds(dst []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	dst = strconv.AppendInt(dst, ms/1000, 10)
	dst = append(dst, '.')
	frac := ms % 1000
	if frac < 100 {
		dst = append(dst, '0')
	}
	if frac < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, frac, 10)
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
