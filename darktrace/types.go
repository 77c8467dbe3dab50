// Package darktrace speaks the Darktrace Threat Visualizer REST API: record types that tolerate
// the messy data real appliances return, the HMAC-SHA1 request signer, an HTTP client that
// classifies every response, and a streaming decoder for the (unpaginated) array responses.
package darktrace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Breach is one record of GET /modelbreaches (minimal=false, deviceattop=true).
// Unknown keys are ignored; the record as received is kept by the decoder, not here.
type Breach struct {
	PBID                int64                `json:"pbid"`
	Time                int64                `json:"time"`         // first activity, epoch ms
	CreationTime        int64                `json:"creationTime"` // 0 when the appliance build predates it
	CommentCount        int                  `json:"commentCount"`
	Acknowledged        Acknowledgement      `json:"acknowledged"`
	Score               FlexFloat            `json:"score"`
	BreachURL           string               `json:"breachUrl,omitempty"`
	Model               BreachModel          `json:"model"`
	Device              Device               `json:"device"`
	TriggeredComponents []TriggeredComponent `json:"triggeredComponents,omitempty"`
	MitreTechniques     []MitreTechnique     `json:"mitreTechniques,omitempty"`
}

// Created returns the record creation time in epoch ms, falling back to the activity time for
// records from appliance builds that do not send creationTime.
func (b *Breach) Created() int64 {
	if b.CreationTime != 0 {
		return b.CreationTime
	}
	return b.Time
}

// Model is a Darktrace model as embedded in a breach.
type Model struct {
	Name        string          `json:"name"`
	PID         int64           `json:"pid"`
	PHID        int64           `json:"phid,omitempty"`
	UUID        string          `json:"uuid,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Priority    *int            `json:"priority,omitempty"` // nil when the record has none
	Category    string          `json:"category,omitempty"`
	Compliance  bool            `json:"compliance,omitempty"`
	Description string          `json:"description,omitempty"`
	Logic       json.RawMessage `json:"logic,omitempty"`
	Actions     json.RawMessage `json:"actions,omitempty"`
	Mitre       *ModelMitre     `json:"mitre,omitempty"`
}

// ModelMitre is the MITRE ATT&CK mapping attached to a model.
type ModelMitre struct {
	Tactics    []string `json:"tactics,omitempty"`
	Techniques []string `json:"techniques,omitempty"`
}

// BreachModel accepts both shapes the API uses for a breach's model: the flat object sent with
// historicmodelonly=true, and {"then": {...}, "now": {...}} otherwise. Model holds the version
// that was in force when the breach fired ("then"), which is what an analyst triages on.
type BreachModel struct {
	Model
	// Now is the current model version when the record used the {then, now} shape.
	Now *Model `json:"-"`
}

// UnmarshalJSON implements json.Unmarshaler for both model shapes.
func (m *BreachModel) UnmarshalJSON(b []byte) error {
	// One pass for both shapes: the flat fields land in the embedded Model, then/now in their
	// own fields. (Probing first and decoding again scanned the model's large logic tree twice.)
	var probe struct {
		Model
		Then *Model `json:"then"`
		Now  *Model `json:"now"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	switch {
	case probe.Then != nil:
		m.Model = *probe.Then
	case probe.Now != nil:
		m.Model = *probe.Now
	default:
		m.Model = probe.Model
	}
	m.Now = probe.Now
	return nil
}

// MarshalJSON writes the flat shape.
func (m BreachModel) MarshalJSON() ([]byte, error) { return json.Marshal(m.Model) }

// Device is the breach device (deviceattop=true). System breaches carry only {"did": -1}.
type Device struct {
	DID        int64       `json:"did"`
	IP         string      `json:"ip,omitempty"`
	IPs        []DeviceIP  `json:"ips,omitempty"`
	SID        int64       `json:"sid,omitempty"`
	Hostname   string      `json:"hostname,omitempty"`
	MACAddress string      `json:"macaddress,omitempty"`
	Vendor     string      `json:"vendor,omitempty"`
	TypeName   string      `json:"typename,omitempty"`
	TypeLabel  string      `json:"typelabel,omitempty"`
	FirstSeen  int64       `json:"firstSeen,omitempty"`
	LastSeen   int64       `json:"lastSeen,omitempty"`
	Tags       []DeviceTag `json:"tags,omitempty"`
	// DeviceLabel is the label an operator gave the device; sometimes its only human name.
	DeviceLabel string `json:"devicelabel,omitempty"`
}

// DeviceIP is one entry of a device's IP history.
type DeviceIP struct {
	IP     string `json:"ip"`
	TimeMS int64  `json:"timems,omitempty"`
	Time   string `json:"time,omitempty"`
	SID    int64  `json:"sid,omitempty"`
}

// DeviceTag is a tag attached to a device.
type DeviceTag struct {
	TID  int64  `json:"tid"`
	Name string `json:"name"`
}

// TriggeredComponent is one model component that fired.
type TriggeredComponent struct {
	Time             int64             `json:"time"`
	CBID             int64             `json:"cbid"`
	CID              int64             `json:"cid"`
	CHID             int64             `json:"chid"`
	Size             FlexFloat         `json:"size"`
	Threshold        FlexFloat         `json:"threshold"`
	Interval         int64             `json:"interval"`
	Logic            json.RawMessage   `json:"logic,omitempty"`
	Metric           Metric            `json:"metric"`
	TriggeredFilters []TriggeredFilter `json:"triggeredFilters,omitempty"`
}

// Metric names what a component counted.
type Metric struct {
	MLID  int64  `json:"mlid"`
	Name  string `json:"name"`
	Label string `json:"label"`
}

// TriggeredFilter is one filter of a component and the value that matched it.
type TriggeredFilter struct {
	CFID           int64           `json:"cfid"`
	ID             string          `json:"id"`
	FilterType     string          `json:"filterType"`
	Arguments      json.RawMessage `json:"arguments,omitempty"`
	ComparatorType string          `json:"comparatorType"`
	Trigger        struct {
		Value FlexString `json:"value"`
	} `json:"trigger"`
}

// MitreTechnique is a technique reference at the top of a breach.
type MitreTechnique struct {
	Technique   string `json:"technique"`
	TechniqueID string `json:"techniqueID"`
}

// Action is one record of GET /antigena.
type Action struct {
	CodeID    int64           `json:"codeid"`
	DID       int64           `json:"did"`
	IP        string          `json:"ip,omitempty"`
	Action    string          `json:"action"`
	Label     string          `json:"label"`
	Detail    string          `json:"detail,omitempty"`
	Manual    bool            `json:"manual"`
	Triggerer *Triggerer      `json:"triggerer"`
	Score     FlexFloat       `json:"score"`
	PBID      int64           `json:"pbid,omitempty"`
	Model     string          `json:"model,omitempty"`
	ModelUUID string          `json:"modeluuid,omitempty"`
	Start     int64           `json:"start"`
	Expires   int64           `json:"expires"`
	Updated   FlexInt         `json:"updated"` // the API sends a string of epoch ms
	Blocked   bool            `json:"blocked"`
	Active    bool            `json:"active"`
	Cleared   bool            `json:"cleared"`
	AGEmail   bool            `json:"agemail,omitempty"`
	AGHost    string          `json:"aghost,omitempty"`
	History   []ActionHistory `json:"history,omitempty"`
}

// State names the action's lifecycle state as dtforward reports it.
func (a *Action) State() string {
	switch {
	case a.Cleared:
		return "cleared"
	case expired(a.Active, a.Cleared, a.Updated.Int64(), a.Expires):
		return "expired"
	case a.Active:
		return "active"
	default:
		return "pending"
	}
}

// Triggerer is who started a manual action.
type Triggerer struct {
	Username string `json:"username"`
	Reason   string `json:"reason"`
}

// ActionHistory is one entry of an action's history (includehistory=true).
type ActionHistory struct {
	Family   string `json:"family,omitempty"`
	Username string `json:"username,omitempty"`
	Action   string `json:"action"`
	Reason   string `json:"reason,omitempty"`
	Time     int64  `json:"time"`
}

// ActionSummary is GET /antigena/summary.
type ActionSummary struct {
	PendingCount         int     `json:"pendingCount"`
	ActiveCount          int     `json:"activeCount"`
	PendingActionDevices []int64 `json:"pendingActionDevices"`
	ActiveActionDevices  []int64 `json:"activeActionDevices"`
}

// IncidentEvent is one record of GET /aianalyst/incidentevents.
type IncidentEvent struct {
	ID                  string          `json:"id"`
	CreatedAt           int64           `json:"createdAt"`
	Title               string          `json:"title"`
	Summary             string          `json:"summary,omitempty"`
	Summariser          string          `json:"summariser,omitempty"`
	AIAScore            FlexFloat       `json:"aiaScore"`   // 0..100
	GroupScore          FlexFloat       `json:"groupScore"` // number or string, 0..100
	CurrentGroup        string          `json:"currentGroup,omitempty"`
	GroupCategory       string          `json:"groupCategory,omitempty"`
	GroupPreviousGroups []string        `json:"groupPreviousGroups,omitempty"`
	Category            string          `json:"category,omitempty"`
	Acknowledged        bool            `json:"acknowledged"`
	Pinned              bool            `json:"pinned"`
	MitreTactics        []string        `json:"mitreTactics,omitempty"`
	AttackPhases        []int           `json:"attackPhases,omitempty"`
	Periods             []Period        `json:"periods,omitempty"`
	BreachDevices       []BreachDevice  `json:"breachDevices,omitempty"`
	RelatedBreaches     []RelatedBreach `json:"relatedBreaches,omitempty"`
	Details             json.RawMessage `json:"details,omitempty"`
	IncidentEventURL    string          `json:"incidentEventUrl,omitempty"`
}

// Period is an activity period of an incident event.
type Period struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// BreachDevice is a device involved in an incident event; any field may be null.
type BreachDevice struct {
	DID        int64  `json:"did"`
	SID        int64  `json:"sid,omitempty"`
	Hostname   string `json:"hostname,omitempty"`
	IP         string `json:"ip,omitempty"` // may carry a /24 suffix
	MAC        string `json:"mac,omitempty"`
	Subnet     string `json:"subnet,omitempty"`
	Identifier string `json:"identifier,omitempty"`
}

// RelatedBreach links an incident event to a model breach.
type RelatedBreach struct {
	ModelName   string    `json:"modelName"`
	PBID        int64     `json:"pbid"`
	ThreatScore FlexFloat `json:"threatScore"`
	Timestamp   int64     `json:"timestamp"`
}

// Status is the useful part of GET /status.
type Status struct {
	Version  string `json:"version"`
	Time     string `json:"time"`
	Hostname string `json:"hostname"`
	Label    string `json:"label,omitempty"`
	UUID     string `json:"uuid,omitempty"`
}

// Acknowledgement is a breach's `acknowledged` field, which appliances send as false, true,
// or {"time": <ms>, "username": "…"} (who acknowledged it and when). An object means
// acknowledged; null means not.
type Acknowledgement struct {
	Acked    bool
	Time     int64  // epoch ms, 0 when unknown
	Username string // "" when unknown
}

// UnmarshalJSON implements json.Unmarshaler for the three shapes.
func (a *Acknowledgement) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")), bytes.Equal(b, []byte("false")):
		*a = Acknowledgement{}
	case bytes.Equal(b, []byte("true")):
		*a = Acknowledgement{Acked: true}
	case len(b) > 0 && b[0] == '{':
		var v struct {
			Time     int64  `json:"time"`
			Username string `json:"username"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*a = Acknowledgement{Acked: true, Time: v.Time, Username: v.Username}
	default:
		return fmt.Errorf("acknowledged: want a bool or an object, got %.20s", b)
	}
	return nil
}

// MarshalJSON writes a bool, or the object when the time or user is known.
func (a Acknowledgement) MarshalJSON() ([]byte, error) {
	if a.Time == 0 && a.Username == "" {
		return strconv.AppendBool(nil, a.Acked), nil
	}
	return json.Marshal(struct {
		Time     int64  `json:"time"`
		Username string `json:"username"`
	}{a.Time, a.Username})
}

// FlexFloat decodes a JSON number, a numeric string, or null (as 0). Real appliances send
// groupScore and some scores either way. NaN and infinities are rejected: no score is one.
type FlexFloat float64

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexFloat) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*f = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*f = 0
			return nil
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("not a number: %q", s)
		}
		*f = FlexFloat(v)
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = FlexFloat(v)
	return nil
}

// Float64 returns the value.
func (f FlexFloat) Float64() float64 { return float64(f) }

// FlexInt decodes an integer sent as a JSON number, a numeric string, or null (as 0).
type FlexInt int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	var f FlexFloat
	if err := f.UnmarshalJSON(b); err != nil {
		return err
	}
	*n = FlexInt(int64(f))
	return nil
}

// Int64 returns the value.
func (n FlexInt) Int64() int64 { return int64(n) }

// FlexString decodes a JSON string, number or boolean into its text; null is "".
// Triggered-filter values are strings or numbers depending on the filter type.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
	default:
		*s = FlexString(b)
	}
	return nil
}

// ApplianceTime reads the appliance clock from Time ("2006-01-02 15:04:05" UTC on real
// appliances; RFC 3339 and the signature's date layout accepted too).
func (s *Status) ApplianceTime() (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339Nano, DateLayout} {
		if t, err := time.ParseInLocation(layout, s.Time, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognized time %q", s.Time)
}
