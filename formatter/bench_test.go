package formatter_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
)

// benchRecord is the realistic breach of the golden cases (full model, device, components),
// compacted as the API sends it.
func benchRecord(b *testing.B) ([]byte, *alert.Alert) {
	b.Helper()
	in, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "breach-flat", "input.json"))
	if err != nil {
		b.Fatal(err)
	}
	recs, err := alert.SplitRecords(in)
	if err != nil {
		b.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, recs[0]); err != nil {
		b.Fatal(err)
	}
	raw := compact.Bytes()
	a, err := alert.Decode(alert.SourceBreaches, raw, "dt-lab", "dt.example.com")
	if err != nil {
		b.Fatal(err)
	}
	return raw, a
}

func benchFormat(b *testing.B, name string, a *alert.Alert) {
	f, err := formatter.New(name, formatter.Options{Version: "1.0.0", MaxBytes: 8192})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf, err = f.Append(buf[:0], a)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkFormat measures one alert per op into a reused buffer, per format. Bars (issue #3):
// cef and leef <= 2 us and <= 2 allocs, json <= 4 us.
func BenchmarkFormat(b *testing.B) {
	_, a := benchRecord(b)
	for _, name := range formatter.Names() {
		b.Run(name, func(b *testing.B) { benchFormat(b, name, a) })
	}
}

// BenchmarkDecodeBreach is the baseline: decoding the same record from API JSON into
// darktrace.Breach with encoding/json, as the client does, plus the conversion to an Alert.
func BenchmarkDecodeBreach(b *testing.B) {
	raw, _ := benchRecord(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		var br darktrace.Breach
		if err := json.Unmarshal(raw, &br); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFormatVsDecode reports, for each format, the formatting time as a percentage of
// decoding the same record from API JSON (bar: <= 10%). Both are timed in the same process
// right after each other (a fixed number of rounds each), so machine load affects both alike;
// ns/op of the benchmark itself is the format time.
func BenchmarkFormatVsDecode(b *testing.B) {
	raw, a := benchRecord(b)
	const rounds = 3000
	decode := func() time.Duration {
		start := time.Now()
		for i := 0; i < rounds; i++ {
			var br darktrace.Breach
			if err := json.Unmarshal(raw, &br); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for _, name := range formatter.Names() {
		b.Run(name, func(b *testing.B) {
			f, err := formatter.New(name, formatter.Options{Version: "1.0.0", MaxBytes: 8192})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 16<<10)
			dec := decode()
			start := time.Now()
			for i := 0; i < rounds; i++ {
				buf, _ = f.Append(buf[:0], a)
			}
			format := time.Since(start)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				buf, _ = f.Append(buf[:0], a)
			}
			// After the loop: ResetTimer discards metrics reported before it.
			b.ReportMetric(100*float64(format)/float64(dec), "%-of-decode")
			b.ReportMetric(float64(dec.Nanoseconds())/rounds, "decode-ns/op")
		})
	}
}
