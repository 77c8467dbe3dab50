package formatter

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/dtforward/dtforward/alert"
)

// kind is how a field's value is stored and rendered.
type kind uint8

const (
	kStr   kind = iota // s
	kInt               // n
	kFloat             // f
	kTime              // n, Unix milliseconds (alerts carry millisecond times)
	kList              // l (comma-joined in CEF/LEEF, an array in JSON)
	kBool              // n != 0
	// kPairs is l as alternating key, value: "k=v,k2=v2" in CEF/LEEF (',' and '=' inside a
	// key or value become spaces there), an object in JSON.
	kPairs
)

// field is one output key of a record. Formatters fill a fixed array of them per alert (no
// allocation) and render it; trimming shortens or drops fields and renders again.
type field struct {
	key   string // output key
	label string // CEF custom-field label (csN/cnN/cfpN), written as <key>Label=<label>
	group string // JSON sub-object the key lives in ("" = top level)
	kind  kind
	s     string
	n     int64
	f     float64
	l     []string
	cut   string // list items are trimmed of these characters; all-empty lists are omitted
	slash bool   // CEF: a model name, written with "::" as "/"
	// trim is the field's place in the trimming order, 1 = trimmed first; 0 = never trimmed.
	trim    int8
	trimmed bool
}

// empty reports whether the field is omitted from the output.
func (f *field) empty() bool {
	switch f.kind {
	case kStr:
		return f.s == ""
	case kPairs:
		return len(f.l) == 0
	case kList:
		for _, s := range f.l {
			if trimSpace(s, f.cut) != "" {
				return false
			}
		}
		return true
	}
	return false
}

const maxFields = 56

// record is the field list of one alert; a is the alert itself, for header values. order is
// the format's trimming order, applied to the fields only when a line needs trimming.
type record struct {
	f     [maxFields]field
	n     int
	a     *alert.Alert
	order []string
}

// records recycles records: a record is a few KiB, too big to build per alert without
// allocating once it is handed to a renderer.
var records = sync.Pool{New: func() any { return new(record) }}

func getRecord(a *alert.Alert) *record {
	r := records.Get().(*record)
	r.a = a
	return r
}

// putRecord clears what the record references (alert strings) and recycles it.
func putRecord(r *record) {
	clear(r.f[:r.n])
	r.n = 0
	r.a = nil
	r.order = nil
	records.Put(r)
}

func (r *record) add(f field) *field {
	r.f[r.n] = f
	r.n++
	return &r.f[r.n-1]
}

func (r *record) str(key, s string, trim int8) {
	if s != "" {
		r.add(field{key: key, kind: kStr, s: s, trim: trim})
	}
}

func (r *record) fields() []field { return r.f[:r.n] }

// trimmedKeys returns the keys of trimmed fields in trimming order, comma-joined. The list
// stops at markerMax bytes with "..." (the keys are alphanumeric, so "..." cannot be one):
// a hostile record can have every free-text field trimmed, and the full list would then not
// fit the smallest line limit next to the fields that are never trimmed.
func (r *record) trimmedKeys(dst []byte) []byte {
	start := len(dst)
	first := true
	for rank := int8(1); rank < maxFields; rank++ {
		for i := range r.fields() {
			f := &r.f[i]
			if f.trim == rank && f.trimmed {
				if len(dst)-start+1+len(f.key) > markerMax-len(markerMore) {
					return append(dst, markerMore...)
				}
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(dst, f.key...)
			}
		}
	}
	return dst
}

// markerMax bounds the trimmed-keys list; markerMore ends a list cut there.
const (
	markerMax  = 100
	markerMore = ",..."
)

func (r *record) anyTrimmed() bool {
	for i := range r.fields() {
		if r.f[i].trimmed {
			return true
		}
	}
	return false
}

// ErrTooLong is returned (wrapped) when an alert does not fit Options.MaxBytes even with every
// trimmable field removed; only an unreasonably small limit gets there.
var ErrTooLong = errors.New("line longer than the size limit after trimming")

// renderer is implemented by each line format over a record.
type renderer interface {
	render(dst []byte, r *record) []byte
	// valueLen is the rendered width of a string value, cut the longest prefix of it whose
	// rendered width fits budget (never splitting a rune or an escape sequence).
	valueLen(s string) int
	cut(s string, budget int) string
}

// fit renders r, then, while the line is longer than max bytes, trims fields in their trim
// order: a string field is shortened by the excess (or dropped when that leaves nothing), a
// list is dropped whole. Trimmed fields are marked so the renderer can flag the line.
func fit(dst []byte, r *record, max int, rn renderer) ([]byte, error) {
	start := len(dst)
	if r.anyTrimmed() {
		r.rank(r.order) // a header field cut at its own limit: the marker lists it
	}
	out := rn.render(dst, r)
	if max <= 0 || len(out)-start <= max {
		return out, nil
	}
	r.rank(r.order)
	// cur is the line length: exact after a render; in between it is estimated from value
	// widths, and slack bounds the estimate's error (keys, labels and separators of dropped
	// fields, marker growth). A render is skipped only while the line is surely still too long,
	// which saves re-rendering hostile records field by field; a partial cut always starts
	// from an exact length so trimming stays tight.
	cur, slack := len(out)-start, 0
	for rank := int8(1); rank < maxFields; {
		f := r.byRank(rank)
		if f == nil || f.empty() {
			rank++
			continue
		}
		if f.kind == kStr {
			w := rn.valueLen(f.s)
			if slack > 0 && w-(cur-max) > -slack {
				// This field might be cut rather than dropped: measure first.
				out = rn.render(dst[:start], r)
				cur, slack = len(out)-start, 0
				if cur <= max {
					return out, nil
				}
			}
			f.trimmed = true
			if keep := w - (cur - max); keep > 0 {
				f.s = rn.cut(f.s, keep)
			} else {
				f.s = ""
			}
			cur -= w - rn.valueLen(f.s)
		} else {
			f.trimmed = true
			for _, s := range f.l {
				cur -= rn.valueLen(s) + 1
			}
			f.l = nil
		}
		slack += renderSlack
		if cur-slack > max {
			continue
		}
		out = rn.render(dst[:start], r)
		cur, slack = len(out)-start, 0
		if cur <= max {
			return out, nil
		}
	}
	out = rn.render(dst[:start], r)
	if len(out)-start <= max {
		return out, nil
	}
	return dst[:start], fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(out)-start, max)
}

// renderSlack bounds what dropping one field saves beyond its value (key, label, separators)
// and what one more key adds to the trimmed marker.
const renderSlack = 64

func (r *record) byRank(rank int8) *field {
	for i := range r.fields() {
		if r.f[i].trim == rank {
			return &r.f[i]
		}
	}
	return nil
}

// trimSpace removes leading and trailing spaces and tabs (and, for LEEF, line breaks, which
// become spaces there): parsers disagree on whether they belong to a value.
// (strings.Trim builds a set per call; this is on the per-alert hot path.)
func trimSpace(s string, cutset string) string {
	for len(s) > 0 && inSet(s[0], cutset) {
		s = s[1:]
	}
	return trimRight(s, cutset)
}

func trimRight(s string, cutset string) string {
	for len(s) > 0 && inSet(s[len(s)-1], cutset) {
		s = s[:len(s)-1]
	}
	return s
}

// inSet is strings.IndexByte(set, c) >= 0 for the 2–4 byte sets used here, without the call.
func inSet(c byte, set string) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == c {
			return true
		}
	}
	return false
}

// finite maps NaN and ±Inf (which JSON cannot carry) to 0.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// appendTimeMillis writes Unix milliseconds as yyyy-MM-ddTHH:mm:ss.SSS in UTC followed by
// zone ("Z" for RFC 3339, "+0000" for LEEF's SimpleDateFormat Z). time.AppendFormat does the
// same at several times the cost, and this runs for every line.
func appendTimeMillis(dst []byte, ms int64, zone string) []byte {
	t := time.UnixMilli(ms).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000"+zone)
	}
	dst = append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.')
	frac := int(t.Nanosecond() / 1e6)
	dst = append(dst, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return append(dst, zone...)
}
