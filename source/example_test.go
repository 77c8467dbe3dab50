package source_test

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/source"
)

// The query of each source, with its parameters in the order the signature covers.
func ExampleSource_Query() {
	p := source.NewReader(nil, "dt-prod", "dt.example.com", source.Filter{MinScore: 0.5}, zerolog.Nop())
	start, end := time.UnixMilli(1700000000000), time.UnixMilli(1700000060000)
	for _, name := range darktrace.SourceNames() {
		src, _ := p.Source(name)
		fmt.Println(src.Query(start, end))
	}
	// Output:
	// /modelbreaches?starttime=1700000000000&endtime=1700000060000&creationtime=true&includeacknowledged=true&includesuppressed=false&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true&minscore=0.5
	// /antigena?includecleared=true&includehistory=true
	// /aianalyst/incidentevents?starttime=1700000000000&endtime=1700000060000&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true
}
