package formatter_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
)

// fuzzAlert spreads the fuzzer's strings over every free-text field of an alert. Every one of
// them is trimmable, so with any limit >= MinMaxBytes every alert must fit: the fuzz targets
// fail on ErrTooLong instead of skipping (a skipped case checks nothing).
func fuzzAlert(name, host, msg, tag string, score float64, maxBytes int) *alert.Alert {
	a := &alert.Alert{
		Kind: alert.KindAntigena, ID: "42", Appliance: host, Name: name, SignatureID: name,
		Time: time.UnixMilli(1700000000000).UTC(), Created: time.UnixMilli(1700000000500).UTC(),
		Score: score, Severity: int(score * 10), Category: tag,
		Model:   alert.Model{PID: 7, UUID: tag, Name: name, Tags: []string{tag, msg}, MITRE: []string{tag}},
		Device:  alert.Device{DID: 3, Hostname: host, IP: "10.0.0.3"},
		Dest:    alert.Endpoint{Host: host, Protocol: tag, App: tag, Port: 443},
		URL:     "https://dt.example.com/#modelbreach/1?" + tag,
		Message: msg,
		Action:  &alert.Action{Type: tag, Label: name, State: tag, Triggerer: host},
		Ack:     &alert.Acknowledgement{User: host, Time: time.UnixMilli(1700000900000).UTC()},
		Group:   &alert.Group{ID: tag, Score: score, Category: name},
		Labels:  map[string]string{"site": msg, "customer": tag},
	}
	if len(name)%2 == 1 {
		// A device known by its label only, or by the appliance's placeholder only.
		a.Device.Hostname, a.Device.Label = "", host
	} else if len(msg)%2 == 1 {
		a.Device.Hostname, a.Device.Placeholder = "", "10.0.0.#"+tag
	}
	a.Raw, _ = json.Marshal(map[string]any{"codeid": 42, "label": name, "detail": msg, "aghost": host})
	return a
}

func addSeeds(f *testing.F) {
	f.Add("Model|Name", "host", "msg=x act=allow", "tag", 0.5, 0)
	f.Add("a\\", "h\r\nCEF:0|x", "line1\nline2\\", "\t\"q\"", 1.0, 600)
	f.Add("\xff\xfe", "=", " dst = 1.1.1.1 ", "'", 0.0, 512)
	f.Add(strings.Repeat("\\=", 400), strings.Repeat("é", 300), strings.Repeat("a b=c ", 500), "\x00", 0.99, 1024)
	f.Add("\u2028", "x09", "LEEF:2.0|a|b|c|d|x09|k=v", "", -3.0, 0)
}

// checkLine is the common oracle: one valid UTF-8 line without CR, LF or NUL, within the limit.
func checkLine(t *testing.T, line []byte, maxBytes int) {
	t.Helper()
	if bytes.ContainsAny(line, "\r\n\x00") {
		t.Fatalf("raw CR/LF/NUL in %q", line)
	}
	if !utf8.Valid(line) {
		t.Fatalf("invalid UTF-8 in %q", line)
	}
	if maxBytes > 0 && len(line) > maxBytes {
		t.Fatalf("%d bytes > limit %d", len(line), maxBytes)
	}
}

func fuzzLimit(m int) int {
	if m <= 0 {
		return 0
	}
	return formatter.MinMaxBytes + m%4096
}

// parseCEFExtension is the fuzz oracle's own CEF extension reader: a key is [A-Za-z0-9]+
// after a space (or at the start) and before an unescaped '='; a value runs to the space before
// the next key and is unescaped (\\ \= \n \r). An unescaped '=' that does not end a key is
// reported as the key "<bad =>".
func parseCEFExtension(ext string) (keys []string, vals map[string]string) {
	vals = map[string]string{}
	key, valStart := "", -1
	flush := func(end int) {
		if key != "" {
			vals[key] = unescapeCEF(ext[valStart:end])
		}
	}
	for i := 0; i < len(ext); i++ {
		switch ext[i] {
		case '\\':
			i++
		case '=':
			j := i
			for j > 0 && isAlnum(ext[j-1]) {
				j--
			}
			if j == i || (j > 0 && ext[j-1] != ' ') || (valStart >= 0 && j-1 < valStart) {
				keys = append(keys, "<bad =>")
				continue
			}
			if valStart >= 0 {
				flush(j - 1)
			}
			key, valStart = ext[j:i], i+1
			keys = append(keys, key)
		}
	}
	if valStart >= 0 {
		flush(len(ext))
	}
	return keys, vals
}

func unescapeCEF(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// FuzzCEF: any input gives one line whose header has exactly 7 unescaped pipes and whose
// extension re-parses to the expected key set (nothing forged, nothing lost unless trimmed).
func FuzzCEF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, name, host, msg, tag string, score float64, m int) {
		max := fuzzLimit(m)
		fm, err := formatter.New("cef", formatter.Options{Version: "1", MaxBytes: max})
		if err != nil {
			t.Fatal(err)
		}
		a := fuzzAlert(name, host, msg, tag, score, max)
		line, err := fm.Append(nil, a)
		if err != nil {
			t.Fatalf("%v (limit %d)", err, max)
		}
		checkLine(t, line, max)
		pipes, i := 0, 0
		for ; i < len(line) && pipes < 7; i++ {
			switch line[i] {
			case '\\':
				i++
			case '|':
				pipes++
			}
		}
		if pipes != 7 {
			t.Fatalf("header has %d pipes: %q", pipes, line)
		}
		got, vals := parseCEFExtension(string(line[i:]))
		wantVals := wantCEF(a)
		want := map[string]bool{}
		for k := range wantVals {
			want[k] = true
		}
		trimmed := strings.Contains(string(line), "cs6Label=trimmed")
		seen := map[string]bool{}
		for _, k := range got {
			if seen[k] {
				t.Fatalf("key %s twice in %q", k, line)
			}
			seen[k] = true
			if !want[k] && k != "cs6" && k != "cs6Label" {
				t.Fatalf("forged key %q in %q", k, line)
			}
		}
		if !trimmed {
			for k, w := range wantVals {
				if !seen[k] {
					t.Fatalf("key %s lost in %q", k, line)
				}
				if vals[k] != w {
					t.Fatalf("%s = %q, want %q in %q", k, vals[k], w, line)
				}
			}
		}
	})
}

// FuzzLEEF: one line; a literal split at TAB yields only expected keys, each once.
func FuzzLEEF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, name, host, msg, tag string, score float64, m int) {
		max := fuzzLimit(m)
		for _, v := range []string{"2.0", "1.0"} {
			fm, err := formatter.New("leef", formatter.Options{Version: "1", LEEFVersion: v, MaxBytes: max})
			if err != nil {
				t.Fatal(err)
			}
			a := fuzzAlert(name, host, msg, tag, score, max)
			line, err := fm.Append(nil, a)
			if err != nil {
				t.Fatalf("%v (limit %d)", err, max)
			}
			checkLine(t, line, max)
			parts := strings.SplitN(string(line), "|", 7)
			attrs := parts[len(parts)-1]
			if v == "1.0" {
				parts = strings.SplitN(string(line), "|", 6)
				attrs = parts[5]
			}
			want := wantLEEF(a)
			seen := map[string]bool{}
			for _, p := range strings.Split(attrs, "\t") {
				k, _, ok := strings.Cut(p, "=")
				if !ok || seen[k] {
					t.Fatalf("bad or repeated attribute %q in %q", p, line)
				}
				seen[k] = true
				w, ok := want[k]
				if !ok && k != "trimmed" {
					t.Fatalf("forged key %q in %q", k, line)
				}
				if v := p[len(k)+1:]; ok && v != w && !strings.Contains(string(line), "\ttrimmed=") {
					t.Fatalf("%s = %q, want %q", k, v, w)
				}
				// A value must hold no " key=" sequence a kv-parser would split on.
				if leefKeyEq.MatchString(p[len(k)+1:]) {
					t.Fatalf("value of %s holds a key=value sequence: %q", k, p)
				}
			}
		}
	})
}

// FuzzJSON: the json line is one valid JSON object whose strings decode back to the alert's.
func FuzzJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, name, host, msg, tag string, score float64, m int) {
		max := fuzzLimit(m)
		fm, _ := formatter.New("json", formatter.Options{Version: "1", MaxBytes: max})
		a := fuzzAlert(name, host, msg, tag, score, max)
		line, err := fm.Append(nil, a)
		if err != nil {
			t.Fatalf("%v (limit %d)", err, max)
		}
		checkLine(t, line, max)
		var o map[string]any
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatalf("invalid JSON %q: %v", line, err)
		}
		if o["trimmed"] == nil {
			want := strings.ReplaceAll(strings.ToValidUTF8(msg, "\uFFFD"), "\x00", "\uFFFD")
			if msg != "" && !utf8.ValidString(msg) {
				want = o["message"].(string) // per-byte replacement; checked by TestJSONParses
			}
			if msg != "" && o["message"] != want {
				t.Fatalf("message %q, want %q", o["message"], want)
			}
		}
	})
}

// FuzzDarktraceJSON: the record stays one valid JSON object for any string content.
func FuzzDarktraceJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, name, host, msg, tag string, score float64, m int) {
		max := fuzzLimit(m)
		fm, _ := formatter.New("darktrace-json", formatter.Options{MaxBytes: max})
		a := fuzzAlert(name, host, msg, tag, score, max)
		line, err := fm.Append(nil, a)
		if err != nil {
			t.Fatalf("%v (limit %d)", err, max)
		}
		if bytes.ContainsAny(line, "\r\n\x00") || !json.Valid(line) || (max > 0 && len(line) > max) {
			t.Fatalf("bad line %q", line)
		}
	})
}
