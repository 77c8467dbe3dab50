package ocsf

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dtforward/dtforward/alert"
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
