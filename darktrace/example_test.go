package darktrace_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// fakeAppliance answers /modelbreaches with two good records and a malformed one in between,
// and everything else with the appliance's signature error.
func fakeAppliance() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/modelbreaches" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"antigena": "API SIGNATURE ERROR"}`)
			return
		}
		_, _ = io.WriteString(w, `[
			{"pbid": 95, "time": 1597688304000, "creationTime": 1597688310000, "score": 0.674,
			 "model": {"name": "Anomalous Connection::Data Sent to Rare Domain", "pid": 762}, "device": {"did": 7}},
			{"pbid": "unknown", "time": 1597688305000},
			{"pbid": 97, "time": 1597688400000, "score": "0.9",
			 "model": {"name": "System::System"}, "device": {"did": -1}}
		]`)
	}))
}

func ExampleClient_Stream() {
	srv := fakeAppliance()
	defer srv.Close()
	c, err := darktrace.New(darktrace.Config{
		URL:          srv.URL,
		PublicToken:  "public-token",
		PrivateToken: "private-token",
		AllowHTTP:    true, // https:// in production; plain HTTP only for tests and the simulator
		Timeout:      10 * time.Second,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()

	// The query is built by the source table, in the order the signature covers.
	src, _ := darktrace.SourceNamed(darktrace.SourceBreaches)
	i := 0
	err = c.Stream(context.Background(), src.Path(darktrace.Query{Start: 1597688000000, End: 1597689000000}),
		func(raw []byte) error {
			rec, err := src.Decode(raw, nil)
			b, _ := rec.(*darktrace.Breach)
			if err != nil || b.PBID <= 0 {
				fmt.Printf("skipped record %d (pbid %s)\n", i, darktrace.RecordID(raw))
			} else {
				fmt.Printf("breach %d %q score %.3f\n", b.PBID, b.Model.Name, b.Score.Float64())
			}
			i++
			return nil
		})
	fmt.Println("error:", err)
	// Output:
	// breach 95 "Anomalous Connection::Data Sent to Rare Domain" score 0.674
	// skipped record 1 (pbid unknown)
	// breach 97 "System::System" score 0.900
	// error: <nil>
}

func ExampleClassOf() {
	srv := fakeAppliance()
	defer srv.Close()
	c, err := darktrace.New(darktrace.Config{URL: srv.URL, PublicToken: "public-token", PrivateToken: "private-token", AllowHTTP: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseIdleConnections()

	var sum darktrace.ActionSummary
	err = c.GetJSON(context.Background(), "/antigena/summary", &sum)
	switch darktrace.ClassOf(err) {
	case darktrace.ClassOK:
		fmt.Println("pending actions:", sum.PendingCount)
	case darktrace.ClassRetry:
		fmt.Println("transient, retry after", darktrace.RetryAfterOf(err))
	case darktrace.ClassAuth, darktrace.ClassPermanent:
		fmt.Println(darktrace.ClassOf(err), "-", err)
	}
	// Output:
	// auth - darktrace /antigena/summary: signature rejected: check DARKTRACE_PUBLIC_TOKEN/DARKTRACE_PRIVATE_TOKEN (a pair from the same token, no stray whitespace): API SIGNATURE ERROR
}
