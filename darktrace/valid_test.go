package darktrace

import (
	"encoding/json"
	"strings"
	"testing"
)

// validSeeds are the corners of the grammar where a hand-written check can part from
// json.Valid.
var validSeeds = []string{
	``, ` `, `1`, `-`, `-0`, `01`, `-01`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`, `1.5e3x`, `+1`,
	`true`, `tru`, `truex`, `nul`, `null `, `false,`, `"`, `"a`, `"\u00e9"`, `"\u00g9"`, `"\x"`,
	`"\/\b\f\n\r\t\"\\"`, "\"a\tb\"", "\"\xff\xfe\"", `""`, `{}`, `[]`, `{ }`, `[ ]`, `{]`, `[}`,
	`{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a":1 "b":2}`, `{1:2}`, `[1 2]`, `[[[]]]`,
	`[{"a":[{"b":null}]},true]`, `{"a":1}{"b":2}`, ` {"a" : [ 1 , -2.5e-3 , "x" ] } `, `[1]]`,
	"\t[\r\n1\n]\n", `{"a":{"b":{"c":[1,{"d":"e"}]}}}`, `[` + `"` + strings.Repeat("x", 100) + `"]`,
}

// FuzzValidJSON: validJSON and json.Valid agree on every input.
func FuzzValidJSON(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validJSON(in), json.Valid(in); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", in, got, want)
		}
	})
}

// TestValidJSONDepth: encoding/json's nesting limit holds for arrays and objects alike.
func TestValidJSONDepth(t *testing.T) {
	for _, depth := range []int{maxNesting - 1, maxNesting, maxNesting + 1, 3 * maxNesting} {
		for _, open := range []string{`[`, `{"k":`} {
			close := map[string]string{`[`: `]`, `{"k":`: `}`}[open]
			in := []byte(strings.Repeat(open, depth) + `1` + strings.Repeat(close, depth))
			if got, want := validJSON(in), json.Valid(in); got != want {
				t.Errorf("depth %d of %s: validJSON = %v, json.Valid = %v", depth, open, got, want)
			}
		}
	}
}
