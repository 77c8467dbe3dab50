package formatter

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/dtforward/dtforward/alert"
)

func TestCompactFast(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"whitespace outside strings", "{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }", true},
		{"escaped quotes and backslashes", `{"a": "x\"y \\", "b" : "\\\"", "c": "\\\\"}`, true},
		{"spaces inside strings kept", `{"a": "  two  spaces  "}`, true},
		{"unicode", `{"a": "é \u2028 ☃"}`, true},
		{"unterminated string", `{"a": "x}`, false},
		{"unbalanced", `{"a": [1}`, false},
		{"mismatched", `{"a": [1}]`, false},
		{"extra close", `{"a":1}}`, false},
		{"raw LF in string", "{\"a\": \"x\ny\"}", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := compactFast([]byte("prefix"), []byte(tc.in))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%q)", ok, tc.ok, got)
			}
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("prefix lost: %q", got)
			}
			var want bytes.Buffer
			if ok && json.Compact(&want, []byte(tc.in)) == nil && string(got[6:]) != want.String() {
				t.Errorf("got %q, want %q", got[6:], want.String())
			}
		})
	}
	// Structural damage and line breaks are rejected even though the fast path does not
	// validate the grammar (Raw is what json.Unmarshal accepted; see Append).
	f, _ := New("darktrace-json", Options{})
	for _, in := range []string{`{"a": [1}`, `{"a": [1}]`, "{\"a\": \"x\ny\"}", `[1,2]`, `"s"`} {
		if _, err := f.Append(nil, testAlert([]byte(in))); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestHasTopKeyAndCapStrings(t *testing.T) {
	obj := []byte(`{"model":{"breachUrl":"nested"},"x":"breachUrl","breachUrlx":1}`)
	if hasTopKey(obj, "breachUrl") {
		t.Error("nested or value match taken as top-level key")
	}
	if !hasTopKey([]byte(`{"a":{"b":[1,{"c":"}"}]},"breachUrl":"u"}`), "breachUrl") {
		t.Error("top-level key missed")
	}
	got := capStrings([]byte(`{"long":"abcdefghij","k":["\u00e9\u00e9\u00e9\u00e9\u00e9"],"abcdefghijkl":1}`), 4)
	if string(got) != `{"long":"abcd","k":["éé"],"abcdefghijkl":1}` || !json.Valid(got) {
		t.Errorf("capStrings: %s", got)
	}
}

func testAlert(raw []byte) *alert.Alert {
	return &alert.Alert{Kind: alert.KindBreach, ID: "1", URL: "https://h/#modelbreach/1", Raw: raw}
}
