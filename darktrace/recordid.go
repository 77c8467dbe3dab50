package darktrace

import (
	"encoding/json"
	"strings"
)

// recordid.go reads a raw record's id for messages, never trusting it: whatever the record holds,
// the id printed is short and printable.

// elementID reads the top-level pbid, codeid or id of a malformed element with the tolerant
// scanner, which needs no nesting limit.
func elementID(raw []byte) string {
	id := ""
	s := scanner{b: raw}
	s.object(func(k []byte) {
		switch string(k) {
		case "pbid", "codeid", "id":
			if id == "" {
				s.String(&id, "")
			}
		}
	})
	return sanitizeID(id)
}

// RecordID reads pbid, codeid or id from a record that failed to decode or convert, for a log
// line or message; "" when it has none. The value is sanitized and cut short, so a hostile id
// cannot break or flood a log line.
func RecordID(raw []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"pbid", "codeid", "id"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			return sanitizeID(s)
		}
		var n json.Number
		if json.Unmarshal(v, &n) == nil {
			return sanitizeID(n.String())
		}
	}
	return ""
}

// sanitizeID keeps an attacker-controlled id short and printable, so it cannot break a log line.
func sanitizeID(s string) string {
	const max = 64
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
