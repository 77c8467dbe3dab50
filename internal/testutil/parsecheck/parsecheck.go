// Package parsecheck runs independent, third-party parsers over dtforward's output lines in
// tests: liblognorm's CEF parser (lognormalizer, as used by rsyslog's mmnormalize) for CEF and
// syslog-ng's csv-parser()+kv-parser() for LEEF and json-parser() for JSON. Each function starts
// its tool once for a whole batch of lines, so a suite can check thousands of lines in about a
// second. The tools are located with internal/testutil/testtools: missing tools skip the test locally
// and fail it in CI.
package parsecheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// toolTimeout bounds one parser run; a hung tool fails the test instead of the whole suite.
const toolTimeout = 60 * time.Second

// CEF is one CEF line as liblognorm parsed it; values are unescaped.
type CEF struct {
	Vendor, Product, Version, SignatureID, Name, Severity string
	Ext                                                   map[string]string
	// Rejected is true when liblognorm could not parse the line.
	Rejected bool
}

// ParseCEF parses lines (bare CEF payloads, no syslog header) with lognormalizer's "cef" motif.
// It works around liblognorm 2.0.6 issue #363 (the first extension key loses its first
// character unless a space follows the last header '|') by inserting that space, which
// changes no parsed value.
func ParseCEF(t testing.TB, lines [][]byte) []CEF {
	t.Helper()
	bin := testtools.FindLognormalizer(t)
	dir := t.TempDir()
	rb := filepath.Join(dir, "cef.rulebase")
	if err := os.WriteFile(rb, []byte("version=2\nrule=:%cef:cef%\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for _, l := range lines {
		if end := CEFHeaderEnd(l); end >= 0 && (end+1 >= len(l) || l[end+1] != ' ') {
			in.Write(l[:end+1])
			in.WriteByte(' ')
			in.Write(l[end+1:])
		} else {
			in.Write(l)
		}
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	out := run(t, ctx, bin, &in, "-r", rb, "-e", "json")
	outLines := splitLines(out)
	if len(outLines) != len(lines) {
		t.Fatalf("lognormalizer returned %d lines for %d inputs", len(outLines), len(lines))
	}
	res := make([]CEF, len(lines))
	for i, ol := range outLines {
		var o struct {
			CEF *struct {
				DeviceVendor, DeviceProduct, DeviceVersion, SignatureID, Name, Severity string
				Extensions                                                              map[string]string
			} `json:"cef"`
		}
		if err := json.Unmarshal(ol, &o); err != nil {
			t.Fatalf("lognormalizer output line %d: %v: %s", i+1, err, ol)
		}
		if o.CEF == nil {
			res[i].Rejected = true
			continue
		}
		c := o.CEF
		res[i] = CEF{Vendor: c.DeviceVendor, Product: c.DeviceProduct, Version: c.DeviceVersion,
			SignatureID: c.SignatureID, Name: c.Name, Severity: c.Severity, Ext: c.Extensions}
		if res[i].Ext == nil {
			res[i].Ext = map[string]string{}
		}
	}
	return res
}

// CEFHeaderEnd returns the index of the 7th unescaped '|' of a CEF line, or -1.
func CEFHeaderEnd(l []byte) int {
	n := 0
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '\\':
			i++
		case '|':
			n++
			if n == 7 {
				return i
			}
		}
	}
	return -1
}

// LEEF is one LEEF line as syslog-ng's csv-parser (header) and kv-parser (attributes) read it.
type LEEF struct {
	Version, Vendor, Product, ProductVersion, EventID string
	Delimiter                                         string // LEEF 2.0 delimiter field as written
	Attrs                                             map[string]string
	// Raw is the attribute part (after the header), for literal splitting by the caller.
	Raw string
	// Rejected is true when the header could not be split.
	Rejected bool
}

// JSON is one JSON line as syslog-ng's json-parser flattened it: nested keys joined with '.',
// arrays joined with ',', numbers re-rendered by syslog-ng. Rejected lines have Rejected set.
type JSON struct {
	Fields   map[string]string
	Rejected bool
}

// ParseLEEF parses bare LEEF 1.0 (TAB-delimited) and LEEF 2.0 lines whose delimiter field is
// "x09" with one syslog-ng run.
func ParseLEEF(t testing.TB, lines [][]byte) []LEEF {
	t.Helper()
	recs := runSyslogNG(t, lines)
	res := make([]LEEF, len(lines))
	for i, r := range recs {
		if r["cc.ok"] != "leef" {
			res[i].Rejected = true
			continue
		}
		l := LEEF{Version: strings.TrimPrefix(r["leef.version"], "LEEF:"), Vendor: r["leef.vendor"],
			Product: r["leef.product"], ProductVersion: r["leef.pv"], EventID: r["leef.eid"],
			Delimiter: r["leef.delim"], Raw: r["leef.raw"], Attrs: map[string]string{}}
		for k, v := range r {
			if a, ok := strings.CutPrefix(k, "la."); ok {
				l.Attrs[a] = v
			}
		}
		res[i] = l
	}
	return res
}

// ParseJSON parses JSON lines with syslog-ng's json-parser.
func ParseJSON(t testing.TB, lines [][]byte) []JSON {
	t.Helper()
	recs := runSyslogNG(t, lines)
	res := make([]JSON, len(lines))
	for i, r := range recs {
		if r["cc.ok"] != "json" {
			res[i].Rejected = true
			continue
		}
		j := JSON{Fields: map[string]string{}}
		for k, v := range r {
			if a, ok := strings.CutPrefix(k, "json."); ok {
				j.Fields[a] = v
			}
		}
		res[i] = j
	}
	return res
}

// syslogNGConfig routes each stdin line by its start: LEEF 2.0 with x09, LEEF 1.0, JSON.
// The output is one flat JSON object per message with its receipt id, so results can be put
// back in input order.
const syslogNGConfig = `@version: 3.38
options { use-rcptid(yes); use-dns(no); dns-cache(no); stats-freq(0); mark-freq(0);
          log-msg-size(16777216); keep-timestamp(no); };
source s_in { stdin(flags(no-parse) log-msg-size(16777216)); };
destination d_out { file("%s" template("$(format-flat-json --scope none --key leef.* --key la.* --key json.* --key cc.* rcptid=${RCPTID})\n")); };
log {
  source(s_in);
  junction {
    channel { filter { match('^LEEF:2\.0\|([^|]*\|){4}x09\|' value('MSG')); };
      parser { csv-parser(columns("leef.version", "leef.vendor", "leef.product", "leef.pv", "leef.eid", "leef.delim", "leef.raw")
                          template("${MSG}") delimiters("|") dialect(escape-none) quote-pairs("") flags(greedy, drop-invalid)); };
      parser { kv-parser(prefix("la.") template("${leef.raw}") pair-separator("\t") value-separator("=")); };
      rewrite { set("leef" value("cc.ok")); }; flags(final); };
    channel { filter { match('^LEEF:1\.0\|' value('MSG')); };
      parser { csv-parser(columns("leef.version", "leef.vendor", "leef.product", "leef.pv", "leef.eid", "leef.raw")
                          template("${MSG}") delimiters("|") dialect(escape-none) quote-pairs("") flags(greedy, drop-invalid)); };
      parser { kv-parser(prefix("la.") template("${leef.raw}") pair-separator("\t") value-separator("=")); };
      rewrite { set("leef" value("cc.ok")); }; flags(final); };
    channel { filter { match('^[{]' value('MSG')); };
      parser { json-parser(prefix("json.")); };
      rewrite { set("json" value("cc.ok")); }; flags(final); };
    channel { rewrite { set("rejected" value("cc.ok")); }; flags(final); };
  };
  destination(d_out);
};
`

func runSyslogNG(t testing.TB, lines [][]byte) []map[string]string {
	t.Helper()
	ng := testtools.FindSyslogNG(t)
	dir := t.TempDir()
	outPath := filepath.Join(dir, "out.jsonl")
	conf := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, syslogNGConfig, outPath), 0o600); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for _, l := range lines {
		in.Write(l)
		in.WriteByte('\n')
	}
	cmd := ng.Command("-F", "-f", conf, "-R", filepath.Join(dir, "persist"), "-c", filepath.Join(dir, "ctl"),
		"-p", filepath.Join(dir, "pid"), "--no-caps")
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	runCmd(t, ctx, cmd.Path, cmd.Args[1:], cmd.Env, &in)
	data, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatalf("syslog-ng wrote no output: %v", err)
	}
	var recs []map[string]string
	for _, l := range splitLines(data) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("syslog-ng output: %v: %s", err, l)
		}
		flat := map[string]string{}
		for k, v := range m {
			flat[k] = fmt.Sprint(v)
		}
		recs = append(recs, flat)
	}
	if len(recs) != len(lines) {
		t.Fatalf("syslog-ng returned %d records for %d lines", len(recs), len(lines))
	}
	sort.SliceStable(recs, func(i, j int) bool {
		a, _ := strconv.Atoi(recs[i]["rcptid"])
		b, _ := strconv.Atoi(recs[j]["rcptid"])
		return a < b
	})
	return recs
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}
