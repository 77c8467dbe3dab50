package simulator

import (
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// TestURLHost: breachUrl and incidentEventUrl name the address the simulator serves on unless
// Options.Hostname is given, so they agree with the URLs dtforward builds from DARKTRACE_URL
// for Antigena actions (which carry none).
func TestURLHost(t *testing.T) {
	clk := &fixedClock{t: base}
	q := "?" + window(base.Add(-48*time.Hour), base) + "&includeacknowledged=true"
	for _, tc := range []struct {
		name     string
		hostname string
	}{{"served address", ""}, {"explicit hostname", "appliance.corp.example"}} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := start(t, Options{Seed: 5, HistoryCount: 300, Hostname: tc.hostname, Now: clk.now})
			want := "https://" + strings.TrimPrefix(c.base, "http://") + "/"
			if tc.hostname != "" {
				want = "https://" + tc.hostname + "/"
			}
			var breaches []darktrace.Breach
			var events []darktrace.IncidentEvent
			c.get("/modelbreaches"+q+"&includebreachurl=true").ok(t, &breaches)
			c.get("/aianalyst/incidentevents"+q+"&includeincidenteventurl=true").ok(t, &events)
			if len(breaches) == 0 || len(events) == 0 {
				t.Fatalf("%d breaches, %d events: nothing to check", len(breaches), len(events))
			}
			for _, b := range breaches {
				if !strings.HasPrefix(b.BreachURL, want+"#modelbreach/") {
					t.Fatalf("breachUrl %q, want it under %s", b.BreachURL, want)
				}
			}
			for _, e := range append(events, s.IncidentEvents()...) {
				if e.IncidentEventURL != want+"#aiaincidentevent/"+e.ID {
					t.Fatalf("incidentEventUrl %q, want %s#aiaincidentevent/%s", e.IncidentEventURL, want, e.ID)
				}
			}
		})
	}
}
