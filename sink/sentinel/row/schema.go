// Package row turns an alert into a row of Darktrace's own Microsoft Sentinel stream schemas,
// the ones Darktrace's Sentinel solution declares in its Data Collection Rule, so that the
// solution's analytics rules and workbooks read dtforward's rows unchanged.
//
// Build is a pure function of the alert (and of the record it was decoded from, Alert.Raw,
// for the values the normalized alert does not keep). A column is present only when the
// record has its value; no column is ever filled with a guess or a placeholder.
package row

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// The input streams of Darktrace's DCR, one per record kind. Each flows unchanged into the
// table of the same name without "Custom-" and with "_CL".
const (
	ModelAlerts     = "Custom-DarktraceModelAlerts"     // model breaches
	Incidents       = "Custom-DarktraceIncidents"       // AI Analyst incident events
	ResponseActions = "Custom-DarktraceResponseActions" // Antigena (RESPOND) actions
)

// Column types as a DCR stream declaration names them.
const (
	TypeString   = "string"
	TypeInt      = "int"
	TypeLong     = "long"
	TypeReal     = "real"
	TypeBoolean  = "boolean"
	TypeDatetime = "datetime"
	TypeDynamic  = "dynamic"
)

// Column is one declared column of a stream.
type Column struct {
	Name string
	Type string
}

// Streams holds the declared columns of each stream, as Darktrace's Sentinel solution publishes
// them (Azure/Azure-Sentinel, Solutions/Darktrace/Data Connectors/ccf/Darktrace_DCR.json).
var Streams = map[string][]Column{
	ModelAlerts: cols(
		"TimeGenerated", TypeDatetime, "alertTime", TypeDatetime, "alertUrl", TypeString,
		"antigena", TypeBoolean, "category", TypeString, "cSensor", TypeBoolean, "cSensorId", TypeString,
		"compliance", TypeBoolean, "customLabel", TypeString, "darktraceProduct", TypeString,
		"description", TypeString, "destHost", TypeString, "destIp", TypeString, "destMac", TypeString,
		"destPort", TypeString, "details", TypeString, "deviceCredentials", TypeDynamic,
		"deviceHostname", TypeString, "deviceId", TypeInt, "deviceLabel", TypeString,
		"deviceSubnet", TypeString, "deviceType", TypeString, "latitude", TypeReal, "longitude", TypeReal,
		"message", TypeString, "mitreTechniques", TypeDynamic, "modelName", TypeString,
		"modelTags", TypeDynamic, "pid", TypeInt, "score", TypeInt, "sid", TypeInt,
		"sourceHost", TypeString, "sourceIp", TypeString, "sourceMac", TypeString, "sourcePort", TypeString,
		"threatId", TypeInt, "triggeredComponents", TypeString, "typeLabel", TypeString, "uuid", TypeString,
	),
	Incidents: cols(
		"TimeGenerated", TypeDatetime, "activityId", TypeString, "aiaScore", TypeInt,
		"bestAssetName", TypeString, "currentGroup", TypeString, "customLabel", TypeString,
		"darktraceProduct", TypeString, "deviceHostname", TypeString, "deviceIp", TypeString,
		"deviceIdentifier", TypeString, "deviceMac", TypeString, "deviceSubnet", TypeString,
		"devices", TypeDynamic, "endTime", TypeDatetime, "externalId", TypeString,
		"groupByActivity", TypeBoolean, "groupCategory", TypeString, "groupPreviousGroups", TypeDynamic,
		"groupScore", TypeInt, "groupingId", TypeString, "incidentEventTime", TypeDatetime,
		"incidentEventTitle", TypeString, "latitude", TypeReal, "longitude", TypeReal,
		"newEvent", TypeBoolean, "severity", TypeInt, "startTime", TypeDatetime, "summary", TypeString,
		"summaryFirstSentence", TypeString, "url", TypeString,
	),
	ResponseActions: cols(
		"TimeGenerated", TypeDatetime, "action", TypeString, "alertTime", TypeDatetime,
		"changedBy", TypeString, "codeId", TypeInt, "customLabel", TypeString,
		"darktraceProduct", TypeString, "deviceFirstSeen", TypeString, "deviceHostname", TypeString,
		"deviceIp", TypeString, "deviceLabel", TypeString, "deviceLastSeen", TypeString,
		"deviceMac", TypeString, "deviceName", TypeString, "deviceType", TypeString,
		"endTime", TypeDatetime, "inhibitor", TypeString, "model", TypeString, "reason", TypeString,
		"score", TypeInt, "startTime", TypeDatetime, "state", TypeString, "subnetId", TypeInt,
		"subnetLabel", TypeString, "subnetNetwork", TypeString, "url", TypeString,
	),
}

func cols(nameType ...string) []Column {
	out := make([]Column, 0, len(nameType)/2)
	for i := 0; i+1 < len(nameType); i += 2 {
		out = append(out, Column{Name: nameType[i], Type: nameType[i+1]})
	}
	return out
}

// TimeLayout is how datetime columns are written: ISO 8601 in UTC with milliseconds, the
// resolution of Darktrace's epoch-millisecond times.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Check reports the first value of r that its stream does not declare, or whose JSON type
// does not fit the declared type. r is a row as Build returns it, or as decoded from JSON
// (with json.Number or float64 numbers).
func Check(stream string, r map[string]any) error {
	decl, ok := Streams[stream]
	if !ok {
		return fmt.Errorf("stream %q is not one of Darktrace's streams", stream)
	}
	types := make(map[string]string, len(decl))
	for _, c := range decl {
		types[c.Name] = c.Type
	}
	for name, v := range r {
		t, ok := types[name]
		if !ok {
			return fmt.Errorf("%s: column %q is not declared", stream, name)
		}
		if err := CheckValue(t, v); err != nil {
			return fmt.Errorf("%s: column %q: %w", stream, name, err)
		}
	}
	return nil
}

// CheckValue reports whether v (a Go value of a row, or one decoded from JSON) fits type t.
// A null fits every type (the column stays empty).
func CheckValue(t string, v any) error {
	if v == nil {
		return nil
	}
	switch t {
	case TypeString:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%T is not a string", v)
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%T is not a boolean", v)
		}
	case TypeInt, TypeLong:
		f, ok := number(v)
		if !ok || f != math.Trunc(f) {
			return fmt.Errorf("%v is not an integer", v)
		}
		if t == TypeInt && (f < math.MinInt32 || f > math.MaxInt32) {
			return fmt.Errorf("%v does not fit a 32-bit int", v)
		}
	case TypeReal:
		if _, ok := number(v); !ok {
			return fmt.Errorf("%v is not a number", v)
		}
	case TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T is not an ISO 8601 string", v)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%q is not ISO 8601: %v", s, err)
		}
	case TypeDynamic:
		switch v.(type) {
		case []any, map[string]any, []string, []map[string]any, json.RawMessage:
		default:
			return fmt.Errorf("%T is not an array or object", v)
		}
	default:
		return fmt.Errorf("unknown column type %q", t)
	}
	return nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}
