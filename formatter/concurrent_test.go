package formatter_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/dtforward/dtforward/formatter"
)

// TestConcurrentAppend: a Formatter is shared by all poll goroutines; concurrent Appends (with
// pooled field records inside) must give the same lines as sequential ones. Run with -race.
func TestConcurrentAppend(t *testing.T) {
	var as = loadGolden(t)[0].alerts
	for _, c := range loadGolden(t)[1:] {
		as = append(as, c.alerts...)
	}
	for _, name := range formatter.Names() {
		f, err := formatter.New(name, formatter.Options{Version: "1", MaxBytes: 2048})
		if err != nil {
			t.Fatal(err)
		}
		want := make([][]byte, len(as))
		for i, a := range as {
			if want[i], err = f.Append(nil, a); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf []byte
				for r := 0; r < 20; r++ {
					for i, a := range as {
						buf, _ = f.Append(buf[:0], a)
						if !bytes.Equal(buf, want[i]) {
							errs <- name + ": line differs under concurrency: " + a.ID
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
}
