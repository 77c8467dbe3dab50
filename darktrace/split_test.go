package darktrace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestDecodeElements(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr bool
	}{
		{"empty array", ` [ ] `, nil, false},
		{"array", "[1, \"a\", {\"b\": [2]}, null]\n", []string{`1`, `"a"`, `{"b": [2]}`, `null`}, false},
		{"object", ` {"pbid": 1} `, []string{`{"pbid": 1}`}, false},
		{"nested arrays", `[[1],[2]]`, []string{`[1]`, `[2]`}, false},
		{"truncated", `[1, 2`, []string{`1`, `2`}, true},
		{"truncated object", `{"a":`, nil, true},
		{"two objects", `{"a":1}{"b":2}`, nil, true},
		{"missing comma", `[1 2]`, []string{`1`}, true},
		{"trailing comma", `[1,]`, []string{`1`}, true},
		{"trailing garbage", `[1] x`, []string{`1`}, true},
		{"scalar", `42`, nil, true},
		{"empty", ``, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			n, _, err := decodeElements(bufio.NewReader(bytes.NewReader([]byte(tc.in))), func(raw []byte) error {
				got = append(got, string(raw))
				return nil
			}, nil, 0, 0, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if n != len(got) || len(got) != len(tc.want) {
				t.Fatalf("n=%d got %q, want %q", n, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("element %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzDecodeElements: decoding succeeds exactly when the body is one valid JSON array or
// object, and every element handed out is valid JSON on its own. Cutting strings or arrays
// changes nothing but them: the same elements are delivered and the same ones found malformed,
// cut or not, whatever falls at or past the cut, read whole or a byte at a time.
func FuzzDecodeElements(f *testing.F) {
	for _, s := range []string{`[]`, `[{"pbid":1},{"pbid":"x"}]`, `{"a":[1,2]}`, `[1,`, `[1]]`, `"s"`, ` [ {} , [] ] `, `[{"a":"\u00e9\"\\"}]`,
		"[{\"a\":\"abcd\x01\"},2]", `[{"a":"abcd\q"},2]`, `[{"a":"abcd\u12g4"},2]`, `["abcdé\u00e9\n"]`,
		`[[, 0  ]0`, `{"a":[1,[2,3],{"b":[4,5]},"c"]}`, `[[1,2,3}]`} {
		f.Add([]byte(s))
	}
	// outcome is what decodeElements made of in: "+" per element delivered, "!" per malformed
	// one, then the error.
	outcome := func(t *testing.T, in []byte, limit, arrLimit int, oneByte bool) (string, error) {
		var r io.Reader = bytes.NewReader(in)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		var seen strings.Builder
		_, _, err := decodeElements(bufio.NewReaderSize(r, 16), func(raw []byte) error {
			if !json.Valid(raw) {
				t.Fatalf("element %q cut at %d is not valid JSON", raw, limit)
			}
			seen.WriteByte('+')
			return nil
		}, func(int, []byte, error) { seen.WriteByte('!') }, limit, arrLimit, nil)
		return seen.String(), err
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _, err := decodeElements(bufio.NewReader(bytes.NewReader(in)), func(raw []byte) error {
			if !json.Valid(raw) {
				t.Fatalf("element %q is not valid JSON", raw)
			}
			return nil
		}, nil, 0, 0, nil)
		trimmed := bytes.TrimLeft(in, " \t\r\n")
		container := len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{')
		if want := json.Valid(in) && container; (err == nil) != want {
			t.Fatalf("decodeElements(%q, nil) err = %v; json.Valid && container = %v", in, err, want)
		}
		want, wantErr := outcome(t, in, 0, 0, false)
		for _, limits := range [][2]int{{1, 0}, {3, 0}, {0, 1}, {0, 4}, {1, 1}, {3, 4}} {
			for _, oneByte := range []bool{false, true} {
				if got, gotErr := outcome(t, in, limits[0], limits[1], oneByte); got != want || (gotErr == nil) != (wantErr == nil) {
					t.Fatalf("decodeElements(%q) strings cut at %d, arrays at %d (one byte a read %v): %q, err %v; uncut %q, err %v",
						in, limits[0], limits[1], oneByte, got, gotErr, want, wantErr)
				}
			}
		}
	})
}

// TestLongStringsAreCut: a string past the limit is cut before a whole character, never inside
// an escape, and ends in "…"; the rest of the record (its id) is kept, and the bytes dropped
// are reported with the element's position.
func TestLongStringsAreCut(t *testing.T) {
	long := strings.Repeat("a", 100)
	in := `[{"pbid":1,"d":"short"},{"pbid":7,"model":{"description":"` + long + `"},"e":"12345678\u00e9\u00e9","n":"12345678901éé"}]`
	var got []string
	type cut struct {
		index   int
		dropped int64
	}
	var cuts []cut
	_, _, err := decodeElements(bufio.NewReader(strings.NewReader(in)), func(raw []byte) error {
		got = append(got, string(raw))
		return nil
	}, nil, 12, 0, func(index int, raw []byte, c cutCount) { cuts = append(cuts, cut{index, c.stringBytes}) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"pbid":1,"d":"short"}`,
		`{"pbid":7,"model":{"description":"aaaaaaaaaaaa…"},"e":"12345678\u00e9…","n":"12345678901é…"}`}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if len(cuts) != 1 || cuts[0].index != 1 || cuts[0].dropped != 88+6+2 {
		t.Fatalf("cuts = %+v, want element 1 with 96 bytes dropped", cuts)
	}
}

// cutLimit is where TestCutStringsAreChecked cuts strings; the prefix of its strings reaches
// past it, so every tail in its table falls after the cut.
const cutLimit = 16

// splitAll runs decodeElements over body with strings cut at limit and arrays at arrLimit
// (0: not cut), through a
// reader that hands over oneByte bytes at a time when asked to (so an escape falls across
// reads), and returns what reached fn, what was reported malformed, the cuts and the error.
func splitAll(body string, limit, arrLimit int, oneByte bool) (got []string, bad []int, cuts map[int]cutCount, err error) {
	var r io.Reader = strings.NewReader(body)
	if oneByte {
		r = iotest.OneByteReader(r)
	}
	cuts = map[int]cutCount{}
	_, _, err = decodeElements(bufio.NewReaderSize(r, 16), func(raw []byte) error {
		got = append(got, string(raw))
		return nil
	}, func(index int, _ []byte, _ error) { bad = append(bad, index) }, limit, arrLimit,
		func(index int, _ []byte, cut cutCount) { cuts[index] = cut })
	return got, bad, cuts, err
}

// TestCutStringsAreChecked: the part of a string dropped past the cut obeys the rules of the
// part kept, so a record is malformed or not whether or not one of its strings was cut. Each
// invalid tail below lies past the cut: json.Valid rejects the record, and so must the splitter,
// cut or not, skipping it alone and delivering its neighbours (issue 18 item 7). Before, the
// dropped bytes were never checked and every one of these records was delivered when cut.
// Valid tails (escapes, a multi-byte character, \uXXXX or \" across the cut) are still
// delivered, cut before a whole character; a run of UTF-8 continuation bytes, which has no
// character boundary, is cut too (before, it was kept whole, however long).
func TestCutStringsAreChecked(t *testing.T) {
	prefix := strings.Repeat("a", cutLimit+3)
	invalid := []struct{ name, tail string }{
		{"control byte first dropped", "\x01"},
		{"control byte", "xyz\x1fxyz"},
		{"NUL", "\x00"},
		{"raw newline", "line\nline"},
		{"raw tab", "\t"},
		{"invalid escape", `\q`},
		{"escaped x", `\x41`},
		{"escaped apostrophe", `\'`},
		{"\\u non-hex digit", `\u12g4`},
		{"\\u non-hex first digit", `\uZ000`},
		{"\\u with two digits", `\u12 x`},
		{"\\U upper case", `\U00e9`},
		{"after valid escapes", `\"\\\/\b\f\n\r\t\u00e9` + "\x02"},
		{"after multi-byte UTF-8", "éé😀\x7f\x03"},
		{"far past the cut", strings.Repeat("b", 5000) + "\x1e" + strings.Repeat("c", 100)},
	}
	rec := func(pbid int, d string) string { return fmt.Sprintf(`{"pbid":%d,"d":"%s","x":1}`, pbid, d) }
	for _, tc := range invalid {
		record := rec(2, prefix+tc.tail)
		if json.Valid([]byte(record)) {
			t.Fatalf("%s: the table is wrong, json.Valid accepts %q", tc.name, record)
		}
		body := "[" + rec(1, "one") + "," + record + "," + rec(3, "three") + "]"
		for _, limit := range []int{0, cutLimit} {
			for _, oneByte := range []bool{false, true} {
				got, bad, cuts, err := splitAll(body, limit, 0, oneByte)
				if err != nil || len(got) != 2 || got[0] != rec(1, "one") || got[1] != rec(3, "three") ||
					len(bad) != 1 || bad[0] != 1 || len(cuts) != 0 {
					t.Errorf("%s (limit %d, one byte a read %v): err %v, delivered %q, malformed %v, cut %v; want the neighbours delivered and element 1 malformed",
						tc.name, limit, oneByte, err, got, bad, cuts)
				}
			}
		}
	}

	valid := []struct{ name, s string }{
		{"escapes past the cut", prefix + `\"\\\/\b\f\n\r\t\u00e9\u00E9\ud83d\ude00end`},
		{"é across the cut", strings.Repeat("a", cutLimit-1) + "é" + "bbb"},
		{"😀 across the cut", strings.Repeat("a", cutLimit-2) + "😀" + "bbb"},
		{"\\u00e9 across the cut", strings.Repeat("a", cutLimit-3) + `\u00e9` + "bbb"},
		{"\\\" across the cut", strings.Repeat("a", cutLimit-1) + `\"` + "bbb"},
		{"\\\\ then quote", strings.Repeat("a", cutLimit-1) + `\\\\\"` + "\\\\"},
		{"invalid UTF-8, as json.Valid takes it", prefix + "\xff\xfe\xc3("},
		{"continuation bytes across the cut", strings.Repeat("a", cutLimit-1) + strings.Repeat("\x80", 5000)},
		{"continuation bytes from the start", strings.Repeat("\xbf", 5000)},
		{"long and plain", strings.Repeat("é", 5000)},
	}
	for _, tc := range valid {
		record := rec(2, tc.s)
		if !json.Valid([]byte(record)) {
			t.Fatalf("%s: the table is wrong, json.Valid rejects %q", tc.name, record)
		}
		body := "[" + rec(1, "one") + "," + record + "," + rec(3, "three") + "]"
		for _, oneByte := range []bool{false, true} {
			got, bad, cuts, err := splitAll(body, cutLimit, 0, oneByte)
			if err != nil || len(got) != 3 || len(bad) != 0 {
				t.Errorf("%s (one byte a read %v): err %v, delivered %q, malformed %v; want all three delivered",
					tc.name, oneByte, err, got, bad)
				continue
			}
			// The kept part is a prefix of the raw string, at least cutLimit bytes, ending
			// before a whole character (not inside an escape or a UTF-8 sequence), and the
			// bytes dropped are the rest of it.
			// The longest character that can straddle the cut is \uXXXX, from the byte before
			// it: past that, a string is cut whatever comes (invalid UTF-8 has no character to
			// keep whole).
			kept, ok := strings.CutSuffix(strings.TrimPrefix(got[1], `{"pbid":2,"d":"`), ellipsis+`","x":1}`)
			if !ok || !strings.HasPrefix(tc.s, kept) || len(kept) < cutLimit || len(kept) > cutLimit+5 {
				t.Errorf("%s: delivered %q, want a prefix of %d to %d bytes of %q ending in %q",
					tc.name, got[1], cutLimit, cutLimit+5, tc.s, ellipsis)
				continue
			}
			if rest := tc.s[len(kept):]; utf8.Valid([]byte(tc.s)) && !utf8.ValidString(kept) ||
				!json.Valid([]byte(`"`+kept+`"`)) || !json.Valid([]byte(`"`+rest+`"`)) {
				t.Errorf("%s: cut inside a character: kept %q, dropped %q", tc.name, kept, rest)
			}
			if cuts[1].stringBytes != int64(len(tc.s)-len(kept)) || len(cuts) != 1 {
				t.Errorf("%s: cuts %v, want element 1 with %d bytes dropped", tc.name, cuts, len(tc.s)-len(kept))
			}
		}
	}
}
