package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr string // substring of the error; empty means success
	}{
		{"duration", "1h", now.Add(-time.Hour), ""},
		{"compound duration", "1h30m", now.Add(-90 * time.Minute), ""},
		{"days", "7d", now.Add(-7 * 24 * time.Hour), ""},
		{"zero duration", "0s", now, ""},
		{"rfc3339 utc", "2024-05-01T12:00:00Z", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), ""},
		{"rfc3339 offset and fraction", "2024-05-01T14:00:00.5+02:00", time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC), ""},
		{"date", "2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), ""},
		{"epoch ms", "1714564800000", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), ""},
		{"surrounding space", " 2024-05-01 ", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), ""},
		{"epoch seconds", "1714564800", time.Time{}, `"1714564800" looks like epoch seconds; give epoch milliseconds (e.g. 1714564800000)`},
		{"negative duration", "-1h", time.Time{}, `"-1h" is negative`},
		{"no zone", "2024-05-01T12:00:00", time.Time{}, `has no time zone; add Z or an offset`},
		{"bad date", "2024-13-01", time.Time{}, `is not a duration (1h, 7d), an RFC 3339 time`},
		{"words", "last tuesday", time.Time{}, `"last tuesday" is not a duration`},
		{"empty", "", time.Time{}, "empty; expected"},
		{"huge number", "99999999999999999999", time.Time{}, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTime(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) {
				t.Errorf("ParseTime(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestStartTime(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	c := &Config{PollStart: "2h"}
	if got, err := c.StartTime(now); err != nil || !got.Equal(now.Add(-2*time.Hour)) {
		t.Errorf("StartTime = %s, %v; want two hours before now", got, err)
	}
	c.PollStart = "2024-06-01"
	if _, err := c.StartTime(now); err == nil {
		t.Errorf("StartTime accepted a start in the future")
	}
}
