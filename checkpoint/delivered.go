package checkpoint

import (
	"cmp"
	"encoding/json"
	"fmt"
	"iter"
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
// it has passed) are one run of 24 bytes instead of 100,000 map entries. While such a flood is
// being delivered, though, its pbids arrive in the appliance's order (by activity time, not by
// pbid), so the part delivered is riddled with holes: a stretch of 65,536 ids holding more than
// maxChunkRuns runs becomes a Bitmap of 8 KiB, whatever its holes. What is remembered is then
// bounded by the span of pbids inside the overlap (8 KiB per 65,536), never by the order they
// came in. Versioned keys (Antigena actions, AI Analyst events) are kept one entry each, as
// their state is what decides a re-send.
//
// A Delivered is used by one goroutine at a time; its zero value is not usable (NewDelivered).
type Delivered struct {
	keys map[string]Seen
	// runs are sorted by Lo, disjoint and never adjacent (touching runs are merged), and hold
	// no id of a chunk that has a bitmap.
	runs []Run
	// bits holds the chunks (id >> chunkBits) delivered too out of order for runs.
	bits map[int64]*Bitmap
}

const (
	chunkBits = 16
	chunkIDs  = 1 << chunkBits
	// maxChunkRuns is the runs one chunk may hold before it becomes a bitmap (256 runs are
	// about the bitmap's 8 KiB, in memory and in the file); a bitmap goes back to runs once it
	// holds at most minChunkRuns (the flood fully delivered is one), apart enough not to flap.
	maxChunkRuns = 256
	minChunkRuns = 64
)

// Bitmap is one chunk of chunkIDs consecutive ids as a bit set: bit i of Bits is id Base+i.
// T is the newest time among them, as for a Run.
type Bitmap struct {
	Base int64  `json:"base"`
	T    int64  `json:"t"`
	Bits []byte `json:"bits"` // chunkIDs/8 bytes, base64 in JSON
}

// UnmarshalJSON refuses a hand-edited bitmap of the wrong size or base.
func (b *Bitmap) UnmarshalJSON(data []byte) error {
	type plain Bitmap
	var v plain
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	if v.Base < 0 || v.Base%chunkIDs != 0 || len(v.Bits) != chunkIDs/8 {
		return fmt.Errorf("bitmap of delivered ids at %d with %d bytes: want a base that is a multiple of %d and %d bytes", v.Base, len(v.Bits), chunkIDs, chunkIDs/8)
	}
	*b = Bitmap(v)
	return nil
}

func (b *Bitmap) has(id int64) bool {
	i := id - b.Base
	return b.Bits[i>>3]&(1<<(i&7)) != 0
}

func (b *Bitmap) set(id int64) {
	i := id - b.Base
	b.Bits[i>>3] |= 1 << (i & 7)
}

// runs returns the bitmap's ids as runs, each with the bitmap's T.
func (b *Bitmap) runs() []Run {
	var out []Run
	in := false
	for i := int64(0); i < chunkIDs; i++ {
		on := b.Bits[i>>3]&(1<<(i&7)) != 0
		switch {
		case on && !in:
			out = append(out, Run{Lo: b.Base + i, Hi: b.Base + i, T: b.T})
		case on:
			out[len(out)-1].Hi = b.Base + i
		}
		in = on
	}
	return out
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
	var v []int64
	if err := json.Unmarshal(b, &v); err != nil || len(v) != 3 {
		return fmt.Errorf("a run of delivered ids is [lo, hi, time], not %.40s", b)
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
	d := &Delivered{keys: make(map[string]Seen, len(p.Seen)), bits: map[int64]*Bitmap{}}
	for _, b := range p.Bitmaps {
		c := *b
		c.Bits = slices.Clone(b.Bits)
		d.bits[c.Base>>chunkBits] = &c
	}
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
		if b := d.bits[id>>chunkBits]; b != nil {
			if b.has(id) {
				return Seen{Time: b.T}, true
			}
			return Seen{}, false
		}
		if i := d.find(id); i >= 0 {
			return Seen{Time: d.runs[i].T}, true
		}
	}
	return Seen{}, false
}

// Add records that key was delivered in version v.
func (d *Delivered) Add(key string, v Seen) {
	if id, ok := runID(key, v); ok {
		if b := d.bits[id>>chunkBits]; b != nil {
			b.set(id)
			b.T = max(b.T, v.Time)
			return
		}
		if d.addRun(Run{Lo: id, Hi: id, T: v.Time}) && d.chunkRuns(id) > maxChunkRuns {
			d.toBitmap(id >> chunkBits)
		}
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

// chunkRuns returns how many runs hold ids of id's chunk.
func (d *Delivered) chunkRuns(id int64) int {
	lo := id &^ (chunkIDs - 1)
	i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= lo })
	j := sort.Search(len(d.runs), func(j int) bool { return d.runs[j].Lo > lo+chunkIDs-1 })
	return j - i
}

// toBitmap moves the ids of a chunk from the runs into a bitmap; runs reaching past the chunk
// keep their outside parts.
func (d *Delivered) toBitmap(chunk int64) {
	b := &Bitmap{Base: chunk << chunkBits, Bits: make([]byte, chunkIDs/8)}
	lo, hi := b.Base, b.Base+chunkIDs-1
	i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= lo })
	j := i
	var outside []Run
	for ; j < len(d.runs) && d.runs[j].Lo <= hi; j++ {
		r := d.runs[j]
		for id := max(r.Lo, lo); id <= min(r.Hi, hi); id++ {
			b.set(id)
		}
		b.T = max(b.T, r.T)
		if r.Lo < lo {
			outside = append(outside, Run{Lo: r.Lo, Hi: lo - 1, T: r.T})
		}
		if r.Hi > hi {
			outside = append(outside, Run{Lo: hi + 1, Hi: r.Hi, T: r.T})
		}
	}
	d.runs = slices.Replace(d.runs, i, j, outside...)
	d.bits[chunk] = b
}

// compact turns back into runs the bitmaps that hold few of them (a flood delivered in full is
// one run again).
func (d *Delivered) compact() {
	for chunk, b := range d.bits {
		runs := b.runs()
		if len(runs) > minChunkRuns {
			continue
		}
		delete(d.bits, chunk)
		for _, r := range runs {
			d.addRun(r)
		}
	}
}

// addRun merges r into the runs and reports whether it added a run (rather than growing or
// joining existing ones). Delivery is mostly in pbid order, so r usually extends the last run
// in place. r must not reach into a chunk that has a bitmap.
func (d *Delivered) addRun(r Run) bool {
	// i is the first run that ends at or after r.Lo−1: the first that can touch r.
	i := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= r.Lo-1 })
	j := i
	for j < len(d.runs) && d.runs[j].Lo <= r.Hi+1 {
		r.Lo, r.Hi, r.T = min(r.Lo, d.runs[j].Lo), max(r.Hi, d.runs[j].Hi), max(r.T, d.runs[j].T)
		j++
	}
	if j == i {
		d.runs = slices.Insert(d.runs, i, r)
		return true
	}
	d.runs[i] = r
	d.runs = slices.Delete(d.runs, i+1, j)
	return false
}

// Len returns the entries held: keys, runs and bitmaps (what memory and the checkpoint grow
// with).
func (d *Delivered) Len() int { return len(d.keys) + len(d.runs) + len(d.bits) }

// ForgetBefore forgets the records whose Time is before horizon (a run or a bitmap: its newest
// record's).
func (d *Delivered) ForgetBefore(horizon int64) {
	maps.DeleteFunc(d.keys, func(_ string, v Seen) bool { return v.Time < horizon })
	d.runs = slices.DeleteFunc(d.runs, func(r Run) bool { return r.T < horizon })
	maps.DeleteFunc(d.bits, func(_ int64, b *Bitmap) bool { return b.T < horizon })
	d.compact()
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
	for _, b := range d.bits {
		times = append(times, b.T)
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

// Between yields, in order, the delivered ids in [lo, hi] that are kept as runs or bitmaps (the
// unversioned numeric keys), at a cost that grows with what it yields, not with hi − lo.
func (d *Delivered) Between(lo, hi int64) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		chunks := slices.Sorted(maps.Keys(d.bits))
		ci := sort.Search(len(chunks), func(i int) bool { return chunks[i] >= lo>>chunkBits })
		ri := sort.Search(len(d.runs), func(i int) bool { return d.runs[i].Hi >= lo })
		for {
			runNext := ri < len(d.runs) && d.runs[ri].Lo <= hi
			bitsNext := ci < len(chunks) && chunks[ci]<<chunkBits <= hi
			switch {
			case runNext && (!bitsNext || d.runs[ri].Lo < chunks[ci]<<chunkBits):
				r := d.runs[ri]
				ri++
				for id := max(r.Lo, lo); id <= min(r.Hi, hi); id++ {
					if !yield(id) {
						return
					}
				}
			case bitsNext:
				b := d.bits[chunks[ci]]
				ci++
				for id := max(b.Base, lo); id <= min(b.Base+chunkIDs-1, hi); id++ {
					if b.has(id) && !yield(id) {
						return
					}
				}
			default:
				return
			}
		}
	}
}

// Into sets p's Seen, Runs and Bitmaps to d's, sharing d's memory rather than copying it: p is
// to be committed (Store.Commit encodes it at once) before d changes again.
func (d *Delivered) Into(p *Progress) {
	p.Seen, p.Runs, p.Bitmaps = d.keys, d.runs, nil
	for _, chunk := range slices.Sorted(maps.Keys(d.bits)) {
		p.Bitmaps = append(p.Bitmaps, d.bits[chunk])
	}
}
