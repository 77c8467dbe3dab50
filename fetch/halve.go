package fetch

// Halve fetches the half-open range [start, end) (epoch ms) with fetch and hands the batch to
// emit. When fetch answers split (too many records for one response, too slow), the range is
// fetched as its two halves instead, in order, each halved again as needed: the API does not
// paginate, so a smaller window is the only way to a smaller response. canSplit tells fetch
// whether the range may still be halved (it is longer than minSpan); a fetch that cannot split
// must return a batch or an error. Backfill walks its windows with it; the live loop uses Walk,
// which sizes each piece from the density just seen.
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

// Walk fetches the half-open range [start, end) (epoch ms) in consecutive pieces, in order,
// handing each to emit. The first piece is at most step long (the whole range when step <= 0);
// a piece that fetch answers split is halved while it may be (longer than minSpan), as Halve
// does, and after each emitted piece the next one is next(its span, its batch) long. Halve walks
// both halves of a split whatever they hold; Walk sizes the rest of the range from the density
// just seen, so catching up on a range many times the cap costs a few too-large responses in
// all, not one at every level of every half (each a response transferred to be thrown away).
func Walk[B any](start, end, minSpan, step int64,
	fetch func(start, end int64, canSplit bool) (b B, split bool, err error),
	emit func(start, end int64, b B) error,
	next func(span int64, b B) int64,
) error {
	if step <= 0 {
		step = end - start
	}
	for start < end {
		e := min(end, start+max(step, 1))
		canSplit := e-start > minSpan && e-start >= 2
		b, split, err := fetch(start, e, canSplit)
		if split && canSplit {
			step = (e - start) / 2
			continue
		}
		if err != nil {
			return err
		}
		if err := emit(start, e, b); err != nil {
			return err
		}
		step = next(e-start, b)
		start = e
	}
	return nil
}
