package backfill

import "runtime/debug"

// Backfill GC settings: a backfill's live heap is a few MB (three windows of records), so the
// default GOGC=100 collects every few MB allocated — about every 300 decoded breaches — and
// spends 10–15% of the CPU on it. Letting the heap grow to 5× live, under a soft limit far
// below the 80 MB budget, keeps memory flat and gives that CPU back to decoding.
const (
	backfillGCPercent   = 400
	backfillMemoryLimit = 64 << 20
)

// TuneGC applies the backfill GC settings unless GOGC or GOMEMLIMIT is set, and
// returns a function restoring the previous ones.
func TuneGC(getenv func(string) string) (restore func()) {
	gc, limit := int64(-2), int64(-2)
	if getenv("GOGC") == "" {
		gc = int64(debug.SetGCPercent(backfillGCPercent))
	}
	if getenv("GOMEMLIMIT") == "" {
		limit = debug.SetMemoryLimit(backfillMemoryLimit)
	}
	return func() {
		if gc != -2 {
			debug.SetGCPercent(int(gc))
		}
		if limit != -2 {
			debug.SetMemoryLimit(limit)
		}
	}
}
