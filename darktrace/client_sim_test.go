package darktrace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/simulator"
)

const (
	simPublic  = "sim-public-token-5a1b2c3d4e5f60718293a4b5"
	simPrivate = "sim-private-token-0f1e2d3c4b5a69788796a5b4"
)

// startSim runs the real simulator over HTTPS on loopback and returns it with a client that
// trusts its generated certificate through DARKTRACE_CA_FILE's path.
func startSim(t *testing.T, o simulator.Options, mod ...func(*darktrace.Config)) (*simulator.Simulator, *darktrace.Client) {
	t.Helper()
	if o.PublicToken == "" {
		o.PublicToken, o.PrivateToken = simPublic, simPrivate
	}
	sim, err := simulator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	url, err := sim.Start("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	cfg := darktrace.Config{
		URL:          url,
		PublicToken:  simPublic,
		PrivateToken: simPrivate,
		Timeout:      time.Minute, // bounds a failure only
		UserAgent:    "dtforward/test",
	}
	cfg.TLS.CAFile = sim.CAFile()
	for _, f := range mod {
		f(&cfg)
	}
	c, err := darktrace.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return sim, c
}

// breachQuery is the query the poller sends (darktrace.Sources), in its exact order.
func breachQuery(from, to time.Time) string {
	return fmt.Sprintf("/modelbreaches?starttime=%d&endtime=%d&creationtime=true&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true",
		from.UnixMilli(), to.UnixMilli())
}

func fetchBreaches(ctx context.Context, t *testing.T, c *darktrace.Client, q string) ([]int64, error) {
	t.Helper()
	var ids []int64
	err := darktrace.DecodeStream(ctx, c, q, func(b *darktrace.Breach, raw []byte) error {
		ids = append(ids, b.PBID)
		return nil
	}, func(br darktrace.SkippedRecord) {
		t.Errorf("simulator record %d (id %q) did not decode: %v", br.Index, br.ID, br.Err)
	})
	slices.Sort(ids)
	return ids, err
}

func TestSimHappyPath(t *testing.T) {
	sim, c := startSim(t, simulator.Options{
		Seed: 7, HistoryCount: 300, History: 2 * time.Hour,
		LateFraction: 0.1, HostileFraction: 0.3, SystemFraction: 0.1, MissingCreationFraction: 0.05,
	})
	sim.AddBreaches(5)
	sim.AddActions(4)
	sim.AdvanceActions()
	sim.AddIncidentEvents(3)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version == "" {
		t.Errorf("status has no version: %+v", st)
	}

	now := sim.Now()
	got, err := fetchBreaches(ctx, t, c, breachQuery(now.Add(-48*time.Hour), now.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, b := range sim.Breaches() {
		want = append(want, b.PBID)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got %d breaches, the simulator holds %d (first got %v, want %v)", len(got), len(want), head(got), head(want))
	}

	var actions []int64
	err = darktrace.DecodeStream(ctx, c, "/antigena?includecleared=true&includehistory=true", func(a *darktrace.Action, _ []byte) error {
		actions = append(actions, a.CodeID)
		return nil
	}, func(br darktrace.SkippedRecord) { t.Errorf("bad action %+v", br) })
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != len(sim.Actions()) {
		t.Errorf("got %d actions, simulator has %d", len(actions), len(sim.Actions()))
	}

	var sum darktrace.ActionSummary
	if err := c.GetJSON(ctx, "/antigena/summary", &sum); err != nil {
		t.Fatal(err)
	}

	var events []string
	q := fmt.Sprintf("/aianalyst/incidentevents?starttime=%d&endtime=%d&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true",
		now.Add(-48*time.Hour).UnixMilli(), now.Add(time.Minute).UnixMilli())
	err = darktrace.DecodeStream(ctx, c, q, func(e *darktrace.IncidentEvent, _ []byte) error {
		events = append(events, e.ID)
		return nil
	}, func(br darktrace.SkippedRecord) { t.Errorf("bad incident event %+v", br) })
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != len(sim.IncidentEvents()) {
		t.Errorf("got %d incident events, simulator has %d", len(events), len(sim.IncidentEvents()))
	}

	// Single-object answer: pbid= returns one breach, not a list.
	var one []int64
	if err := darktrace.DecodeStream(ctx, c, fmt.Sprintf("/modelbreaches?pbid=%d", want[0]), func(b *darktrace.Breach, _ []byte) error {
		one = append(one, b.PBID)
		return nil
	}, nil); err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || one[0] != want[0] {
		t.Errorf("pbid query gave %v, want [%d]", one, want[0])
	}
}

func head(s []int64) []int64 { return s[:min(len(s), 5)] }

func TestSimAuthErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   func(*darktrace.Config)
		sim   func(*simulator.Simulator)
		path  string
		is    error
		msg   string
		class darktrace.Class
	}{
		{name: "wrong private token", cfg: func(c *darktrace.Config) { c.PrivateToken = "not-the-private-token" },
			is: darktrace.ErrSignature, msg: "signature rejected: check DARKTRACE_PUBLIC_TOKEN/DARKTRACE_PRIVATE_TOKEN"},
		{name: "unknown public token", cfg: func(c *darktrace.Config) { c.PublicToken = "unknown-public-token" },
			is: darktrace.ErrSignature, msg: "signature rejected"},
		{name: "our clock 2h slow", cfg: func(c *darktrace.Config) { c.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } },
			is: darktrace.ErrClockSkew, msg: "clock skew: appliance time is"},
		{name: "appliance clock 1h fast", sim: func(s *simulator.Simulator) { s.SetClockOffset(time.Hour) },
			is: darktrace.ErrClockSkew, msg: "(off by 1h0m"},
		{name: "token lacks permission", sim: func(s *simulator.Simulator) { s.SetPermissions(simPublic, []string{"modelbreaches"}) },
			path: "/antigena?includecleared=true&includehistory=true", is: darktrace.ErrPermission, msg: "token lacks permission for /antigena"},
		{name: "unknown endpoint", path: "/nosuchendpoint", is: darktrace.ErrNotAuthenticated, msg: "not authenticated or unknown endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*darktrace.Config)
			if tc.cfg != nil {
				mods = append(mods, tc.cfg)
			}
			sim, c := startSim(t, simulator.Options{Seed: 1, HistoryCount: 10}, mods...)
			if tc.sim != nil {
				tc.sim(sim)
			}
			path := tc.path
			if path == "" {
				now := time.Now()
				path = breachQuery(now.Add(-time.Hour), now)
			}
			err := c.Stream(context.Background(), path, func([]byte) error { return nil })
			if darktrace.ClassOf(err) != darktrace.ClassAuth || !errors.Is(err, tc.is) {
				t.Fatalf("err = %v (class %s), want auth %v", err, darktrace.ClassOf(err), tc.is)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			for _, tok := range []string{simPublic, simPrivate, "not-the-private-token"} {
				if strings.Contains(fmt.Sprintf("%+v", err), tok) {
					t.Errorf("token leaked: %v", err)
				}
			}
		})
	}
}

// TestSimFaults injects each of the simulator's fault kinds once into /modelbreaches and
// checks the class the client reports, then that the next request succeeds.
func TestSimFaults(t *testing.T) {
	type want struct {
		spec       string // fault spec; "" = kind name with *1
		class      darktrace.Class
		is         error
		retryAfter time.Duration
		extra      int  // records added by the fault to a successful answer
		empty      bool // a successful answer with no records at all
	}
	expect := map[simulator.FaultKind]want{
		simulator.FaultJSON500:       {class: darktrace.ClassRetry},
		simulator.FaultHTML500:       {class: darktrace.ClassRetry},
		simulator.FaultBadGateway:    {class: darktrace.ClassRetry},
		simulator.FaultUnavailable:   {class: darktrace.ClassRetry},
		simulator.FaultRateLimit:     {spec: "modelbreaches:429@3s*1", class: darktrace.ClassRetry, retryAfter: 3 * time.Second},
		simulator.FaultHang:          {class: darktrace.ClassRetry, is: darktrace.ErrTimeout},
		simulator.FaultSlow:          {spec: "modelbreaches:slow@1ms*1", class: darktrace.ClassOK},
		simulator.FaultTruncated:     {class: darktrace.ClassRetry},
		simulator.FaultInvalidJSON:   {class: darktrace.ClassRetry},
		simulator.FaultLoginPage:     {class: darktrace.ClassAuth, is: darktrace.ErrNotAuthenticated},
		simulator.FaultSignature:     {class: darktrace.ClassAuth, is: darktrace.ErrSignature},
		simulator.FaultDate:          {class: darktrace.ClassAuth, is: darktrace.ErrClockSkew},
		simulator.FaultForbidden:     {class: darktrace.ClassAuth, is: darktrace.ErrPermission},
		simulator.FaultLoginRedirect: {class: darktrace.ClassAuth, is: darktrace.ErrNotAuthenticated},
		simulator.FaultReset:         {class: darktrace.ClassRetry},
		simulator.FaultLarge:         {spec: "modelbreaches:large@300*1", class: darktrace.ClassOK, extra: 300},
		simulator.FaultError200:      {class: darktrace.ClassPermanent},
		simulator.FaultResponseError: {class: darktrace.ClassPermanent},
		// An empty list is a valid answer: the client cannot tell it from "nothing new".
		simulator.FaultEmpty: {class: darktrace.ClassOK, empty: true},
		// Without Config.OnMalformed a record beyond encoding/json's depth fails the answer.
		simulator.FaultDeep: {class: darktrace.ClassRetry},
	}
	for _, kind := range simulator.FaultKinds() {
		t.Run(string(kind), func(t *testing.T) {
			w, ok := expect[kind]
			if !ok {
				t.Fatalf("no expectation for the simulator's fault kind %q: add one", kind)
			}
			timeout := 10 * time.Second
			if kind == simulator.FaultHang {
				timeout = 500 * time.Millisecond
			}
			sim, c := startSim(t, simulator.Options{Seed: 3, HistoryCount: 40}, func(c *darktrace.Config) { c.Timeout = timeout })
			spec := w.spec
			if spec == "" {
				spec = "modelbreaches:" + string(kind) + "*1"
			}
			faults, err := simulator.ParseFaults(spec)
			if err != nil {
				t.Fatal(err)
			}
			sim.SetFaults(faults)
			now := sim.Now()
			q := breachQuery(now.Add(-48*time.Hour), now.Add(time.Minute))
			base := len(sim.Breaches())

			got, err := fetchBreaches(context.Background(), t, c, q)
			if cl := darktrace.ClassOf(err); cl != w.class {
				t.Fatalf("class = %s, want %s (err %v)", cl, w.class, err)
			}
			if w.is != nil && !errors.Is(err, w.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, w.is)
			}
			if darktrace.RetryAfterOf(err) != w.retryAfter {
				t.Errorf("RetryAfter = %s, want %s", darktrace.RetryAfterOf(err), w.retryAfter)
			}
			switch {
			case w.empty && len(got) != 0:
				t.Errorf("got %d records from an empty answer", len(got))
			case !w.empty && w.class == darktrace.ClassOK && len(got) != base+w.extra:
				t.Errorf("got %d records, want %d", len(got), base+w.extra)
			}
			// The fault was for one request: the retry gets the full answer.
			got, err = fetchBreaches(context.Background(), t, c, q)
			if err != nil || len(got) != base {
				t.Errorf("after the fault: %d records (want %d), err %v", len(got), base, err)
			}
		})
	}
}
