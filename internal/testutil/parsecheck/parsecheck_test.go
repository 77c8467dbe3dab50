package parsecheck_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dtforward/dtforward/internal/testutil/parsecheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The harness must see what a SIEM would see, including the damage of bad output; these lines
// are deliberately wrong, so the parsers have to report forged keys and rejections.
func TestParseCEF(t *testing.T) {
	got := parsecheck.ParseCEF(t, [][]byte{
		[]byte(`CEF:0|Darktrace|DCIP|1|7|Na\|me|5|rt=1 msg=a\=b\nc act\=x`),
		[]byte(`CEF:0|Darktrace|DCIP|1|7|Name|5|msg=x act=allow`), // unescaped '=': forged act
		[]byte(`CEF:0|Darktrace|DCIP|1|7|Name|5|msg=a\=\\=b`),     // unescaped '=' after \\
		[]byte(`not cef`),
	})
	if c := got[0]; c.Rejected || c.Name != "Na|me" || c.Ext["rt"] != "1" || c.Ext["msg"] != "a=b\nc act=x" || len(c.Ext) != 2 {
		t.Errorf("valid line: %+v", c)
	}
	if c := got[1]; c.Rejected || c.Ext["act"] != "allow" || c.Ext["msg"] != "x" {
		t.Errorf("injection not visible: %+v", c)
	}
	if !got[2].Rejected || !got[3].Rejected {
		t.Errorf("bad lines accepted: %+v %+v", got[2], got[3])
	}
}

func TestParseLEEFAndJSON(t *testing.T) {
	lines := [][]byte{
		[]byte("LEEF:2.0|Darktrace|DCIP|1|7|x09|src=10.0.0.1\tmsg=a b"),
		[]byte("LEEF:1.0|Darktrace|DCIP|1|7|msg=x dst=1.1.1.1\tsev=5"), // kv-parser splits " dst="
		[]byte(`{"a":{"b":"c\u0041"},"n":1}`),
		[]byte(`{"a":`),
	}
	leef := parsecheck.ParseLEEF(t, lines)
	if l := leef[0]; l.Rejected || l.Version != "2.0" || l.Delimiter != "x09" || l.Attrs["src"] != "10.0.0.1" || l.Attrs["msg"] != "a b" {
		t.Errorf("LEEF 2.0: %+v", l)
	}
	if l := leef[1]; l.Rejected || l.Attrs["dst"] != "1.1.1.1" || l.Attrs["msg"] != "x" || l.Raw != "msg=x dst=1.1.1.1\tsev=5" {
		t.Errorf("LEEF 1.0 split not visible: %+v", l)
	}
	if !leef[2].Rejected {
		t.Error("JSON taken as LEEF")
	}
	js := parsecheck.ParseJSON(t, lines)
	if j := js[2]; j.Rejected || j.Fields["a.b"] != "cA" || j.Fields["n"] != "1" {
		t.Errorf("JSON: %+v", j)
	}
	if !js[3].Rejected || !js[0].Rejected {
		t.Errorf("bad JSON accepted: %+v %+v", js[3], js[0])
	}
}
