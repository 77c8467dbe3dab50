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

// CEF header limits for Name and Device Event Class ID (ArcSight CEF implementation standard).
const (
	cefMaxName      = 512
	cefMaxSignature = 1023
)

// cefSpace is what CEF parsers may take as part of a value's edges; values are trimmed of it.
const cefSpace = " \t"

// Append implements Formatter.
func (c *cefFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	r := getRecord(a)
	defer putRecord(r)
	cefFields(r, a)
	return fit(dst, r, c.max, c)
}

// cefTrimOrder is the documented trimming order (first = trimmed first): msg, then the long
// optional strings, then names; the header SignatureID goes last.
var cefTrimOrder = []string{"msg", "cs2", "cs3", "darktraceUrl", "dhost", "applianceLabels",
	"modelName", "ackUser", "groupingId", "groupCategory", "shost", "cs1", "cs4", "dvchost", "cat",
	"suser", "act", "cs5", "app", "proto", "name", "signatureId"}

// cefFields lists the extension in output order, in the conventions of Darktrace's own CEF
// (see "CEF conventions" in doc.go): externalId first, the breaching device as dvc/dvchost and src/shost/smac, the
// appliance only in cs4, absent values left out.
func cefFields(r *record, a *alert.Alert) {
	ts := func(s string) string { return trimSpace(s, cefSpace) }
	// The header SignatureID and Name are fields too so that they can be trimmed; the renderer
	// writes them into the header.
	sig := r.add(field{key: "signatureId", kind: kStr, s: ts(signatureID(a))})
	if escLen(sig.s, cefHdrEsc) > cefMaxSignature {
		sig.s = trimRight(cutEsc(sig.s, cefMaxSignature, cefHdrEsc), cefSpace)
		sig.trimmed = true
	}
	name := r.add(field{key: "name", kind: kStr, s: ts(a.Name), slash: true})
	if escLen(name.s, cefHdrEsc) > cefMaxName {
		// ArcSight's header limit for Name; longer names (hostile model names) are cut and
		// flagged like any other trimmed field.
		name.s = trimRight(cutColons(name.s, cutEsc(name.s, cefMaxName, cefHdrEsc)), cefSpace)
		name.trimmed = true
	}
	// Exabeam's Darktrace parser reads the alert id only right after the header.
	r.str("externalId", ts(a.ID), 0)
	if !a.Created.IsZero() {
		r.add(field{key: "rt", kind: kInt, n: a.Created.UnixMilli()})
	}
	if !a.Time.IsZero() {
		r.add(field{key: "start", kind: kInt, n: a.Time.UnixMilli()})
	}
	r.str("cat", ts(a.Category), 0)
	// Key order as in Darktrace's CEF, where dvchost follows dst: line-matching parsers (an
	// Exabeam version reads the destination as "dst=<ip> dvchost") depend on it.
	dev := ts(deviceName(&a.Device))
	r.str("dvc", a.Device.IP, 0)
	r.str("src", a.Device.IP, 0)
	r.str("smac", a.Device.MAC, 0)
	r.str("dst", a.Dest.IP, 0)
	r.str("dvchost", dev, 0)
	r.str("shost", dev, 0)
	r.str("dhost", ts(a.Dest.Host), 0)
	if a.Dest.Port > 0 {
		r.add(field{key: "dpt", kind: kInt, n: int64(a.Dest.Port)})
	}
	r.str("proto", ts(a.Dest.Protocol), 0)
	r.str("app", ts(a.Dest.App), 0)
	if s := ts(a.Model.UUID); s != "" {
		r.add(field{key: "cs1", label: "modelUuid", kind: kStr, s: s})
	}
	if len(a.Model.Tags) > 0 {
		r.add(field{key: "cs2", label: "modelTags", kind: kList, l: a.Model.Tags, cut: cefSpace})
	}
	if len(a.Model.MITRE) > 0 {
		r.add(field{key: "cs3", label: "mitreTechniques", kind: kList, l: a.Model.MITRE, cut: cefSpace})
	}
	if s := ts(a.Appliance); s != "" {
		r.add(field{key: "cs4", label: "appliance", kind: kStr, s: s})
	}
	if a.Model.PID != 0 {
		r.add(field{key: "cn1", label: "modelPid", kind: kInt, n: a.Model.PID})
	}
	if a.Device.DID != 0 {
		r.add(field{key: "cn2", label: "deviceId", kind: kInt, n: a.Device.DID})
	}
	if hasPriority(a) {
		r.add(field{key: "cn3", label: "priority", kind: kInt, n: int64(a.Priority)})
	}
	r.add(field{key: "cfp1", label: "score", kind: kFloat, f: a.Score})
	r.str("darktraceUrl", ts(a.URL), 0)
	if a.Action != nil {
		r.str("act", ts(a.Action.Type), 0)
		if s := ts(a.Action.State); s != "" {
			r.add(field{key: "cs5", label: "actionState", kind: kStr, s: s})
		}
		r.str("suser", ts(a.Action.Triggerer), 0)
		// The model whose breach triggered the action, written like a breach line's Name so
		// that the two can be joined.
		if s := ts(a.Model.Name); s != "" {
			r.add(field{key: "modelName", kind: kStr, s: s, slash: true})
		}
	}
	r.groupAckLabels(a, kInt, ts)
	r.str("msg", ts(a.Message), 0)
	r.order = cefTrimOrder
}

func (c *cefFormatter) valueLen(s string) int { return escLen(s, cefExtEsc) }

func (c *cefFormatter) cut(s string, budget int) string {
	return trimRight(cutColons(s, cutEsc(s, budget, cefExtEsc)), cefSpace)
}

// cutColons keeps a cut from splitting a "::" of a model name: half of it would be written as
// ":" where the whole becomes "/".
func cutColons(s, cut string) string {
	if strings.HasSuffix(cut, ":") && len(cut) < len(s) && s[len(cut)] == ':' {
		return cut[:len(cut)-1]
	}
	return cut
}

func (c *cefFormatter) render(dst []byte, r *record) []byte {
	fs := r.fields()
	dst = append(dst, "CEF:0|Darktrace|DCIP|"...)
	dst = append(dst, c.version...)
	dst = append(dst, '|')
	// SignatureID and Name take the header escaping (\| and \\, line breaks to spaces):
	// attacker-influenced model names must not shift header fields.
	sig := fs[0].s
	if sig == "" {
		sig = unknownSignature(r.a.Kind) // trimmed away: the header field must not be empty
	}
	dst = appendEsc(dst, sig, cefHdrEsc)
	dst = append(dst, '|')
	dst = appendSlashName(dst, fs[1].s, cefHdrEsc)
	dst = append(dst, '|')
	dst = strconv.AppendInt(dst, int64(clampSeverity(r.a.Severity, 0)), 10)
	dst = append(dst, '|')
	sep := false
	for i := 2; i < len(fs); i++ {
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
			if f.slash {
				dst = appendSlashName(dst, f.s, cefExtEsc)
			} else {
				dst = appendEsc(dst, f.s, cefExtEsc)
			}
		case kInt, kFloat:
			dst = appendNumber(dst, f)
		case kList:
			dst = appendItems(dst, f.l, cefExtEsc, cefSpace, false)
		case kPairs:
			dst = appendItems(dst, f.l, cefExtEsc, cefSpace, true)
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
