package darktrace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
			}, nil, 0, nil)
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
// object, and every element handed out is valid JSON on its own.
func FuzzDecodeElements(f *testing.F) {
	for _, s := range []string{`[]`, `[{"pbid":1},{"pbid":"x"}]`, `{"a":[1,2]}`, `[1,`, `[1]]`, `"s"`, ` [ {} , [] ] `, `[{"a":"\u00e9\"\\"}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _, err := decodeElements(bufio.NewReader(bytes.NewReader(in)), func(raw []byte) error {
			if !json.Valid(raw) {
				t.Fatalf("element %q is not valid JSON", raw)
			}
			return nil
		}, nil, 0, nil)
		// Strings cut short keep every element valid, whatever falls at the cut.
		for _, limit := range []int{1, 3} {
			_, _, cutErr := decodeElements(bufio.NewReader(bytes.NewReader(in)), func(raw []byte) error {
				if !json.Valid(raw) {
					t.Fatalf("element %q cut at %d is not valid JSON", raw, limit)
				}
				return nil
			}, nil, limit, nil)
			// (A cut may drop an invalid escape and so accept what the uncut body refused.)
			if err == nil && cutErr != nil {
				t.Fatalf("decodeElements(%q) cut at %d: err = %v, uncut %v", in, limit, cutErr, err)
			}
		}
		trimmed := bytes.TrimLeft(in, " \t\r\n")
		container := len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{')
		if want := json.Valid(in) && container; (err == nil) != want {
			t.Fatalf("decodeElements(%q, nil) err = %v; json.Valid && container = %v", in, err, want)
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
	}, nil, 12, func(index int, raw []byte, dropped int64) { cuts = append(cuts, cut{index, dropped}) })
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
