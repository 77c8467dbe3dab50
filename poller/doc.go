// Package poller turns a Darktrace appliance's REST API into an ordered, de-duplicated stream
// of alerts and hands them to a Deliverer, moving a persisted checkpoint only after the
// Deliverer accepted everything before it.
//
// The pieces, in the order one record meets them:
//
//   - Source builds one endpoint's query (fixed parameter order: the request signature covers
//     the query exactly as sent), fetches a window, decodes each record, normalizes it into an
//     alert.Alert, sorts by (creation time, id) and applies the Filter. FetchWindow is that path
//     on its own, for one-shot callers such as backfill.
//   - Store is the checkpoint: one versioned JSON file per appliance holding each source's
//     cursor and the keys already delivered that are still inside the overlap.
//   - Appliance runs one goroutine per source: window → fetch → dedupe → deliver → persist,
//     retrying failures with capped exponential backoff and never re-polling a batch that the
//     Deliverer has not accepted yet.
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
