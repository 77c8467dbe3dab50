package backfill_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/backfill"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/source"
)

// counter is a Deliverer that only counts; dtforward composes a formatter and a sink instead.
type counter struct{ n int }

func (c *counter) Deliver(_ context.Context, alerts []*alert.Alert) error {
	c.n += len(alerts)
	return nil
}

// Backfill a day of model breaches from the simulator in one-hour chunks: all 500 of its
// breaches, the 10 suppressed ones too (FILTER_INCLUDE_SUPPRESSED is true). A second call
// with the same range and sources finds its state file complete and sends nothing.
func ExampleRun() {
	sim, _ := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 1,
		History: 24 * time.Hour, HistoryCount: 500, AckFraction: -1})
	defer sim.Close()
	url, _ := sim.Start("127.0.0.1:0", false)
	client, _ := darktrace.New(darktrace.Config{URL: url, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true})
	defer client.CloseIdleConnections()
	dir, _ := os.MkdirTemp("", "state")
	defer os.RemoveAll(dir)

	to := sim.Now()
	cfg := backfill.Config{
		Reader:    source.NewReader(client, "dt-prod", client.Host(), source.Filter{IncludeAcknowledged: true}, zerolog.Nop()),
		Sources:   []string{darktrace.SourceBreaches},
		Deliverer: &counter{},
		From:      to.Add(-25 * time.Hour),
		To:        to,
		Chunk:     time.Hour,
		StateDir:  dir,
	}
	for range 2 {
		sum, err := backfill.Run(context.Background(), cfg)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("complete=%v resumed=%v sent=%d chunks=%d/%d\n", sum.Complete(), sum.Resumed,
			sum.Records(), sum.ChunksDone, sum.ChunksTotal)
	}
	// Output:
	// complete=true resumed=false sent=500 chunks=25/25
	// complete=true resumed=true sent=0 chunks=25/25
}
