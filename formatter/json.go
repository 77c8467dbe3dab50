package formatter

import (
	"strconv"

	"github.com/dtforward/dtforward/alert"
)

// JSONSchemaVersion is the "schemaVersion" of the json format. It changes only when a field is
// renamed or removed or changes type; new fields may appear within a version.
const JSONSchemaVersion = 2

// jsonFormatter writes the flat, versioned dtforward JSON schema (see README, "JSON").
type jsonFormatter struct {
	version string
	max     int
}

func newJSON(o Options) (Formatter, error) {
	return &jsonFormatter{version: o.Version, max: o.MaxBytes}, nil
}

// Append implements Formatter.
func (j *jsonFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	r := getRecord(a)
	defer putRecord(r)
	jsonFields(r, a, j.version)
	return fit(dst, r, j.max, j)
}

// jsonTrimOrder is the documented trimming order (first = trimmed first).
var jsonTrimOrder = []string{"message", "tags", "mitreTechniques", "breachUrl", "destination.host",
	"applianceLabels", "acknowledgement.user", "group.id", "group.category", "device.hostname",
	"device.label", "device.placeholder", "modelUuid", "appliance", "device.type", "category",
	"name", "modelName", "action.label", "action.triggerer", "action.type", "action.state",
	"destination.protocol", "destination.app", "signatureId"}

func jsonFields(r *record, a *alert.Alert, version string) {
	r.add(field{key: "schemaVersion", kind: kInt, n: JSONSchemaVersion})
	r.str("kind", a.Kind, 0)
	r.str("id", a.ID, 0)
	r.str("appliance", a.Appliance, 0)
	if l := labelPairs(a.Labels); len(l) > 0 {
		r.add(field{key: "applianceLabels", kind: kPairs, l: l})
	}
	if !a.Time.IsZero() {
		r.add(field{key: "time", kind: kTime, n: a.Time.UnixMilli()})
	}
	if !a.Created.IsZero() {
		r.add(field{key: "created", kind: kTime, n: a.Created.UnixMilli()})
	}
	r.str("name", a.Name, 0)
	r.str("signatureId", signatureID(a), 0)
	r.str("modelName", a.Model.Name, 0)
	if a.Model.PID != 0 {
		r.add(field{key: "pid", kind: kInt, n: a.Model.PID})
	}
	r.str("modelUuid", a.Model.UUID, 0)
	r.add(field{key: "score", kind: kFloat, f: a.Score})
	r.add(field{key: "severity", kind: kInt, n: int64(a.Severity)})
	r.str("category", a.Category, 0)
	if hasPriority(a) {
		r.add(field{key: "priority", kind: kInt, n: int64(a.Priority)})
	}
	if len(a.Model.Tags) > 0 {
		r.add(field{key: "tags", kind: kList, l: a.Model.Tags})
	}
	if len(a.Model.MITRE) > 0 {
		r.add(field{key: "mitreTechniques", kind: kList, l: a.Model.MITRE})
	}
	d := &a.Device
	if d.DID != 0 {
		r.add(field{key: "did", group: "device", kind: kInt, n: d.DID})
	}
	r.add(field{key: "hostname", group: "device", kind: kStr, s: d.Hostname})
	r.add(field{key: "label", group: "device", kind: kStr, s: d.Label})
	r.add(field{key: "ip", group: "device", kind: kStr, s: d.IP})
	r.add(field{key: "placeholder", group: "device", kind: kStr, s: d.Placeholder})
	r.add(field{key: "mac", group: "device", kind: kStr, s: d.MAC})
	r.add(field{key: "type", group: "device", kind: kStr, s: d.Type})
	e := &a.Dest
	r.add(field{key: "ip", group: "destination", kind: kStr, s: e.IP})
	r.add(field{key: "host", group: "destination", kind: kStr, s: e.Host})
	if e.Port > 0 {
		r.add(field{key: "port", group: "destination", kind: kInt, n: int64(e.Port)})
	}
	r.add(field{key: "protocol", group: "destination", kind: kStr, s: e.Protocol})
	r.add(field{key: "app", group: "destination", kind: kStr, s: e.App})
	r.str("breachUrl", a.URL, 0)
	if ac := a.Action; ac != nil {
		r.add(field{key: "type", group: "action", kind: kStr, s: ac.Type})
		r.add(field{key: "label", group: "action", kind: kStr, s: ac.Label})
		r.add(field{key: "state", group: "action", kind: kStr, s: ac.State})
		r.add(field{key: "manual", group: "action", kind: kBool, n: int64(b2i(ac.Manual))})
		if !ac.Expires.IsZero() {
			r.add(field{key: "expires", group: "action", kind: kTime, n: ac.Expires.UnixMilli()})
		}
		r.add(field{key: "triggerer", group: "action", kind: kStr, s: ac.Triggerer})
		if ac.PBID > 0 {
			r.add(field{key: "pbid", group: "action", kind: kInt, n: ac.PBID})
		}
	}
	if g := a.Group; g != nil {
		r.add(field{key: "id", group: "group", kind: kStr, s: g.ID})
		if g.Score >= 0 {
			r.add(field{key: "score", group: "group", kind: kFloat, f: g.Score})
		}
		r.add(field{key: "category", group: "group", kind: kStr, s: g.Category})
	}
	if ack := a.Ack; ack != nil {
		r.add(field{key: "acknowledged", kind: kBool, n: 1})
		if !ack.Time.IsZero() {
			r.add(field{key: "time", group: "acknowledgement", kind: kTime, n: ack.Time.UnixMilli()})
		}
		r.add(field{key: "user", group: "acknowledgement", kind: kStr, s: ack.User})
	}
	r.str("message", a.Message, 0)
	r.str("dtforwardVersion", version, 0)
	r.order = jsonTrimOrder
}

func (*jsonFormatter) valueLen(s string) int { return escLen(s, jsonEsc) }

func (*jsonFormatter) cut(s string, budget int) string { return cutEsc(s, budget, jsonEsc) }

func (*jsonFormatter) render(dst []byte, r *record) []byte {
	dst = append(dst, '{')
	fs := r.fields()
	sep := false
	for i := 0; i < len(fs); {
		f := &fs[i]
		if f.group == "" {
			if !f.empty() {
				dst = appendJSONMember(dst, f, sep)
				sep = true
			}
			i++
			continue
		}
		// A sub-object: its fields are contiguous; omit it when all are empty.
		g := f.group
		j := i
		open := false
		for ; j < len(fs) && fs[j].group == g; j++ {
			if fs[j].empty() {
				continue
			}
			if !open {
				if sep {
					dst = append(dst, ',')
				}
				dst = append(dst, '"')
				dst = append(dst, g...)
				dst = append(dst, `":{`...)
				open = true
			}
			dst = appendJSONMember(dst, &fs[j], dst[len(dst)-1] != '{')
		}
		if open {
			dst = append(dst, '}')
			sep = true
		}
		i = j
	}
	if r.anyTrimmed() {
		if sep {
			dst = append(dst, ',')
		}
		dst = append(dst, `"trimmed":true,"trimmedFields":"`...)
		dst = r.trimmedKeys(dst)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func appendJSONMember(dst []byte, f *field, sep bool) []byte {
	if sep {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, f.key...)
	dst = append(dst, `":`...)
	switch f.kind {
	case kStr:
		dst = appendJSONString(dst, f.s)
	case kInt, kFloat:
		dst = appendNumber(dst, f)
	case kBool:
		dst = strconv.AppendBool(dst, f.n != 0)
	case kTime:
		dst = append(dst, '"')
		dst = appendTimeMillis(dst, f.n, "Z")
		dst = append(dst, '"')
	case kList:
		dst = append(dst, '[')
		n := 0
		for _, s := range f.l {
			if s == "" {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendJSONString(dst, s)
		}
		dst = append(dst, ']')
	case kPairs:
		dst = append(dst, '{')
		for i := 0; i+1 < len(f.l); i += 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, f.l[i])
			dst = append(dst, ':')
			dst = appendJSONString(dst, f.l[i+1])
		}
		dst = append(dst, '}')
	}
	return dst
}

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEsc(dst, s, jsonEsc)
	return append(dst, '"')
}
