package config

import (
	"testing"

	"github.com/dtforward/dtforward/sink"
)

// TestUDPRateDefault: SIEM_UDP_RATE's default is the rate the sink documents and
// bench/udp-backfill measured, not a second number that drifts from it.
func TestUDPRateDefault(t *testing.T) {
	c, err := LoadFor(ModeAny, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIEMUDPRate != sink.DefaultUDPRate {
		t.Errorf("SIEM_UDP_RATE default %d, sink.DefaultUDPRate %d", c.SIEMUDPRate, sink.DefaultUDPRate)
	}
}
