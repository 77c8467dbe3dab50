package formatter

import "unicode/utf8"

// escTable maps each ASCII byte to its replacement in one output context; "" keeps the byte.
// Bytes >= 0x80 are copied when they form valid UTF-8 and replaced by U+FFFD otherwise, in
// every context, so every line is valid UTF-8. plain marks the bytes copied unchanged, so
// appendEsc can skip over runs of ordinary text in a tight loop.
type escTable struct {
	rep   [utf8.RuneSelf]string
	plain [256]bool
}

// newEscTable returns a table that copies every ASCII byte.
func newEscTable() *escTable {
	t := new(escTable)
	for c := 0; c < utf8.RuneSelf; c++ {
		t.plain[c] = true
	}
	return t
}

func (t *escTable) put(c byte, rep string) {
	t.rep[c] = rep
	t.plain[c] = rep == ""
}

const replacementChar = "\uFFFD"

// controls fills every C0 control and DEL except the listed ones with U+FFFD: they have no
// escape in CEF or LEEF, and NUL in particular truncates strings in C-based collectors.
func (t *escTable) controls(except ...byte) *escTable {
	for c := byte(0); c < 0x20; c++ {
		t.put(c, replacementChar)
	}
	t.put(0x7f, replacementChar)
	for _, c := range except {
		t.put(c, "")
	}
	return t
}

func (t *escTable) set(pairs ...string) *escTable {
	for i := 0; i+1 < len(pairs); i += 2 {
		t.put(pairs[i][0], pairs[i+1])
	}
	return t
}

var (
	// cefExtEsc: CEF extension values. Backslash, '=', LF and CR are the only escapes CEF
	// defines for values; '|' is written raw.
	cefExtEsc = newEscTable().controls('\t', '\n', '\r').set(`\`, `\\`, "=", `\=`, "\n", `\n`, "\r", `\r`)
	// cefHdrEsc: CEF header fields. Only '\' and '|' have escapes; line breaks become spaces.
	cefHdrEsc = newEscTable().controls('\t', '\n', '\r').set(`\`, `\\`, "|", `\|`, "\n", " ", "\r", " ")
	// leefValEsc: LEEF attribute values. LEEF has no escapes: the delimiter (TAB) and line breaks
	// become spaces (see leefValue for '=' and quotes).
	leefValEsc = newEscTable().controls().set("\t", " ", "\n", " ", "\r", " ")
	// leefHdrEsc: LEEF header fields: no '|' and no delimiter.
	leefHdrEsc = newEscTable().controls().set("\t", " ", "\n", " ", "\r", " ", "|", " ")
	// jsonEsc: JSON string contents (RFC 8259), compact escapes where JSON has them.
	jsonEsc = jsonTable()
)

func jsonTable() *escTable {
	t := newEscTable()
	const hex = "0123456789abcdef"
	for c := 0; c < 0x20; c++ {
		t.put(byte(c), `\u00`+string(hex[c>>4])+string(hex[c&0xf]))
	}
	t.set(`"`, `\"`, `\`, `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\b", `\b`, "\f", `\f`)
	// \u0000 is valid JSON, but C-based collectors (syslog-ng's json-parser, SC4S) cut the
	// string there; NUL has no meaning in Darktrace text, so it becomes U+FFFD like in CEF.
	t.put(0, replacementChar)
	return t
}

// appendEsc appends s to dst with t applied and invalid UTF-8 replaced.
func appendEsc(dst []byte, s string, t *escTable) []byte {
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && t.plain[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			dst = append(dst, t.rep[c]...)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, replacementChar...)
			i++
			start = i
			continue
		}
		if t == jsonEsc && (r == '\u2028' || r == '\u2029') {
			// Valid JSON, but JavaScript-based consumers treat them as line terminators.
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, byte('8'+r-'\u2028'))
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// escLen returns how many bytes appendEsc would write for s.
func escLen(s string, t *escTable) int {
	n := 0
	for i := 0; i < len(s); {
		w, size := escRuneLen(s[i:], t)
		n += w
		i += size
	}
	return n
}

// escRuneLen returns the output width of the first rune (or invalid byte) of s and its size.
func escRuneLen(s string, t *escTable) (width, size int) {
	c := s[0]
	if c < utf8.RuneSelf {
		if t.plain[c] {
			return 1, 1
		}
		return len(t.rep[c]), 1
	}
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size == 1 {
		return len(replacementChar), 1
	}
	if t == jsonEsc && (r == '\u2028' || r == '\u2029') {
		return 6, size
	}
	return size, size
}

// cutEsc returns the longest prefix of s whose escaped form fits in budget bytes. It cuts only
// between runes, so the result never ends inside a UTF-8 sequence or an escape sequence.
func cutEsc(s string, budget int, t *escTable) string {
	n := 0
	for i := 0; i < len(s); {
		w, size := escRuneLen(s[i:], t)
		if n+w > budget {
			return s[:i]
		}
		n += w
		i += size
	}
	return s
}
