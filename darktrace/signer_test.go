package darktrace

import (
	"testing"
	"time"
)

func TestSignatureVectors(t *testing.T) {
	const (
		private  = "417f88cedddd679e76cdf4eb0a3ef3d99a99f203"
		public   = "2485df5aaa4278ed80a133e91ae58c5ccccb7862"
		breaches = "/modelbreaches?includeacknowledged=true&includesuppressed=true&starttime=1514808000000&endtime=1514808060000"
	)
	tests := []struct {
		name, path, date, want string
	}{
		{"darktrace worked example", breaches, "2018-01-01 12:00:00", "e25f42e5b8e77889555766ce22f20de8a63500b1"},
		{"compact date", breaches, "20180101T120000", "84322a64cd5367497bf7987d393ddc73dd4065e8"},
		{"no query", "/status", "2018-01-01 12:00:00", "486897224fcd23a8d464d58028d76b121fbcfde4"},
		{"antigena", "/antigena?includecleared=true&includehistory=true", "20180101T120000", "079abf99a9a20b1b78298beb04f11b6bb7caa996"},
	}
	s := NewSigner(public, private)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Sign(tc.path, tc.date); got != tc.want {
				t.Errorf("Sign(%q, %q) = %s, want %s", tc.path, tc.date, got, tc.want)
			}
		})
	}
}

func TestFormatDateIsUTC(t *testing.T) {
	loc := time.FixedZone("UTC+5", 5*3600)
	got := FormatDate(time.Date(2018, 1, 1, 17, 0, 0, 0, loc))
	if got != "20180101T120000" {
		t.Errorf("FormatDate = %s, want 20180101T120000", got)
	}
}
