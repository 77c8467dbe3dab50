package formatter_test

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

func TestCEFNameLimit(t *testing.T) {
	f, _ := formatter.New("cef", formatter.Options{Version: "1"})
	a := &alert.Alert{Kind: alert.KindBreach, ID: "1", SignatureID: "5", Name: strings.Repeat("a|", 400), Message: "m"}
	line, err := f.Append(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	hdr := strings.SplitN(string(line), "|0|", 2)[0] // severity 0 follows the name
	name := hdr[strings.Index(hdr, "|5|")+3:]
	if len(name) > 512 || !strings.HasPrefix(name, `a\|a\|`) || strings.HasSuffix(name, `\`) && !strings.HasSuffix(name, `\|`) {
		t.Errorf("name %d bytes: %q", len(name), name)
	}
	if !bytes.Contains(line, []byte("cs6Label=trimmed cs6=name msg=m")) {
		t.Errorf("name trimming not flagged: %s", line)
	}
}

func TestTrimOrder(t *testing.T) {
	a := &alert.Alert{Kind: alert.KindBreach, ID: "1", SignatureID: "5", Name: "n",
		Model:   alert.Model{Tags: []string{strings.Repeat("t", 300)}, MITRE: []string{"T1"}},
		Device:  alert.Device{Hostname: strings.Repeat("h", 900)},
		Message: strings.Repeat("m", 2000)}
	tests := []struct {
		format, marker string
		max            int
	}{
		// The device name is written twice in CEF (dvchost and shost); shost goes first.
		{"cef", "cs6Label=trimmed cs6=msg msg=mmm", 3000},
		{"cef", "cs6Label=trimmed cs6=msg,cs2,cs3,shost", 1500},
		{"cef", "cs6Label=trimmed cs6=msg,cs2,cs3,shost,dvchost", 600},
		{"leef", "\ttrimmed=msg\tmsg=mmm", 2000},
		{"leef", "\ttrimmed=msg,tags,mitreTechniques,hostname", 600},
		{"json", `"trimmed":true,"trimmedFields":"message"}`, 2000},
		{"json", `"trimmed":true,"trimmedFields":"message,tags,mitreTechniques,hostname"}`, 700},
	}
	for _, tc := range tests {
		f, err := formatter.New(tc.format, formatter.Options{Version: "1", MaxBytes: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		line, err := f.Append(nil, a)
		if err != nil {
			t.Fatalf("%s %d: %v", tc.format, tc.max, err)
		}
		if len(line) > tc.max || len(line) < tc.max-8 || !bytes.Contains(line, []byte(tc.marker)) {
			t.Errorf("%s max %d: %d bytes, want marker %q: %s", tc.format, tc.max, len(line), tc.marker, line)
		}
	}
}

func TestTooLongAndOptions(t *testing.T) {
	f, _ := formatter.New("cef", formatter.Options{MaxBytes: 512})
	a := &alert.Alert{Kind: alert.KindBreach, ID: strings.Repeat("9", 600), Name: "n"} // ids are never trimmed
	if _, err := f.Append(nil, a); !errors.Is(err, formatter.ErrTooLong) {
		t.Errorf("err %v, want ErrTooLong", err)
	}
	for _, o := range []formatter.Options{{MaxBytes: 100}, {MaxBytes: -1}, {LEEFVersion: "3.0"}} {
		name := "cef"
		if o.LEEFVersion != "" {
			name = "leef"
		}
		if _, err := formatter.New(name, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// TestHostileAlertsFitAnyLimit: every attacker-influenced string is trimmable, so any alert
// with short identifiers fits every limit from MinMaxBytes up — including the fuzz seed that
// used to be skipped ("2117 > 1536"): seeded random hostile values of up to 2000 bytes per
// field, each format, limits from MinMaxBytes to 4 KiB.
func TestHostileAlertsFitAnyLimit(t *testing.T) {
	rng := rand.New(rand.NewSource(14))
	for i := 0; i < 80; i++ {
		max := formatter.MinMaxBytes + rng.Intn(4096)
		a := fuzzAlert(hostile(rng, 2000), hostile(rng, 2000), hostile(rng, 2000), hostile(rng, 2000), rng.Float64(), max)
		for _, name := range formatter.Names() {
			f, err := formatter.New(name, formatter.Options{Version: "1", MaxBytes: max})
			if err != nil {
				t.Fatal(err)
			}
			line, err := f.Append(nil, a)
			if err != nil {
				t.Fatalf("%s, limit %d: %v", name, max, err)
			}
			if len(line) > max {
				t.Fatalf("%s: %d bytes > limit %d", name, len(line), max)
			}
		}
	}
}
