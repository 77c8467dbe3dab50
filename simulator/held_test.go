package simulator

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// TestHeldBreachesAppearLate: a held breach is invisible in lists and by pbid, then appears
// with its original pbid and creation time once released.
func TestHeldBreachesAppearLate(t *testing.T) {
	s, c := start(t, Options{HistoryCount: -1})
	s.AddBreaches(2)
	held := s.HoldBreaches(2)
	s.AddBreaches(2)
	now := s.Now()
	list := fmt.Sprintf("/modelbreaches?starttime=%d&endtime=%d&creationtime=true&includeacknowledged=true&includesuppressed=true", ms(now.Add(-time.Hour)), ms(now.Add(time.Minute)))
	pbids := func() []int64 {
		var got []darktrace.Breach
		c.get(list).ok(t, &got)
		var ids []int64
		for _, b := range got {
			ids = append(ids, b.PBID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := pbids(); len(got) != 4 || slices.Contains(got, held[0]) || slices.Contains(got, held[1]) {
		t.Fatalf("list while held = %v, want 4 pbids without %v", got, held)
	}
	var one darktrace.Breach
	c.get(fmt.Sprintf("/modelbreaches?pbid=%d", held[0])).ok(t, &one)
	if one.PBID != 0 {
		t.Fatalf("held pbid %d answered by id: %+v", held[0], one)
	}
	s.ReleaseBreaches(held...)
	if got := pbids(); len(got) != 6 || !slices.Contains(got, held[0]) || !slices.Contains(got, held[1]) {
		t.Fatalf("list after release = %v, want all 6", got)
	}
	c.get(fmt.Sprintf("/modelbreaches?pbid=%d", held[1])).ok(t, &one)
	if one.PBID != held[1] || one.CreationTime > ms(now) {
		t.Fatalf("released pbid %d by id = pbid %d created %d", held[1], one.PBID, one.CreationTime)
	}
}

func TestRemoveActions(t *testing.T) {
	s, c := start(t, Options{HistoryCount: -1})
	ids := s.AddActions(3)
	if n := s.RemoveActions(ids[1], 99999); n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	var got []darktrace.Action
	c.get("/antigena?includecleared=true").ok(t, &got)
	if len(got) != 2 || got[0].CodeID != ids[0] || got[1].CodeID != ids[2] {
		t.Fatalf("after removal: %+v", got)
	}
}
