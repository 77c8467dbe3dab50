package checkpoint

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
)

// TestDeliveredMatchesAMap: whatever the order of delivery, a Delivered answers exactly as a
// plain map of every key would (the memory it replaced), while consecutive pbids cost one run.
func TestDeliveredMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 200 {
		d := NewDelivered(Progress{})
		want := map[string]Seen{}
		n := 1 + rng.IntN(300)
		ids := rng.Perm(n)
		for _, i := range ids {
			if rng.IntN(10) == 0 {
				continue // a hole: this pbid is never delivered
			}
			k := strconv.Itoa(1000 + i)
			v := Seen{Time: int64(rng.IntN(50))}
			d.Add(k, v)
			if old, ok := want[k]; ok {
				v.Time = max(v.Time, old.Time)
			}
			want[k] = v
		}
		for i := -2; i < n+2; i++ {
			k := strconv.Itoa(1000 + i)
			_, got := d.Get(k)
			if _, ok := want[k]; got != ok {
				t.Fatalf("round %d: key %s delivered=%v, want %v", round, k, got, ok)
			}
		}
		for i, r := range d.runs {
			if r.Lo > r.Hi || (i > 0 && d.runs[i-1].Hi+1 >= r.Lo) {
				t.Fatalf("round %d: runs not sorted, disjoint and apart: %v", round, d.runs)
			}
		}
		holes := 0
		for i := 1; i < n; i++ {
			_, a := want[strconv.Itoa(1000+i-1)]
			_, b := want[strconv.Itoa(1000+i)]
			if a && !b {
				holes++
			}
		}
		if len(d.keys) != 0 || len(d.runs) > holes+1 {
			t.Fatalf("round %d: %d keys and %d runs for %d holes, want no keys and at most %d runs", round, len(d.keys), len(d.runs), holes, holes+1)
		}
	}
}

// TestDeliveredFloodIsOneRun: 100,000 breaches of one millisecond, delivered in pbid order or
// backwards, are one run; their time is kept, and forgetting goes by the run's newest time.
func TestDeliveredFloodIsOneRun(t *testing.T) {
	for _, backwards := range []bool{false, true} {
		d := NewDelivered(Progress{})
		for i := range 100_000 {
			id := 5 + i
			if backwards {
				id = 100_004 - i
			}
			d.Add(strconv.Itoa(id), Seen{Time: 1_700_000_000_000})
		}
		if d.Len() != 1 || d.runs[0] != (Run{Lo: 5, Hi: 100_004, T: 1_700_000_000_000}) {
			t.Fatalf("backwards=%v: %d entries %v, want the one run 5..100004", backwards, d.Len(), d.runs)
		}
		d.ForgetBefore(1_700_000_000_000)
		if !d.Has("777") {
			t.Fatal("forgot a run whose time is the horizon")
		}
		d.ForgetBefore(1_700_000_000_001)
		if d.Has("777") || d.Len() != 0 {
			t.Fatal("kept a run older than the horizon")
		}
	}
}

// TestDeliveredFloodInAppliancesOrder: the appliance lists a window by activity time, not by
// pbid, so a flood of one creation millisecond arrives in what is, for pbids, random order.
// Half-way through, the part delivered is full of holes: it must still cost a bitmap per
// 65,536 pbids (not a run per hole, which made every checkpoint write of a 1,000,000-breach
// flood 7 MB), answer exactly, survive the file, and be one run again once all arrived.
func TestDeliveredFloodInAppliancesOrder(t *testing.T) {
	const n = 300_000
	rng := rand.New(rand.NewPCG(3, 5))
	order := rng.Perm(n)
	d := NewDelivered(Progress{})
	for _, i := range order[:n/2] {
		d.Add(strconv.Itoa(1+i), Seen{Time: 77})
	}
	if d.Len() > n/chunkIDs+3 {
		t.Fatalf("%d entries (%d runs, %d bitmaps) for half of %d pbids delivered out of order, want a bitmap per %d", d.Len(), len(d.runs), len(d.bits), n, chunkIDs)
	}
	p := Progress{Cursor: 1}
	d.Into(&p)
	s, err := Open(t.TempDir(), "dt")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(SourceBreaches, p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("half delivered: %d runs, %d bitmaps, checkpoint %d bytes", len(d.runs), len(d.bits), fi.Size())
	got, _ := s.Source(SourceBreaches)
	back := NewDelivered(got)
	delivered := map[int]bool{}
	for _, i := range order[:n/2] {
		delivered[i] = true
	}
	for i := -1; i < n+1; i++ {
		if back.Has(strconv.Itoa(1+i)) != delivered[i] || d.Has(strconv.Itoa(1+i)) != delivered[i] {
			t.Fatalf("pbid %d: delivered=%v, remembered %v (after the file: %v)", 1+i, delivered[i], d.Has(strconv.Itoa(1+i)), back.Has(strconv.Itoa(1+i)))
		}
	}
	back.Add("400000", Seen{Time: 1}) // a run after the bitmaps
	for _, r := range [][2]int64{{1, n}, {0, 1 << 40}, {65530, 65540}, {131072, 131072}, {299_990, 400_000}} {
		var want []int64
		for id := max(r[0], 1); id <= min(r[1], n); id++ {
			if delivered[int(id-1)] {
				want = append(want, id)
			}
		}
		if r[1] >= 400_000 {
			want = append(want, 400_000)
		}
		if got := slices.Collect(back.Between(r[0], r[1])); !slices.Equal(got, want) {
			t.Fatalf("Between(%d, %d) yields %d ids, want %d", r[0], r[1], len(got), len(want))
		}
	}
	back.ForgetBefore(2)
	for _, i := range order[n/2:] {
		back.Add(strconv.Itoa(1+i), Seen{Time: 78})
	}
	back.ForgetBefore(0)
	if back.Len() != 1 || back.runs[0] != (Run{Lo: 1, Hi: n, T: 78}) {
		t.Fatalf("the whole flood is %d entries (%d runs, %d bitmaps), want the one run 1..%d", back.Len(), len(back.runs), len(back.bits), n)
	}
}

// TestDeliveredKeepsVersionedAndOddKeysApart: a versioned key (an Antigena action's state), a
// non-numeric one (an AI Analyst event) and a number that is not canonical ("007") each keep
// their own entry and version; "007" does not make 7 delivered.
func TestDeliveredKeepsVersionedAndOddKeysApart(t *testing.T) {
	d := NewDelivered(Progress{})
	d.Add("6", Seen{Time: 1})
	d.Add("8", Seen{Time: 1})
	d.Add("007", Seen{Time: 2})
	d.Add("7", Seen{Version: "1/true/false/9", Time: 3})
	d.Add("9f2c-uuid", Seen{Version: "ab", Time: 4})
	d.Add("-3", Seen{Time: 5})
	if v, ok := d.Get("7"); !ok || v.Version != "1/true/false/9" {
		t.Fatalf("versioned key 7 = %+v, %v", v, ok)
	}
	if len(d.runs) != 2 {
		t.Fatalf("runs %v: a versioned 7 must not join 6 and 8", d.runs)
	}
	for _, k := range []string{"007", "9f2c-uuid", "-3"} {
		if !d.Has(k) {
			t.Fatalf("%s not remembered", k)
		}
	}
	if d.Has("5") || d.Has("0") {
		t.Fatal("a key never delivered is remembered")
	}
	d.Retain(func(k string, _ Seen) bool { return k != "9f2c-uuid" })
	if d.Has("9f2c-uuid") || !d.Has("6") {
		t.Fatal("Retain dropped the wrong entries")
	}
}

// TestDeliveredTrimOldest: beyond the limit the oldest go, except those at or after keepFrom.
func TestDeliveredTrimOldest(t *testing.T) {
	d := NewDelivered(Progress{})
	for i := range 10 {
		d.Add("ev-"+strconv.Itoa(i), Seen{Version: "v", Time: int64(i)})
	}
	if n := d.TrimOldest(4, 100); n != 6 || d.Has("ev-5") || !d.Has("ev-6") {
		t.Fatalf("forgot %d, want the 6 oldest", n)
	}
	d2 := NewDelivered(Progress{})
	for i := range 10 {
		d2.Add("ev-"+strconv.Itoa(i), Seen{Version: "v", Time: int64(i)})
	}
	if n := d2.TrimOldest(4, 3); n != 3 || !d2.Has("ev-3") || d2.Has("ev-2") {
		t.Fatalf("forgot %d, want only the 3 before keepFrom", n)
	}
}

// TestDeliveredSurvivesTheFile: runs are written as [lo,hi,t] and read back; a file from
// before runs (pbids as keys of "seen") is read into runs, so an upgrade forgets nothing.
func TestDeliveredSurvivesTheFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDelivered(Progress{Seen: map[string]Seen{"95": {Time: 10}, "96": {Time: 11}, "98": {Time: 12}, "7": {Version: "x", Time: 3}}})
	if len(d.runs) != 2 || len(d.keys) != 1 {
		t.Fatalf("old-format keys read as %d runs and %d keys, want 2 runs (95-96, 98) and the versioned key", len(d.runs), len(d.keys))
	}
	p := Progress{Cursor: 99}
	d.Into(&p)
	if err := s.Commit(SourceBreaches, p); err != nil {
		t.Fatal(err)
	}
	d.Add("97", Seen{Time: 13}) // after the commit: must not reach the file
	s2, err := Open(dir, "dt")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Source(SourceBreaches)
	if !ok {
		t.Fatal("source not saved")
	}
	back := NewDelivered(got)
	for _, k := range []string{"95", "96", "98", "7"} {
		if !back.Has(k) {
			t.Fatalf("%s lost through the file: %+v", k, got)
		}
	}
	if back.Has("97") {
		t.Fatal("a key added after the commit reached the file")
	}
	if v, _ := back.Get("96"); v.Time != 11 {
		t.Fatalf("run time %d, want 11", v.Time)
	}
}

// TestRunRejectsNonsense: a hand-edited run that is empty or not positive is refused.
func TestRunRejectsNonsense(t *testing.T) {
	for _, in := range []string{`[5,4,1]`, `[0,3,1]`, `[1,2]`, `"1-2"`} {
		var r Run
		if err := r.UnmarshalJSON([]byte(in)); err == nil {
			t.Fatalf("%s accepted as %+v", in, r)
		}
	}
	for _, in := range []string{`{"base":5,"t":1,"bits":""}`, `{"base":0,"t":1,"bits":"AAAA"}`, `{"base":-65536,"t":1,"bits":""}`} {
		var b Bitmap
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Fatalf("%s accepted", in)
		}
	}
}
