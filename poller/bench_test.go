package poller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/source"
)

// rawFetcher replays prepared array elements.
type rawFetcher [][]byte

func (r rawFetcher) StreamDated(_ context.Context, _ string, fn func([]byte) error) (time.Time, error) {
	for _, raw := range r {
		if err := fn(raw); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

func benchRecords(n int) rawFetcher {
	out := make(rawFetcher, n)
	for i := range out {
		b := breach(int64(n-i), int64(1700000000000+i), int64(1700000000000+i))
		b.Model.Description = "A device has been observed doing something rare.\n\nAction: review."
		b.TriggeredComponents = []darktrace.TriggeredComponent{{Time: b.Time, Size: 11, Threshold: 10}}
		out[i], _ = json.Marshal(b)
	}
	return out
}

// BenchmarkFetch measures the poller's own path (decode, normalize, sort, filter) per record
// against a baseline measured in the same iterations: only decoding the same records into
// darktrace.Breach. Interleaving the two keeps the ratio meaningful on a busy machine; the ratio
// is what normalization and bookkeeping cost on top of the unavoidable JSON decode.
func BenchmarkFetch(b *testing.B) {
	const n = 2000
	recs := benchRecords(n)
	src, _ := source.NewReader(recs, "dt", "dt.example", source.Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(darktrace.SourceBreaches)
	var base, full time.Duration
	for b.Loop() {
		t0 := time.Now()
		for _, raw := range recs {
			var br darktrace.Breach
			if err := json.Unmarshal(raw, &br); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		batch, err := src.Fetch(context.Background(), time.UnixMilli(0), time.UnixMilli(1<<62))
		if err != nil || len(batch.Items) != n {
			b.Fatalf("%v, %d items", err, len(batch.Items))
		}
		base += t1.Sub(t0)
		full += time.Since(t1)
	}
	b.ReportMetric(float64(n*b.N)/full.Seconds(), "records/s")
	b.ReportMetric(float64(n*b.N)/base.Seconds(), "decode-only-records/s")
	b.ReportMetric(base.Seconds()/full.Seconds(), "ratio-vs-decode")
}
