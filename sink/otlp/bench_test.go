package otlp

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/sink"
)

// BenchmarkRecord weighs what the otlp sink adds per alert to formatting it: the body read
// back from the formatted line (a map for the JSON formats), then the whole record encoded.
// It is what a body built by the formatter directly would save, for the JSON formats.
func BenchmarkRecord(b *testing.B) {
	in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "breach-flat", "input.json"))
	if err != nil {
		b.Fatal(err)
	}
	recs, err := alert.SplitRecords(in)
	if err != nil {
		b.Fatal(err)
	}
	var raw bytes.Buffer
	if err := json.Compact(&raw, recs[0]); err != nil {
		b.Fatal(err)
	}
	a, err := alert.Decode(alert.SourceBreaches, raw.Bytes(), "dt-lab", "dt.example.com")
	if err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"json", "darktrace-json", "ocsf", "cef"} {
		f, err := formatter.New(format, formatter.Options{Version: "bench", LEEFVersion: "2.0"})
		if err != nil {
			b.Fatal(err)
		}
		line, err := f.Append(nil, a)
		if err != nil {
			b.Fatal(err)
		}
		bl := builder{format: format, version: "bench", now: time.Now}
		m := sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line, Alert: a}
		b.Run(format+"/format", func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf, _ = f.Append(buf[:0], a)
			}
			b.SetBytes(int64(len(line)))
		})
		b.Run(format+"/body", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = bl.body(line)
			}
			b.SetBytes(int64(len(line)))
		})
		b.Run(format+"/record+encode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = proto.Marshal(bl.record(&m))
			}
			b.SetBytes(int64(len(line)))
		})
	}
}
