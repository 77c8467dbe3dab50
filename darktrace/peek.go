package darktrace

import (
	"bytes"
	"strings"
)

// PeekID returns the id of a record of a source whose records never change under their id
// (Unchanging), read from raw (one record as the splitter hands it over: a valid JSON object)
// without decoding it: a re-read of a flood can then drop what was already delivered at the
// cost of a scan instead of a decode. ok is false whenever the answer could differ from what
// decoding would give, and the record is then decoded as usual: the source's records change,
// the id is not one plain top-level integer, or a top-level key is escaped or spelled like the
// id key in another case (JSON decoders disagree on those).
func (s *Source) PeekID(raw []byte) (id string, ok bool) {
	if !s.Unchanging {
		return "", false
	}
	depth, expectKey, found := 0, false, 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			j := i + 1
			for j < len(raw) && raw[j] != '"' {
				if raw[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(raw) {
				return "", false
			}
			if depth == 1 && expectKey {
				expectKey = false
				key := raw[i+1 : j]
				if bytes.IndexByte(key, '\\') >= 0 {
					return "", false
				}
				if strings.EqualFold(string(key), s.IDKey) {
					if string(key) != s.IDKey {
						return "", false
					}
					v, ok := plainInteger(raw[j+1:])
					if !ok {
						return "", false
					}
					id = v
					found++
				}
			}
			i = j
		case '{', '[':
			depth++
			expectKey = c == '{' && depth == 1
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return id, found == 1
}

// plainInteger reads `: 123` at the start of b (after a key) and returns the digits when the
// value is a positive integer that fits an int64 written without sign, fraction or leading
// zero, followed by the end of the value.
func plainInteger(b []byte) (string, bool) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != ':' {
		return "", false
	}
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 18 || b[0] == '0' || n == len(b) || !bytes.ContainsAny(b[n:n+1], " \t\r\n,}") {
		return "", false
	}
	return string(b[:n]), true
}
