package otlpcollector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/dtforward/dtforward/deadletter"
	"github.com/dtforward/dtforward/simulator"
	"github.com/dtforward/dtforward/sink/otlp"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary compiles dtforward from the working tree once.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dtforward-otlp-bin-")
		if binErr = err; err != nil {
			return
		}
		binPath = filepath.Join(dir, "dtforward")
		// Built in dtforward's own module, as a user builds it, not with this module's
		// dependency versions.
		build := exec.Command("go", "build", "-o", binPath, "./cmd/dtforward")
		build.Dir = filepath.Join("..", "..")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func startSim(t *testing.T, o simulator.Options) (*simulator.Simulator, string) {
	t.Helper()
	o.PublicToken, o.PrivateToken = "pub-0123456789abcdef", "priv-fedcba9876543210"
	sim, err := simulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim, url
}

// runEnv configures run against the simulator at url with an otlp sink at the collector.
func runEnv(url, state string, c *collector, protocol string) []string {
	addr := "http://" + c.HTTPAddr
	if protocol == otlp.ProtocolGRPC {
		addr = "http://" + c.GRPCAddr
	}
	vars := map[string]string{
		"DARKTRACE_URL": url, "DARKTRACE_ALLOW_HTTP": "true", "DARKTRACE_NAME": "sim",
		"DARKTRACE_PUBLIC_TOKEN": "pub-0123456789abcdef", "DARKTRACE_PRIVATE_TOKEN": "priv-fedcba9876543210",
		"DARKTRACE_TIMEOUT": "60s", "POLL_INTERVAL": "1s", "POLL_START": "3h",
		"POLL_SOURCES": "modelbreaches,aianalyst,antigena",
		"SIEM_FORMAT":  "json", "SIEM_TRANSPORT": "otlp", "SIEM_ADDRESS": addr, "SIEM_OTLP_PROTOCOL": protocol,
		"SIEM_OTLP_HEADERS": "x-scope-orgid=dtforward-test", "SIEM_TIMEOUT": "5s",
		"STATE_DIR": state, "LOG_FORMAT": "json",
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"),
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// process is one "dtforward run".
type process struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	p.cmd.Env = env
	p.cmd.Stderr = lockedWriter{p.mu, p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	return p
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stderr.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// stop ends the process with SIGTERM, as an orchestrator does, and requires a clean exit.
// It waits for the process to have started first: a SIGTERM in its first milliseconds, before
// Go installed the handler, kills it (what the collector holds can complete the test's
// condition that early: a slow pipeline takes a killed run's last export after its death).
func (p *process) stop(t *testing.T) {
	t.Helper()
	waitFor(t, p, "dtforward started", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return bytes.Contains(p.stderr.Bytes(), []byte("dtforward started"))
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v\n%s", err, p.log())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// breaches counts the model breaches the collector accepted, by pbid.
func breaches(c *collector) map[string]int {
	out := map[string]int{}
	for _, r := range c.records() {
		if r.Kind == "modelbreach" {
			out[r.ID]++
		}
	}
	return out
}

// missing lists the simulator's forwardable breaches the collector has not accepted, less
// except (set aside on purpose).
func missing(sim *simulator.Simulator, got map[string]int, except string) []string {
	var out []string
	for _, br := range sim.BreachInfos() {
		if id := strconv.FormatInt(br.PBID, 10); !br.Suppressed && got[id] == 0 && id != except {
			out = append(out, id)
		}
	}
	return out
}

// waitFor waits for cond; the timeout only bounds a failure (a loaded machine is slow).
func waitFor(t *testing.T, p *process, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deadLetters reads the sink's dead-letter file.
func deadLetters(t *testing.T, state string) []deadletter.Record {
	t.Helper()
	f, err := os.Open(filepath.Join(state, deadletter.FileName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []deadletter.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e deadletter.Record
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("dead letter %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestRunExactlyOnce: "dtforward run" (the real binary) with an otlp sink delivers every
// simulator breach exactly once to the Collector's receiver through a busy spell (UNAVAILABLE
// with RetryInfo: HTTP 503 with Retry-After), a record the pipeline refuses for good (set
// aside in the dead letter after SIEM_POISON_RETRIES refusals, the breaches behind it
// delivered), and a restart; no record of any kind arrives twice with the same content.
func TestRunExactlyOnce(t *testing.T) {
	for _, protocol := range []string{otlp.ProtocolHTTPProtobuf, otlp.ProtocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			bin := buildBinary(t)
			sim, url := startSim(t, simulator.Options{Seed: 221, History: time.Hour, HistoryCount: 60})
			sim.AddIncidentEvents(3)
			sim.AddActions(2)
			c := startCollector(t, collectorOptions{})
			state := filepath.Join(t.TempDir(), "state")
			env := runEnv(url, state, c, protocol)

			check := exec.Command(bin, "check", "--timeout", "20s")
			check.Env = env
			if out, err := check.CombinedOutput(); err != nil {
				t.Fatalf("check: %v\n%s", err, out)
			} else if !bytes.Contains(out, []byte("an empty OTLP export accepted")) {
				t.Errorf("check does not say what it verified:\n%s", out)
			}

			p := startProcess(t, bin, env, "run")
			waitFor(t, p, "the history at the collector", func() bool { return len(missing(sim, breaches(c), "")) == 0 })

			c.set(func(c *collector) { c.busy, c.busyCode, c.retry = 3, codes.Unavailable, time.Second })
			sim.AddBreaches(5)
			waitFor(t, p, "the breaches of the busy spell", func() bool { return len(missing(sim, breaches(c), "")) == 0 })
			c.mu.Lock()
			busy := c.stats.busy
			c.mu.Unlock()
			if busy == 0 {
				t.Fatal("no busy answer was given: the busy spell was not tested")
			}

			c.set(func(c *collector) { c.poisonNext = true })
			sim.AddBreaches(5)
			var poisoned string
			waitFor(t, p, "the breaches around the refused one, and the refused one in the dead letter", func() bool {
				c.mu.Lock()
				poisoned = c.poisoned
				c.mu.Unlock()
				return poisoned != "" && len(missing(sim, breaches(c), poisoned)) == 0 && len(deadLetters(t, state)) > 0
			})
			p.stop(t)
			dl := deadLetters(t, state)
			if len(dl) != 1 || dl[0].Kind != "modelbreach" || dl[0].ID != poisoned {
				t.Errorf("dead letters %+v, want breach %s alone", dl, poisoned)
			}

			sim.AddBreaches(5)
			p = startProcess(t, bin, env, "run")
			waitFor(t, p, "the breaches created while dtforward was stopped", func() bool { return len(missing(sim, breaches(c), poisoned)) == 0 })
			time.Sleep(3 * time.Second) // a few more polls: a repeat would show now
			p.stop(t)

			got := breaches(c)
			for id, n := range got {
				if n != 1 {
					t.Errorf("breach %s arrived %d times", id, n)
				}
			}
			if got[poisoned] != 0 {
				t.Errorf("the refused breach %s arrived", poisoned)
			}
			seen := map[string]bool{}
			kinds := map[string]bool{}
			for _, r := range c.records() {
				kinds[r.Kind] = true
				body, _ := json.Marshal(r.Body)
				if k := string(body); seen[k] {
					t.Errorf("%s %s arrived twice with the same content", r.Kind, r.ID)
				} else {
					seen[k] = true
				}
				if r.Appliance != "sim" || r.Resource["service.name"] != "dtforward" || r.Body["id"] != r.ID {
					t.Errorf("%s %s: appliance %q resource %v", r.Kind, r.ID, r.Appliance, r.Resource)
				}
			}
			for _, k := range []string{"modelbreach", "aianalyst", "antigena"} {
				if !kinds[k] {
					t.Errorf("no %s record arrived", k)
				}
			}
			t.Logf("%s: %d breaches exactly once, %d records in all, %d busy answers, breach %s set aside", protocol, len(got), len(c.records()), busy, poisoned)
		})
	}
}

// TestRunKill9 kills the real binary at random moments while it exports to a slow pipeline
// (each request held 200 ms), then lets a last run finish: every breach arrives, and the
// repeats are bounded by what the killed processes had in flight.
func TestRunKill9(t *testing.T) {
	bin := buildBinary(t)
	sim, url := startSim(t, simulator.Options{Seed: 222, History: time.Hour, HistoryCount: 300})
	c := startCollector(t, collectorOptions{})
	c.set(func(c *collector) { c.delay = 200 * time.Millisecond })
	env := runEnv(url, filepath.Join(t.TempDir(), "state"), c, otlp.ProtocolGRPC)
	env = append(env, "POLL_SOURCES=modelbreaches")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	const kills = 8
	requests := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.stats.requests
	}
	for range kills {
		sim.AddBreaches(20 + rng.IntN(40)) // new breaches while it runs, killed mid-batch
		before := requests()
		p := startProcess(t, bin, env, "run")
		// Killed while an export is in the pipeline (each is held 200 ms) or just after.
		waitFor(t, p, "an export to reach the collector", func() bool { return requests() > before })
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	arrived := len(breaches(c))
	p := startProcess(t, bin, env, "run")
	waitFor(t, p, "every breach after the last restart", func() bool { return len(missing(sim, breaches(c), "")) == 0 })
	p.stop(t)
	got := breaches(c)
	dup := 0
	for _, n := range got {
		dup += n - 1
	}
	// Each killed run can repeat at most what it had sent and not seen accepted: one batch of
	// poller.DefaultSendBatch (1000; not imported: it would bring Prometheus into this module).
	if limit := kills * 1000; dup > limit {
		t.Errorf("%d duplicates over %d kills (more than one batch per kill)", dup, kills)
	}
	t.Logf("%d kills, each while an export was in the pipeline; %d of %d breaches had arrived before the last run; none lost, %d duplicates", kills, arrived, len(got), dup)
}
