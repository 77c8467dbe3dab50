package fetch

// Halve fetches the half-open range [start, end) (epoch ms) with fetch and hands the batch to
// emit. When fetch answers split (too many records for one response, too slow), the range is
// fetched as its two halves instead, in order, each halved again as needed: the API does not
// paginate, so a smaller window is the only way to a smaller response. canSplit tells fetch
// whether the range may still be halved (it is longer than minSpan); a fetch that cannot split
// must return a batch or an error. Backfill and the live loop both walk their windows with it.
func Halve[B any](start, end, minSpan int64,
	fetch func(start, end int64, canSplit bool) (b B, split bool, err error),
	emit func(start, end int64, b B) error,
) error {
	canSplit := end-start > minSpan && end-start >= 2
	b, split, err := fetch(start, end, canSplit)
	if split && canSplit {
		mid := start + (end-start)/2
		if err := Halve(start, mid, minSpan, fetch, emit); err != nil {
			return err
		}
		return Halve(mid, end, minSpan, fetch, emit)
	}
	if err != nil {
		return err
	}
	return emit(start, end, b)
}
