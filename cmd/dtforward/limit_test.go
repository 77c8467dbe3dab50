package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dtforward/dtforward/simulator"
)

// concurrencyMeter serves a simulator, delaying every /modelbreaches answer so that requests
// of different appliances overlap unless something holds them back, and records the most
// that were in flight at once across every appliance sharing the meter.
type concurrencyMeter struct {
	mu       sync.Mutex
	cur, max int
	total    int
}

func (m *concurrencyMeter) serve(t *testing.T, sim *simulator.Simulator) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/modelbreaches") {
			m.mu.Lock()
			m.cur++
			m.total++
			m.max = max(m.max, m.cur)
			m.mu.Unlock()
			defer func() {
				m.mu.Lock()
				m.cur--
				m.mu.Unlock()
			}()
			time.Sleep(30 * time.Millisecond)
		}
		sim.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		_ = sim.Close()
	})
	return "http://" + ln.Addr().String()
}

func (m *concurrencyMeter) peak() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max, m.total
}

// TestRunLimitsConcurrentRequests (issue 13 item 2): with DARKTRACE_MAX_CONCURRENT_REQUESTS=2,
// eight appliances whose answers take a while never have more than two requests in flight
// between them, and all of them still deliver everything.
func TestRunLimitsConcurrentRequests(t *testing.T) {
	const n, limit = 8, 2
	var meter concurrencyMeter
	var apps []map[string]any
	var sims []*simulator.Simulator
	for i := range n {
		sim, err := simulator.New(simulator.Options{Seed: int64(60 + i), History: time.Hour, HistoryCount: 5,
			PublicToken: "pub", PrivateToken: "priv"})
		if err != nil {
			t.Fatal(err)
		}
		sims = append(sims, sim)
		apps = append(apps, map[string]any{"name": fmt.Sprintf("dt-%d", i), "url": meter.serve(t, sim),
			"public_token": "pub", "private_token": "priv", "allow_http": true})
	}
	dir := t.TempDir()
	vars := appliancesVars(t, dir, filepath.Join(dir, "state"), apps)
	vars["DARKTRACE_MAX_CONCURRENT_REQUESTS"] = fmt.Sprint(limit)
	startRun(t, vars, testInterval)
	waitUntil(t, 60*time.Second, "every appliance's breaches", func() bool {
		got := linesByAppliance(vars["SIEM_ADDRESS"])
		for i, sim := range sims {
			want := len(sim.BreachInfos())
			if len(got[fmt.Sprintf("dt-%d", i)]) != want {
				return false
			}
		}
		return true
	})
	peak, total := meter.peak()
	if total < n {
		t.Fatalf("only %d requests for %d appliances", total, n)
	}
	if peak > limit {
		t.Fatalf("%d requests in flight at once; DARKTRACE_MAX_CONCURRENT_REQUESTS is %d", peak, limit)
	}
}
