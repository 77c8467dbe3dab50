package formatter_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*/expected.* from the current output")

// Golden settings: what every case is rendered with.
const (
	goldenVersion   = "0.0.0-golden"
	goldenAppliance = "dt-lab"
	goldenHost      = "dt.example.com"
	goldenMaxBytes  = 8192 // SIEM_MAX_MESSAGE_BYTES default
)

// goldenCase is one testdata/golden/<name> directory, decoded.
type goldenCase struct {
	name   string
	dir    string
	alerts []*alert.Alert
	errs   []string // one line per record that could not be converted
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "golden", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	var out []goldenCase
	for _, dir := range dirs {
		in, err := os.ReadFile(filepath.Join(dir, "input.json"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := alert.SplitRecords(in)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		c := goldenCase{name: filepath.Base(dir), dir: dir}
		for i, raw := range recs {
			a, err := alert.Decode("", raw, goldenAppliance, goldenHost)
			if err != nil {
				c.errs = append(c.errs, fmt.Sprintf("record %d (id %s): %v", i+1, alert.RecordID(raw), err))
				continue
			}
			c.alerts = append(c.alerts, a)
		}
		out = append(out, c)
	}
	return out
}

func goldenOptions() formatter.Options {
	return formatter.Options{Version: goldenVersion, MaxBytes: goldenMaxBytes}
}

// TestGolden renders every case in every format and compares with expected.<format>
// (expected.err lists the records that could not be converted). Run with -update to rewrite
// the files, then review the diff like code.
func TestGolden(t *testing.T) {
	for _, c := range loadGolden(t) {
		t.Run(c.name, func(t *testing.T) {
			for _, name := range formatter.Names() {
				f, err := formatter.New(name, goldenOptions())
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				for _, a := range c.alerts {
					line, err := f.Append(nil, a)
					if err != nil {
						t.Fatalf("%s: alert %s: %v", name, a.ID, err)
					}
					if len(line) > goldenMaxBytes {
						t.Errorf("%s: alert %s: %d bytes, limit %d", name, a.ID, len(line), goldenMaxBytes)
					}
					if bytes.ContainsAny(line, "\r\n\x00") {
						t.Errorf("%s: alert %s: raw CR/LF/NUL in %q", name, a.ID, line)
					}
					got = append(append(got, line...), '\n')
				}
				compareGolden(t, filepath.Join(c.dir, "expected."+name), got)
			}
			var errs []byte
			for _, e := range c.errs {
				errs = append(errs, e+"\n"...)
			}
			compareGolden(t, filepath.Join(c.dir, "expected.err"), errs)
		})
	}
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if len(got) == 0 {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./formatter -run TestGolden -update and review the diff)\n got: %s\nwant: %s", path, got, want)
	}
}
