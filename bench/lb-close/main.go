// Command lb-close measures what "dtforward run" loses over plain TCP when the collector side
// closes connections on its own schedule, as a load balancer or a collector with an idle or
// session timeout does: every connection is read for -after (400ms, 5s, …) and then closed,
// data still in flight or unread included. The simulator (in this process, real HTTP on
// 127.0.0.1) holds -history breaches of the last hour and creates more live at -rate per
// second for -for; the real dtforward binary catches up, then polls every second, sending
// JSON over TCP. It prints the breaches created, how many
// never arrived whole at the peer, the duplicates and the batches dtforward itself saw fail.
//
// TCP has no acknowledgement above the kernel: bytes the kernel accepted for a peer that then
// closes are gone, and the sender learns of the close only on a later write (or not at all).
// What the numbers show is TCP's nature, not a bug to fix in the sender; RELP (an answer per
// message) is the transport that cannot lose them.
//
// Usage (see bench/lb-close.sh):
//
//	lb-close -bin ./dtforward -after 400ms -for 40s -rate 10
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/simulator"
)

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	after := flag.Duration("after", 400*time.Millisecond, "how long the peer reads each connection before closing it")
	span := flag.Duration("for", 40*time.Second, "how long breaches are created")
	rate := flag.Float64("rate", 10, "breaches created per second")
	mode := flag.String("mode", "all", "what the peer reads of each connection before closing it after -after: all (everything until then), "+
		"once (one read when -after has passed), first (one read as soon as data arrives, then nothing: a proxy whose backend went away)")
	history := flag.Int("history", 300, "breaches created in the hour before the run starts (its first polls catch up on them)")
	flag.Parse()
	if *bin == "" || *after <= 0 || *span <= 0 || *rate <= 0 || *mode != "all" && *mode != "once" && *mode != "first" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *after, *span, *rate, *mode, *history); err != nil {
		fmt.Fprintln(os.Stderr, "lb-close:", err)
		os.Exit(1)
	}
}

func run(bin string, after, span time.Duration, rate float64, mode string, history int) error {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: 11, Rate: rate, History: time.Hour, HistoryCount: history})
	if err != nil {
		return err
	}
	defer sim.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	peer := &closingPeer{after: after, mode: mode, got: map[string]int{}}
	go peer.serve(l)

	state, err := os.MkdirTemp("", "lb-close-state")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	start := sim.Now().Add(-time.Hour)
	cmd := exec.Command(bin, "run")
	cmd.Env = benchkit.Env(url, "tcp", l.Addr().String(), state, "POLL_INTERVAL=1s",
		"POLL_START="+start.Add(-time.Minute).UTC().Format(time.RFC3339))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	time.Sleep(span)
	end := sim.Now()
	// Everything created until end has had its chance: a poll (1 s), the overlap re-read and
	// a few retries.
	time.Sleep(15 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	_ = l.Close()
	conns, got := peer.result()

	created, lost := 0, 0
	for _, b := range sim.BreachInfos() {
		if b.Created < start.UnixMilli() || b.Created >= end.UnixMilli() {
			continue
		}
		created++
		if got[strconv.FormatInt(b.PBID, 10)] == 0 {
			lost++
		}
	}
	dups := 0
	for _, n := range got {
		dups += max(n-1, 0)
	}
	failed := bytes.Count(stderr.Bytes(), []byte("sink did not accept the batch"))
	how := map[string]string{"all": "reads each connection for", "once": "reads each connection once, after",
		"first": "reads the first chunk of each connection, nothing more for"}[mode]
	fmt.Printf("TCP peer that %s %s, then closes it; %d breaches of the last hour, then %.0f/s for %s\n", how, after, history, rate, span)
	fmt.Printf("  connections %d, breaches created %d, lost %d (%.0f%%), duplicates %d, batches dtforward saw fail %d\n",
		conns, created, lost, 100*float64(lost)/float64(max(created, 1)), dups, failed)
	return nil
}

// closingPeer reads each connection as mode says, counting the breach ids of complete lines,
// and closes it after after (unread bytes make the kernel send a reset).
type closingPeer struct {
	after time.Duration
	mode  string
	mu    sync.Mutex
	conns int
	got   map[string]int
	wg    sync.WaitGroup
}

var breachID = regexp.MustCompile(`"kind":"modelbreach".*?"id":"([0-9]+)"|"id":"([0-9]+)".*?"kind":"modelbreach"`)

func (p *closingPeer) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			var r io.Reader = c
			closeAt := time.Now().Add(p.after)
			switch p.mode {
			case "once", "first":
				if p.mode == "once" {
					time.Sleep(p.after)
				}
				buf := make([]byte, 1<<20)
				_ = c.SetReadDeadline(closeAt.Add(50 * time.Millisecond))
				n, _ := c.Read(buf)
				r = bytes.NewReader(buf[:n])
				time.Sleep(time.Until(closeAt))
			default:
				_ = c.SetReadDeadline(closeAt)
			}
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if m := breachID.FindSubmatch(sc.Bytes()); m != nil {
					id := string(m[1]) + string(m[2])
					p.mu.Lock()
					p.got[id]++
					p.mu.Unlock()
				}
			}
		}()
	}
}

func (p *closingPeer) result() (int, map[string]int) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.got
}
