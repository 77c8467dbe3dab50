package otlp

import (
	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/sink"
)

// Attribute names. The record's own are under darktrace.*, as OpenTelemetry's naming rules
// ask of a vendor's attributes; the resource is dtforward (service.*) for one appliance.
const (
	AttrAppliance = "darktrace.appliance"
	AttrSource    = "darktrace.source" // the API source: modelbreaches, antigena, aianalyst
	AttrKind      = "darktrace.kind"   // modelbreach, antigena, aianalyst
	AttrID        = "darktrace.id"     // pbid, codeid or AI Analyst event id
	AttrModelUUID = "darktrace.model.uuid"
	AttrModelPID  = "darktrace.model.pid"
	AttrDeviceID  = "darktrace.device.id"
	AttrGroupID   = "darktrace.incident.group"
	AttrURL       = "url.full"
	// AttrLabelPrefix prefixes an appliance label (customer=acme: darktrace.label.customer).
	AttrLabelPrefix = "darktrace.label."
	ScopeName       = "dtforward"
	ServiceName     = "dtforward"
)

// structuredFormat reports whether format's lines are JSON objects, sent as a map body.
func structuredFormat(format string) bool {
	return format != "cef" && format != "leef"
}

// severityNumbers maps the syslog severity the line-oriented sinks give an alert (one mapping,
// sink.SyslogSeverity) to OpenTelemetry's severity number.
var severityNumbers = map[int]logspb.SeverityNumber{
	2: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR3, // crit: alert severity 9-10
	3: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,  // err: 7-8
	4: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,   // warning: 5-6
	5: logspb.SeverityNumber_SEVERITY_NUMBER_INFO2,  // notice: 3-4
	6: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,   // info: 0-2
}

// SeverityNumber is the OpenTelemetry severity of an alert of severity 0..10.
func SeverityNumber(alertSeverity int) logspb.SeverityNumber {
	return severityNumbers[sink.SyslogSeverity(alertSeverity)]
}

// severityText is Darktrace's own word for the severity (the category) when the record has
// one, else the short name of the severity number, as the log data model asks.
func severityText(m *sink.Message, n logspb.SeverityNumber) string {
	if m.Alert != nil && m.Alert.Category != "" {
		return m.Alert.Category
	}
	switch {
	case n >= logspb.SeverityNumber_SEVERITY_NUMBER_ERROR:
		return "ERROR"
	case n >= logspb.SeverityNumber_SEVERITY_NUMBER_WARN:
		return "WARN"
	}
	return "INFO"
}

// builder turns messages into log records, one per message, grouped by appliance.
type builder struct {
	format  string
	version string
	now     func() time.Time
}

// record is the log record of one message.
func (b *builder) record(m *sink.Message) *logspb.LogRecord {
	sev := SeverityNumber(m.Severity)
	r := &logspb.LogRecord{
		ObservedTimeUnixNano: uint64(b.now().UnixNano()),
		SeverityNumber:       sev,
		SeverityText:         severityText(m, sev),
		Body:                 b.body(m.Line),
		EventName:            "darktrace." + m.Kind,
	}
	a := m.Alert
	if a == nil {
		r.Attributes = []*commonpb.KeyValue{str(AttrKind, m.Kind)}
		return r
	}
	if t := a.EventTime(); !t.IsZero() {
		r.TimeUnixNano = uint64(t.UnixNano())
	}
	attrs := []*commonpb.KeyValue{
		str(AttrAppliance, a.Appliance), str(AttrSource, alert.SourceOf(a.Kind)),
		str(AttrKind, a.Kind), str(AttrID, a.ID),
	}
	if a.Model.UUID != "" {
		attrs = append(attrs, str(AttrModelUUID, a.Model.UUID))
	}
	if a.Model.PID > 0 {
		attrs = append(attrs, integer(AttrModelPID, a.Model.PID))
	}
	if a.Device.DID != 0 {
		attrs = append(attrs, integer(AttrDeviceID, a.Device.DID))
	}
	if a.Group != nil && a.Group.ID != "" {
		attrs = append(attrs, str(AttrGroupID, a.Group.ID))
	}
	if a.URL != "" {
		attrs = append(attrs, str(AttrURL, a.URL))
	}
	r.Attributes = attrs
	return r
}

// resource describes dtforward forwarding for one appliance, with the appliance's labels.
func (b *builder) resource(a *alert.Alert) *resourcepb.Resource {
	attrs := []*commonpb.KeyValue{str("service.name", ServiceName), str("service.version", b.version)}
	if a == nil {
		return &resourcepb.Resource{Attributes: attrs}
	}
	attrs = append(attrs, str(AttrAppliance, a.Appliance))
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		attrs = append(attrs, str(AttrLabelPrefix+k, a.Labels[k]))
	}
	return &resourcepb.Resource{Attributes: attrs}
}

// logs groups records into ResourceLogs: consecutive records of one appliance share one
// resource, so the order of the batch is kept within a request.
func (b *builder) logs(msgs []sink.Message, recs []*logspb.LogRecord) []*logspb.ResourceLogs {
	var out []*logspb.ResourceLogs
	var last *alert.Alert
	for i := range msgs {
		a := msgs[i].Alert
		if len(out) == 0 || !sameResource(last, a) {
			out = append(out, &logspb.ResourceLogs{
				Resource:  b.resource(a),
				ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: ScopeName, Version: b.version}}},
			})
			last = a
		}
		sl := out[len(out)-1].ScopeLogs[0]
		sl.LogRecords = append(sl.LogRecords, recs[i])
	}
	return out
}

func sameResource(x, y *alert.Alert) bool {
	if x == nil || y == nil {
		return x == y
	}
	if x.Appliance != y.Appliance || len(x.Labels) != len(y.Labels) {
		return false
	}
	for k, v := range x.Labels {
		if w, ok := y.Labels[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// body is the line as a map for the JSON formats (so the collector and the SIEM behind it
// see fields, not a string to parse again), else the line as a string. A JSON line that does
// not decode (a formatter bug) still goes, as a string: the record is never lost over it.
func (b *builder) body(line []byte) *commonpb.AnyValue {
	if structuredFormat(b.format) {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if v, err := anyValue(dec); err == nil {
			if _, err := dec.Token(); err == io.EOF {
				return v
			}
		}
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(line)}}
}

// anyValue decodes the next JSON value into an AnyValue, keeping the order of object keys
// (a map loses it, and OCSF readers show fields in the order written).
func anyValue(dec *json.Decoder) (*commonpb.AnyValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			arr := &commonpb.ArrayValue{}
			for dec.More() {
				v, err := anyValue(dec)
				if err != nil {
					return nil, err
				}
				arr.Values = append(arr.Values, v)
			}
			_, err := dec.Token() // ']'
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}, err
		}
		kv := &commonpb.KeyValueList{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := anyValue(dec)
			if err != nil {
				return nil, err
			}
			kv.Values = append(kv.Values, &commonpb.KeyValue{Key: k.(string), Value: v})
		}
		_, err := dec.Token() // '}'
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: kv}}, err
	case string:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: t}}, nil
	case bool:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: t}}, nil
	case json.Number:
		if n, err := strconv.ParseInt(string(t), 10, 64); err == nil {
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}, nil
		}
		f, err := t.Float64()
		if err != nil {
			// Out of float64's range: keep the digits rather than lose the record.
			return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(t)}}, nil
		}
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: f}}, nil
	}
	return &commonpb.AnyValue{}, nil // null: an empty AnyValue
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func integer(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}
