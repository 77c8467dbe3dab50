// Package jsontext appends JSON string literals without reflection, for the hand-written JSON
// writers on hot paths (the HEC envelope, the simulator's responses).
package jsontext

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s as a JSON string literal: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD (a receiver that checks UTF-8 rejects the whole
// request otherwise).
func Append(dst []byte, s string) []byte { return appendString(dst, s, false) }

// AppendKeepingBytes appends s as Append does but copies bytes >= 0x80 as they are, invalid
// UTF-8 included: the simulator answers as real appliances have been seen to, and clients
// must survive it.
func AppendKeepingBytes(dst []byte, s string) []byte { return appendString(dst, s, true) }

func appendString(dst []byte, s string, keepBytes bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && (c < utf8.RuneSelf || keepBytes) {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
