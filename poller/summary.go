package poller

import (
	"sync"
	"time"

	"github.com/dtforward/dtforward/source"
	"github.com/rs/zerolog"
)

// DefaultSummaryEvery is how often an appliance logs its poll totals at info. A poll that
// forwarded nothing is logged at debug only, so a quiet appliance still shows it is alive
// without a line per source per interval.
const DefaultSummaryEvery = 10 * time.Minute

// pollSummary adds up one appliance's polls (all sources) between two summary lines.
type pollSummary struct {
	every time.Duration

	mu        sync.Mutex
	announced bool // the "caught up" line was written
	since     time.Time
	polls     int
	total     source.Stats
}

func newPollSummary(every time.Duration, now time.Time) *pollSummary {
	if every <= 0 {
		every = DefaultSummaryEvery
	}
	return &pollSummary{every: every, since: now}
}

// quiet reports whether a poll is only worth a debug line: it forwarded nothing and found
// nothing wrong.
func quiet(st source.Stats) bool { return st.Sent == 0 && st.Malformed == 0 }

// add counts one poll and, once every period, logs the totals since the last summary at info
// and starts over. now is the local clock.
func (s *pollSummary) add(log zerolog.Logger, appliance string, st source.Stats, now time.Time) {
	s.mu.Lock()
	s.polls++
	s.total.Fetched += st.Fetched
	s.total.Sent += st.Sent
	s.total.Deduped += st.Deduped
	s.total.Filtered += st.Filtered
	s.total.Malformed += st.Malformed
	if now.Sub(s.since) < s.every {
		s.mu.Unlock()
		return
	}
	polls, total, period := s.polls, s.total, now.Sub(s.since)
	s.polls, s.total, s.since = 0, source.Stats{}, now
	s.mu.Unlock()
	log.Info().Str("appliance", appliance).Dur("period_ms", period).Int("polls", polls).
		Int("fetched", total.Fetched).Int("sent", total.Sent).Int("deduped", total.Deduped).
		Int("filtered", total.Filtered).Int("malformed", total.Malformed).Msg("poll summary")
}

// caughtUp writes, once per appliance, when the next poll is and why the log may then stay
// quiet: with the default 60 s interval and no new alerts nothing else appears for minutes.
func (s *pollSummary) caughtUp(log zerolog.Logger, appliance string, next time.Time, interval time.Duration) {
	s.mu.Lock()
	done := s.announced
	s.announced = true
	s.mu.Unlock()
	if done {
		return
	}
	log.Info().Str("appliance", appliance).Time("next_poll", next).Dur("interval_ms", interval).Dur("summary_every_ms", s.every).
		Msg("caught up; next poll at next_poll, then every interval (polls that forward nothing log at debug; a poll summary at info every summary period)")
}
