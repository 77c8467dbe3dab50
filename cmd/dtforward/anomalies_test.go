package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/metrics"
	"github.com/dtforward/dtforward/internal/testutil/testtools"
)

// TestAnomalyReporterWarnsOncePerField: every anomaly is counted, only the first of each
// (source, field) is logged, also under concurrent appliances.
func TestAnomalyReporterWarnsOncePerField(t *testing.T) {
	var logs testtools.SyncBuffer
	m := metrics.New()
	r := newAnomalyReporter(m, zerolog.New(&logs))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				r.Report(darktrace.Anomaly{Source: "modelbreaches", Field: "model.priority", ID: "95"})
				r.Report(darktrace.Anomaly{Source: "antigena", Field: "updated", ID: "7"})
			}
			if i == 0 {
				r.Report(darktrace.Anomaly{Source: "modelbreaches", Field: "score", ID: "96"})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d warnings, want 3 (one per source and field):\n%s", len(lines), logs.String())
	}
	if !strings.Contains(logs.String(), `"field":"model.priority"`) || !strings.Contains(logs.String(), `"id":"96"`) {
		t.Errorf("warnings lack field or id:\n%s", logs.String())
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fams {
		if f.GetName() != "dtforward_decode_anomalies_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range s.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			got = append(got, fmt.Sprintf("%s/%s=%g", l["source"], l["field"], s.GetCounter().GetValue()))
		}
	}
	sort.Strings(got)
	want := []string{"antigena/updated=200", "modelbreaches/model.priority=200", "modelbreaches/score=1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("series %v, want %v", got, want)
	}
}
