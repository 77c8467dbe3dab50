package ocsf

// The two Detection Findings: a model breach, and an AI Analyst incident event.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

// breachEvent maps a model breach. The alert carries the normalized fields; the record itself
// (a.Raw) adds the full model description, the MITRE tactics and technique names, and the
// triggered components (evidences, last seen time).
func breachEvent(a *alert.Alert) *Record {
	e, fi := finding(a)
	b, haveRaw := fromRaw(a.Raw, darktrace.DecodeBreach)
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

// fromRaw decodes the record as received (a.Raw); false when there is none or it does not
// decode, and the event is made from the alert's fields alone.
func fromRaw[T any](raw []byte, decode func([]byte, darktrace.AnomalyFunc) (T, error)) (T, bool) {
	var zero T
	if len(raw) == 0 {
		return zero, false
	}
	d, err := decode(raw, nil)
	if err != nil {
		return zero, false
	}
	return d, true
}

// incidentEvent maps an AI Analyst incident event. It is a Detection Finding rather than an
// Incident Finding: the record is one event Cyber AI Analyst detected (with its own score),
// not the incident itself, and OCSF 1.3.0's Incident Finding requires an assignee, which
// Darktrace's record never has. The incident group the event belongs to is the correlation
// uid, so a SIEM can gather the group's events.
func incidentEvent(a *alert.Alert) *Record {
	e, fi := finding(a)
	r, haveRaw := fromRaw(a.Raw, darktrace.DecodeIncidentEvent)
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
