package ocsf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

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
