package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a point in time the way POLL_START and backfill's --from/--to accept it:
//
//   - a duration before now: "90m", "1h", "7d" (d = 24h, whole days only; Go units otherwise)
//   - RFC 3339: "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5+02:00"
//   - a date, midnight UTC: "2024-05-01"
//   - epoch milliseconds: "1714564800000"
//
// now anchors durations. Errors say which forms are accepted.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("empty; expected %s", timeForms)
	}
	if allDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is out of range for epoch milliseconds", s)
		}
		// Epoch seconds for any date since 1973 have at most 10 digits; in milliseconds those
		// dates have 12 or more. Refusing short numbers catches the common seconds mix-up.
		if len(s) < 12 {
			return time.Time{}, fmt.Errorf("%q looks like epoch seconds; give epoch milliseconds (e.g. %d)", s, ms*1000)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	if d, ok := parseDays(s); ok {
		return now.Add(-d), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q is negative; a duration counts back from now (e.g. 1h)", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if _, err := time.Parse("2006-01-02T15:04:05", s); err == nil {
		return time.Time{}, fmt.Errorf("%q has no time zone; add Z or an offset (e.g. %sZ)", s, s)
	}
	return time.Time{}, fmt.Errorf("%q is not %s", s, timeForms)
}

const timeForms = "a duration (1h, 7d), an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01) or epoch milliseconds"

// parseDays reads "7d", the unit Go's durations lack and backfills need most.
func parseDays(s string) (time.Duration, bool) {
	n, ok := strings.CutSuffix(s, "d")
	if !ok || !allDigits(n) {
		return 0, false
	}
	days, err := strconv.Atoi(n)
	if err != nil || days > 100*365 {
		return 0, false
	}
	return time.Duration(days) * 24 * time.Hour, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
