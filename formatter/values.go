package formatter

import (
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
)

// roundScore rounds f to 6 decimal places; NaN and ±Inf become 0 (JSON cannot carry them).
// Darktrace scores carry at most a few meaningful decimals; rounding first keeps float
// artefacts of the 0–100 → 0–1 scaling (0.027999999999999997) out of the output, and the
// shortest representation of the rounded value is what is printed (0.028).
func roundScore(f float64) float64 {
	f = finite(f)
	const p = 1e6 // 6 decimals
	r := math.Round(f*p) / p
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return f // too large to scale: already without fractional artefacts
	}
	return r
}

// deviceName is the name a SIEM shows for the breaching device: its hostname, else its label
// (devicelabel), else the appliance's placeholder for it (e.g. "10.0.0.#36859", which
// Sentinel's C-sensor tiles look for). "" when the record has none of them.
func deviceName(d *alert.Device) string {
	for _, s := range [...]string{d.Hostname, d.Label, d.Placeholder} {
		if strings.TrimSpace(s) != "" {
			return s // trimmed by each format's own rules
		}
	}
	return ""
}

// signatureID is the header's event class. A breach without a model pid (the converter then
// writes "0") or an alert without any id gets "<kind>:unknown", the same fallback the
// converters use for Antigena and AI Analyst records without an action or summariser, so no
// line carries a fake pid 0.
func signatureID(a *alert.Alert) string {
	s := strings.TrimSpace(a.SignatureID)
	if s == "" || (a.Kind == alert.KindBreach && a.Model.PID == 0 && s == "0") {
		return unknownSignature(a.Kind)
	}
	return s
}

func unknownSignature(kind string) string {
	if kind == "" {
		kind = "darktrace"
	}
	return kind + ":unknown"
}

// appendSlashName writes a Darktrace model name the way Darktrace's own CEF does, with t
// applied: "::" becomes "/", so content that splits the Name on "/" finds the model's category
// first and its name last. (Done while writing: a replaced copy would allocate per line.)
func appendSlashName(dst []byte, s string, t *escTable) []byte {
	for {
		i := strings.Index(s, "::")
		if i < 0 {
			return appendEsc(dst, s, t)
		}
		dst = appendEsc(dst, s[:i], t)
		dst = append(dst, '/')
		s = s[i+2:]
	}
}

// hasPriority reports whether a carries a model priority (breaches only; 0 is a real one).
func hasPriority(a *alert.Alert) bool {
	return a.Kind == alert.KindBreach && a.Priority != alert.NoPriority && a.Priority >= 0
}

// labelPairs returns the appliance labels as alternating key, value, sorted by key so that
// every line of an appliance writes them in the same order.
func labelPairs(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.TrimSpace(k) != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}

// pairText is a label key or value inside a flat "k=v,k2=v2" value: ',' and '=' would make
// it ambiguous, so they become spaces, and edges are trimmed.
func pairText(s, space string) string {
	if strings.ContainsAny(s, ",=") {
		s = strings.Map(func(r rune) rune {
			if r == ',' || r == '=' {
				return ' '
			}
			return r
		}, s)
	}
	return trimSpace(s, space)
}

// appendNumber appends an int or a score field, written alike by every format.
func appendNumber(dst []byte, f *field) []byte {
	if f.kind == kFloat {
		return strconv.AppendFloat(dst, roundScore(f.f), 'f', -1, 64)
	}
	return strconv.AppendInt(dst, f.n, 10)
}

// appendItems writes list items comma-separated with t applied, trimmed, empty ones skipped.
// With pairs the items alternate key and value and are written "k=v,k2=v2"; a pair whose key
// is empty after cleaning is skipped.
func appendItems(dst []byte, l []string, t *escTable, space string, pairs bool) []byte {
	step := 1
	if pairs {
		step = 2
	}
	first := true
	for i := 0; i+step <= len(l); i += step {
		var item string
		if pairs {
			item = pairText(l[i], space)
		} else {
			item = trimSpace(l[i], space)
		}
		if item == "" {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendEsc(dst, item, t)
		if pairs {
			dst = appendEsc(dst, "=", t)
			dst = appendEsc(dst, pairText(l[i+1], space), t)
		}
	}
	return dst
}

// rank assigns trim ranks from order (1 = trimmed first): order names fields by key, or
// "group.key" for JSON sub-object members. Fields not named are never trimmed. It runs only
// for lines that need trimming, so ordinary lines do not pay for the lookups.
func (r *record) rank(order []string) {
	for i := range r.fields() {
		f := &r.f[i]
		name := f.key
		if f.group != "" {
			name = f.group + "." + f.key
		}
		f.trim = 0
		for j, o := range order {
			if o == name {
				f.trim = int8(j + 1)
				break
			}
		}
	}
}

// ackTime returns the acknowledgement time in Unix ms, 0 when unknown.
func ackTime(a *alert.Alert) int64 {
	if a.Ack == nil || a.Ack.Time.IsZero() {
		return 0
	}
	return a.Ack.Time.UnixMilli()
}

// groupAckLabels adds the key=value fields CEF and LEEF share: the AI Analyst group, the
// acknowledgement (its time as ackTime of kind ackKind: epoch ms in CEF, a devTime-style
// timestamp in LEEF) and the appliance labels. ts trims the format's space characters.
func (r *record) groupAckLabels(a *alert.Alert, ackKind kind, ts func(string) string) {
	if g := a.Group; g != nil {
		r.str("groupingId", ts(g.ID), 0)
		if g.Score >= 0 {
			r.add(field{key: "groupScore", kind: kFloat, f: g.Score})
		}
		r.str("groupCategory", ts(g.Category), 0)
	}
	if a.Ack != nil {
		r.str("acknowledged", "true", 0)
		if ms := ackTime(a); ms != 0 {
			r.add(field{key: "ackTime", kind: ackKind, n: ms})
		}
		r.str("ackUser", ts(a.Ack.User), 0)
	}
	if l := labelPairs(a.Labels); len(l) > 0 {
		r.add(field{key: "applianceLabels", kind: kPairs, l: l})
	}
}
