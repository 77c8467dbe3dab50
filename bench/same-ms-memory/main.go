// Command same-ms-memory measures the peak RSS of "dtforward run" in the cases of issue 18
// item 8: a flood of breaches created in the same millisecond (more than the per-response cap
// of 5,000 in a window that cannot be split), one breach whose model description is tens of
// megabytes, and one whose model has millions of short tags (hundreds of megabytes of array). The simulator runs in this process over real HTTP on 127.0.0.1; the real binary
// sends JSON over TCP to a real rsyslogd, and every pbid is checked to arrive exactly once.
// Each -bin is measured in turn on the same input (bench/same-ms-memory builds the current tree
// and, with BASE=<commit>, that commit too).
//
//	same-ms-memory -bin ./dtforward [-bin ./dtforward-base] -n 100000 -desc-mb 20 -tags-mb 200
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

type bins []string

func (b *bins) String() string     { return strings.Join(*b, ",") }
func (b *bins) Set(v string) error { *b = append(*b, v); return nil }

func main() {
	var bs bins
	flag.Var(&bs, "bin", "dtforward binary (repeat to compare)")
	n := flag.Int("n", 100_000, "breaches created in the same millisecond")
	descMB := flag.Int("desc-mb", 20, "size of the huge description, MB (0 = skip)")
	tagsMB := flag.Int("tags-mb", 0, "size of the huge model tags array, MB, of tags of 12 bytes (0 = skip)")
	flag.Parse()
	if len(bs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	rs, err := benchkit.StartRsyslog("same-ms-bench", benchkit.RsyslogOptions{
		Global: `maxMessageSize="256k"`, TCPModule: `maxSessions="100"`,
		Action: `asyncWriting="on" flushOnTXEnd="off" ioBufferSize="256k"`, Wait: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer rs.Stop()
	failed := false
	for _, bin := range bs {
		fmt.Printf("%s\n", bin)
		if *n > 0 {
			res, err := flood(bin, rs, *n)
			report(fmt.Sprintf("%d breaches in one millisecond", *n), res, err, &failed)
		}
		if *descMB > 0 {
			res, err := hugeField(bin, rs, `"description":"`, bytes.Repeat([]byte("x"), *descMB<<20))
			report(fmt.Sprintf("one breach with a %d MB description", *descMB), res, err, &failed)
		}
		if *tagsMB > 0 {
			res, err := hugeField(bin, rs, `"tags":[`, tags(*tagsMB<<20))
			report(fmt.Sprintf("one breach whose model has %d MB of tags", *tagsMB), res, err, &failed)
		}
	}
	if failed {
		os.Exit(1)
	}
}

type result struct {
	wall     time.Duration
	hwm      int64
	lines    int
	baseline int64 // VmHWM once the history was delivered, before the case began
}

func report(what string, res result, err error, failed *bool) {
	if err != nil {
		*failed = true
		fmt.Printf("  %s: FAILED: %v (peak RSS %.1f MB)\n", what, err, benchkit.MB(res.hwm))
		return
	}
	fmt.Printf("  %s: delivered %d lines, every pbid exactly once, in %.1fs; peak RSS %.1f MB (%.1f MB before it)\n",
		what, res.lines, res.wall.Seconds(), benchkit.MB(res.hwm), benchkit.MB(res.baseline))
}

// flood: run is caught up on a small history, then n breaches appear in the same millisecond.
func flood(bin string, rs *benchkit.Rsyslog, n int) (result, error) {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: 8, History: time.Hour, HistoryCount: 10})
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	return measure(bin, url, rs, sim, func() { sim.AddBreaches(n) })
}

// tags is a list of size bytes of short JSON strings, each followed by a comma: the start of
// an array, put before its own elements.
func tags(size int) []byte {
	b := make([]byte, 0, size+16)
	for i := 0; len(b) < size; i++ {
		b = fmt.Appendf(b, `"t%09d",`, i)
	}
	return b
}

// hugeField: one breach with pad put just after key (the model's `"description":"` or
// `"tags":[`, the first such key past the breach's pbid) by a proxy in front of the simulator,
// in every answer that holds it. A pad ending in a comma (array elements) loses it before an
// empty array.
func hugeField(bin string, rs *benchkit.Rsyslog, key string, pad []byte) (result, error) {
	sim, _, err := benchkit.StartSimulator(simulator.Options{Seed: 9, History: time.Hour, HistoryCount: 10})
	if err != nil {
		return result{}, err
	}
	defer sim.Close()
	var huge int64 = -1
	proxy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if id := huge; id >= 0 && r.URL.Path == "/modelbreaches" {
			if i := bytes.Index(body, []byte(`"pbid":`+strconv.FormatInt(id, 10)+`,`)); i >= 0 {
				if j := bytes.Index(body[i:], []byte(key)); j >= 0 {
					at := i + j + len(key)
					p := pad
					if body[at] == ']' {
						p = bytes.TrimSuffix(p, []byte(","))
					}
					body = append(body[:at:at], append(p, body[at:]...)...)
				}
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return measure(bin, "http://"+ln.Addr().String(), rs, sim, func() {
		ids := sim.AddBreaches(1)
		huge = ids[0]
	})
}

// measure starts "dtforward run", waits until the history arrived, calls act, and waits until
// every breach arrived; the peak RSS covers the whole run.
func measure(bin, url string, rs *benchkit.Rsyslog, sim *simulator.Simulator, act func()) (result, error) {
	var res result
	run, err := benchkit.StartRun(bin, url, rs, "POLL_START=1h", "POLL_SOURCES=modelbreaches", "POLL_INTERVAL=5s",
		"FILTER_INCLUDE_SUPPRESSED=true") // every breach, whatever the default of the binary measured
	if err != nil {
		return res, err
	}
	defer run.Stop() //nolint:errcheck // the error path only: Stop is checked below
	want := func() map[string]bool {
		w := map[string]bool{}
		for _, b := range sim.BreachInfos() {
			w[strconv.FormatInt(b.PBID, 10)] = true
		}
		return w
	}
	if err := run.Wait(len(want()), 5*time.Minute); err != nil {
		return res, err
	}
	res.baseline = run.Peak
	start := time.Now()
	act()
	w := want()
	if err := run.Wait(len(w), 30*time.Minute); err != nil {
		return res, err
	}
	res.wall = time.Since(start)
	run.Watch(12 * time.Second)
	res.hwm = run.Peak
	if err := run.Stop(); err != nil {
		return res, err
	}
	got, err := rs.WaitIDs(run.Before, len(w), 60*time.Second)
	if err != nil {
		return res, err
	}
	res.lines, err = benchkit.ExactlyOnce(got, w)
	return res, err
}
