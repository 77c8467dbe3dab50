package ocsf

import (
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
)

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
