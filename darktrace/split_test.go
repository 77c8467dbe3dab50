package darktrace

import (
	"bufio"
	"bytes"
	"encoding/json"
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
			}, nil)
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
		}, nil)
		trimmed := bytes.TrimLeft(in, " \t\r\n")
		container := len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{')
		if want := json.Valid(in) && container; (err == nil) != want {
			t.Fatalf("decodeElements(%q, nil) err = %v; json.Valid && container = %v", in, err, want)
		}
	})
}
