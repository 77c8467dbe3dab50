package formatter

import (
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
)

// cefFormatter writes ArcSight CEF:0 lines.
type cefFormatter struct {
	version string // escaped for the header once
	max     int
}

func newCEF(o Options) (Formatter, error) {
	return &cefFormatter{version: string(appendEsc(nil, strings.TrimSpace(o.Version), cefHdrEsc)), max: o.MaxBytes}, nil
}

// cefMaxName is the CEF header limit for Name (ArcSight CEF implementation standard).
const cefMaxName = 512

// cefSpace is what CEF parsers may take as part of a value's edges; values are trimmed of it.
const cefSpace = " \t"

// Append implements Formatter.
func (c *cefFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	r := getRecord(a)
	defer putRecord(r)
	cefFields(r, a)
	return fit(dst, r, c.max, c)
}

// cefFields lists the extension in output order. The trim ranks implement the documented
// trimming order: msg, then the long optional custom strings, then names.
func cefFields(r *record, a *alert.Alert) {
	ts := func(s string) string { return trimSpace(s, cefSpace) }
	// The header Name is a field too so that it can be trimmed; the renderer writes it into
	// the header.
	name := r.add(field{key: "name", kind: kStr, s: ts(a.Name), trim: 11})
	if escLen(name.s, cefHdrEsc) > cefMaxName {
		// ArcSight's header limit for Name; longer names (hostile model names) are cut and
		// flagged like any other trimmed field.
		name.s = trimRight(cutEsc(name.s, cefMaxName, cefHdrEsc), cefSpace)
		name.trimmed = true
	}
	if !a.Created.IsZero() {
		r.add(field{key: "rt", kind: kInt, n: a.Created.UnixMilli()})
	}
	if !a.Time.IsZero() {
		r.add(field{key: "start", kind: kInt, n: a.Time.UnixMilli()})
	}
	r.str("externalId", ts(a.ID), 0)
	r.str("cat", ts(a.Category), 10)
	r.str("src", a.Device.IP, 0)
	r.str("shost", ts(a.Device.Hostname), 6)
	r.str("smac", a.Device.MAC, 0)
	r.str("dst", a.Dest.IP, 0)
	r.str("dhost", ts(a.Dest.Host), 5)
	if a.Dest.Port > 0 {
		r.add(field{key: "dpt", kind: kInt, n: int64(a.Dest.Port)})
	}
	r.str("proto", ts(a.Dest.Protocol), 0)
	r.str("app", ts(a.Dest.App), 0)
	if s := ts(a.Model.UUID); s != "" {
		r.add(field{key: "cs1", label: "modelUuid", kind: kStr, s: s, trim: 7})
	}
	if len(a.Model.Tags) > 0 {
		r.add(field{key: "cs2", label: "modelTags", kind: kList, l: a.Model.Tags, cut: cefSpace, trim: 2})
	}
	if len(a.Model.MITRE) > 0 {
		r.add(field{key: "cs3", label: "mitreTechniques", kind: kList, l: a.Model.MITRE, cut: cefSpace, trim: 3})
	}
	if s := ts(a.Appliance); s != "" {
		r.add(field{key: "cs4", label: "appliance", kind: kStr, s: s, trim: 8})
		r.add(field{key: "dvchost", kind: kStr, s: s, trim: 9})
	}
	if a.Model.PID != 0 {
		r.add(field{key: "cn1", label: "modelPid", kind: kInt, n: a.Model.PID})
	}
	if a.Device.DID != 0 {
		r.add(field{key: "cn2", label: "deviceId", kind: kInt, n: a.Device.DID})
	}
	if a.Kind == alert.KindBreach {
		r.add(field{key: "cn3", label: "priority", kind: kInt, n: int64(a.Priority)})
	}
	r.add(field{key: "cfp1", label: "score", kind: kFloat, f: a.Score})
	r.str("darktraceUrl", ts(a.URL), 4)
	if a.Action != nil {
		r.str("act", ts(a.Action.Type), 0)
		if s := ts(a.Action.State); s != "" {
			r.add(field{key: "cs5", label: "actionState", kind: kStr, s: s})
		}
		r.str("suser", ts(a.Action.Triggerer), 0)
	}
	r.str("msg", ts(a.Message), 1)
}

func (c *cefFormatter) valueLen(s string) int { return escLen(s, cefExtEsc) }

func (c *cefFormatter) cut(s string, budget int) string {
	return trimRight(cutEsc(s, budget, cefExtEsc), cefSpace)
}

func (c *cefFormatter) render(dst []byte, r *record) []byte {
	fs := r.fields()
	dst = append(dst, "CEF:0|Darktrace|DCIP|"...)
	dst = append(dst, c.version...)
	dst = append(dst, '|')
	// SignatureID and Name take the header escaping (\| and \\, line breaks to spaces):
	// attacker-influenced model names must not shift header fields.
	dst = appendEsc(dst, trimSpace(r.a.SignatureID, cefSpace), cefHdrEsc)
	dst = append(dst, '|')
	dst = appendEsc(dst, fs[0].s, cefHdrEsc)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(clampSeverity(r.a.Severity, 0)), 10)
	dst = append(dst, '|')
	sep := false
	for i := 1; i < len(fs); i++ {
		f := &fs[i]
		if f.key == "msg" && r.anyTrimmed() {
			// Flag the line before msg, so msg stays last (the part a collector that cuts
			// long lines would lose).
			dst = append(dst, " cs6Label=trimmed cs6="[b2i(!sep):]...)
			dst = r.trimmedKeys(dst)
			sep = true
		}
		if f.empty() {
			continue
		}
		if sep {
			dst = append(dst, ' ')
		}
		sep = true
		if f.label != "" {
			dst = append(dst, f.key...)
			dst = append(dst, "Label="...)
			dst = append(dst, f.label...)
			dst = append(dst, ' ')
		}
		dst = append(dst, f.key...)
		dst = append(dst, '=')
		switch f.kind {
		case kStr:
			dst = appendEsc(dst, f.s, cefExtEsc)
		case kInt:
			dst = strconv.AppendInt(dst, f.n, 10)
		case kFloat:
			dst = strconv.AppendFloat(dst, finite(f.f), 'f', -1, 64)
		case kList:
			dst = appendList(dst, f.l, cefExtEsc, cefSpace)
		}
	}
	if r.anyTrimmed() && fs[len(fs)-1].key != "msg" {
		dst = append(dst, " cs6Label=trimmed cs6="[b2i(!sep):]...)
		dst = r.trimmedKeys(dst)
	}
	return dst
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clampSeverity keeps a severity inside min..10.
func clampSeverity(s, min int) int {
	if s < min {
		return min
	}
	if s > 10 {
		return 10
	}
	return s
}

// appendList writes list items comma-separated; items are trimmed and empty items skipped.
func appendList(dst []byte, l []string, t *escTable, space string) []byte {
	first := true
	for _, s := range l {
		s = trimSpace(s, space)
		if s == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendEsc(dst, s, t)
	}
	return dst
}
