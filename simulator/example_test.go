package simulator_test

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

// A test starts the simulator on loopback, scripts a fault, and signs requests as the
// appliance expects.
func Example() {
	sim, err := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 1, HistoryCount: 10})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		panic(err)
	}
	faults, err := simulator.ParseFaults("status:503*1") // the next /status fails once
	if err != nil {
		panic(err)
	}
	sim.SetFaults(faults)

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		date := darktrace.FormatDate(time.Now())
		req, _ := http.NewRequest(http.MethodGet, url+"/status", nil)
		req.Header.Set("DTAPI-Token", "pub")
		req.Header.Set("DTAPI-Date", date)
		req.Header.Set("DTAPI-Signature", darktrace.Signature("priv", "pub", "/status", date))
		resp, err := hc.Do(req)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(len(sim.BreachInfos()), "breaches")
	// Output:
	// 503
	// 200
	// 10 breaches
}

func ExampleParseFaults() {
	faults, err := simulator.ParseFaults("modelbreaches:500=0.1,timeout=0.05;antigena:429@5*2")
	if err != nil {
		panic(err)
	}
	for _, f := range faults {
		fmt.Printf("%s %s p=%v count=%d param=%q\n", f.Endpoint, f.Kind, f.Probability, f.Count, f.Param)
	}
	// Output:
	// modelbreaches 500 p=0.1 count=0 param=""
	// modelbreaches hang p=0.05 count=0 param=""
	// antigena 429 p=1 count=2 param="5"
}
