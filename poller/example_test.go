package poller_test

import (
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/poller"
)

// The query of each source, with its parameters in the order the signature covers.
func ExampleSource_Query() {
	p := poller.NewPipeline(nil, "dt-prod", "dt.example.com", poller.Filter{MinScore: 0.5}, zerolog.Nop())
	start, end := time.UnixMilli(1700000000000), time.UnixMilli(1700000060000)
	for _, name := range poller.SourceNames {
		src, _ := p.Source(name)
		fmt.Println(src.Query(start, end))
	}
	// Output:
	// /modelbreaches?starttime=1700000000000&endtime=1700000060000&creationtime=true&includeacknowledged=true&includesuppressed=false&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true&minscore=0.5
	// /antigena?includecleared=true&includehistory=true
	// /aianalyst/incidentevents?starttime=1700000000000&endtime=1700000060000&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true
}

// A checkpoint survives a restart: the second OpenStore sees what the first committed.
func ExampleOpenStore() {
	dir, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(dir)

	s, _ := poller.OpenStore(dir, "dt-prod")
	_ = s.Commit(poller.SourceBreaches, poller.SourceState{
		Cursor: 1700000060000,
		Seen:   map[string]poller.Seen{"95": {Time: 1700000010000}},
	})

	again, _ := poller.OpenStore(dir, "dt-prod")
	st, _ := again.Source(poller.SourceBreaches)
	fmt.Println(poller.FileName("dt-prod"), st.Cursor, len(st.Seen))
	// Output: dt-prod.json 1700000060000 1
}
