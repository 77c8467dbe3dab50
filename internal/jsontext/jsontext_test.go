package jsontext

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

var samples = []string{
	"", "plain", `quote " and \ backslash`, "line\nbreak\r\ttab", "nul\x00 bel\x07 esc\x1b del\x7f",
	"ünïcödé 日本 🙂", "bad \xff\xfe\xc3( utf-8 \xed\xa0\x80", "\u2028\u2029",
}

// Append must give what encoding/json reads back as the string with invalid UTF-8 replaced.
func TestAppendRoundTrips(t *testing.T) {
	for _, s := range samples {
		b := Append(nil, s)
		if !utf8.Valid(b) {
			t.Errorf("%q: output is not valid UTF-8: %q", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %s does not parse: %v", s, b, err)
		}
		if want := string([]rune(s)); got != want {
			t.Errorf("%q: read back %q, want %q", s, got, want)
		}
	}
}

// AppendKeepingBytes escapes the same characters but leaves bytes >= 0x80 untouched.
func TestAppendKeepingBytesCopiesHighBytes(t *testing.T) {
	for _, s := range samples {
		b := AppendKeepingBytes(nil, s)
		if valid := Append(nil, s); utf8.ValidString(s) && string(b) != string(valid) {
			t.Errorf("%q: %s differs from Append's %s on valid UTF-8", s, b, valid)
		}
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 && !containsByte(b, s[i]) {
				t.Errorf("%q: byte %#x not copied: %q", s, s[i], b)
			}
		}
	}
	if got := string(AppendKeepingBytes(nil, "a\xffb\n")); got != "\"a\xffb\\n\"" {
		t.Errorf("got %q", got)
	}
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
