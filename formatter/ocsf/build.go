package ocsf

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

// OCSF 1.3.0 identifiers of the classes and categories written.
const (
	classDetectionFinding   = 2004
	classRemediationActivit = 7001
	categoryFindings        = 2
	categoryRemediation     = 7
)

// Finding activities (Detection Finding activity_id).
const (
	activityCreate = 1
	activityUpdate = 2
)

// Remediation activities (Remediation Activity activity_id, the MITRE D3FEND tactic).
const (
	activityIsolate = 1
	activityRestore = 3
)

// Finding status_id values.
const (
	findingNew      = 1
	findingResolved = 4
)

// Event status_id values of a Remediation Activity.
const (
	statusSuccess = 1
	statusOther   = 99
)

var severityNames = [...]string{0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}

var riskLevelNames = [...]string{0: "Info", 1: "Low", 2: "Medium", 3: "High", 4: "Critical"}

// maxEvidences bounds the evidences of one finding: a breach can have dozens of components
// with the same destination; the distinct ones are what an analyst pivots on.
const maxEvidences = 16

// Build maps one alert to its OCSF event. version is dtforward's version, written to
// unmapped.dtforward.version when not empty. Only an alert of an unknown kind is an error:
// every converted record has an id and a kind, and everything else is optional in the mapping.
func Build(a *alert.Alert, version string) (*Record, error) {
	if a == nil {
		return nil, errors.New("ocsf: nil alert")
	}
	var e *Record
	switch a.Kind {
	case alert.KindBreach:
		e = breachEvent(a)
	case alert.KindAIAnalyst:
		e = incidentEvent(a)
	case alert.KindAntigena:
		e = actionEvent(a)
	default:
		return nil, fmt.Errorf("ocsf: alert %s: unknown kind %q", a.ID, a.Kind)
	}
	e.Metadata.Version = Version
	e.Metadata.Product = Product{Name: "Darktrace", VendorName: "Darktrace", Feature: &Feature{Name: featureName(a.Kind)}}
	e.Metadata.LogProvider = "dtforward"
	e.Metadata.Labels = labels(a.Labels)
	sev := severityID(a.Score, a.Category)
	e.SeverityID, e.Severity = sev, severityNames[sev]
	if e.ClassUID == classDetectionFinding {
		e.risk(a.Score)
	}
	if version != "" {
		e.unmapped().DTForward = &DTForward{Version: txt(version)}
	}
	return e, nil
}

func featureName(kind string) string {
	switch kind {
	case alert.KindAIAnalyst:
		return "Cyber AI Analyst"
	case alert.KindAntigena:
		return "Antigena (RESPOND)"
	}
	return "Model Breach"
}

// severityID maps Darktrace's score (0..1) and category to OCSF severity_id. The score gives a
// band of one fifth each: [0, 0.2) Informational, [0.2, 0.4) Low, [0.4, 0.6) Medium,
// [0.6, 0.8) High, [0.8, 1] Critical. The category then bounds it: Critical at least High;
// Suspicious Low to High; Compliance Low to Medium; Informational always Informational. Other
// categories (Antigena, none) keep the band.
func severityID(score float64, category string) int {
	if math.IsNaN(score) || score < 0 {
		score = 0
	}
	s := 1 + int(math.Floor(score*5))
	s = clamp(s, 1, 5)
	switch strings.ToLower(strings.TrimSpace(category)) {
	case "critical":
		s = clamp(s, 4, 5)
	case "suspicious":
		s = clamp(s, 2, 4)
	case "compliance":
		s = clamp(s, 2, 3)
	case "informational":
		s = 1
	}
	return s
}

func clamp(v, lo, hi int) int {
	return max(lo, min(v, hi))
}

// risk sets risk_score (0..100) and risk_level from the score and the severity: the risk
// level is the severity one step down (OCSF's risk levels start at Info = 0).
func (e *Record) risk(score float64) {
	if math.IsNaN(score) || score < 0 {
		score = 0
	}
	r := int(math.Round(math.Min(score, 1) * 100))
	lvl := clamp(e.SeverityID-1, 0, 4)
	e.RiskScore, e.RiskLevelID, e.RiskLevel = &r, &lvl, riskLevelNames[lvl]
}

func (e *Record) unmapped() *Unmapped {
	if e.Unmapped == nil {
		e.Unmapped = &Unmapped{}
	}
	return e.Unmapped
}

// dt returns unmapped.darktrace, creating it.
func (e *Record) dt() map[string]any {
	u := e.unmapped()
	if u.Darktrace == nil {
		u.Darktrace = map[string]any{}
	}
	return u.Darktrace
}

// finding fills what Detection Findings share: class, activity and status from the
// acknowledgement, finding_info identity, device and risk.
func finding(a *alert.Alert) (*Record, *FindingInfo) {
	uid := scoped(a.Appliance, a.ID)
	fi := &FindingInfo{
		UID:           uid,
		Title:         txt(a.Name),
		SrcURL:        txt(a.URL),
		CreatedTime:   ms(a.Created),
		FirstSeenTime: ms(a.Time),
		ProductUID:    txt(a.Appliance),
	}
	e := &Record{
		CategoryUID: categoryFindings, CategoryName: "Findings",
		ClassUID: classDetectionFinding, ClassName: "Detection Finding",
		StartTime:   ms(a.Time),
		Message:     txt(a.Message),
		FindingInfo: fi,
		Device:      device(&a.Device),
	}
	e.Metadata.UID = uid
	e.Time = firstNonZero(ms(a.Created), ms(a.Time))
	// A record's acknowledgement is the only change of a finding the record shows. The
	// acknowledged record is an Update of the same finding_info.uid, reviewed and closed in
	// Darktrace (Resolved); otherwise it is the finding's creation (New). The poller sends a
	// record again when it changes, so each state reaches the SIEM once.
	if ack := a.Ack; ack != nil {
		e.ActivityID, e.ActivityName = activityUpdate, "Update"
		e.StatusID, e.Status = findingResolved, "Resolved"
		e.StatusDetail = "Acknowledged in Darktrace"
		if u := txt(strings.TrimSpace(ack.User)); u != "" {
			e.StatusDetail += " by " + u
		}
		e.Metadata.UID = uid + ":ack"
		if t := ms(ack.Time); t != 0 {
			fi.ModifiedTime = t
			e.Time = t
		}
		ackd := map[string]any{"acknowledged": true}
		if ack.User != "" {
			ackd["user"] = txt(ack.User)
		}
		if t := ms(ack.Time); t != 0 {
			ackd["time"] = t
		}
		e.dt()["acknowledgement"] = ackd
	} else {
		e.ActivityID, e.ActivityName = activityCreate, "Create"
		e.StatusID, e.Status = findingNew, "New"
	}
	e.TypeUID = int64(e.ClassUID)*100 + int64(e.ActivityID)
	e.TypeName = "Detection Finding: " + e.ActivityName
	return e, fi
}

// breachEvent maps a model breach. The alert carries the normalized fields; the record itself
// (a.Raw) adds the full model description, the MITRE tactics and technique names, and the
// triggered components (evidences, last seen time).
func breachEvent(a *alert.Alert) *Record {
	e, fi := finding(a)
	var b darktrace.Breach
	haveRaw := false
	if len(a.Raw) > 0 {
		if d, err := darktrace.DecodeBreach(a.Raw, nil); err == nil {
			b, haveRaw = d, true
		}
	}
	fi.Desc = txt(a.Message)
	if haveRaw {
		if d := txt(strings.TrimSpace(b.Model.Description)); d != "" {
			fi.Desc = d
		}
	}
	fi.Types = types(a.Category, family(a.Model.Name))
	uid := a.Model.UUID
	if uid == "" && a.Model.PID > 0 {
		uid = strconv.FormatInt(a.Model.PID, 10)
	}
	fi.Analytic = &Analytic{UID: txt(uid), Name: txt(a.Model.Name), TypeID: 2, Type: "Behavioral"}
	if fi.Analytic.UID == "" && fi.Analytic.Name == "" {
		fi.Analytic.Name = fi.Title
	}
	names := map[string]string{}
	var tactics []string
	if haveRaw {
		for _, t := range b.MitreTechniques {
			if id := strings.TrimSpace(t.TechniqueID); id != "" && t.Technique != "" {
				names[id] = t.Technique
			}
		}
		if b.Model.Mitre != nil {
			tactics = b.Model.Mitre.Tactics
		}
	}
	fi.Attacks = attacks(a.Model.MITRE, names, tactics)
	last := ms(a.Time)
	if haveRaw {
		for i := range b.TriggeredComponents {
			if t := b.TriggeredComponents[i].Time; t > last && t < maxTime {
				last = t
			}
		}
		e.Evidences = componentEvidences(b.TriggeredComponents)
	}
	if len(e.Evidences) == 0 {
		if ev, ok := destEvidence(&a.Dest); ok {
			e.Evidences = []Evidence{ev}
		}
	}
	fi.LastSeenTime, e.EndTime = last, last
	e.Metadata.LogName = alert.SourceBreaches

	d := e.dt()
	d["kind"], d["id"] = a.Kind, txt(a.ID)
	d["score"] = round6(a.Score)
	if a.Category != "" {
		d["category"] = txt(a.Category)
	}
	if a.Model.PID > 0 {
		d["pid"] = a.Model.PID
	}
	if a.Priority != alert.NoPriority && a.Priority >= 0 {
		d["priority"] = a.Priority
	}
	if len(a.Model.Tags) > 0 {
		d["tags"] = texts(a.Model.Tags)
	}
	if haveRaw && b.CommentCount > 0 {
		d["comment_count"] = b.CommentCount
	}
	deviceUnmapped(d, &a.Device)
	if a.Dest.Protocol != "" || a.Dest.App != "" {
		dst := map[string]any{}
		if a.Dest.Protocol != "" {
			dst["protocol"] = txt(a.Dest.Protocol)
		}
		if a.Dest.App != "" {
			dst["application_protocol"] = txt(a.Dest.App)
		}
		d["destination"] = dst
	}
	return e
}

// incidentEvent maps an AI Analyst incident event. It is a Detection Finding rather than an
// Incident Finding: the record is one event Cyber AI Analyst detected (with its own score),
// not the incident itself, and OCSF 1.3.0's Incident Finding requires an assignee, which
// Darktrace's record never has. The incident group the event belongs to is the correlation
// uid, so a SIEM can gather the group's events.
func incidentEvent(a *alert.Alert) *Record {
	e, fi := finding(a)
	var r darktrace.IncidentEvent
	haveRaw := false
	if len(a.Raw) > 0 {
		if d, err := darktrace.DecodeIncidentEvent(a.Raw, nil); err == nil {
			r, haveRaw = d, true
		}
	}
	fi.Desc = txt(a.Message)
	fi.Types = types(a.Category, "AI Analyst")
	summariser := strings.TrimPrefix(a.SignatureID, "aianalyst:")
	fi.Analytic = &Analytic{UID: txt(summariser), Name: txt(summariser), TypeID: 4, Type: "Learning (ML/DL)"}
	if fi.Analytic.UID == "" {
		fi.Analytic.Name = fi.Title
	}
	last := ms(a.Time)
	if haveRaw {
		fi.Attacks = attacks(nil, nil, r.MitreTactics)
		for _, p := range r.Periods {
			if p.End > last && p.End < maxTime {
				last = p.End
			}
		}
		seen := map[string]bool{}
		for _, rb := range r.RelatedBreaches {
			if rb.PBID <= 0 {
				continue
			}
			uid := scoped(a.Appliance, strconv.FormatInt(rb.PBID, 10))
			if seen[uid] {
				continue
			}
			seen[uid] = true
			fi.RelatedEvents = append(fi.RelatedEvents, RelatedEvent{
				UID: uid, TypeUID: classDetectionFinding*100 + activityCreate, TypeName: "Detection Finding: Create"})
			if len(fi.RelatedEvents) == maxEvidences {
				break
			}
		}
		e.Evidences = incidentDevices(a, r.BreachDevices)
	}
	fi.LastSeenTime, e.EndTime = last, last
	e.Metadata.LogName = alert.SourceAIAnalyst

	d := e.dt()
	d["kind"], d["id"] = a.Kind, txt(a.ID)
	d["aia_score"] = round6(a.Score * 100)
	if a.Category != "" {
		d["category"] = txt(a.Category)
	}
	if g := a.Group; g != nil {
		if g.ID != "" {
			e.Metadata.CorrelationUID = scoped(a.Appliance, g.ID)
		}
		grp := map[string]any{}
		if g.ID != "" {
			grp["id"] = txt(g.ID)
		}
		if g.Score >= 0 {
			grp["score"] = round6(g.Score * 100)
		}
		if g.Category != "" {
			grp["category"] = txt(g.Category)
		}
		d["group"] = grp
	}
	deviceUnmapped(d, &a.Device)
	return e
}

// actionEvent maps one state of an Antigena action to a Remediation Activity. OCSF 1.3.0's
// Remediation Activity names the D3FEND tactic applied, not a lifecycle step, so the activity
// is Isolate while the action is pending, active or extended (every Antigena action restricts
// a device's connections) and Restore once it is cleared or has expired (the restriction is
// lifted). The state itself is status (pending: Other "Pending"; otherwise Success) and
// status_detail; all states of one action share command_uid.
func actionEvent(a *alert.Alert) *Record {
	e := &Record{
		CategoryUID: categoryRemediation, CategoryName: "Remediation",
		ClassUID: classRemediationActivit, ClassName: "Remediation Activity",
		Time:      firstNonZero(ms(a.Created), ms(a.Time)),
		StartTime: ms(a.Time),
		Message:   txt(a.Message),
		Device:    device(&a.Device),
	}
	e.CommandUID = scoped(a.Appliance, a.ID)
	state := ""
	typ := ""
	var act alert.Action
	if a.Action != nil {
		act = *a.Action
		state, typ = act.State, act.Type
	}
	if ms(act.Expires) != 0 {
		e.EndTime = ms(act.Expires)
	}
	isolate := &Entity{Name: "Isolate", SrcURL: "https://d3fend.mitre.org/tactic/d3f:Isolate/"}
	switch state {
	case "cleared", "expired":
		e.ActivityID, e.ActivityName = activityRestore, "Restore"
		e.Countermeasures = []D3FEND{{Tactic: &Entity{Name: "Restore", SrcURL: "https://d3fend.mitre.org/tactic/d3f:Restore/"}}}
	default:
		e.ActivityID, e.ActivityName = activityIsolate, "Isolate"
		tech := &Entity{UID: "D3-NTF", Name: "Network Traffic Filtering", SrcURL: "https://d3fend.mitre.org/technique/d3f:NetworkTrafficFiltering/"}
		if strings.HasPrefix(strings.ToLower(typ), "quarantine") {
			tech = &Entity{UID: "D3-NI", Name: "Network Isolation", SrcURL: "https://d3fend.mitre.org/technique/d3f:NetworkIsolation/"}
		}
		e.Countermeasures = []D3FEND{{Tactic: isolate, Technique: tech}}
	}
	if state == "pending" {
		e.StatusID, e.Status = statusOther, "Pending"
	} else {
		e.StatusID, e.Status = statusSuccess, "Success"
	}
	e.StatusDetail = txt(state)
	e.TypeUID = int64(e.ClassUID)*100 + int64(e.ActivityID)
	e.TypeName = "Remediation Activity: " + e.ActivityName
	e.Metadata.UID = e.CommandUID
	if state != "" {
		e.Metadata.UID += ":" + txt(state)
	}
	e.Metadata.LogName = alert.SourceAntigena
	if act.PBID > 0 {
		// The breach that triggered the action: its finding_info.uid.
		e.Metadata.CorrelationUID = scoped(a.Appliance, strconv.FormatInt(act.PBID, 10))
	}
	if u := txt(strings.TrimSpace(act.Triggerer)); u != "" {
		e.Actor = &Actor{User: &User{Name: u}}
	}

	d := e.dt()
	d["kind"], d["id"] = a.Kind, txt(a.ID)
	d["score"] = round6(a.Score)
	ad := map[string]any{"manual": act.Manual}
	for k, v := range map[string]string{"type": act.Type, "label": act.Label, "state": act.State, "triggerer": act.Triggerer} {
		if v != "" {
			ad[k] = txt(v)
		}
	}
	if t := ms(act.Expires); t != 0 {
		ad["expires"] = t
	}
	if act.PBID > 0 {
		ad["pbid"] = act.PBID
	}
	d["action"] = ad
	if a.Model.Name != "" {
		d["model_name"] = txt(a.Model.Name)
	}
	if a.Model.UUID != "" {
		d["model_uuid"] = txt(a.Model.UUID)
	}
	if a.URL != "" {
		d["breach_url"] = txt(a.URL)
	}
	deviceUnmapped(d, &a.Device)
	return e
}

// maxTime bounds times taken from a record (year 9999): a hostile or garbled component time
// must not become a date no consumer can store.
const maxTime = 253402300799999

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	v := t.UnixMilli()
	if v < 0 || v > maxTime {
		return 0
	}
	return v
}

func firstNonZero(v ...int64) int64 {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

// scoped is an identifier made unique across appliances: "<appliance>:<id>", or the id alone
// when the alert names no appliance. An appliance label longer than maxScope bytes is
// shortened to its first bytes, "~" and a hash of the whole label: identifiers are never
// trimmed, so they must stay short enough for the smallest line limit, and the same label
// always gives the same identifier.
func scoped(appliance, id string) string {
	appliance, id = txt(appliance), txt(id)
	if appliance == "" {
		return id
	}
	if len(appliance) > maxScope {
		h := fnv.New32a()
		h.Write([]byte(appliance))
		keep := maxScope - 9
		for keep > 0 && !utf8.RuneStart(appliance[keep]) {
			keep--
		}
		appliance = fmt.Sprintf("%s~%08x", appliance[:keep], h.Sum32())
	}
	return appliance + ":" + id
}

// maxScope bounds the appliance part of an identifier.
const maxScope = 64

// txt makes a string safe for every consumer of the line: NUL becomes U+FFFD (syslog-ng's JSON
// parser cuts strings at \u0000), as in the json format; the alert's strings are already valid
// UTF-8.
func txt(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func texts(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// family is the model's family, the part of a Darktrace model name before "::"
// ("Anomalous Connection" of "Anomalous Connection::Data Sent to Rare Domain").
func family(name string) string {
	f, _, ok := strings.Cut(name, "::")
	if !ok {
		return ""
	}
	return strings.TrimSpace(f)
}

// types is finding_info.types: the Darktrace category and the model family (or "AI Analyst").
func types(l ...string) []string {
	var out []string
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var techniqueID = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// attacks lists one attack per technique (a sub-technique id "T1071.001" also names its
// technique "T1071") and one per tactic. names maps technique ids to names.
func attacks(techniques []string, names map[string]string, tactics []string) []Attack {
	var out []Attack
	for _, id := range techniques {
		id = txt(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		at := Attack{Technique: &Entity{UID: id, Name: txt(names[id])}}
		if techniqueID.MatchString(id) {
			if parent, _, sub := strings.Cut(id, "."); sub {
				at.SubTechnique = at.Technique
				at.Technique = &Entity{UID: parent, Name: txt(names[parent])}
			}
		}
		out = append(out, at)
	}
	seen := map[string]bool{}
	for _, t := range tactics {
		t = txt(strings.TrimSpace(t))
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, Attack{Tactic: &Entity{Name: t}})
	}
	return out
}

// hostnameRE is OCSF's hostname_t pattern: a value that is not a hostname (a Darktrace label,
// an address with spaces) goes to the endpoint's name instead, so that no consumer that checks
// the type rejects the event.
var hostnameRE = regexp.MustCompile(`^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$`)

func isHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

// device maps the alert's device; nil for system breaches (did -1, about the appliance itself)
// and for records without any device value.
func device(d *alert.Device) *Device {
	if d.DID < 0 {
		return nil
	}
	out := &Device{IP: d.IP, MAC: d.MAC}
	if d.DID > 0 {
		out.UID = strconv.FormatInt(d.DID, 10)
	}
	host := txt(strings.TrimSpace(d.Hostname))
	if isHostname(host) {
		out.Hostname = host
		host = ""
	}
	out.Name = firstText(host, d.Label, d.Placeholder)
	out.TypeID, out.Type = deviceType(d.Type)
	if out.UID == "" && out.Hostname == "" && out.Name == "" && out.IP == "" {
		return nil // OCSF's device needs at least one of them
	}
	return out
}

func firstText(l ...string) string {
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" {
			return s
		}
	}
	return ""
}

// deviceTypes maps words of Darktrace's device type labels to OCSF device type_id.
var deviceTypes = []struct {
	word string
	id   int
	name string
}{
	{"laptop", 3, "Laptop"}, {"desktop", 2, "Desktop"}, {"server", 1, "Server"},
	{"tablet", 4, "Tablet"}, {"mobile", 5, "Mobile"}, {"phone", 5, "Mobile"},
	{"virtual", 6, "Virtual"}, {"iot", 7, "IOT"}, {"firewall", 9, "Firewall"},
	{"switch", 10, "Switch"}, {"router", 12, "Router"}, {"load balancer", 15, "Load Balancer"},
}

// deviceType returns type_id and type: a known word of the label maps to its OCSF type, an
// unknown label is Other (99) with the label as type, no label is Unknown (0).
func deviceType(label string) (int, string) {
	label = txt(strings.TrimSpace(label))
	if label == "" {
		return 0, ""
	}
	l := strings.ToLower(label)
	for _, t := range deviceTypes {
		if strings.Contains(l, t.word) {
			return t.id, t.name
		}
	}
	return 99, label
}

// deviceUnmapped keeps the Darktrace device values OCSF has no place for.
func deviceUnmapped(d map[string]any, dev *alert.Device) {
	m := map[string]any{}
	if dev.DID != 0 {
		m["did"] = dev.DID
	}
	if dev.SID != 0 {
		m["sid"] = dev.SID
	}
	if dev.Label != "" {
		m["label"] = txt(dev.Label)
	}
	if dev.Placeholder != "" {
		m["placeholder"] = txt(dev.Placeholder)
	}
	if dev.Type != "" {
		m["type"] = txt(dev.Type)
	}
	if len(m) > 0 {
		d["device"] = m
	}
}

// componentEvidences makes one evidence per distinct destination the triggered components
// matched: destination IP, port and connection hostname, with the transport and application
// protocol and the metric in data.
func componentEvidences(comps []darktrace.TriggeredComponent) []Evidence {
	var out []Evidence
	seen := map[string]bool{}
	for i := range comps {
		c := &comps[i]
		ep := alert.ComponentDestination(c)
		ev, ok := destEvidence(&ep)
		if !ok {
			continue
		}
		if c.Metric.Name != "" {
			if ev.Data == nil {
				ev.Data = map[string]any{}
			}
			ev.Data["metric"] = txt(c.Metric.Name)
		}
		key := fmt.Sprint(ev.DstEndpoint, ev.Data)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, ev)
		if len(out) == maxEvidences {
			break
		}
	}
	return out
}

// destEvidence is the evidence for one destination; false when it names no endpoint.
func destEvidence(d *alert.Endpoint) (Evidence, bool) {
	ep := &NetworkEndpoint{IP: d.IP, Port: d.Port}
	if h := txt(strings.TrimSpace(d.Host)); h != "" {
		if isHostname(h) {
			ep.Hostname = h
		} else {
			ep.Name = h
		}
	}
	if ep.IP == "" && ep.Hostname == "" && ep.Name == "" {
		return Evidence{}, false
	}
	ev := Evidence{DstEndpoint: ep}
	if d.Protocol != "" || d.App != "" {
		ev.Data = map[string]any{}
		if d.Protocol != "" {
			ev.Data["protocol"] = txt(d.Protocol)
		}
		if d.App != "" {
			ev.Data["application_protocol"] = txt(d.App)
		}
	}
	return ev, true
}

// incidentDevices is one evidence per device of an AI Analyst event other than the one in
// device (the first, which the alert carries).
func incidentDevices(a *alert.Alert, devs []darktrace.BreachDevice) []Evidence {
	var out []Evidence
	seen := map[string]bool{}
	if dv := device(&a.Device); dv != nil {
		seen[fmt.Sprint(*dv)] = true
	}
	for i := range devs {
		bd := &devs[i]
		dv := device(new(alert.IncidentDevice(bd)))
		if dv == nil || seen[fmt.Sprint(*dv)] {
			continue
		}
		seen[fmt.Sprint(*dv)] = true
		out = append(out, Evidence{Device: dv})
		if len(out) == maxEvidences {
			break
		}
	}
	return out
}

// labels are the appliance labels as "key=value", sorted by key.
func labels(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, txt(k)+"="+txt(v))
		}
	}
	sort.Strings(out)
	return out
}
