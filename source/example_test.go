package source_test

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/source"
)

// The query of each source, with its parameters in the order the signature covers. Filters
// apply after decoding: FILTER_MIN_SCORE is not in the query.
func ExampleSource_Query() {
	p := source.NewReader(nil, "dt-prod", "dt.example.com", source.Filter{MinScore: 0.5}, zerolog.Nop())
	start, end := time.UnixMilli(1700000000000), time.UnixMilli(1700000060000)
	for _, name := range darktrace.SourceNames() {
		src, _ := p.Source(name)
		fmt.Println(src.Query(start, end))
	}
	// Output:
	// /modelbreaches?starttime=1700000000000&endtime=1700000060000&creationtime=true&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true
	// /antigena?includecleared=true&includehistory=true
	// /aianalyst/incidentevents?starttime=1700000000000&endtime=1700000060000&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true
}
