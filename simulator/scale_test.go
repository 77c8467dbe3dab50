package simulator

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHolds200kBreaches is the 30-day backfill scale: 200,000 breaches must fit in a few MB
// and any window of them must still be served correctly.
func TestHolds200kBreaches(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	clk := &fixedClock{t: base}
	before := heapAfterGC()
	s, c := start(t, Options{Seed: 4, History: 30 * 24 * time.Hour, HistoryCount: 200_000, LateFraction: 0.05, Now: clk.now})
	grew := int64(heapAfterGC()) - int64(before)
	// 40-byte records plus slack; a store of expanded records would need gigabytes.
	if grew > 64<<20 {
		t.Errorf("200k breaches hold %d MB of heap, want < 64 MB", grew>>20)
	}
	from, to := base.Add(-10*24*time.Hour), base.Add(-10*24*time.Hour+2*time.Hour)
	var got []darktrace.Breach
	c.get("/modelbreaches?creationtime=true&includeacknowledged=true&minimal=false&deviceattop=true&historicmodelonly=true&"+window(from, to)).ok(t, &got)
	want := expect(s, func(b BreachInfo) bool {
		return !b.Suppressed && b.Created >= ms(from) && b.Created <= ms(to)
	})
	if len(want) < 400 || !slices.Equal(pbids(got), want) {
		t.Errorf("2h window of 200k: got %d, want %d", len(got), len(want))
	}
}

// BenchmarkStore reports the heap cost of stored breaches (bar: under 64 bytes a breach, so a
// 200,000-breach backfill store stays under 13 MB).
func BenchmarkStore(b *testing.B) {
	const n = 200_000
	for i := 0; i < b.N; i++ {
		before := heapAfterGC()
		s, err := New(Options{PublicToken: "p", PrivateToken: "k", Seed: int64(i), History: 30 * 24 * time.Hour, HistoryCount: n})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(int64(heapAfterGC())-int64(before))/n, "heapB/breach")
		s.Close()
	}
}

// BenchmarkModelBreachesResponse measures serving a 1,000-record window over loopback HTTP
// with the parameters dtforward sends, read but not decoded by the client. Bar: well above
// 10,000 records/s, so the simulator is never the bottleneck of dtforward's own benchmarks.
func BenchmarkModelBreachesResponse(b *testing.B) {
	s, err := New(Options{PublicToken: testPub, PrivateToken: testPriv, Seed: 1, History: time.Hour, HistoryCount: 1000, AckFraction: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	u, err := s.Start("127.0.0.1:0", false)
	if err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	now := time.Now()
	p := fmt.Sprintf("/modelbreaches?starttime=%d&endtime=%d&creationtime=true&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true",
		ms(now.Add(-2*time.Hour)), ms(now.Add(time.Minute)))
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		date := darktrace.FormatDate(time.Now())
		req, _ := http.NewRequest(http.MethodGet, u+p, nil)
		req.Header.Set("DTAPI-Token", testPub)
		req.Header.Set("DTAPI-Date", date)
		req.Header.Set("DTAPI-Signature", darktrace.Signature(testPriv, testPub, p, date))
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		bytes += n
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(bytes)/float64(b.N)/1000, "B/record")
}
