// Command antigena-outage measures which Antigena states a sink that was down while actions
// went through their lifecycle gets once it is back (issue 18 item 9). The simulator (in this
// process, real HTTP on 127.0.0.1) creates -actions actions, half before the outage and the
// rest during it, and moves every one through confirmation, extension, expiry, reactivation
// and clear while the sink is down; the real dtforward binary polls /antigena every second
// and sends JSON to a Splunk HEC (internal/testutil/hecsim, indexer acknowledgement on: what
// it indexed, it got) that is stopped for -down and then resumed. It prints the states the
// simulator emitted, how many the sink got exactly once, lost and repeated, and
// dtforward_antigena_states_missed_total.
//
// Usage (see bench/antigena-outage.sh):
//
//	antigena-outage -bin ./dtforward -actions 100 -down 20s
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/dtforward/dtforward/bench/internal/benchkit"
	"github.com/dtforward/dtforward/internal/testutil/hecsim"
	"github.com/dtforward/dtforward/simulator"
)

const token = "11111111-2222-3333-4444-555555555555"

func main() {
	bin := flag.String("bin", "", "dtforward binary (required)")
	actions := flag.Int("actions", 100, "Antigena actions created (half before the outage, half during it)")
	down := flag.Duration("down", 20*time.Second, "how long the sink is down")
	flag.Parse()
	if *bin == "" || *actions < 2 || *down < 5*time.Second {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*bin, *actions, *down); err != nil {
		fmt.Fprintln(os.Stderr, "antigena-outage:", err)
		os.Exit(1)
	}
}

func run(bin string, actions int, down time.Duration) error {
	sim, url, err := benchkit.StartSimulator(simulator.Options{Seed: 23, HistoryCount: -1})
	if err != nil {
		return err
	}
	defer sim.Close()
	hec, err := hecsim.New(hecsim.Options{Tokens: map[string]hecsim.Token{token: {Ack: true}}})
	if err != nil {
		return err
	}
	hecURL, err := hec.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer hec.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsAddr := l.Addr().String()
	_ = l.Close()
	state, err := os.MkdirTemp("", "antigena-outage-state")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)

	cmd := exec.Command(bin, "run")
	cmd.Env = benchkit.Env(url, "hec", hecURL, state, "SIEM_HEC_TOKEN="+token, "POLL_SOURCES=antigena",
		"POLL_INTERVAL=1s", "HTTP_ADDRESS="+metricsAddr)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	// The first poll sees no action: everything after it is a change dtforward must follow.
	time.Sleep(3 * time.Second)
	sim.AddActions(actions / 2)
	if !waitFor(30*time.Second, func() bool { return len(hec.Events()) >= len(sim.ActionStates()) }) {
		return fmt.Errorf("before the outage: the sink got %d of %d states", len(hec.Events()), len(sim.ActionStates()))
	}
	before := len(sim.ActionStates())

	// Down: new actions, then every action one step at a time, with an expiry in the middle.
	if err := hec.Stop(); err != nil {
		return err
	}
	step := down / 6
	sim.AddActions(actions - actions/2)
	for _, change := range []func() []simulator.ActionState{sim.AdvanceActions, sim.ExpireActions, sim.AdvanceActions, sim.AdvanceActions, sim.AdvanceActions} {
		time.Sleep(step)
		change()
	}
	time.Sleep(step)
	if err := hec.Resume(); err != nil {
		return err
	}

	emitted := sim.ActionStates()
	want := map[string]int{}
	expired := 0
	for _, s := range emitted {
		want[fmt.Sprintf("%d/%s/%d", s.CodeID, s.State, s.Updated)]++
		if s.State == "expired" {
			expired++
		}
	}
	got := func() map[string]int {
		out := map[string]int{}
		for _, e := range hec.Events() {
			var ev struct {
				ID      string    `json:"id"`
				Created time.Time `json:"created"`
				Action  struct {
					State string `json:"state"`
				} `json:"action"`
			}
			if json.Unmarshal(e.Event, &ev) == nil {
				out[fmt.Sprintf("%s/%s/%d", ev.ID, ev.Action.State, ev.Created.UnixMilli())]++
			}
		}
		return out
	}
	// Back: every action's latest state arrives (after the sink's retry backoff), then nothing
	// new for 5 s (a poll a second).
	latest := map[int64]string{}
	for _, s := range emitted {
		latest[s.CodeID] = fmt.Sprintf("%d/%s/%d", s.CodeID, s.State, s.Updated)
	}
	if !waitFor(3*time.Minute, func() bool {
		g := got()
		for _, k := range latest {
			if g[k] == 0 {
				return false
			}
		}
		return true
	}) {
		return fmt.Errorf("after the outage: not every action's latest state arrived in 3 minutes")
	}
	last, since := -1, time.Now()
	for time.Since(since) < 5*time.Second {
		if n := len(hec.Events()); n != last {
			last, since = n, time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
	have := got()
	once, lost, repeated, unknown := 0, 0, 0, 0
	lostBy := map[string]int{}
	for k := range want {
		switch n := have[k]; {
		case n == 1:
			once++
		case n == 0:
			lost++
			lostBy[strings.Split(k, "/")[1]]++
		default:
			repeated++
		}
	}
	for k := range have {
		if want[k] == 0 {
			unknown++
		}
	}
	fmt.Printf("%d actions, %d states emitted (%d before the outage, %d during it, %d of them expiries)\n",
		actions, len(want), before, len(want)-before, expired)
	fmt.Printf("sink got %d exactly once, lost %d %v, repeated %d, not a state %d\n", once, lost, lostBy, repeated, unknown)
	fmt.Printf("dtforward_antigena_states_missed_total %s\n", metric(metricsAddr, "dtforward_antigena_states_missed_total"))
	return nil
}

func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// metric returns the value of the first series of name on dtforward's /metrics, "absent" when
// it has none.
func metric(addr, name string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			return l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	return "absent"
}
