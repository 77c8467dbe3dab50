package simulator

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Simulator. Zero values pick the documented defaults.
type Options struct {
	PublicToken, PrivateToken string // required: the one token pair the appliance knows at start

	Seed         int64         // every generated record derives from it
	History      time.Duration // back-history window at start (default 24h)
	HistoryCount int           // breaches spread over History at start (default 5000; <0 = none)
	Rate         float64       // live breaches per second until Close; 0 = none

	// LateFraction is the share of breaches whose creationTime lags time by 1m..LateDelay
	// (default LateDelay 1h); the rest are created 1..30 seconds after their activity.
	LateFraction float64
	LateDelay    time.Duration

	// HostileFraction is the share of records carrying hostile strings (pipes, '=', '\',
	// CR/LF, tabs, NUL, invalid UTF-8, forged syslog/CEF headers, very long values) in
	// hostnames, model names, descriptions and usernames.
	HostileFraction float64
	// SystemFraction is the share of System::System breaches with "device": {"did": -1}.
	SystemFraction float64
	// AckFraction is the share of breaches (and incident events) that are acknowledged
	// (default 0.1; <0 = none). They are hidden unless includeacknowledged=true.
	AckFraction float64
	// MissingCreationFraction is the share of breaches without creationTime, as sent by older
	// appliance builds (default 0). Their creation time counts as time for windows.
	MissingCreationFraction float64
	// OddFraction is the share of records sent in the other shapes real appliances use
	// (default 0): acknowledged as {"time", "username"}, devices known only by devicelabel,
	// placeholder IPs (10.0.0.#36859), literal backslash-n in descriptions and summaries,
	// absent model.priority, URLs, commentCount and mitreTechniques, Antigena "updated" as a
	// number. Which records and which shapes derive from Seed alone.
	OddFraction float64

	// NewestFirst sorts list responses by time descending. The API guide only says
	// "time-sorted"; the default is ascending, and clients must not depend on either.
	NewestFirst bool

	// ClockOffset shifts the appliance clock from the real one: it moves the ±30 min
	// DTAPI-Date check, the Date header and /status time.
	ClockOffset time.Duration
	// Hostname is the appliance FQDN used in breachUrl and incidentEventUrl. By default they
	// name the address the simulator serves on (host:port, as in the URL Start returns), so
	// they agree with the URLs dtforward builds from DARKTRACE_URL for records that carry none
	// (Antigena actions); before Start, "dt.example.com". NoURLs models an appliance without
	// an FQDN: no URLs at all.
	Hostname string
	NoURLs   bool

	// CertFile and KeyFile serve TLS with this certificate instead of a generated one.
	CertFile, KeyFile string

	Now func() time.Time // real clock for tests (default time.Now); ClockOffset is added

	// OnRequest, when set, is called after each request is logged (from the serving
	// goroutine; it must not block). "dtforward simulate --verbose" prints with it.
	OnRequest func(Request)
}

// Simulator is a fake appliance. It is an http.Handler and is safe for concurrent use.
type Simulator struct {
	opts    Options
	realNow func() time.Time
	offset  atomic.Int64 // clock offset in ns

	models  []modelDef
	devices []deviceDef

	listenHost atomic.Value // string: the address Start listens on

	mu         sync.RWMutex
	breaches   []breachRec // in pbid (= creation) order
	nextPBID   int64
	liveRand   *rand.Rand
	actions    []*actionRec
	nextCodeID int64
	actionRand *rand.Rand
	actionLog  []ActionState
	incidents  []*incidentRec
	incRand    *rand.Rand
	tokens     map[string]*token

	faultMu   sync.Mutex
	faults    []Fault
	faultRand *rand.Rand

	reqMu    sync.Mutex
	reqs     []Request
	reqTotal int

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	srv       *http.Server
	url       string
	tmpDir    string
	caFile    string
}

// token is one API token pair and the endpoints it may call (nil = all).
type token struct {
	private string
	allowed []string
}

// maxRequestLog bounds the request log of a long-running simulator.
const maxRequestLog = 100_000

// New validates o, fills in defaults, generates the start-up history and starts live
// generation when o.Rate > 0. Call Close to stop it.
func New(o Options) (*Simulator, error) {
	var errs []error
	if o.PublicToken == "" || o.PrivateToken == "" {
		errs = append(errs, errors.New("simulator: PublicToken and PrivateToken are required"))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"LateFraction", o.LateFraction}, {"HostileFraction", o.HostileFraction}, {"SystemFraction", o.SystemFraction},
		{"AckFraction", o.AckFraction}, {"MissingCreationFraction", o.MissingCreationFraction},
		{"OddFraction", o.OddFraction}} {
		if f.v > 1 || math.IsNaN(f.v) {
			errs = append(errs, fmt.Errorf("simulator: %s %v is not between 0 and 1", f.name, f.v))
		}
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		errs = append(errs, fmt.Errorf("simulator: Rate %v is not a number of breaches per second >= 0", o.Rate))
	}
	if o.History < 0 {
		errs = append(errs, fmt.Errorf("simulator: History %v is negative", o.History))
	}
	if o.LateDelay != 0 && o.LateDelay < time.Minute {
		errs = append(errs, fmt.Errorf("simulator: LateDelay %v is shorter than the 1m minimum lateness", o.LateDelay))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("simulator: CertFile and KeyFile must be given together"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if o.History == 0 {
		o.History = 24 * time.Hour
	}
	switch {
	case o.HistoryCount == 0:
		o.HistoryCount = 5000
	case o.HistoryCount < 0:
		o.HistoryCount = 0
	}
	if o.LateDelay == 0 {
		o.LateDelay = time.Hour
	}
	switch {
	case o.AckFraction == 0:
		o.AckFraction = 0.1
	case o.AckFraction < 0:
		o.AckFraction = 0
	}
	s := &Simulator{
		opts:       o,
		realNow:    o.Now,
		liveRand:   newRand(o.Seed, streamLive),
		actionRand: newRand(o.Seed, streamActions),
		incRand:    newRand(o.Seed, streamIncidents),
		faultRand:  newRand(o.Seed, streamFaults),
		tokens:     map[string]*token{o.PublicToken: {private: o.PrivateToken}},
		done:       make(chan struct{}),
		nextPBID:   1,
	}
	if s.realNow == nil {
		s.realNow = time.Now
	}
	s.offset.Store(int64(o.ClockOffset))
	now := s.Now()
	s.models = buildModels(o.Seed)
	s.devices = buildDevices(o.Seed, now.UnixMilli())
	s.generateHistory(now)
	if o.Rate > 0 {
		s.wg.Add(1)
		go s.live()
	}
	return s, nil
}

// generateHistory spreads HistoryCount breaches over [now-History, now) with increasing
// creation times, plus a few actions and incident events so every endpoint has data.
func (s *Simulator) generateHistory(now time.Time) {
	r := newRand(s.opts.Seed, streamHistory)
	end := now.UnixMilli()
	span := int64(s.opts.History / time.Millisecond)
	created := make([]int64, s.opts.HistoryCount)
	for i := range created {
		created[i] = end - 1 - r.Int64N(max(span, 1))
	}
	slices.Sort(created)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.breaches = make([]breachRec, 0, len(created))
	for _, c := range created {
		s.breaches = append(s.breaches, s.newBreachRec(r, s.nextPBID, c))
		s.nextPBID++
	}
	// Actions and events at start: one per 100 breaches, between 3 and 200, in time order.
	n := min(max(len(created)/100, 3), 200)
	if len(created) == 0 {
		return
	}
	for i := 0; i < n; i++ {
		at := created[i*len(created)/n]
		s.newActionLocked(at)
		s.newIncidentLocked(at)
	}
	for i, a := range s.actions {
		for step := 0; step < i%4; step++ {
			s.advanceLocked(a, min(a.Updated.Int64()+int64(time.Minute/time.Millisecond), end))
		}
	}
}

// live adds breaches at Rate per second, with an occasional new or advancing action and a new
// or rising incident event, until Close.
func (s *Simulator) live() {
	defer s.wg.Done()
	const tick = 100 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	owed := 0.0
	made := 0
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		owed += s.opts.Rate * tick.Seconds()
		n := int(owed)
		if n == 0 {
			continue
		}
		owed -= float64(n)
		s.AddBreaches(n)
		for i := 0; i < n; i++ {
			made++
			switch {
			case made%20 == 0:
				s.AddActions(1)
			case made%7 == 0:
				s.advanceOne()
			case made%50 == 25:
				s.AddIncidentEvents(1)
			case made%30 == 15:
				s.raiseOne()
			}
		}
	}
}

func (s *Simulator) advanceOne() {
	now := s.Now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	firstFrom(s.actions, s.actionRand, func(a *actionRec) bool { return s.advanceLocked(a, now) })
}

func (s *Simulator) raiseOne() {
	s.mu.Lock()
	defer s.mu.Unlock()
	firstFrom(s.incidents, s.incRand, s.raiseLocked)
}

// firstFrom tries the records from a random one on, wrapping around, until change reports
// that it changed one: the live feed moves a random record, not always the oldest.
func firstFrom[T any](recs []T, r *rand.Rand, change func(T) bool) {
	if len(recs) == 0 {
		return
	}
	start := r.IntN(len(recs))
	for i := range recs {
		if change(recs[(start+i)%len(recs)]) {
			return
		}
	}
}

// makeN creates n records now (appliance clock, under the lock) and returns their ids.
func makeN[ID any](s *Simulator, n int, create func(now int64) ID) []ID {
	now := s.Now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]ID, 0, n)
	for i := 0; i < n; i++ {
		ids = append(ids, create(now))
	}
	return ids
}

// defaultHostname names the appliance in URLs before Start and in /status.
const defaultHostname = "dt.example.com"

// urlHost is the host of breachUrl and incidentEventUrl: Options.Hostname, else the address
// the simulator serves on.
func (s *Simulator) urlHost() string {
	if s.opts.Hostname != "" {
		return s.opts.Hostname
	}
	if h, ok := s.listenHost.Load().(string); ok {
		return h
	}
	return defaultHostname
}

// Now returns the appliance clock: the real clock (Options.Now) plus the clock offset.
func (s *Simulator) Now() time.Time {
	return s.realNow().Add(time.Duration(s.offset.Load()))
}

// SetClockOffset changes how far the appliance clock is from the real one.
func (s *Simulator) SetClockOffset(d time.Duration) { s.offset.Store(int64(d)) }

// AddToken registers another token pair allowed the given endpoints (nil = all), e.g. to test
// a restricted token next to a full one.
func (s *Simulator) AddToken(public, private string, endpoints []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[public] = &token{private: private, allowed: slices.Clone(endpoints)}
}

// SetPermissions restricts a known token to the given endpoints (nil = all); the others answer
// 302 /403 as on an appliance whose API token lacks the permission. Endpoints are named as in
// Fault.Endpoint ("antigena" covers /antigena and /antigena/summary). Unknown tokens are
// ignored.
func (s *Simulator) SetPermissions(publicToken string, endpoints []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[publicToken]; ok {
		t.allowed = slices.Clone(endpoints)
		if endpoints != nil && t.allowed == nil {
			t.allowed = []string{}
		}
	}
}

// AddBreaches creates n breaches now (appliance clock) and returns their pbids, increasing.
// Their activity time precedes creation as for live breaches (late ones by 1m..LateDelay).
func (s *Simulator) AddBreaches(n int) []int64 {
	return makeN(s, n, func(created int64) int64 {
		b := s.newBreachRec(s.liveRand, s.nextPBID, created)
		s.nextPBID++
		s.breaches = append(s.breaches, b)
		return b.pbid
	})
}

// HoldBreaches creates n breaches now, like AddBreaches, that the API does not show (neither
// in lists nor by pbid) until ReleaseBreaches: a breach that appears long after its creation
// time, as when a probe syncs late or the appliance indexes it late. It returns their pbids.
func (s *Simulator) HoldBreaches(n int) []int64 {
	ids := s.AddBreaches(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.findLocked(id).flags |= flagHeld
	}
	return ids
}

// ReleaseBreaches makes held breaches visible, with their original pbid and creation time.
func (s *Simulator) ReleaseBreaches(pbids ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range pbids {
		if b := s.findLocked(id); b != nil {
			b.flags &^= flagHeld
		}
	}
}

// createdBy returns how many stored breaches were created at or before at (epoch ms), so
// actions and incident events only refer to breaches that already existed. s.mu must be held.
func (s *Simulator) createdBy(at int64) int {
	return sort.Search(len(s.breaches), func(i int) bool { return s.breaches[i].created > at })
}

// findLocked returns the stored breach with pbid, or nil. pbids are stored in increasing order.
func (s *Simulator) findLocked(pbid int64) *breachRec {
	i, ok := slices.BinarySearchFunc(s.breaches, pbid, func(b breachRec, id int64) int { return cmp.Compare(b.pbid, id) })
	if !ok {
		return nil
	}
	return &s.breaches[i]
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close. With useTLS it serves
// HTTPS (HTTP/1.1 only, like the appliance's front end) with Options.CertFile/KeyFile or a
// generated self-signed certificate for 127.0.0.1, ::1 and localhost, whose PEM is at CAFile.
// It returns the base URL, e.g. "https://127.0.0.1:40123".
func (s *Simulator) Start(addr string, useTLS bool) (string, error) {
	if s.srv != nil {
		return "", errors.New("simulator: already started")
	}
	var tlsCfg *tls.Config
	if useTLS {
		var cert tls.Certificate
		var err error
		if s.opts.CertFile != "" {
			cert, err = tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
			if err != nil {
				return "", fmt.Errorf("simulator: loading certificate %s / key %s: %w", s.opts.CertFile, s.opts.KeyFile, err)
			}
		} else {
			if cert, err = s.selfSigned(); err != nil {
				return "", err
			}
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("simulator: %w", err)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		// A client that distrusts the certificate makes the server log a handshake error per
		// connection; that is the client's failure to report, not noise for our stderr.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.url = scheme + "://" + ln.Addr().String()
	s.listenHost.Store(ln.Addr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return s.url, nil
}

// URL returns the base URL after Start, "" before.
func (s *Simulator) URL() string { return s.url }

// CAFile returns the PEM path of the generated self-signed certificate after Start with TLS,
// "" otherwise (including when Options.CertFile was used).
func (s *Simulator) CAFile() string { return s.caFile }

// Close stops the listener, ends hanging and trickling fault responses, stops live generation
// and removes the temporary files. It is safe to call more than once.
func (s *Simulator) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.srv != nil {
			err = s.srv.Close()
		}
		s.wg.Wait()
		if s.tmpDir != "" {
			if rmErr := os.RemoveAll(s.tmpDir); rmErr != nil && err == nil {
				err = rmErr
			}
		}
	})
	return err
}
