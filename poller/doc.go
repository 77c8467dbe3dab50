// Package poller is the live loop: for each appliance and destination it turns the appliance's
// records into an ordered, de-duplicated stream of alerts and hands them to a Deliverer, moving
// the checkpoint only after the Deliverer accepted everything before it.
//
// The pieces, in the order one record meets them:
//
//   - Poller (loop.go) runs one goroutine per source: window → fetch (source.Source, in halves
//     when too large or too slow) → dedupe against the checkpoint → deliver in batches →
//     commit the checkpoint after each batch → wait for the next interval. Failures are
//     retried with capped exponential backoff (internal/retry); a batch the Deliverer has not
//     accepted is never dropped or re-polled.
//   - Clock (clock.go) estimates the appliance's clock from /status and every answer's Date
//     header: windows end at the appliance's "now", never ours, and never past an answer's Date;
//     a Date far from the estimate moves it only once /status confirms it.
//   - Set (schedule.go) is one appliance's pollers with their clock and start schedule (the
//     first-poll stagger, and with several destinations a common grid of window ends).
//   - Health (health.go) aggregates every poller for /readyz and the up metrics.
//
// Windows reach back POLL_OVERLAP behind the cursor so records the appliance creates late (a
// breach whose creationTime is long after its activity time, or one that becomes visible a little
// after it was created) are still read; the delivered keys kept in the checkpoint remove the
// repeats. The result is exactly-once delivery in the normal case and at-least-once in every
// failure case, with at most one batch repeated per crash.
//
// What the overlap cannot reach, each source's state (state.go, gaps.go) covers: an Antigena
// action missing from one answer keeps its delivered state for a grace period; AI Analyst
// events are re-read over a longer horizon at a lower cadence and re-sent when they change;
// pbids missing between delivered breaches are checked by id, and one that appears after its
// window passed is delivered.
package poller
