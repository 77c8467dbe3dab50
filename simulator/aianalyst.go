package simulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// incidentRec is one AI Analyst incident event and its mutable state.
type incidentRec struct {
	darktrace.IncidentEvent
	scoreAsString bool // some appliance builds send groupScore as a string
	detailsFlat   bool // the two "details" layouts seen in the wild
	nullDevice    bool // a breachDevices entry whose fields are all null
}

var incidentTitles = []struct{ title, category, summariser string }{
	{"Possible SSL Command and Control", "critical", "BeaconSummary"},
	{"Unusual Repeated Connections", "suspicious", "RepeatedConnectionsSummary"},
	{"Large Volume of Data Transferred to an Unusual Endpoint", "critical", "DataExfilSummary"},
	{"Scanning of Multiple Devices", "suspicious", "ScanSummary"},
	{"Suspicious Remote WMI Activity", "critical", "WMISummary"},
	{"Access of Probable Unencrypted Password Files", "compliance", "PasswordFilesSummary"},
}

// newIncidentLocked creates one incident event at now (epoch ms). s.mu must be held for writing.
func (s *Simulator) newIncidentLocked(now int64) *incidentRec {
	r := s.incRand
	t := incidentTitles[r.IntN(len(incidentTitles))]
	e := &incidentRec{scoreAsString: r.IntN(3) == 0, detailsFlat: r.IntN(2) == 0, nullDevice: r.IntN(4) == 0}
	e.ID = uuid(r)
	e.CreatedAt = now
	e.Title = t.title
	e.Summariser = t.summariser
	e.Category = t.category
	e.GroupCategory = t.category
	e.Summary = fmt.Sprintf("The device was observed %s.\n\nThe activity was unusual for the device and its peers.\n\nIf this was not expected, investigate the device.", t.title)
	hostileRec := r.Float64() < s.opts.HostileFraction
	if hostileRec {
		e.Title = hostile(r, e.Title)
		e.Summary = hostile(r, e.Summary)
	}
	e.AIAScore = darktrace.FlexFloat(float64(10 + r.IntN(80)))
	e.GroupScore = darktrace.FlexFloat(float64(r.IntN(600)) / 10)
	e.CurrentGroup = "g" + uuid(r)
	e.Acknowledged = r.Float64() < s.opts.AckFraction
	e.Pinned = r.IntN(8) == 0
	e.MitreTactics = []string{"command-and-control"}
	e.AttackPhases = []int{1 + r.IntN(6)}
	e.Periods = []darktrace.Period{{Start: now - int64(r.IntN(3600_000)), End: now}}
	dev := &s.devices[r.IntN(normalDevices)]
	if hostileRec {
		dev = &s.devices[normalDevices+r.IntN(hostileDevices)]
	}
	ip := dev.IP
	if r.IntN(3) == 0 {
		ip = dev.subnet // AI Analyst reports whole subnets as "10.1.2.0/24"
	}
	e.BreachDevices = []darktrace.BreachDevice{{DID: dev.DID, SID: dev.SID, Hostname: dev.Hostname, IP: ip,
		MAC: dev.MACAddress, Subnet: dev.subnet, Identifier: dev.Hostname}}
	if n := s.createdBy(now); n > 0 {
		b := &s.breaches[r.IntN(n)]
		e.RelatedBreaches = []darktrace.RelatedBreach{{ModelName: s.models[b.model].Name, PBID: b.pbid,
			ThreatScore: darktrace.FlexFloat(float64(b.score) / 10), Timestamp: b.time}}
	}
	if !s.opts.NoURLs {
		e.IncidentEventURL = "/#aiaincidentevent/" + e.ID // the host is added when served: urlHost
	}
	s.incidents = append(s.incidents, e)
	return e
}

// AddIncidentEvents creates n AI Analyst incident events now and returns their ids.
func (s *Simulator) AddIncidentEvents(n int) []string {
	return makeN(s, n, func(now int64) string { return s.newIncidentLocked(now).ID })
}

// raiseLocked raises one event's group score; one time in three the event also moves to a new
// group, as when AI Analyst merges incidents. It reports whether anything changed.
func (s *Simulator) raiseLocked(e *incidentRec) bool {
	if e.GroupScore >= 100 {
		return false
	}
	r := s.incRand
	e.GroupScore = min(100, e.GroupScore+darktrace.FlexFloat(float64(5+r.IntN(200))/10))
	if r.IntN(3) == 0 {
		e.GroupPreviousGroups = append(e.GroupPreviousGroups, e.CurrentGroup)
		e.CurrentGroup = "g" + uuid(r)
	}
	return true
}

// RaiseIncidentScores raises the group score of every incident event below 100 (some also
// move to a new group) and returns the ids that changed.
func (s *Simulator) RaiseIncidentScores() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, e := range s.incidents {
		if s.raiseLocked(e) {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// AcknowledgeIncident marks an incident event acknowledged; false if id is unknown.
func (s *Simulator) AcknowledgeIncident(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.incidents {
		if e.ID == id {
			e.Acknowledged = true
			return true
		}
	}
	return false
}

// IncidentEvents returns the current state of every incident event, in creation order, as
// rendered with includeincidenteventurl=true.
func (s *Simulator) IncidentEvents() []darktrace.IncidentEvent {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]darktrace.IncidentEvent, len(s.incidents))
	for i, e := range s.incidents {
		out[i] = e.IncidentEvent
		if out[i].IncidentEventURL != "" {
			out[i].IncidentEventURL = "https://" + s.urlHost() + out[i].IncidentEventURL
		}
		out[i].GroupPreviousGroups = append([]string(nil), e.GroupPreviousGroups...)
	}
	return out
}

func appendIncident(w *jw, e *incidentRec, urlBase string, odd oddShape) {
	w.obj()
	w.kStr("id", e.ID)
	w.kInt("createdAt", e.CreatedAt)
	w.kStr("title", e.Title)
	if odd.literalNewline {
		w.kStr("summary", strings.ReplaceAll(e.Summary, "\n", `\n`))
	} else {
		w.kStr("summary", e.Summary)
	}
	w.kStr("summariser", e.Summariser)
	w.kFloat("aiaScore", float64(e.AIAScore))
	if e.scoreAsString {
		w.kStr("groupScore", strconv.FormatFloat(float64(e.GroupScore), 'f', -1, 64))
	} else {
		w.kFloat("groupScore", float64(e.GroupScore))
	}
	w.kStr("currentGroup", e.CurrentGroup)
	w.kStr("groupCategory", e.GroupCategory)
	w.kStrs("groupPreviousGroups", append([]string{}, e.GroupPreviousGroups...))
	w.kStr("category", e.Category)
	if odd.ackObject && e.Acknowledged {
		w.key("acknowledged")
		w.obj()
		w.kInt("time", e.CreatedAt+60_000)
		w.kStr("username", "analyst@dt.example.com")
		w.endObj()
	} else {
		w.kBool("acknowledged", e.Acknowledged)
	}
	w.kBool("pinned", e.Pinned)
	w.kStrs("mitreTactics", e.MitreTactics)
	w.key("attackPhases")
	w.arr()
	for _, p := range e.AttackPhases {
		w.int(int64(p))
	}
	w.endArr()
	w.objects("periods", len(e.Periods), func(i int) {
		p := &e.Periods[i]
		w.kInt("start", p.Start)
		w.kInt("end", p.End)
	})
	w.key("breachDevices")
	w.arr()
	for _, d := range e.BreachDevices {
		w.obj()
		w.kInt("did", d.DID)
		w.kInt("sid", d.SID)
		optStr(w, "hostname", d.Hostname)
		optStr(w, "ip", d.IP)
		optStr(w, "mac", d.MAC)
		optStr(w, "subnet", d.Subnet)
		optStr(w, "identifier", d.Identifier)
		w.endObj()
	}
	if e.nullDevice {
		w.raw([]byte(`{"did":null,"sid":null,"hostname":null,"ip":null,"mac":null,"subnet":null,"identifier":null}`))
	}
	w.endArr()
	w.objects("relatedBreaches", len(e.RelatedBreaches), func(i int) {
		b := &e.RelatedBreaches[i]
		w.kStr("modelName", b.ModelName)
		w.kInt("pbid", b.PBID)
		w.kFloat("threatScore", float64(b.ThreatScore))
		w.kInt("timestamp", b.Timestamp)
	})
	w.key("details")
	appendDetails(w, e)
	if urlBase != "" && e.IncidentEventURL != "" && !odd.noURL {
		w.kStr("incidentEventUrl", urlBase+e.IncidentEventURL)
	}
	w.endObj()
}

// optStr writes null for empty values: AI Analyst sends null where it knows nothing.
func optStr(w *jw, k, v string) {
	w.key(k)
	if v == "" {
		w.null()
		return
	}
	w.str(v)
}

// appendDetails writes one of the two layouts of "details": a list of sections, or a list of
// lists of sections (newer builds group sections per period).
func appendDetails(w *jw, e *incidentRec) {
	section := func() {
		w.obj()
		w.kStr("header", "Connection Details")
		w.key("contents")
		w.arr()
		w.obj()
		w.kStr("key", "Destination")
		w.kStr("type", "string")
		w.kStrs("values", []string{rareDomains[len(e.ID)%len(rareDomains)]})
		w.endObj()
		w.obj()
		w.kStr("key", "Time")
		w.kStr("type", "timestampRange")
		w.key("values")
		w.arr()
		w.obj()
		w.kInt("start", e.Periods[0].Start)
		w.kInt("end", e.Periods[0].End)
		w.endObj()
		w.endArr()
		w.endObj()
		w.endArr()
		w.endObj()
	}
	w.arr()
	if e.detailsFlat {
		section()
	} else {
		w.arr()
		section()
		w.endArr()
	}
	w.endArr()
}

// incidentDefaultWindow is the window the appliance applies without starttime/endtime.
const incidentDefaultWindow = 7 * 24 * time.Hour
