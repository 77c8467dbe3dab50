package poller

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/source"
	"github.com/rs/zerolog"
)

// TestQuietPollsAtDebug: polls that forward nothing write no info line; a poll that forwards
// writes one.
func TestQuietPollsAtDebug(t *testing.T) {
	api := &fakeAPI{}
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.InfoLevel)
	rec := &recorder{}
	a := newTestAppliance(t, api, rec, loopOpts{logger: &log})
	stop := run(t, a)
	waitFor(t, "five quiet polls", func() bool { return api.queryCount() >= 5 })
	if strings.Contains(buf.String(), `"message":"poll"`) {
		t.Fatalf("a quiet poll was logged at info:\n%s", buf.String())
	}
	api.addBreach(breach(1, time.Now().Add(-time.Minute).UnixMilli(), time.Now().Add(-time.Minute).UnixMilli()))
	waitFor(t, "the breach", func() bool { return len(rec.ids()) == 1 })
	stop()
	var polls []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "poll" {
			polls = append(polls, m)
		}
	}
	if n := strings.Count(buf.String(), `"message":"caught up; next poll at next_poll`); n != 1 || !strings.Contains(buf.String(), `"next_poll":`) {
		t.Errorf("%d caught-up lines, want one naming the next poll:\n%s", n, buf.String())
	}
	if len(polls) != 1 || polls[0]["sent"] != 1.0 || polls[0]["level"] != "info" || polls[0]["duration_ms"] == nil {
		t.Errorf("info poll lines %v, want exactly one with sent=1 and duration_ms", polls)
	}
}

// TestPollSummary: the totals of every poll (quiet or not, all sources) are logged at info
// once per period, then start over.
func TestPollSummary(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newPollSummary(10*time.Minute, t0)
	s.add(log, "dt", source.Stats{Fetched: 3, Deduped: 3}, t0.Add(time.Minute))
	s.add(log, "dt", source.Stats{Fetched: 2, Sent: 1, Filtered: 1}, t0.Add(5*time.Minute))
	if buf.String() != "" {
		t.Fatalf("summary before the period ended: %s", buf.String())
	}
	s.add(log, "dt", source.Stats{Malformed: 1}, t0.Add(10*time.Minute))
	want := `{"level":"info","appliance":"dt","period_ms":600000,"polls":3,"fetched":5,"sent":1,"deduped":3,"filtered":1,"malformed":1,"message":"poll summary"}` + "\n"
	if buf.String() != want {
		t.Fatalf("summary\n got %s\nwant %s", buf.String(), want)
	}
	s.add(log, "dt", source.Stats{Fetched: 1}, t0.Add(15*time.Minute))
	s.add(log, "dt", source.Stats{}, t0.Add(20*time.Minute))
	last := strings.Split(strings.TrimSpace(buf.String()), "\n")[1]
	if !strings.Contains(last, `"polls":2,"fetched":1,"sent":0`) {
		t.Errorf("second summary %s, want the two polls since the first", last)
	}
	if newPollSummary(0, t0).every != DefaultSummaryEvery {
		t.Error("zero period does not default")
	}
}
