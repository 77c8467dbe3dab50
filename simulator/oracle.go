package simulator

// The oracle: what the simulator created and served, for tests to compare with what
// dtforward delivered.

import (
	"net/http"
	"slices"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// Breaches returns every breach created so far in pbid order, fully expanded as the API renders
// it with minimal=false, deviceattop=true, historicmodelonly=true and includebreachurl=true
// (CreationTime is 0 for records that hide it). It costs a few KB per record; for large stores
// prefer BreachInfos.
func (s *Simulator) Breaches() []darktrace.Breach {
	recs := s.snapshot()
	out := make([]darktrace.Breach, len(recs))
	for i := range recs {
		out[i] = s.breach(&recs[i])
	}
	return out
}

// BreachInfo is the compact oracle view of one stored breach.
type BreachInfo struct {
	PBID         int64
	Time         int64 // activity, epoch ms
	CreationTime int64 // as rendered: 0 when the record hides it
	Created      int64 // when the breach was really created (what creationtime windows use)
	Score        float64
	ModelName    string
	DID          int64
	Acknowledged bool
	Suppressed   bool // hidden unless includesuppressed=true
	Hostile      bool
	System       bool
	Late         bool // created more than a minute after its activity
	Held         bool // not visible through the API yet (HoldBreaches)
}

// BreachInfos returns a compact view of every breach created so far, in pbid order.
func (s *Simulator) BreachInfos() []BreachInfo {
	recs := s.snapshot()
	out := make([]BreachInfo, len(recs))
	for i := range recs {
		b := &recs[i]
		out[i] = BreachInfo{
			PBID: b.pbid, Time: b.time, CreationTime: b.created, Created: b.windowCreated(),
			Score: float64(b.score) / 1000, ModelName: s.models[b.model].Name, DID: -1,
			Acknowledged: b.flags&flagAck != 0, Suppressed: b.flags&flagSuppressed != 0,
			Hostile: b.flags&flagHostile != 0, System: b.flags&flagSystem != 0,
			Late: b.created-b.time >= 60_000, Held: b.flags&flagHeld != 0,
		}
		if b.flags&flagNoCreation != 0 {
			out[i].CreationTime = 0
		}
		if b.dev >= 0 {
			out[i].DID = s.devices[b.dev].DID
		}
	}
	return out
}

func (s *Simulator) snapshot() []breachRec {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.breaches)
}

// Requests returns the log of requests served so far (the most recent 100,000).
func (s *Simulator) Requests() []Request {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return slices.Clone(s.reqs)
}

// RequestCount returns how many requests were served so far.
func (s *Simulator) RequestCount() int {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return s.reqTotal
}

func (s *Simulator) logRequest(r *http.Request, at time.Time, outcome string) {
	req := Request{Time: at, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Outcome: outcome}
	s.reqMu.Lock()
	s.reqTotal++
	if len(s.reqs) >= maxRequestLog {
		s.reqs = slices.Delete(s.reqs, 0, maxRequestLog/10)
	}
	s.reqs = append(s.reqs, req)
	s.reqMu.Unlock()
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(req)
	}
}

// ActionState is one state an Antigena action went through.
type ActionState struct {
	CodeID  int64
	State   string // "pending", "active", "extended", "expired", "cleared"
	Updated int64  // epoch ms, as rendered in "updated"
	Active  bool
	Cleared bool
	Expires int64
}

// Request is one logged request.
type Request struct {
	Time     time.Time // appliance clock
	Method   string
	Path     string
	RawQuery string
	Outcome  string // "ok", "auth:<reason>", "fault:<kind>", "notfound"
}
