package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runFormatCmd(t *testing.T, stdin string, getenv map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv:  func(k string) string { return getenv[k] },
		environ: func() []string { return nil },
	}
	code = dispatch(context.Background(), append([]string{"format"}, args...), e)
	return code, out.String(), errb.String()
}

func TestFormatCommand(t *testing.T) {
	golden := filepath.Join("..", "..", "testdata", "golden")
	breach := `{"pbid": 95, "time": 1700000000000, "score": 0.5, "model": {"name": "M|x", "pid": 7}, "device": {"did": 3, "ip": "10.0.0.3"}}`
	tests := []struct {
		name      string
		args      []string
		stdin     string
		env       map[string]string
		wantCode  int
		wantLines int
		wantOut   []string // substrings of stdout
		wantErr   []string // substrings of stderr
	}{
		{name: "single object cef", args: []string{"--format", "cef", "-"}, stdin: breach, wantLines: 1,
			wantOut: []string{`CEF:0|Darktrace|DCIP|dev|7|M\|x|5|`, "externalId=95"}},
		{name: "array json", args: []string{"--format", "json"}, stdin: "[" + breach + "," + breach + "]", wantLines: 2,
			wantOut: []string{`"schemaVersion":2`, `"id":"95"`}},
		{name: "json lines leef", args: []string{"--format", "leef"}, stdin: breach + "\n" + breach + "\n", wantLines: 2,
			wantOut: []string{"LEEF:2.0|Darktrace|DCIP|dev|7|x09|"}},
		{name: "empty input", args: []string{"--format", "cef"}, stdin: "  \n", wantCode: exitFailure, wantErr: []string{"no records in the input"}},
		{name: "bad line skipped, rest printed", args: []string{"--format", "cef"}, stdin: breach + "\n{\"pbid\": 96, oops\n" + breach + "\nnot json\n" + breach + "\n",
			wantCode: exitFailure, wantLines: 3, wantErr: []string{"line 2: not a JSON record, skipped: invalid character 'o'", "line 4: not a JSON record", "0 of 3 records skipped, 2 unreadable parts"}},
		{name: "truncated last line", args: []string{"--format", "json"}, stdin: breach + "\n" + `{"pbid": 9`,
			wantCode: exitFailure, wantLines: 1, wantErr: []string{"line 2: not a JSON record, skipped: unexpected end of input"}},
		{name: "pretty-printed objects", args: []string{"--format", "json"}, stdin: "{\n  \"pbid\": 1,\n  \"model\": {\"name\": \"A\"}\n}\n{\n  \"pbid\": 2\n}\n", wantLines: 2},
		{name: "cannot tell the type names --source", args: []string{"--format", "cef"}, stdin: `{}`,
			wantCode: exitFailure, wantErr: []string{"line 1 (id ?) skipped", "name it with --source modelbreaches|antigena|aianalyst"}},
		{name: "odd types kept, field named once, no Go internals", args: []string{"--format", "cef"},
			stdin:     `{"pbid": 95, "time": "yesterday", "model": {"name": "A"}}` + "\n" + `{"pbid": 96, "time": "today"}`,
			wantLines: 2, wantOut: []string{"externalId=95", "externalId=96"},
			wantErr: []string{`line 1 (id 95): field "time" has a value of an unexpected type`}},
		{name: "ack object", args: []string{"--format", "json"}, stdin: `{"pbid": 95, "acknowledged": {"time": 1657678365000, "username": "u@x"}}`,
			wantLines: 1, wantOut: []string{`"id":"95"`}},
		{name: "appliance and URL from env", args: []string{"--format", "cef"}, stdin: breach, wantLines: 1,
			env:     map[string]string{"DARKTRACE_NAME": "lab-1", "DARKTRACE_URL": "https://dt.lab.example:8443/"},
			wantOut: []string{"cs4=lab-1", "darktraceUrl=https://dt.lab.example:8443/#modelbreach/95"}},
		{name: "darktrace-json adds breachUrl", args: []string{"--format", "darktrace-json", "--host", "h.example"}, stdin: breach, wantLines: 1,
			wantOut: []string{`"breachUrl":"https://h.example/#modelbreach/95"}`}},
		{name: "file argument", args: []string{"--format", "cef", filepath.Join(golden, "antigena-states", "input.json")}, wantLines: 6,
			wantOut: []string{"cs5=pending", "cs5=extended", "cs5=cleared", "suser=analyst.jane"}},
		{name: "forced source", args: []string{"--format", "json", "--source", "aianalyst", filepath.Join(golden, "aianalyst-string-groupscore-null-device", "input.json")}, wantLines: 1,
			wantOut: []string{`"kind":"aianalyst"`, `"score":0.875`}},
		{name: "bad records skipped, rest printed", args: []string{"--format", "cef", filepath.Join(golden, "unconvertible-records", "input.json")},
			wantCode: exitFailure, wantLines: 1, wantOut: []string{"externalId=96"},
			wantErr: []string{"record 1 (id 0) skipped", "record 3 (id n/a) skipped", "2 of 3 records skipped"}},
		{name: "bad JSON gives position", args: []string{"--format", "cef"}, stdin: "[\n" + breach + ",\n{\"pbid\": x}]",
			wantCode: exitFailure, wantErr: []string{"line 3, column 10"}},
		{name: "truncated JSON", args: []string{"--format", "cef"}, stdin: `[{"pbid": 1,`, wantCode: exitFailure, wantErr: []string{"unexpected end of input"}},
		{name: "missing file", args: []string{"--format", "cef", "/nonexistent/x.json"}, wantCode: exitFailure, wantErr: []string{"no such file"}},
		{name: "unknown format", args: []string{"--format", "xml"}, wantCode: exitUsage, wantErr: []string{`unknown format "xml"`, "cef, darktrace-json, json, leef, ocsf"}},
		{name: "unknown flag", args: []string{"--formt", "cef"}, wantCode: exitUsage, wantErr: []string{"flag provided but not defined"}},
		{name: "unknown source", args: []string{"--source", "x"}, wantCode: exitUsage, wantErr: []string{"--source"}},
		{name: "max-bytes too small", args: []string{"--max-bytes", "10"}, wantCode: exitUsage, wantErr: []string{"MaxBytes"}},
		{name: "two files", args: []string{"a", "b"}, wantCode: exitUsage, wantErr: []string{"at most one input file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runFormatCmd(t, tc.stdin, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tc.wantCode, errs)
			}
			if n := strings.Count(out, "\n"); n != tc.wantLines {
				t.Errorf("%d lines, want %d:\n%s", n, tc.wantLines, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errs)
				}
			}
			if strings.Contains(errs, "Go struct") || strings.Contains(errs, "json: cannot unmarshal") {
				t.Errorf("stderr shows encoding/json internals:\n%s", errs)
			}
			if strings.Count(errs, `field "time"`) > 1 {
				t.Errorf("the same field reported twice:\n%s", errs)
			}
		})
	}
}

// TestFormatMaxBytesDefault: without --max-bytes, format trims lines to SIEM_MAX_MESSAGE_BYTES
// (8192 when unset), as run sends them; --max-bytes 0 lifts the limit.
func TestFormatMaxBytesDefault(t *testing.T) {
	long := `{"pbid": 95, "time": 1700000000000, "model": {"name": "M", "description": "` + strings.Repeat("x", 20000) + `"}}`
	longest := func(out string) int {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			n = max(n, len(l))
		}
		return n
	}
	for _, tc := range []struct {
		env      map[string]string
		args     []string
		min, max int
	}{
		{nil, nil, 4000, 8192},
		{map[string]string{"SIEM_MAX_MESSAGE_BYTES": "1024"}, nil, 512, 1024},
		{map[string]string{"SIEM_MAX_MESSAGE_BYTES": "1024"}, []string{"--max-bytes", "0"}, 20000, 1 << 20},
	} {
		for _, format := range []string{"cef", "leef", "json", "darktrace-json", "ocsf"} {
			code, out, errs := runFormatCmd(t, long, tc.env, append([]string{"--format", format}, tc.args...)...)
			if n := longest(out); code != exitOK || n < tc.min || n > tc.max {
				t.Errorf("%s %v %v: exit %d, longest line %d, want %d..%d; %s", format, tc.env, tc.args, code, n, tc.min, tc.max, errs)
			}
		}
	}
	// What run refuses, format refuses too: 0 and 100 made format print lines run never sends.
	for _, v := range []string{"lots", "0", "100", "-1", "2000000"} {
		if code, _, errs := runFormatCmd(t, long, map[string]string{"SIEM_MAX_MESSAGE_BYTES": v}); code != exitUsage || !strings.Contains(errs, "SIEM_MAX_MESSAGE_BYTES") {
			t.Errorf("SIEM_MAX_MESSAGE_BYTES=%s: exit %d, %s", v, code, errs)
		}
	}
}

// TestFormatCommandMatchesGolden checks that the command prints what the golden files hold
// for every case (same version string aside).
func TestFormatCommandMatchesGolden(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "golden", "*"))
	defer func(v string) { version = v }(version)
	version = "0.0.0-golden"
	for _, dir := range dirs {
		for _, format := range []string{"cef", "json"} {
			want, err := os.ReadFile(filepath.Join(dir, "expected."+format))
			if err != nil {
				t.Fatal(err)
			}
			_, out, _ := runFormatCmd(t, "", nil, "--format", format, "--appliance", "dt-lab", "--host", "dt.example.com",
				"--max-bytes", "8192", filepath.Join(dir, "input.json"))
			if out != string(want) {
				t.Errorf("%s %s: output differs from golden\n got: %.500s\nwant: %.500s", filepath.Base(dir), format, out, want)
			}
		}
	}
}
