package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/dtforward/dtforward/internal/syslogd"
	"github.com/dtforward/dtforward/sink"
)

// TestRELPToRsyslog sends batches through RELP into a real rsyslog imrelp and checks every
// message byte for byte, in order, with the header an independent parser reads back.
func TestRELPToRsyslog(t *testing.T) {
	r := syslogd.StartRsyslog(t, syslogd.Options{RELP: true})
	var c counters
	s := newSink(t, sink.Config{Transport: "relp", Address: r.RELP, Hooks: c.hooks(), RELP: sink.RELPOptions{Window: 16}})
	since := time.Now()
	var all []sink.Message
	for i := 0; i < 5; i++ {
		b := batch(i*100, 100)
		all = append(all, b...)
		if err := s.Send(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got := r.Wait(t, len(all), 10*time.Second)
	if len(got) != len(all) {
		t.Fatalf("rsyslog got %d messages, want %d", len(got), len(all))
	}
	for i := range all {
		if got[i].Input != "relp" {
			t.Errorf("message %d arrived on %q", i, got[i].Input)
		}
		checkMessage(t, sink.HeaderRFC5424, "local4", got[i].Raw, all[i], since)
	}
	if c.sent != len(all) || c.reconnects != 0 || c.errs != 0 || c.sanitized != 125 {
		t.Errorf("hooks: sent %d reconnects %d errors %d sanitized %d", c.sent, c.reconnects, c.errs, c.sanitized)
	}
}
