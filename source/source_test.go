package source

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

func TestQuery(t *testing.T) {
	start := time.UnixMilli(1514808000000)
	end := time.UnixMilli(1514808060000)
	tests := []struct {
		name   string
		source string
		filter Filter
		want   string
	}{
		// Everything is asked for; the score, acknowledgement, model and tag filters apply after
		// decoding, never as minscore.
		{"breaches defaults", darktrace.SourceBreaches, Filter{},
			"/modelbreaches?starttime=1514808000000&endtime=1514808060000&creationtime=true&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"},
		{"breaches min score, not acknowledged", darktrace.SourceBreaches, Filter{MinScore: 0.25},
			"/modelbreaches?starttime=1514808000000&endtime=1514808060000&creationtime=true&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"},
		// The one filter at the query: a record does not say it is suppressed.
		{"breaches hide suppressed", darktrace.SourceBreaches, Filter{HideSuppressed: true, MinScore: 0.25},
			"/modelbreaches?starttime=1514808000000&endtime=1514808060000&creationtime=true&includeacknowledged=true&includesuppressed=false&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"},
		{"antigena has no window", darktrace.SourceAntigena, Filter{MinScore: 0.5},
			"/antigena?includecleared=true&includehistory=true"},
		{"aianalyst", darktrace.SourceAIAnalyst, Filter{IncludeAcknowledged: false},
			"/aianalyst/incidentevents?starttime=1514808000000&endtime=1514808060000&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewReader(&fakeAPI{}, "dt", "dt.example", tt.filter, zerolog.Nop()).Source(tt.source)
			if err != nil {
				t.Fatal(err)
			}
			got := src.Query(start, end)
			if got != tt.want {
				t.Fatalf("Query =\n %s\nwant\n %s", got, tt.want)
			}
			if strings.Contains(got, "group=") {
				t.Fatal("query must never group (group=device swaps the breach score)")
			}
		})
	}
	if _, err := NewReader(&fakeAPI{}, "dt", "", Filter{}, zerolog.Nop()).Source("modelbreach"); err == nil || !strings.Contains(err.Error(), "modelbreaches, antigena, aianalyst") {
		t.Fatalf("unknown source error = %v, want the valid names listed", err)
	}
}

func TestFetchSortsSkipsMalformedAndFilters(t *testing.T) {
	api := &fakeAPI{}
	// Created out of pbid order, and with equal creation times: sorted by (creationTime, pbid)
	// numerically (pbid 10 after 9).
	api.addBreach(breach(10, 900, 2000))
	api.addBreach(breach(9, 950, 2000))
	api.addBreach(breach(3, 100, 3000)) // late: created long after its activity
	api.addBreach(breach(4, 1500, 1500))
	api.extra = []string{
		`{"pbid": 77, "score": "not a number"}`, // a value of the wrong type: kept (no time: sorted first)
		`{"pbid": 0, "model": {"name": "x"}}`,   // decodes, but has no id
		`[77]`,                                  // not a record
	}
	var logs bytes.Buffer
	p := NewReader(api, "dt", "dt.example", Filter{IncludeAcknowledged: true}, zerolog.New(&logs))
	src, _ := p.Source(darktrace.SourceBreaches)
	alerts, st, err := src.FetchWindow(context.Background(), time.UnixMilli(0), time.UnixMilli(5000))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range alerts {
		ids = append(ids, a.ID)
	}
	if want := []string{"77", "4", "9", "10", "3"}; !slices.Equal(ids, want) {
		t.Fatalf("order = %v, want %v", ids, want)
	}
	if st.Fetched != 7 || st.Malformed != 2 || st.Filtered != 0 {
		t.Fatalf("stats = %+v, want fetched 7 malformed 2", st)
	}
	if !strings.Contains(logs.String(), `"id":"0"`) || !strings.Contains(logs.String(), "malformed record skipped") {
		t.Fatalf("malformed record not logged with its id:\n%s", logs.String())
	}
	if alerts[0].Appliance != "dt" || alerts[0].Kind != alert.KindBreach || len(alerts[0].Raw) == 0 {
		t.Fatalf("alert not normalized: %+v", alerts[0])
	}
}

func TestFilterAllow(t *testing.T) {
	mk := func(kind string, score float64, model string, tags []string, ack bool, manual bool) *Item {
		a := &alert.Alert{Kind: kind, Score: score, Model: alert.Model{Name: model, Tags: tags}}
		if manual {
			a.Action = &alert.Action{Manual: true}
		}
		return &Item{Alert: a, Acknowledged: ack}
	}
	tests := []struct {
		name   string
		filter Filter
		item   *Item
		want   bool
	}{
		{"zero filter passes", Filter{IncludeAcknowledged: true}, mk(alert.KindBreach, 0, "", nil, true, false), true},
		{"acknowledged dropped", Filter{}, mk(alert.KindBreach, 0.9, "m", nil, true, false), false},
		{"below min score", Filter{MinScore: 0.5}, mk(alert.KindBreach, 0.49, "m", nil, false, false), false},
		{"at min score", Filter{MinScore: 0.5}, mk(alert.KindBreach, 0.5, "m", nil, false, false), true},
		{"manual action exempt from score", Filter{MinScore: 0.5}, mk(alert.KindAntigena, 0, "", nil, false, true), true},
		{"model regex miss", Filter{Models: regexp.MustCompile(`^Compromise::`)}, mk(alert.KindBreach, 1, "Anomalous Connection::X", nil, false, false), false},
		{"model regex hit", Filter{Models: regexp.MustCompile(`^Compromise::`)}, mk(alert.KindBreach, 1, "Compromise::Beacon", nil, false, false), true},
		{"tag regex hit", Filter{Tags: regexp.MustCompile(`^AP: `)}, mk(alert.KindBreach, 1, "m", []string{"", "AP: Egress"}, false, false), true},
		{"tag regex no tags", Filter{Tags: regexp.MustCompile(`^AP: `)}, mk(alert.KindBreach, 1, "m", nil, false, false), false},
		{"aianalyst not model-filtered", Filter{Models: regexp.MustCompile(`^Compromise::`)}, mk(alert.KindAIAnalyst, 1, "", nil, false, false), true},
		{"antigena without model not model-filtered", Filter{Models: regexp.MustCompile(`x`)}, mk(alert.KindAntigena, 1, "", nil, false, false), true},
		{"antigena with model filtered", Filter{Models: regexp.MustCompile(`^x$`)}, mk(alert.KindAntigena, 1, "y", nil, false, false), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.allow(tt.item); got != tt.want {
				t.Fatalf("allow = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStreamSendsAKeyListedTwiceOnce: a breach listed twice in one streamed slice is handed
// over once, in its last-listed version, and counted as deduplicated, as Fetch does.
func TestStreamSendsAKeyListedTwiceOnce(t *testing.T) {
	api := &fakeAPI{}
	api.addBreach(breach(1, 1000, 1000))
	api.addBreach(breach(2, 1000, 1000))
	api.addBreach(breach(1, 1000, 1000)) // the same breach listed again
	src, _ := NewReader(api, "dt", "dt.example", Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(darktrace.SourceBreaches)
	var keys []string
	b, err := src.Stream(context.Background(), time.UnixMilli(0), time.UnixMilli(5000), 10, nil, func(slice *Batch) error {
		for _, it := range slice.Items {
			keys = append(keys, it.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] == keys[1] || b.Stats.Deduped != 1 {
		t.Fatalf("keys handed over %q, deduplicated %d; want two distinct keys and one repeat counted", keys, b.Stats.Deduped)
	}
}

// TestStreamSkipsDeliveredBreachesUndecoded: a breach the caller reports delivered is counted as
// deduplicated and not handed over; the others are, and a source whose records change (an
// Antigena action) is never skipped on its id alone.
func TestStreamSkipsDeliveredBreachesUndecoded(t *testing.T) {
	api := &fakeAPI{}
	for id := int64(1); id <= 3; id++ {
		api.addBreach(breach(id, 1000, 1000))
	}
	src, _ := NewReader(api, "dt", "dt.example", Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(darktrace.SourceBreaches)
	var keys []string
	delivered := func(key string) bool { return key == "2" }
	b, err := src.Stream(context.Background(), time.UnixMilli(0), time.UnixMilli(5000), 10, delivered, func(slice *Batch) error {
		for _, it := range slice.Items {
			keys = append(keys, it.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "1" || keys[1] != "3" || b.Stats.Deduped != 1 || b.Stats.Fetched != 3 {
		t.Fatalf("handed over %q, fetched %d, deduplicated %d; want 1 and 3, 3 fetched, 1 deduplicated", keys, b.Stats.Fetched, b.Stats.Deduped)
	}
}
