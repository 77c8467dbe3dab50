package checkpoint

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
)

// Delivered is a source's memory of the records it delivered that can still come back (the
// next windows re-read the overlap): what a re-read drops as already sent. It is saved with the
// checkpoint.
//
// Breaches never change, and their pbids grow with creation order, so a source's delivered
// pbids form a few runs of consecutive ids: a key that is a plain decimal number delivered with
// no version is kept in a Run, not an entry of its own. 100,000 breaches created in the same
// millisecond (which stay in the overlap, and so in memory and in every checkpoint write, until
// it has passed) are one run of 24 bytes instead of 100,000 map entries; memory then grows with
// the holes between delivered pbids, not with the records. Versioned keys (Antigena actions,
// AI Analyst events) are kept one entry each, as their state is what decides a re-send.
//
// A Delivered is used by one goroutine at a time; its zero value is not usable (NewDelivered).
type Delivered struct {
	keys map[string]Seen
	// runs are sorted by Lo, disjoint and never adjacent (touching runs are merged).
	runs []Run
}

// Run is the consecutive numeric keys Lo..Hi (inclusive), all delivered, none versioned. T is
// the newest of their times: a run is forgotten only when its newest record is, so a record
// inside it is remembered at least as long as it would have been alone (longer is harmless:
// a breach that comes back is the same breach).
type Run struct {
	Lo, Hi, T int64
}

// MarshalJSON writes a run as [lo, hi, t]: a checkpoint holds many of them.
func (r Run) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "[%d,%d,%d]", r.Lo, r.Hi, r.T), nil
}

// UnmarshalJSON reads [lo, hi, t].
func (r *Run) UnmarshalJSON(b []byte) error {
	var v [3]int64
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("a run of delivered ids is [lo, hi, time]: %w", err)
	}
	if v[0] <= 0 || v[1] < v[0] {
		return fmt.Errorf("run of delivered ids [%d, %d] is empty or not positive", v[0], v[1])
	}
	r.Lo, r.Hi, r.T = v[0], v[1], v[2]
	return nil
}

// NewDelivered returns the memory saved in p (empty for a zero Progress). Unversioned numeric
// keys in p.Seen, as files written before runs existed hold them, join the runs.
func NewDelivered(p Progress) *Delivered {
	d := &Delivered{keys: make(map[string]Seen, len(p.Seen))}
	runs := slices.Clone(p.Runs)
	slices.SortFunc(runs, func(x, y Run) int { return cmp.Compare(x.Lo, y.Lo) })
	for _, r := range runs {
		d.addRun(r)
	}
	for _, k := range slices.Sorted(maps.Keys(p.Seen)) {
		d.Add(k, p.Seen[k])
	}
	return d
}

// runID returns key as a run member: a canonical positive decimal number (so "007" and "7",
// which are different keys, never meet in one run) delivered without a version.
func runID(key string, v Seen) (int64, bool) {
	if v.Version != "" {
		return 0, false
	}
	id, err := strconv.ParseInt(key, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != key {
		return 0, false
	}
	return id, true
}

// Get returns what was delivered under key; for a key in a run, Time is the run's T.
func (d *Delivered) Get(key string) (Seen, bool) {
	if v, ok := d.keys[key]; ok {
		return v, true
	}
	if id, ok := runID(key, Seen{}); ok {
		if i := d.find(id); i >= 0 {
			return Seen{Time: d.runs[i].T}, true
		}
	}
	return Seen{}, false
}

// Add records that key was delivered in version v.
func (d *Delivered) Add(key string, v Seen) {
	if id, ok := runID(key, v); ok {
		d.addRun(Run{Lo: id, Hi: id, T: v.Time})
		return
	}
	d.keys[key] = v
}

// find returns the index of the run holding id, or -1.
func (d *Delivered) find(id int64) int {
	i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= id })
	if i < len(d.runs) && d.runs[i].Lo <= id {
		return i
	}
	return -1
}

// addRun merges r into the runs. Delivery is mostly in pbid order, so r usually extends the
// last run in place.
func (d *Delivered) addRun(r Run) {
	// i is the first run that ends at or after r.Lo−1: the first that can touch r.
	i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= r.Lo-1 })
	j := i
	for j < len(d.runs) && d.runs[j].Lo <= r.Hi+1 {
		r.Lo, r.Hi, r.T = min(r.Lo, d.runs[j].Lo), max(r.Hi, d.runs[j].Hi), max(r.T, d.runs[j].T)
		j++
	}
	if j == i {
		d.runs = slices.Insert(d.runs, i, r)
		return
	}
	d.runs[i] = r
	d.runs = slices.Delete(d.runs, i+1, j)
}

// Len returns the entries held: keys plus runs (what memory and the checkpoint grow with).
func (d *Delivered) Len() int { return len(d.keys) + len(d.runs) }

// ForgetBefore forgets the records whose Time is before horizon (a run: its newest record's).
func (d *Delivered) ForgetBefore(horizon int64) {
	maps.DeleteFunc(d.keys, func(_ string, v Seen) bool { return v.Time < horizon })
	d.runs = slices.DeleteFunc(d.runs, func(r Run) bool { return r.T < horizon })
}

// Retain keeps the versioned and non-numeric keys for which keep returns true; runs are kept.
func (d *Delivered) Retain(keep func(key string, v Seen) bool) {
	maps.DeleteFunc(d.keys, func(k string, v Seen) bool { return !keep(k, v) })
}

// Has reports whether key was delivered, in any version.
func (d *Delivered) Has(key string) bool {
	_, ok := d.Get(key)
	return ok
}

// TrimOldest forgets the oldest entries (keys and runs, by Time) beyond limit, sparing those at
// or after keepFrom whatever their number; it returns how many it forgot.
func (d *Delivered) TrimOldest(limit int, keepFrom int64) int {
	if d.Len() <= limit {
		return 0
	}
	times := make([]int64, 0, d.Len())
	for _, v := range d.keys {
		times = append(times, v.Time)
	}
	for _, r := range d.runs {
		times = append(times, r.T)
	}
	// Everything older than the limit-th newest time goes, unless at or after keepFrom;
	// entries sharing that time all stay, so the limit is a target, not exact.
	cut := keepFrom
	if limit > 0 {
		slices.SortFunc(times, func(x, y int64) int { return cmp.Compare(y, x) })
		cut = min(times[limit-1], keepFrom)
	}
	before := d.Len()
	d.ForgetBefore(cut)
	return before - d.Len()
}

// Into sets p's Seen and Runs to d's, sharing d's memory rather than copying it: p is to be
// committed (Store.Commit encodes it at once) before d changes again.
func (d *Delivered) Into(p *Progress) {
	p.Seen, p.Runs = d.keys, d.runs
}
