package checkpoint_test

import (
	"fmt"
	"os"

	"github.com/dtforward/dtforward/checkpoint"
)

// A checkpoint survives a restart: the second Open sees what the first committed.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(dir)

	s, _ := checkpoint.Open(dir, "dt-prod")
	_ = s.Commit("modelbreaches", checkpoint.Progress{
		Cursor: 1700000060000,
		Seen:   map[string]checkpoint.Seen{"95": {Time: 1700000010000}},
	})

	again, _ := checkpoint.Open(dir, "dt-prod")
	st, _ := again.Source("modelbreaches")
	fmt.Println(checkpoint.FileName("dt-prod"), st.Cursor, len(st.Seen))
	// Output: dt-prod.json 1700000060000 1
}
