package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/simulator"
)

var update = flag.Bool("update", false, "rewrite testdata/earlier-states.golden")

// earlierRecords are raw /antigena records with histories: the real-shaped corpus, the golden
// inputs of the formatters, hand-written odd shapes (members spelled in other cases, repeated,
// histories out of order, entries of unknown meaning, strings the encoder escapes), and long
// histories the simulator grew over HTTP (hostile and odd shapes among them).
func earlierRecords(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	f, err := os.Open(filepath.Join("..", "testdata", "realshapes", "antigena.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, bytes.Clone(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"antigena-states", "antigena-one-action-lifecycle"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "golden", dir, "input.json"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := alert.SplitRecords(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, r)
		}
	}
	odd := []string{
		`{"codeid":7,"action":"quarantine","aghost":"h\u00e9\\|=","expires":5000,"updated":"4","active":false,"cleared":true,"blocked":false,` +
			`"history":[{"action":"cleared","time":4,"username":"bob"},{"action":"created (requires confirmation)","time":1},` +
			`{"action":"created","reason":"confirmed","time":2},{"action":"extended","time":3}],"extra":{"kept":[1,2]}}`,
		`{"CodeID":8, "ACTIVE":true,"Blocked":true,"blocked":true,"Expires":"900","Updated":40,"active":true,` +
			`"History":[{"Action":"Created","Time":10,"Username":"<a&b>\u2028"},null,{"action":"frobnicated","time":20},` +
			`{"action":"Extended by hand","time":20,"reason":"x\u00e9\ud83d\ude00"},{"action":"reactivated (expired)","time":30,"family":"ANTIGENA"},` +
			`{"action":"extended","time":40}],"history":"not a list"}`,
		`{"codeid":9,"active":true,"cleared":false,"expires":100,"updated":"200","blocked":true,"history":[` +
			`{"action":"created (requires confirmation)","time":50},{"action":"created","time":60},{"action":"cleared","time":70},` +
			`{"action":"reactivated (expired)","time":80},{"action":"extended","time":90}]}`,
		`{"codeid":10,"active":false,"cleared":true,"updated":"3","history":[{"action":"created","time":1},{"action":"cleared","time":3},{"action":"created","time":1}]}`,
	}
	for _, r := range odd {
		out = append(out, []byte(r))
	}
	return append(out, simulatorActions(t)...)
}

// stepClock is a clock the test moves by hand, so that the simulator's records are the same
// on every run.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// simulatorActions grows Antigena histories on the simulator (each expiry and reactivation is
// one more entry) and reads them over HTTP as dtforward does.
func simulatorActions(t *testing.T) [][]byte {
	t.Helper()
	clk := &stepClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	sim, err := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 41, HistoryCount: -1,
		HostileFraction: 0.3, OddFraction: 0.3, Hostname: "appliance.corp.example", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := darktrace.New(darktrace.Config{URL: u, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true,
		Timeout: time.Minute, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	sim.AddActions(12)
	for i := 0; i < 60; i++ {
		clk.add(time.Minute)
		if i%20 == 0 {
			sim.AdvanceActions() // confirm the pending ones, extend the active ones
			clk.add(time.Minute)
		}
		sim.ExpireActions()
		clk.add(time.Minute)
		sim.AdvanceActions() // reactivated (expired)
	}
	clk.add(time.Minute)
	sim.ExpireActions() // some records show an expiry after their latest entry
	var out [][]byte
	if err := c.Stream(context.Background(), darktrace.Sources[1].Path(darktrace.Query{}), func(raw []byte) error {
		out = append(out, bytes.Clone(raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEarlierGolden pins every line dtforward writes for the earlier states of Antigena
// actions (all formats), for several "since" each, against testdata/earlier-states.golden.
// The golden was written by the implementation that rebuilt each state by marshalling its
// history prefix and decoding the rewritten record; any faster way must write the same bytes.
func TestEarlierGolden(t *testing.T) {
	if darktrace.Sources[1].Name != darktrace.SourceAntigena {
		t.Fatal("Sources[1] is not antigena")
	}
	var fms []formatter.Formatter
	names := formatter.Names()
	for _, n := range names {
		f, err := formatter.New(n, formatter.Options{Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		fms = append(fms, f)
	}
	var got strings.Builder
	longest := 0
	for _, raw := range earlierRecords(t) {
		src, err := NewReader(&fakeAPI{extra: []string{string(raw)}}, "dt", "dt.example",
			Filter{IncludeAcknowledged: true}, zerolog.Nop()).Source(darktrace.SourceAntigena)
		if err != nil {
			t.Fatal(err)
		}
		b, err := src.Fetch(context.Background(), time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range b.Items {
			act, err := darktrace.DecodeAction(it.Alert.Raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			longest = max(longest, len(act.History))
			for _, since := range sinces(act.History) {
				items, missed := src.Earlier(it, since)
				fmt.Fprintf(&got, "codeid=%s version=%s since=%s steps=%d missed=%d\n", it.Key, it.Version, since, len(items), missed)
				for _, e := range items {
					// One digest of the step's line in every format keeps the file small; the
					// failure names the step.
					h := sha256.New()
					h.Write(append(e.Alert.Raw, '\n')) // as well: darktrace-json compacts it
					for i, f := range fms {
						line, err := f.Append(nil, e.Alert)
						if err != nil {
							line = []byte(names[i] + " error: " + err.Error())
						}
						h.Write(append(line, '\n'))
					}
					fmt.Fprintf(&got, "  key=%s version=%s time=%d acked=%t lines=%s\n", e.Key, e.Version, e.Time, e.Acknowledged,
						hex.EncodeToString(h.Sum(nil)[:8]))
				}
			}
		}
	}
	if longest < 50 {
		t.Fatalf("the longest history is %d entries; the simulator was meant to grow longer ones", longest)
	}
	path := filepath.Join("testdata", "earlier-states.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		g, w := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d differs:\ngot  %s\nwant %s", i+1, g[i], w[i])
			}
		}
		t.Fatalf("got %d lines, want %d", len(g), len(w))
	}
}

// sinces returns the versions to rebuild earlier states after: none delivered, and the time
// of some history entries (every one of a short history), half of them as an expiry that was
// delivered.
func sinces(hist []darktrace.ActionHistory) []darktrace.ActionVersion {
	out := []darktrace.ActionVersion{{}}
	stride := max(1, len(hist)/3)
	for j := 0; j < len(hist); j += stride {
		v := darktrace.ActionVersion{Updated: hist[j].Time, Active: true}
		if j%2 == 1 {
			v.Expires = hist[j].Time - 1
		}
		out = append(out, v)
	}
	return out
}

// BenchmarkEarlier rebuilds the earlier states of one action whose history has 1,000 entries
// (an action extended by hand every few minutes for two days), none delivered yet.
func BenchmarkEarlier(b *testing.B) {
	const n = 1000
	act := darktrace.Action{CodeID: 77, DID: 7, IP: "10.0.0.7", Action: "quarantineOutgoing", Label: "Block all outgoing traffic",
		Detail: "Block all outgoing traffic from the device", Score: 0.87, PBID: 95, Model: "Anomalous Connection::Data Sent to Rare Domain",
		Start: 1700000000000, Expires: 1700000000000 + n*180000 + 3600000, Updated: darktrace.FlexInt(1700000000000 + (n-1)*180000),
		Active: true, Blocked: true}
	for i := range n {
		h := darktrace.ActionHistory{Family: "ANTIGENA", Username: "soc-analyst", Action: "extended", Reason: "still suspicious",
			Time: 1700000000000 + int64(i)*180000}
		if i == 0 {
			h.Action, h.Reason = "created", ""
		}
		act.History = append(act.History, h)
	}
	src, err := NewReader(&fakeAPI{actions: []darktrace.Action{act}}, "dt", "dt.example", Filter{}, zerolog.Nop()).Source(darktrace.SourceAntigena)
	if err != nil {
		b.Fatal(err)
	}
	batch, err := src.Fetch(context.Background(), time.Time{}, time.Time{})
	if err != nil || len(batch.Items) != 1 {
		b.Fatal(err, len(batch.Items))
	}
	b.ReportAllocs()
	for b.Loop() {
		if items, missed := src.Earlier(batch.Items[0], darktrace.ActionVersion{}); len(items) != n-1 || missed != 0 {
			b.Fatalf("%d earlier states, %d missed", len(items), missed)
		}
	}
}
