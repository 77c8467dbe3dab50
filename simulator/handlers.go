package simulator

import (
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// handler serves one endpoint after authentication. extra > 0 asks for that many synthetic
// records on top (the "large" fault).
type handler func(s *Simulator, w http.ResponseWriter, r *http.Request, now time.Time, extra int)

// handlers maps endpoint names (path without the leading "/") to their handlers.
var handlers = map[string]handler{
	"modelbreaches":            (*Simulator).serveBreaches,
	"antigena":                 (*Simulator).serveActions,
	"antigena/summary":         (*Simulator).serveSummary,
	"aianalyst/incidentevents": (*Simulator).serveIncidents,
	"status":                   (*Simulator).serveStatus,
}

// ServeHTTP serves the appliance API: it checks the DTAPI headers exactly as the appliance
// does, then applies any matching fault, then answers.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.Now()
	// The appliance's Date header is how clients learn its clock when the date check fails.
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	endpoint := strings.Trim(r.URL.Path, "/")
	seg, _, _ := strings.Cut(endpoint, "/")
	tok, res := s.authenticate(r, now)
	switch res {
	case authMissing:
		s.logRequest(r, now, "auth:missing")
		redirect(w, "/login")
		return
	case authDate:
		s.logRequest(r, now, "auth:date")
		writeJSONError(w, http.StatusBadRequest, seg, "API DATE ERROR")
		return
	case authSignature:
		s.logRequest(r, now, "auth:signature")
		writeJSONError(w, http.StatusBadRequest, seg, "API SIGNATURE ERROR")
		return
	}
	h, ok := handlers[endpoint]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		s.logRequest(r, now, "notfound")
		redirect(w, "/login")
		return
	}
	s.mu.RLock()
	allowed := tok.allows(endpoint)
	s.mu.RUnlock()
	if !allowed {
		s.logRequest(r, now, "auth:forbidden")
		redirect(w, "/403")
		return
	}
	if f, ok := s.pickFault(endpoint); ok {
		s.logRequest(r, now, "fault:"+string(f.Kind))
		s.serveFault(w, r, now, seg, f, h)
		return
	}
	s.logRequest(r, now, "ok")
	h(s, w, r, now, 0)
}

// redirect answers like the appliance's web front end: 302 with an Express-style body.
func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusFound)
	_, _ = io.WriteString(w, "Found. Redirecting to "+to)
}

// writeJSONError writes {"key": "msg"} with status code.
func writeJSONError(w http.ResponseWriter, code int, key, msg string) {
	var j jw
	j.obj()
	j.kStr(key, msg)
	j.endObj()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(j.b) // a failed write means the client left
}

// stream writes a JSON response in chunks so that huge windows never sit in memory whole.
type stream struct {
	w   http.ResponseWriter
	r   *http.Request
	j   jw
	err error
}

const streamChunk = 32 << 10

func newStream(w http.ResponseWriter, r *http.Request) *stream {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	return &stream{w: w, r: r, j: jw{b: make([]byte, 0, streamChunk+8<<10)}}
}

// flush writes what is buffered once it is big (or always with force). It reports false when
// the client has gone away, so the caller can stop rendering.
func (st *stream) flush(force bool) bool {
	if st.err != nil {
		return false
	}
	if len(st.j.b) >= streamChunk || (force && len(st.j.b) > 0) {
		_, st.err = st.w.Write(st.j.b)
		st.j.b = st.j.b[:0]
		if st.err == nil {
			st.err = st.r.Context().Err()
		}
	}
	return st.err == nil
}

const year = 365 * 24 * time.Hour

func (s *Simulator) serveBreaches(w http.ResponseWriter, r *http.Request, now time.Time, extra int) {
	p := newParams(r)
	render := breachRender{
		flatModel:   p.bool("historicmodelonly", false),
		deviceAtTop: p.bool("deviceattop", true),
		url:         p.bool("includebreachurl", false),
		minimal:     p.bool("minimal", false),
	}
	// The appliance's own filters apply to a pbid lookup as to a list: an acknowledged or
	// suppressed breach is found by id only when the query includes them.
	f := breachFilter{
		ack:        p.bool("includeacknowledged", false),
		suppressed: p.bool("includesuppressed", false),
	}
	f.setMinScore(p.float("minscore", 0, 0, 1))
	if pbid, ok := p.int("pbid"); ok && p.err == nil {
		// pbid returns ONE object, not a list; an unknown pbid gives an empty object.
		s.mu.RLock()
		b := s.findLocked(pbid)
		if b != nil && !f.shows(b) {
			b = nil
		}
		var rec breachRec
		if b != nil {
			rec = *b
		}
		s.mu.RUnlock()
		st := newStream(w, r)
		if b == nil {
			st.j.b = append(st.j.b, "{}"...)
		} else {
			s.appendBreach(&st.j, &rec, render)
		}
		st.flush(true)
		return
	}
	start, end := p.window(now, year)
	onCreation := p.bool("creationtime", false)
	did, byDID := p.int("did")
	pid, byPID := p.int("pid")
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	var sel []breachRec
	s.mu.RLock()
	for i := range s.breaches {
		b := &s.breaches[i]
		t := b.time
		if onCreation {
			t = b.windowCreated()
		}
		if t < start || t > end || !f.shows(b) {
			continue
		}
		if byPID && s.models[b.model].PID != pid {
			continue
		}
		if byDID && (b.dev < 0 && did != -1 || b.dev >= 0 && s.devices[b.dev].DID != did) {
			continue
		}
		sel = append(sel, *b)
	}
	s.mu.RUnlock()
	sel = withLarge(sel, extra, func(i int) breachRec { return s.largeBreach(i, start, end) })
	// Sorted by activity time, as the appliance does: clients wanting creation order must
	// sort for themselves.
	serveSorted(s, w, r, sel, func(b *breachRec) int64 { return b.time },
		func(j *jw, b *breachRec) { s.appendBreach(j, b, render) })
}

// breachFilter is what the appliance filters breaches on, in a list and by pbid alike.
type breachFilter struct {
	ack, suppressed bool   // includeacknowledged, includesuppressed
	minScore        uint16 // minscore, in thousandths
}

func (f *breachFilter) setMinScore(v float64) { f.minScore = uint16(v*1000 + 0.5) }

// shows reports whether the appliance returns b to a query with these filters.
func (f *breachFilter) shows(b *breachRec) bool {
	return b.score >= f.minScore && b.flags&flagHeld == 0 &&
		(f.ack || b.flags&flagAck == 0) && (f.suppressed || b.flags&flagSuppressed == 0)
}

// serveSorted answers with the records as a JSON array, ordered by key (newest first when the
// simulator is told so), streamed as the appliance does.
func serveSorted[T any](s *Simulator, w http.ResponseWriter, r *http.Request, sel []T, key func(*T) int64, write func(*jw, *T)) {
	slices.SortStableFunc(sel, func(a, b T) int { return cmp.Compare(key(&a), key(&b)) })
	if s.opts.NewestFirst {
		slices.Reverse(sel)
	}
	st := newStream(w, r)
	st.j.arr()
	for i := range sel {
		write(&st.j, &sel[i])
		if !st.flush(false) {
			return
		}
	}
	st.j.endArr()
	st.flush(true)
}

// largeBreach is the i-th synthetic record of a "large" response, inside [start, end].
func (s *Simulator) largeBreach(i int, start, end int64) breachRec {
	r := newRand(s.opts.Seed, streamLarge+uint64(i))
	t := start + r.Int64N(max(end-start+1, 1))
	return breachRec{
		pbid: LargePBIDBase + int64(i), time: t, created: t,
		dev: int32(r.IntN(normalDevices)), model: uint16(1 + r.IntN(len(modelSeeds))),
		score: uint16(100 + r.IntN(901)),
	}
}

func (s *Simulator) serveActions(w http.ResponseWriter, r *http.Request, now time.Time, extra int) {
	p := newParams(r)
	cleared := p.bool("includecleared", false)
	history := p.bool("includehistory", false)
	devices := p.bool("fulldevicedetails", false)
	conns := p.bool("includeconnections", false)
	confirm := p.bool("needconfirming", false)
	start, byStart := p.int("starttime")
	end, byEnd := p.int("endtime")
	pbid, byPBID := p.int("pbid")
	did, byDID := p.int("did")
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	var sel []darktrace.Action
	s.mu.RLock()
	for _, a := range s.actions {
		if (!cleared && a.Cleared) || (confirm && a.state != "pending") ||
			(byStart && a.Start < start) || (byEnd && a.Start > end) ||
			(byPBID && a.PBID != pbid) || (byDID && a.DID != did) {
			continue
		}
		sel = append(sel, a.Action)
	}
	s.mu.RUnlock()
	sel = withLarge(sel, extra, func(i int) darktrace.Action { return s.largeAction(i, now.UnixMilli()) })
	st := newStream(w, r)
	if devices || conns {
		st.j.obj()
		st.j.key("actions")
	}
	st.j.arr()
	for i := range sel {
		appendAction(&st.j, &sel[i], history, s.odd(oddAction, sel[i].CodeID))
		if !st.flush(false) {
			return
		}
	}
	st.j.endArr()
	if devices {
		st.j.key("devices")
		st.j.arr()
		seen := map[int64]bool{}
		for _, a := range sel {
			if seen[a.DID] || a.DID < 1 || int(a.DID) > len(s.devices) {
				continue
			}
			seen[a.DID] = true
			appendDevice(&st.j, &s.devices[a.DID-1].Device)
		}
		st.j.endArr()
	}
	if conns {
		st.j.key("connections")
		st.j.arr()
		st.j.endArr()
	}
	if devices || conns {
		st.j.endObj()
	}
	st.flush(true)
}

// largeAction is the i-th synthetic action of a "large" response.
func (s *Simulator) largeAction(i int, now int64) darktrace.Action {
	d := &s.devices[i%normalDevices].Device
	k := actionKinds[i%len(actionKinds)]
	return darktrace.Action{
		CodeID: LargePBIDBase + int64(i), DID: d.DID, IP: d.IP, Action: k[0], Label: k[1], Detail: k[2],
		Score: 0.5, Start: now, Expires: now + 3600_000, Updated: darktrace.FlexInt(now), Active: true, Blocked: true,
	}
}

func (s *Simulator) serveSummary(w http.ResponseWriter, r *http.Request, now time.Time, _ int) {
	sum := darktrace.ActionSummary{PendingActionDevices: []int64{}, ActiveActionDevices: []int64{}}
	nowMS := now.UnixMilli()
	s.mu.RLock()
	for _, a := range s.actions {
		switch {
		case a.Cleared:
		case !a.Active:
			sum.PendingCount++
			if !slices.Contains(sum.PendingActionDevices, a.DID) {
				sum.PendingActionDevices = append(sum.PendingActionDevices, a.DID)
			}
		case a.Expires > nowMS:
			sum.ActiveCount++
			if !slices.Contains(sum.ActiveActionDevices, a.DID) {
				sum.ActiveActionDevices = append(sum.ActiveActionDevices, a.DID)
			}
		}
	}
	s.mu.RUnlock()
	st := newStream(w, r)
	j := &st.j
	j.obj()
	j.kInt("pendingCount", int64(sum.PendingCount))
	j.kInt("activeCount", int64(sum.ActiveCount))
	j.key("pendingActionDevices")
	j.arr()
	for _, d := range sum.PendingActionDevices {
		j.int(d)
	}
	j.endArr()
	j.key("activeActionDevices")
	j.arr()
	for _, d := range sum.ActiveActionDevices {
		j.int(d)
	}
	j.endArr()
	j.endObj()
	st.flush(true)
}

func (s *Simulator) serveIncidents(w http.ResponseWriter, r *http.Request, now time.Time, extra int) {
	p := newParams(r)
	start, end := p.window(now, incidentDefaultWindow)
	ack := p.bool("includeacknowledged", false)
	pinned := p.bool("includeallpinned", true)
	urlBase := ""
	if p.bool("includeincidenteventurl", false) {
		urlBase = "https://" + s.urlHost()
	}
	minScore := p.float("minscore", 0, 0, 100)
	maxScore := p.float("maxscore", 100, 0, 100)
	minGroup := p.float("mingroupscore", 0, 0, 100)
	maxGroup := p.float("maxgroupscore", 100, 0, 100)
	did, byDID := p.int("did")
	ids := p.q.Get("uuid")
	group := p.q.Get("groupid")
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	var sel []incidentRec
	s.mu.RLock()
	for _, e := range s.incidents {
		inWindow := e.CreatedAt >= start && e.CreatedAt <= end
		// Pinned events come back on every poll unless includeallpinned=false.
		if !inWindow && !(pinned && e.Pinned) {
			continue
		}
		if (!ack && e.Acknowledged) || float64(e.AIAScore) < minScore || float64(e.AIAScore) > maxScore ||
			float64(e.GroupScore) < minGroup || float64(e.GroupScore) > maxGroup ||
			(ids != "" && !slices.Contains(strings.Split(ids, ","), e.ID)) ||
			(group != "" && e.CurrentGroup != group) ||
			(byDID && !slices.ContainsFunc(e.BreachDevices, func(d darktrace.BreachDevice) bool { return d.DID == did })) {
			continue
		}
		sel = append(sel, *e)
	}
	s.mu.RUnlock()
	sel = withLarge(sel, extra, func(i int) incidentRec { return s.largeIncident(i, start, end) })
	serveSorted(s, w, r, sel, func(e *incidentRec) int64 { return e.CreatedAt },
		func(j *jw, e *incidentRec) { appendIncident(j, e, urlBase, s.odd(oddIncident, oddIncidentID(e.ID))) })
}

// largeIncident is the i-th synthetic incident event of a "large" response.
func (s *Simulator) largeIncident(i int, start, end int64) incidentRec {
	r := newRand(s.opts.Seed, streamLarge+uint64(i))
	e := incidentRec{}
	e.ID = fmt.Sprintf("large-%08d-%s", i, uuid(r))
	e.CreatedAt = start + r.Int64N(max(end-start+1, 1))
	e.Title = incidentTitles[i%len(incidentTitles)].title
	e.AIAScore, e.GroupScore = 50, 50
	e.CurrentGroup = "glarge"
	e.Periods = []darktrace.Period{{Start: e.CreatedAt, End: e.CreatedAt}}
	return e
}

func (s *Simulator) serveStatus(w http.ResponseWriter, r *http.Request, now time.Time, _ int) {
	st := newStream(w, r)
	j := &st.j
	j.obj()
	j.kBool("excessTraffic", false)
	j.kStr("time", now.UTC().Format("2006-01-02 15:04:05"))
	j.kStr("installed", "2024-03-01")
	j.kBool("mobileAppConfigured", false)
	j.kStr("version", "6.1.23 (f35936c6)")
	j.kStr("ipAddress", "127.0.0.1")
	j.kStr("modelsUpdated", "2026-01-01 00:00:00")
	j.kStr("modelPackageVersion", "6.1.10-2000~20250101000000~g0f0f0f")
	j.kStr("bundleVersion", "61200")
	j.kStr("hostname", cmp.Or(s.opts.Hostname, defaultHostname))
	j.kStr("label", "dtforward simulator")
	j.kStr("uuid", s.models[0].UUID)
	j.kStr("type", "master")
	j.kBool("inoculation", false)
	j.kStr("applianceOSCode", "f")
	j.kStr("license", "2027-01-01 00:00:00")
	j.kInt("antigenaNetworkEnabled", 1)
	j.kInt("modelBreaches", int64(s.breachCount()))
	j.endObj()
	st.flush(true)
}

func (s *Simulator) breachCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.breaches)
}

// withLarge appends the n oversized records the "large" fault adds to an answer.
func withLarge[T any](sel []T, n int, large func(i int) T) []T {
	for i := range n {
		sel = append(sel, large(i))
	}
	return sel
}
