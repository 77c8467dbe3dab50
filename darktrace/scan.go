// scan.go is a hand-written JSON scanner, kept in one file past 500 lines on purpose: its
// pieces (strings, numbers, literals, skipping, the tolerant typed readers) share invariants on
// s.i that are easiest to check side by side, and decoding is most of dtforward's CPU time.

package darktrace

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads the fields dtforward uses straight from a record's JSON bytes and skips the
// rest without building anything (model logic trees are most of a breach). It is tolerant: a
// value of an unexpected type is converted when it can be (a numeric string where a number was
// expected), skipped otherwise, and noted as an anomaly of that field; it never fails a record
// for a value's type.
//
// Where encoding/json would decode a value into the record types without error, the scanner
// produces exactly what encoding/json produces (TestDecodeMatchesEncodingJSON, FuzzDecode):
// the last of duplicate keys wins, keys also match case-insensitively, null leaves a value as
// it was (zero), strings get encoding/json's escape and invalid-UTF-8 handling, and raw
// fields keep the value's bytes.
//
// The input is expected to be one valid JSON value (the client's splitter and
// alert.SplitRecords check that); on anything else the scanner stops safely and reports
// errSyntax, it never panics or loops.
type scanner struct {
	b     []byte
	i     int
	bad   bool
	anoms []string // fields with an anomaly in this record, once each
}

var errSyntax = errors.New("not a well-formed JSON object")

func (s *scanner) fail() {
	s.bad = true
	s.i = len(s.b)
}

// anomaly notes that field held a value of an unexpected type.
func (s *scanner) anomaly(field string) {
	for _, f := range s.anoms {
		if f == field {
			return
		}
	}
	s.anoms = append(s.anoms, field)
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *scanner) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// object reads an object and calls field with each key; field consumes the value (anything it
// leaves is skipped). It returns false, consuming nothing, when the next value is not an object.
func (s *scanner) object(field func(key []byte)) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for !s.bad {
		if s.peek() != '"' {
			s.fail()
			return true
		}
		key := s.key()
		if s.peek() != ':' {
			s.fail()
			return true
		}
		s.i++
		s.peek()
		start := s.i
		field(key)
		if s.i == start && !s.bad {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			s.fail()
		}
	}
	return true
}

// array reads an array, calling elem for each element (elem consumes it; anything left is
// skipped). It returns false, consuming nothing, when the next value is not an array.
func (s *scanner) array(elem func()) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for !s.bad {
		s.peek()
		start := s.i
		elem()
		if s.i == start && !s.bad {
			s.skip()
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			s.fail()
		}
	}
	return true
}

// key reads an object key; the result aliases the input when it has no escapes.
func (s *scanner) key() []byte {
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch s.b[i] {
		case '"':
			s.i = i + 1
			return s.b[start:i]
		case '\\':
			return []byte(s.slowString(start))
		}
	}
	s.fail()
	return nil
}

// str reads a string value (the next byte is '"').
func (s *scanner) str() string {
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		c := s.b[i]
		if c == '"' {
			s.i = i + 1
			return string(s.b[start:i])
		}
		if c == '\\' || c >= utf8.RuneSelf {
			return s.slowString(start)
		}
	}
	s.fail()
	return ""
}

// slowString finishes a string that has escapes or non-ASCII bytes, starting at its content.
func (s *scanner) slowString(start int) string {
	for i := start; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			i++
		case '"':
			s.i = i + 1
			return unquote(s.b[start:i])
		}
	}
	s.fail()
	return ""
}

// unquote decodes a JSON string's content as encoding/json does: escapes, surrogate pairs (a
// lone surrogate becomes U+FFFD) and each byte of invalid UTF-8 replaced by U+FFFD.
func unquote(c []byte) string {
	out := make([]byte, 0, len(c))
	for r := 0; r < len(c); {
		ch := c[r]
		switch {
		case ch == '\\' && r+1 < len(c):
			e := c[r+1]
			switch e {
			case '"', '\\', '/', '\'':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rr := hex4(c[r:])
				if rr < 0 {
					out = append(out, ch, e)
					r += 2
					continue
				}
				r += 6
				if utf16.IsSurrogate(rr) {
					if dec := utf16.DecodeRune(rr, hex4(c[r:])); dec != unicode.ReplacementChar {
						r += 6
						out = utf8.AppendRune(out, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, rr)
				continue
			default:
				out = append(out, ch, e)
			}
			r += 2
		case ch < utf8.RuneSelf:
			out = append(out, ch)
			r++
		default:
			rr, size := utf8.DecodeRune(c[r:])
			if rr == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, unicode.ReplacementChar)
			} else {
				out = append(out, c[r:r+size]...)
			}
			r += size
		}
	}
	return string(out)
}

// hex4 reads `\uXXXX` at the start of b, -1 when it is not one.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

var literalByte = func() (t [256]bool) {
	for _, c := range []byte("0123456789+-.eEabcdefghijklmnopqrstuvwxyz") {
		t[c] = true
	}
	return t
}()

// literal reads a number, true, false or null.
func (s *scanner) literal() []byte {
	start := s.i
	for s.i < len(s.b) && literalByte[s.b[s.i]] {
		s.i++
	}
	if s.i == start {
		s.fail()
	}
	return s.b[start:s.i]
}

// skip consumes any value.
func (s *scanner) skip() {
	switch s.peek() {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
		s.fail()
	default:
		s.literal()
	}
}

func (s *scanner) skipString() {
	for i := s.i + 1; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			i++
		case '"':
			s.i = i + 1
			return
		}
	}
	s.fail()
}

// raw returns the bytes of the next value (a copy), as json.RawMessage keeps them.
func (s *scanner) raw() []byte {
	s.peek()
	start := s.i
	s.skip()
	return bytes.Clone(s.b[start:s.i])
}

// isNull consumes a null and reports true, or consumes nothing and reports false.
func (s *scanner) isNull() bool {
	if s.peek() == 'n' && s.i+4 <= len(s.b) && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// String reads a string field. A number or bool gives its text; an object or array is skipped.
func (s *scanner) String(dst *string, field string) {
	switch c := s.peek(); c {
	case '"':
		*dst = s.str()
	case 'n':
		if !s.isNull() {
			s.fail()
		}
	case '{', '[':
		s.skip()
		s.anomaly(field)
	default:
		*dst = string(s.literal())
		s.anomaly(field)
	}
}

// Int reads an integer field and reports whether it stored a value. Numeric strings and
// numbers with a fraction or exponent are converted (truncated toward zero); anything else
// leaves dst as it was.
func (s *scanner) Int(dst *int64, field string) bool {
	switch c := s.peek(); c {
	case '"':
		s.anomaly(field)
		if v, ok := parseIntLoose(s.str()); ok {
			*dst = v
			return true
		}
	case 'n':
		if !s.isNull() {
			s.fail()
		}
	case '{', '[', 't', 'f':
		s.skip()
		s.anomaly(field)
	default:
		lit := s.literal()
		if v, ok := parseInt(lit); ok {
			*dst = v
			return true
		}
		s.anomaly(field)
		if v, ok := parseIntLoose(string(lit)); ok {
			*dst = v
			return true
		}
	}
	return false
}

// IntN is Int for int fields.
func (s *scanner) IntN(dst *int, field string) {
	v := int64(*dst)
	s.Int(&v, field)
	*dst = int(v)
}

// parseInt parses a plain JSON integer (no fraction or exponent), false on overflow.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) >= 18 {
		v, err := strconv.ParseInt(string(b), 10, 64)
		return v, err == nil
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseIntLoose reads what an integer can be read from: an integer or a finite number in
// range (truncated), optionally surrounded by spaces.
func parseIntLoose(s string) (int64, bool) {
	if v, ok := parseInt([]byte(trimSpace(s))); ok {
		return v, true
	}
	f, err := strconv.ParseFloat(trimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f >= 1<<63 || f < -(1<<63) {
		return 0, false
	}
	return int64(f), true
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// Bool reads a boolean field; "true"/"false"/"1"/"0" strings and numbers (non-zero is true)
// are converted, objects and arrays skipped.
func (s *scanner) Bool(dst *bool, field string) {
	switch c := s.peek(); c {
	case 't', 'f':
		lit := s.literal()
		switch string(lit) {
		case "true":
			*dst = true
		case "false":
			*dst = false
		default:
			s.fail()
		}
	case 'n':
		if !s.isNull() {
			s.fail()
		}
	case '"':
		if v, err := strconv.ParseBool(trimSpace(s.str())); err == nil {
			*dst = v
		}
		s.anomaly(field)
	case '{', '[':
		s.skip()
		s.anomaly(field)
	default:
		if f, err := strconv.ParseFloat(string(s.literal()), 64); err == nil {
			*dst = f != 0
		}
		s.anomaly(field)
	}
}

// Float reads a FlexFloat: a number, a numeric string ("" is 0) or null (0). Non-finite values,
// non-numeric strings, bools, objects and arrays leave dst as it was.
func (s *scanner) Float(dst *FlexFloat, field string) {
	switch c := s.peek(); c {
	case '"':
		str := s.str()
		if str == "" {
			*dst = 0
			return
		}
		if v, err := strconv.ParseFloat(str, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
			*dst = FlexFloat(v)
			return
		}
		s.anomaly(field)
	case 'n':
		if !s.isNull() {
			s.fail()
		}
		*dst = 0
	case '{', '[', 't', 'f':
		s.skip()
		s.anomaly(field)
	default:
		lit := s.literal()
		if v, ok := parseInt(lit); ok && v > -1<<53 && v < 1<<53 {
			*dst = FlexFloat(v)
			return
		}
		if v, err := strconv.ParseFloat(string(lit), 64); err == nil {
			*dst = FlexFloat(v)
			return
		}
		s.anomaly(field)
	}
}

// FlexInt reads a FlexInt (a FlexFloat truncated).
func (s *scanner) FlexInt(dst *FlexInt, field string) {
	f := FlexFloat(*dst)
	s.Float(&f, field)
	*dst = FlexInt(int64(f))
}

// FlexString reads a FlexString: a string, or the JSON text of any other value (null is "").
func (s *scanner) FlexString(dst *FlexString, field string) {
	switch c := s.peek(); c {
	case '"':
		*dst = FlexString(s.str())
	case 'n':
		if !s.isNull() {
			s.fail()
		}
		*dst = ""
	case '{', '[':
		*dst = FlexString(s.raw())
		s.anomaly(field)
	default:
		*dst = FlexString(s.literal())
	}
}

// Strings reads a []string; null empties it, a non-string element is kept as its text.
func (s *scanner) Strings(dst *[]string, field string) {
	if s.isNull() {
		*dst = nil
		return
	}
	out := []string{}
	ok := s.array(func() {
		v := ""
		s.String(&v, field)
		out = append(out, v)
	})
	if !ok {
		s.skip()
		s.anomaly(field)
		return
	}
	*dst = out
}

// Ints reads an []int.
func (s *scanner) Ints(dst *[]int, field string) {
	if s.isNull() {
		*dst = nil
		return
	}
	out := []int{}
	ok := s.array(func() {
		v := 0
		s.IntN(&v, field)
		out = append(out, v)
	})
	if !ok {
		s.skip()
		s.anomaly(field)
		return
	}
	*dst = out
}

// Object reads an object field with fn; null leaves it as it was, another type is skipped.
func (s *scanner) Object(field string, fn func(key []byte)) {
	if s.isNull() {
		return
	}
	if !s.object(fn) {
		s.skip()
		s.anomaly(field)
	}
}

// objects reads an array of objects into a slice: null empties it, a null element is a zero
// element (as encoding/json), an element of another type is dropped.
func objects[T any](s *scanner, dst *[]T, field string, fn func(v *T, key []byte)) {
	if s.isNull() {
		*dst = nil
		return
	}
	out := []T{}
	ok := s.array(func() {
		var v T
		if s.isNull() {
			out = append(out, v)
			return
		}
		if s.object(func(k []byte) { fn(&v, k) }) {
			out = append(out, v)
			return
		}
		s.skip()
		s.anomaly(field)
	})
	if !ok {
		s.skip()
		s.anomaly(field)
		return
	}
	*dst = out
}

// fold returns the name in names that key matches case-insensitively, as encoding/json
// matches keys when no exact match exists.
func fold(key []byte, names []string) ([]byte, bool) {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return []byte(n), true
		}
	}
	return nil, false
}

// canonical returns the name in names that key matches, exactly or, as encoding/json does,
// case-insensitively; "" when none does. One switch on its result then serves both, rather
// than a switch on the exact key and a second copy of it for the case-folded one.
func canonical(key []byte, names ...string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return n
		}
	}
	return ""
}
