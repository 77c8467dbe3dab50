// Command hec-vs-tcp measures the CPU dtforward's Splunk HEC sink spends per event, against
// the TCP syslog sink sending the same records (the json format) to a local receiver. It
// prints events per CPU-second of each, and HEC's ratio to TCP.
//
// The sender is this binary re-executed as "send": it formats the records first, then
// charges itself only the CPU (user + system, from getrusage) of the send loop, so the
// receivers, which live in this process, are charged to nobody. HEC is measured with indexer
// acknowledgement (the default) and without, over plain HTTP so that it compares with plain
// TCP; the receiver is internal/testutil/hecsim, acknowledging at once.
//
// Usage: go run ./bench/hec-vs-tcp [-n 100000] [-runs 3] [-batch 500]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/testutil/hecsim"
	"github.com/dtforward/dtforward/sink"
	"github.com/dtforward/dtforward/sink/hec"
)

const (
	ackToken   = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	noAckToken = "11111111-2222-4333-8444-555555555555"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "send" {
		if err := send(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 100000, "events per run")
	runs := flag.Int("runs", 3, "runs per sink; the median is reported")
	batch := flag.Int("batch", 500, "events per Send (dtforward's slice)")
	flag.Parse()
	if err := run(*n, *runs, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "hec-vs-tcp:", err)
		os.Exit(1)
	}
}

type result struct{ cpu, wall time.Duration }

func run(n, runs, batch int) error {
	tcp, err := newLineCounter()
	if err != nil {
		return err
	}
	defer tcp.close()
	h, err := hecsim.New(hecsim.Options{Discard: true, Tokens: map[string]hecsim.Token{ackToken: {Ack: true}, noAckToken: {}}})
	if err != nil {
		return err
	}
	hecURL, err := h.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer h.Close()

	sinks := []struct {
		name string
		args []string
		got  func() int64
	}{
		{"tcp (RFC 5424, LF)", []string{"-transport", "tcp", "-addr", tcp.l.Addr().String()}, tcp.lines.Load},
		{"hec, acknowledgement on", []string{"-transport", "hec", "-addr", hecURL, "-token", ackToken, "-ack"}, func() int64 { return int64(h.Indexed()) }},
		{"hec, acknowledgement off", []string{"-transport", "hec", "-addr", hecURL, "-token", noAckToken}, func() int64 { return int64(h.Indexed()) }},
	}
	results := make([][]result, len(sinks))
	for i := 0; i < runs; i++ {
		for j, s := range sinks {
			base := s.got()
			r, err := sendRun(append(s.args, "-n", strconv.Itoa(n), "-batch", strconv.Itoa(batch)))
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.name, i+1, err)
			}
			deadline := time.Now().Add(time.Minute)
			for s.got()-base < int64(n) {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s run %d: receiver got %d of %d events", s.name, i+1, s.got()-base, n)
				}
				time.Sleep(2 * time.Millisecond)
			}
			fmt.Printf("run %d: %-26s %8v CPU, %8v wall for %d events\n", i+1, s.name, r.cpu.Round(time.Millisecond), r.wall.Round(time.Millisecond), n)
			results[j] = append(results[j], r)
		}
	}
	var tcpRate float64
	for j, s := range sinks {
		cpu := median(results[j], func(r result) time.Duration { return r.cpu })
		wall := median(results[j], func(r result) time.Duration { return r.wall })
		rate := float64(n) / cpu.Seconds()
		if j == 0 {
			tcpRate = rate
		}
		fmt.Printf("%-26s %9.0f events/CPU-second, %9.0f events/s wall (median of %d)", s.name, rate, float64(n)/wall.Seconds(), runs)
		if j > 0 {
			fmt.Printf(", %.2f× TCP", rate/tcpRate)
		}
		fmt.Println()
	}
	return nil
}

func median(rs []result, f func(result) time.Duration) time.Duration {
	d := make([]time.Duration, len(rs))
	for i, r := range rs {
		d[i] = f(r)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func sendRun(args []string) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, append([]string{"send"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return result{}, err
	}
	var cpu, wall int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%d %d", &cpu, &wall); err != nil {
		return result{}, fmt.Errorf("sender said %q", out)
	}
	return result{time.Duration(cpu), time.Duration(wall)}, nil
}

// send formats n records, then sends them in batches and prints the send loop's CPU and wall
// time in nanoseconds.
func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	transport := fs.String("transport", "tcp", "tcp or hec")
	addr := fs.String("addr", "", "receiver")
	token := fs.String("token", "", "HEC token")
	ack := fs.Bool("ack", false, "HEC indexer acknowledgement")
	n := fs.Int("n", 100000, "events")
	batch := fs.Int("batch", 500, "events per Send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	msgs, err := records(*n)
	if err != nil {
		return err
	}
	var s sink.Sink
	if *transport == "hec" {
		s, err = hec.New(hec.Config{URL: *addr, Token: *token, Ack: *ack, Format: "json", Name: "bench"})
	} else {
		s, err = sink.New(sink.Config{Transport: "tcp", Address: *addr, Hostname: "bench"})
	}
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.Send(ctx, msgs[:1]); err != nil { // connect (and probe) outside the measurement
		return err
	}
	msgs = msgs[1:]
	cpu0, start := cpuTime(), time.Now()
	for len(msgs) > 0 {
		k := min(*batch, len(msgs))
		if err := s.Send(ctx, msgs[:k]); err != nil {
			return err
		}
		msgs = msgs[k:]
	}
	cpu, wall := cpuTime()-cpu0, time.Since(start)
	if err := s.Close(); err != nil {
		return err
	}
	fmt.Println(int64(cpu), int64(wall))
	return nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// breachTemplate is a typical model breach as the API returns it.
const breachTemplate = `{"pbid":%d,"time":%d,"creationTime":%d,"commentCount":0,"acknowledged":false,"score":0.674,` +
	`"breachUrl":"https://dt.example.com/#modelbreach/%d","model":{"name":"Anomalous Connection::Data Sent to Rare Domain","pid":762,` +
	`"phid":1450,"uuid":"80b0ff4c-5e85-4fdb-8d4d-9c2b1e5f3b2a","tags":["AP: Egress"],"priority":4,"category":"Suspicious",` +
	`"description":"A device has sent data to a rare external endpoint.","mitre":{"techniques":["T1041"]}},` +
	`"device":{"did":%d,"ip":"10.0.%d.%d","sid":1,"hostname":"ws-%d","macaddress":"aa:bb:cc:dd:ee:07","typelabel":"Desktop"},` +
	`"triggeredComponents":[{"time":%d,"triggeredFilters":[{"filterType":"Destination IP","trigger":{"value":"81.2.69.144"}},` +
	`{"filterType":"Destination port","trigger":{"value":443}}]}]}`

// records returns n model breaches in the json format, as run would send them.
func records(n int) ([]sink.Message, error) {
	f, err := formatter.New("json", formatter.Options{Version: "bench", MaxBytes: 8192})
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"customer": "acme"}
	out := make([]sink.Message, n)
	t0 := int64(1_760_000_000_000)
	for i := range out {
		ms := t0 + int64(i)*1000
		raw := fmt.Appendf(nil, breachTemplate, i+1, ms, ms+5000, i+1, i%500, i%250/250, i%250, i%500, ms)
		var b darktrace.Breach
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, err
		}
		a, err := alert.FromBreach(&b, raw, "dt-1", "dt.example.com")
		if err != nil {
			return nil, err
		}
		a.Labels = labels
		line, err := f.Append(nil, a)
		if err != nil {
			return nil, err
		}
		out[i] = sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line, Alert: a}
	}
	return out, nil
}

// lineCounter counts LF-terminated lines on any number of TCP connections.
type lineCounter struct {
	l     net.Listener
	lines atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newLineCounter() (*lineCounter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &lineCounter{l: l}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				buf := make([]byte, 256<<10)
				for {
					k, err := c.Read(buf)
					r.lines.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return r, nil
}

func (r *lineCounter) close() {
	r.l.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
