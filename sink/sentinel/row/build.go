package row

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

// Row is one row of a stream: column name to value (string, bool, int64, float64, a datetime
// as a TimeLayout string, or a slice/map for dynamic columns). encoding/json writes it with
// sorted keys, so the same alert always gives the same bytes.
type Row map[string]any

// StreamOf returns the stream that receives alerts of kind, "" for an unknown kind.
func StreamOf(kind string) string {
	switch kind {
	case alert.KindBreach:
		return ModelAlerts
	case alert.KindAIAnalyst:
		return Incidents
	case alert.KindAntigena:
		return ResponseActions
	}
	return ""
}

// ErrUnknownKind is returned by Build for an alert no Darktrace stream holds.
var ErrUnknownKind = errors.New("no Darktrace stream holds this kind of alert")

// Build returns the row of a's stream (StreamOf(a.Kind)). Values the normalized alert does
// not keep (the full model description, triggered components, an AI Analyst event's device
// subnet, ...) are read from a.Raw with the same tolerant decoders the poller uses; without
// Raw those columns stay empty.
func Build(a *alert.Alert) (Row, error) {
	if a == nil {
		return nil, errors.New("nil alert")
	}
	switch a.Kind {
	case alert.KindBreach:
		return breach(a), nil
	case alert.KindAIAnalyst:
		return incident(a), nil
	case alert.KindAntigena:
		return action(a), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownKind, a.Kind)
}

// set writes the columns whose value is known: empty strings, zero times and nil slices
// are "absent" and leave the column out.
func (r Row) str(col, v string) {
	if v = strings.TrimSpace(v); v != "" {
		r[col] = validUTF8(v)
	}
}

func (r Row) time(col string, t time.Time) {
	if !t.IsZero() {
		r[col] = t.UTC().Format(TimeLayout)
	}
}

func (r Row) msTime(col string, ms int64) {
	if ms > 0 {
		r.time(col, time.UnixMilli(ms))
	}
}

// int writes an int column; values outside the declared 32-bit range are left out rather
// than wrapped.
func (r Row) int(col string, v int64) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		r[col] = v
	}
}

func (r Row) strings(col string, v []string) {
	if v != nil {
		out := make([]string, 0, len(v))
		for _, s := range v {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, validUTF8(s))
			}
		}
		r[col] = out
	}
}

// percent is a 0..1 score as the integer 0..100 Darktrace's tables hold.
func percent(score float64) int64 { return int64(math.Round(score * 100)) }

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// breach is a Custom-DarktraceModelAlerts row.
func breach(a *alert.Alert) Row {
	r := Row{}
	r.time("TimeGenerated", a.Created)
	r.time("alertTime", a.Time)
	r.str("alertUrl", a.URL)
	r.str("category", a.Category)
	r.str("customLabel", a.Appliance)
	r.str("destHost", a.Dest.Host)
	r.str("destIp", a.Dest.IP)
	if a.Dest.Port > 0 {
		r["destPort"] = strconv.Itoa(a.Dest.Port)
	}
	r.str("deviceHostname", a.Device.Hostname)
	if a.Device.DID != 0 {
		r.int("deviceId", a.Device.DID)
	}
	r.str("deviceLabel", a.Device.Label)
	r.str("deviceType", a.Device.Type)
	r.str("message", a.Message)
	r.str("modelName", a.Model.Name)
	if len(a.Model.Tags) > 0 {
		r.strings("modelTags", a.Model.Tags)
	}
	if a.Model.PID > 0 {
		r.int("pid", a.Model.PID)
	}
	r["score"] = percent(a.Score)
	if a.Device.SID != 0 {
		r.int("sid", a.Device.SID)
	}
	r.str("sourceHost", a.Device.Hostname)
	r.str("sourceIp", a.Device.IP)
	r.str("sourceMac", a.Device.MAC)
	if id, err := strconv.ParseInt(a.ID, 10, 64); err == nil {
		r.int("threatId", id)
	}
	r.str("uuid", a.Model.UUID)

	var names map[string]string
	if len(a.Raw) > 0 {
		if b, err := darktrace.DecodeBreach(a.Raw, nil); err == nil {
			r["compliance"] = b.Model.Compliance
			r.str("description", strings.NewReplacer(`\r\n`, "\n", `\n`, "\n").Replace(b.Model.Description))
			if b.Device.DID >= 0 {
				// deviceType is the device's type name, typeLabel its display label; the
				// normalized alert keeps only one of them.
				if b.Device.TypeName != "" || b.Device.TypeLabel != "" {
					delete(r, "deviceType")
					r.str("deviceType", b.Device.TypeName)
					r.str("typeLabel", b.Device.TypeLabel)
				}
			}
			if comps := rawField(a.Raw, "triggeredComponents"); len(comps) > 0 && comps[0] == '[' {
				r["triggeredComponents"] = validUTF8(string(comps))
			}
			names = map[string]string{}
			for _, t := range b.MitreTechniques {
				if id := strings.TrimSpace(t.TechniqueID); id != "" && strings.TrimSpace(t.Technique) != "" {
					names[id] = validUTF8(strings.TrimSpace(t.Technique))
				}
			}
		}
	}
	if len(a.Model.MITRE) > 0 {
		// The solution's rule reads mitreTechniques[].techniqueId.
		techs := make([]map[string]any, 0, len(a.Model.MITRE))
		for _, id := range a.Model.MITRE {
			t := map[string]any{"techniqueId": id}
			if n := names[id]; n != "" {
				t["technique"] = n
			}
			techs = append(techs, t)
		}
		r["mitreTechniques"] = techs
	}
	return r
}

// incident is a Custom-DarktraceIncidents row.
func incident(a *alert.Alert) Row {
	r := Row{}
	r.time("TimeGenerated", a.Created)
	r.time("incidentEventTime", a.Created)
	r.str("incidentEventTitle", a.Name)
	r.str("customLabel", a.Appliance)
	r.str("url", a.URL)
	r["aiaScore"] = percent(a.Score)
	if g := a.Group; g != nil {
		r.str("currentGroup", g.ID)
		r.str("groupCategory", strings.ToLower(g.Category))
		if g.Score >= 0 {
			r["groupScore"] = percent(g.Score)
		}
	}
	r.str("deviceHostname", a.Device.Hostname)
	r.str("deviceIp", a.Device.IP)
	r.str("deviceMac", a.Device.MAC)
	r.str("summary", a.Message)
	if len(a.Raw) == 0 {
		r.str("summaryFirstSentence", firstSentence(a.Message))
		return r
	}
	e, err := darktrace.DecodeIncidentEvent(a.Raw, nil)
	if err != nil {
		r.str("summaryFirstSentence", firstSentence(a.Message))
		return r
	}
	// The solution's rule compares groupCategory in lower case ("suspicious", "critical"),
	// as the API sends it.
	if c := strings.TrimSpace(e.GroupCategory); c != "" {
		r.str("groupCategory", strings.ToLower(c))
	}
	if e.GroupPreviousGroups != nil {
		r.strings("groupPreviousGroups", e.GroupPreviousGroups)
	}
	if s := strings.TrimSpace(e.Summary); s != "" {
		r.str("summary", s)
	}
	r.str("summaryFirstSentence", firstSentence(fieldOr(r, "summary")))
	var start, end int64
	for _, p := range e.Periods {
		if p.Start > 0 && (start == 0 || p.Start < start) {
			start = p.Start
		}
		end = max(end, p.End)
	}
	r.msTime("startTime", start)
	r.msTime("endTime", end)
	var devices []map[string]any
	first := true
	for _, d := range e.BreachDevices {
		m := map[string]any{}
		if d.DID != 0 {
			m["did"] = d.DID
		}
		if d.SID != 0 {
			m["sid"] = d.SID
		}
		for k, v := range map[string]string{"hostname": d.Hostname, "ip": d.IP, "mac": d.MAC, "subnet": d.Subnet, "identifier": d.Identifier} {
			if v = strings.TrimSpace(v); v != "" {
				m[k] = validUTF8(v)
			}
		}
		if len(m) == 0 {
			continue
		}
		devices = append(devices, m)
		if first {
			// The event's device: the first breach device that carries anything, as the
			// normalized alert chose it (deviceHostname, deviceIp and deviceMac above).
			first = false
			r.str("deviceSubnet", d.Subnet)
			r.str("deviceIdentifier", d.Identifier)
			r.str("bestAssetName", firstNonEmpty(d.Hostname, d.Identifier, a.Device.IP))
		}
	}
	if devices != nil {
		r["devices"] = devices
	}
	// Keys of the incident event API that the normalized alert does not keep.
	if v, ok := rawString(a.Raw, "activityId"); ok {
		r.str("activityId", v)
	}
	if v, ok := rawString(a.Raw, "externalId"); ok {
		r.str("externalId", v)
	}
	if v, ok := rawString(a.Raw, "groupingId"); ok {
		r.str("groupingId", v)
	}
	if v, ok := rawBool(a.Raw, "groupByActivity"); ok {
		r["groupByActivity"] = v
	}
	return r
}

// action is a Custom-DarktraceResponseActions row: one per state of the action.
func action(a *alert.Alert) Row {
	r := Row{}
	r.time("TimeGenerated", a.Created)
	r.time("alertTime", a.Created)
	r.time("startTime", a.Time)
	r.str("customLabel", a.Appliance)
	r.str("deviceIp", a.Device.IP)
	r.str("model", a.Model.Name)
	r.str("url", a.URL)
	r["score"] = percent(a.Score)
	if id, err := strconv.ParseInt(a.ID, 10, 64); err == nil {
		r.int("codeId", id)
	}
	if act := a.Action; act != nil {
		r.str("action", act.Type)
		r.str("state", act.State)
		r.time("endTime", act.Expires)
		r.str("changedBy", act.Triggerer)
	}
	if len(a.Raw) == 0 {
		return r
	}
	act, err := darktrace.DecodeAction(a.Raw, nil)
	if err != nil {
		return r
	}
	// The latest history entry says who changed the action last and why; the triggerer is
	// who asked for it when the history names nobody.
	var last *darktrace.ActionHistory
	for i := range act.History {
		if h := &act.History[i]; last == nil || h.Time >= last.Time {
			last = h
		}
	}
	if last != nil {
		if u := strings.TrimSpace(last.Username); u != "" {
			r.str("changedBy", u)
		}
		r.str("reason", last.Reason)
	}
	if _, ok := r["reason"]; !ok && act.Triggerer != nil {
		r.str("reason", act.Triggerer.Reason)
	}
	// Some appliances nest the device in the action record.
	if dev := rawField(a.Raw, "device"); len(dev) > 0 && dev[0] == '{' {
		if v, ok := rawString(dev, "hostname"); ok {
			r.str("deviceHostname", v)
		}
		if v, ok := rawString(dev, "devicelabel"); ok {
			r.str("deviceLabel", v)
		}
		if v, ok := rawString(dev, "macaddress"); ok {
			r.str("deviceMac", v)
		}
		if v, ok := rawString(dev, "typename"); ok {
			r.str("deviceType", v)
		}
		if v, ok := rawString(dev, "typelabel"); ok {
			r.str("deviceName", v)
		}
	}
	return r
}

// firstSentence is s up to its first sentence end (". ", "! ", "? " or a line break).
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	end := len(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		end = i
	}
	for _, sep := range []string{". ", "! ", "? "} {
		if i := strings.Index(s[:end], sep); i >= 0 {
			end = i + 1
		}
	}
	return strings.TrimSpace(s[:end])
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

func fieldOr(r Row, col string) string {
	s, _ := r[col].(string)
	return s
}

// rawField returns the compacted JSON value of key in the object raw, nil when absent or
// when raw is not an object.
func rawField(raw []byte, key string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	v := m[key]
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return nil
	}
	return buf.Bytes()
}

// rawString returns key of raw when it is a JSON string.
func rawString(raw []byte, key string) (string, bool) {
	v := rawField(raw, key)
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// rawBool returns key of raw when it is a JSON boolean.
func rawBool(raw []byte, key string) (bool, bool) {
	switch string(rawField(raw, key)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
