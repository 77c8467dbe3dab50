package formatter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/dtforward/dtforward/alert"
)

// dtJSONFormatter writes the API record as received (Darktrace's own "Syslog JSON" shape),
// compacted, with the record's URL added when it lacks one.
type dtJSONFormatter struct{ max int }

func newDarktraceJSON(o Options) (Formatter, error) { return &dtJSONFormatter{max: o.MaxBytes}, nil }

// Append implements Formatter. a.Raw must be the JSON object as received, which the converters
// guarantee (it is what json.Unmarshal accepted): the grammar is not validated again, but a
// record with mismatched brackets, an unterminated string or a raw CR, LF or NUL is rejected.
// It fails when the alert carries no raw record or the record is not a JSON object.
func (d *dtJSONFormatter) Append(dst []byte, a *alert.Alert) ([]byte, error) {
	raw := a.Raw
	if len(raw) == 0 {
		return dst, errors.New("darktrace-json: alert has no raw record")
	}
	if !utf8.Valid(raw) {
		// One U+FFFD per invalid byte, as encoding/json does when decoding the record (so
		// darktrace-json and the other formats show the same text).
		raw = appendEsc(nil, string(raw), newEscTable())
	}
	start := len(dst)
	var ok bool
	if dst, ok = compactFast(dst, raw); !ok {
		buf := bytes.NewBuffer(dst[:start])
		if err := json.Compact(buf, raw); err != nil {
			return dst[:start], fmt.Errorf("darktrace-json: record is not valid JSON: %w", err)
		}
		dst = buf.Bytes()
	}
	obj := dst[start:]
	if len(obj) < 2 || obj[0] != '{' {
		return dst[:start], errors.New("darktrace-json: record is not a JSON object")
	}
	urlKey := "breachUrl"
	switch a.Kind {
	case alert.KindAIAnalyst:
		urlKey = "incidentEventUrl"
	case alert.KindAntigena:
		urlKey = "" // Darktrace's Antigena records have no URL member
	}
	if urlKey != "" && a.URL != "" && !hasTopKey(obj, urlKey) {
		dst = dst[:len(dst)-1] // drop '}'
		if len(obj) > 2 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, urlKey...)
		dst = append(dst, `":`...)
		dst = appendJSONString(dst, a.URL)
		dst = append(dst, '}')
	}
	// json.Compact keeps U+2028/U+2029 raw; escape them like every other format does.
	dst = escapeLineSeparators(dst, start)
	if d.max > 0 && len(dst)-start > d.max {
		return trimRawJSON(dst, start, d.max, a.Kind)
	}
	return dst, nil
}

// compactFast appends raw without the whitespace between tokens. It is several times faster
// than json.Compact because it does not validate: Raw is what json.Unmarshal accepted when the
// alert was converted. It still reports !ok for anything that cannot be valid compact output
// (unbalanced or mismatched brackets, an unterminated string, a raw CR, LF or NUL), and
// the caller then falls back to json.Compact, which validates and reports the error.
func compactFast(dst, raw []byte) ([]byte, bool) {
	start := len(dst)
	depth := 0
	var stack uint64
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			// The closing quote is the next '"' not escaped by an odd run of backslashes.
			j := i + 1
			for {
				n := bytes.IndexByte(raw[j:], '"')
				if n < 0 {
					return dst[:start], false
				}
				j += n
				bs := 0
				for k := j - 1; k > i && raw[k] == '\\'; k-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
				j++
			}
			dst = append(dst, raw[i:j+1]...)
			i = j
			continue
		case '{', '[':
			// Nesting is tracked as a bit stack (1 = array) so that "[}" is caught; deeper
			// records than 64 levels take the json.Compact path.
			if depth == 64 {
				return dst[:start], false
			}
			stack = stack<<1 | uint64(b2i(c == '['))
			depth++
		case '}', ']':
			if depth == 0 || (stack&1 == 1) != (c == ']') {
				return dst[:start], false
			}
			stack >>= 1
			depth--
		}
		dst = append(dst, c)
	}
	// Valid JSON has no raw control characters in strings; the three that could break a
	// line or a C string are checked here (fast scans) instead of byte by byte above.
	out := dst[start:]
	if depth != 0 || bytes.IndexByte(out, '\n') >= 0 || bytes.IndexByte(out, '\r') >= 0 || bytes.IndexByte(out, 0) >= 0 {
		return dst[:start], false
	}
	return dst, true
}

// escapeLineSeparators rewrites raw U+2028/U+2029 in dst[start:] as \u2028/\u2029 (they can
// only occur inside strings of valid JSON).
func escapeLineSeparators(dst []byte, start int) []byte {
	if !bytes.Contains(dst[start:], []byte("\xe2\x80\xa8")) && !bytes.Contains(dst[start:], []byte("\xe2\x80\xa9")) {
		return dst
	}
	out := make([]byte, 0, len(dst)+16)
	out = append(out, dst[:start]...)
	for i := start; i < len(dst); i++ {
		if dst[i] == 0xe2 && i+2 < len(dst) && dst[i+1] == 0x80 && (dst[i+2] == 0xa8 || dst[i+2] == 0xa9) {
			out = append(out, `\u202`...)
			out = append(out, '8'+dst[i+2]-0xa8)
			i += 2
			continue
		}
		out = append(out, dst[i])
	}
	return out
}

// member is one "key":value pair of a compact JSON object; key is unquoted raw (still escaped).
type member struct {
	key, val []byte
}

// members splits a compact JSON object into its members. obj must be valid compact JSON.
func members(obj []byte) []member {
	var out []member
	i := 1 // after '{'
	for i < len(obj)-1 {
		ks := i
		ke := skipValue(obj, i)
		key := obj[ks+1 : ke-1]
		vs := ke + 1 // after ':'
		ve := skipValue(obj, vs)
		out = append(out, member{key: key, val: obj[vs:ve]})
		i = ve
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
	return out
}

// elements splits a compact JSON array into its elements.
func elements(arr []byte) [][]byte {
	var out [][]byte
	i := 1
	for i < len(arr)-1 {
		e := skipValue(arr, i)
		out = append(out, arr[i:e])
		i = e
		if i < len(arr) && arr[i] == ',' {
			i++
		}
	}
	return out
}

// skipValue returns the index just past the compact JSON value starting at i.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipValue(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}

// hasTopKey reports whether the compact object obj has the member key (unescaped key names
// only, which is how Darktrace writes them).
func hasTopKey(obj []byte, key string) bool {
	for i := 1; i < len(obj)-1; {
		ke := skipValue(obj, i)
		if string(obj[i+1:ke-1]) == key {
			return true
		}
		i = skipValue(obj, ke+1)
		if i < len(obj) && obj[i] == ',' {
			i++
		}
	}
	return false
}

// trimRawJSON shortens the compact record in dst[start:] to max bytes: it removes the logic
// trees (triggeredComponents[].logic, then model.logic), then shortens the free text
// (model.description, summary, detail, message), then drops the bulky arrays
// (triggeredComponents, device.ips, details), and marks the record "trimmed": true. What is
// still too long keeps only its ids and triage fields (idsOnly).
func trimRawJSON(dst []byte, start, max int, kind string) ([]byte, error) {
	obj := append([]byte(nil), dst[start:]...)
	steps := []func([]byte, int) []byte{
		func(o []byte, _ int) []byte { return editArrayMembers(o, "triggeredComponents", "logic") },
		func(o []byte, _ int) []byte {
			return editMember(o, "model", func(v []byte) []byte { return dropMember(v, "logic") })
		},
		func(o []byte, over int) []byte {
			return editMember(o, "model", func(v []byte) []byte { return shortenMember(v, "description", over) })
		},
		func(o []byte, over int) []byte { return shortenMember(o, "summary", over) },
		func(o []byte, over int) []byte { return shortenMember(o, "detail", over) },
		func(o []byte, over int) []byte { return shortenMember(o, "message", over) },
		func(o []byte, _ int) []byte {
			return editMember(o, "model", func(v []byte) []byte { return dropMember(v, "actions") })
		},
		func(o []byte, _ int) []byte { return dropMember(o, "triggeredComponents") },
		func(o []byte, _ int) []byte {
			return editMember(o, "device", func(v []byte) []byte { return dropMember(v, "ips") })
		},
		func(o []byte, _ int) []byte { return dropMember(o, "details") },
		func(o []byte, _ int) []byte { return dropMember(o, "history") },
	}
	// Last resort (hostile records: megabyte hostnames or model names): cap every string
	// value, ever shorter, keeping keys and structure.
	for _, limit := range []int{2048, 512, 128, 32} {
		steps = append(steps, func(o []byte, _ int) []byte { return capStrings(o, limit) })
	}
	const mark = `,"trimmed":true`
	for _, step := range steps {
		obj = step(obj, len(obj)+len(mark)-max)
		if len(obj)+len(mark) <= max {
			break
		}
	}
	if len(obj)+len(mark) > max {
		// Still too long: lists of devices, breaches or tags that no field-wise step may
		// drop. Keep only the ids and triage fields, wherever they are.
		return idsOnly(dst, start, max, kind)
	}
	obj = append(obj[:len(obj)-1], mark+"}"...)
	return append(dst[:start], obj...), nil
}

// idKeys are the members the last-resort record keeps, at any depth: every identifier (of the
// record, its devices, model, group and related breaches) and what a SOC triages on. When
// that is still too long, coreKeys: the identifiers, times, scores and categories alone.
var (
	coreKeys = keySet("pbid", "codeid", "id", "did", "pid", "uuid", "currentGroup", "time", "creationTime",
		"createdAt", "score", "aiaScore", "groupScore", "category", "groupCategory", "priority", "title", "ip",
		"breachUrl", "incidentEventUrl")
	idKeys = keySet(append(slices.Collect(maps.Keys(coreKeys)), "sid", "phid", "timestamp", "start", "expires",
		"threatScore", "name", "modelName", "label", "hostname", "mac", "macaddress", "acknowledged", "username",
		"technique", "techniqueID", "action", "state")...)
)

func keySet(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// idStringCap bounds each kept string: ids are short, a hostile one must not fill the line.
const idStringCap = 256

// idsOnly rewrites the record in dst[start:] keeping only idKeys members (and the objects and
// arrays that lead to them), marked "trimmed":true and "trimmedTo":"ids". It fails (ErrTooLong)
// when even that does not fit max: the caller sets the record aside whole.
func idsOnly(dst []byte, start, max int, kind string) ([]byte, error) {
	const mark = `,"trimmed":true,"trimmedTo":"ids"}`
	var obj []byte
	for _, keys := range []map[string]bool{idKeys, coreKeys} {
		obj, _ = keepIDs(dst[start:], false, keys)
		if len(obj) < 2 || obj[0] != '{' {
			obj = []byte("{}")
		}
		if len(obj) == 2 {
			obj = append(obj[:1], mark[1:]...)
		} else {
			obj = append(obj[:len(obj)-1], mark...)
		}
		if len(obj) <= max {
			return append(dst[:start], obj...), nil
		}
	}
	return dst[:start], fmt.Errorf("darktrace-json %s record: %w: %d > %d bytes with only its ids", kind, ErrTooLong, len(obj), max)
}

// keepIDs returns the compact value v reduced to idKeys members; keep says v is itself the
// value of such a member (scalars are then kept). ok is false when nothing is left.
func keepIDs(v []byte, keep bool, keys map[string]bool) (out []byte, ok bool) {
	if len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '{':
		out = []byte{'{'}
		for _, m := range members(v) {
			val, ok := keepIDs(m.val, keys[string(m.key)], keys)
			if !ok {
				continue
			}
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = append(out, m.key...)
			out = append(out, `":`...)
			out = append(out, val...)
		}
		out = append(out, '}')
		return out, len(out) > 2
	case '[':
		out = []byte{'['}
		for _, e := range elements(v) {
			val, ok := keepIDs(e, keep, keys)
			if !ok {
				continue
			}
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, val...)
		}
		out = append(out, ']')
		return out, len(out) > 2
	case '"':
		if !keep {
			return nil, false
		}
		return capStrings(v, idStringCap), true
	default:
		if !keep || string(v) == "null" {
			return nil, false
		}
		return v, true
	}
}

// capStrings shortens every string value (not key) of the compact JSON v longer than limit
// bytes to at most limit bytes, cutting at a rune boundary outside escape sequences.
func capStrings(v []byte, limit int) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); {
		if v[i] != '"' {
			out = append(out, v[i])
			i++
			continue
		}
		e := skipValue(v, i)
		str := v[i:e]
		if e < len(v) && v[e] == ':' || len(str)-2 <= limit {
			out = append(out, str...)
		} else {
			var s string
			if json.Unmarshal(str, &s) == nil {
				out = appendJSONString(out, cutEsc(s, limit, jsonEsc))
			} else {
				out = append(out, str...)
			}
		}
		i = e
	}
	return out
}

// rebuild writes an object from members.
func rebuild(ms []member) []byte {
	out := []byte{'{'}
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, m.key...)
		out = append(out, `":`...)
		out = append(out, m.val...)
	}
	return append(out, '}')
}

func dropMember(obj []byte, key string) []byte {
	if len(obj) == 0 || obj[0] != '{' {
		return obj
	}
	ms := members(obj)
	out := ms[:0]
	for _, m := range ms {
		if string(m.key) != key {
			out = append(out, m)
		}
	}
	return rebuild(out)
}

func editMember(obj []byte, key string, fn func([]byte) []byte) []byte {
	if len(obj) == 0 || obj[0] != '{' {
		return obj
	}
	ms := members(obj)
	for i := range ms {
		if string(ms[i].key) == key {
			ms[i].val = fn(ms[i].val)
		}
	}
	return rebuild(ms)
}

// editArrayMembers drops key from every object element of the array obj[arrKey].
func editArrayMembers(obj []byte, arrKey, key string) []byte {
	return editMember(obj, arrKey, func(arr []byte) []byte {
		if len(arr) == 0 || arr[0] != '[' {
			return arr
		}
		out := []byte{'['}
		for i, e := range elements(arr) {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, dropMember(e, key)...)
		}
		return append(out, ']')
	})
}

// shortenMember cuts the string obj[key] by at least over bytes, at a rune boundary outside
// any escape sequence.
func shortenMember(obj []byte, key string, over int) []byte {
	return editMember(obj, key, func(v []byte) []byte {
		if len(v) < 2 || v[0] != '"' || over <= 0 {
			return v
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			return v
		}
		keep := len(v) - 2 - over
		if keep <= 0 {
			return []byte(`""`)
		}
		return appendJSONString(nil, cutEsc(s, keep, jsonEsc))
	})
}
