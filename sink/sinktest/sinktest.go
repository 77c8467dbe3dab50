// Package sinktest is test support for the HTTP sinks' tests: batches of formatted alerts.
package sinktest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/sink"
)

// T0 is the time of alert 0; alert i happened i seconds later.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

// Messages formats alerts from..from+n-1 (breaches, AI Analyst events and Antigena actions in
// turn, ids "0", "1", … of appliance dt-lab labelled customer=acme, site=lon) with format.
func Messages(t testing.TB, format string, n int, from int) []sink.Message {
	t.Helper()
	f, err := formatter.New(format, formatter.Options{Version: "test", LEEFVersion: "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{alert.KindBreach, alert.KindAIAnalyst, alert.KindAntigena}
	out := make([]sink.Message, 0, n)
	for i := from; i < from+n; i++ {
		a := &alert.Alert{Kind: kinds[i%3], ID: fmt.Sprint(i), Appliance: "dt-lab", Time: T0.Add(time.Duration(i) * time.Second),
			Created: T0.Add(time.Hour), Name: "Device::Unusual Activity", SignatureID: "762", Score: 0.6, Severity: 6,
			Priority: alert.NoPriority, Labels: map[string]string{"customer": "acme", "site": "lon"},
			URL: "https://dt.example/#modelbreach/" + fmt.Sprint(i), Message: "a line with \"quotes\", a tab\tand ünïcode"}
		if a.Kind == alert.KindAntigena {
			a.Action = &alert.Action{Type: "quarantine", State: "active"}
		}
		line, err := f.Append(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line, Alert: a})
	}
	return out
}
