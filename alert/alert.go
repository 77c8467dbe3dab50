// Package alert holds the normalized Alert that every Darktrace record becomes, and the
// converters from API records (FromBreach, FromAction, FromIncident).
package alert

import (
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// Kinds of alert; also the syslog MSGID.
const (
	KindBreach    = "modelbreach"
	KindAntigena  = "antigena"
	KindAIAnalyst = "aianalyst"
)

// Alert is one Darktrace record normalized for output. Zero values mean "absent": formatters
// omit empty strings, zero times and a nil Action.
type Alert struct {
	Kind        string    // KindBreach | KindAntigena | KindAIAnalyst
	ID          string    // pbid | codeid | incident event id
	Appliance   string    // appliance label (DARKTRACE_NAME)
	Time        time.Time // first activity (breach time, action start, event createdAt)
	Created     time.Time // record creation (creationTime)
	Name        string    // model name | action label | incident title
	SignatureID string    // model pid | "antigena:<action>" | "aianalyst:<summariser>"
	Score       float64   // 0..1
	Severity    int       // 0..10 = round(score*10)
	Category    string    // Critical | Suspicious | Compliance | Informational ...
	Priority    int       // model priority 0..5; NoPriority when the record has none
	Model       Model
	Device      Device
	Dest        Endpoint
	URL         string // breachUrl, or https://<appliance>/#modelbreach/<pbid> when absent
	Message     string
	Action      *Action
	// Ack is the acknowledgement, nil when the record is not acknowledged. Appliances send
	// `acknowledged` as a bool or as {"time": ms, "username": "…"}; a bool true gives an Ack
	// with zero Time and empty User.
	Ack *Acknowledgement
	// Group is the AI Analyst incident group an event belongs to (nil for other kinds). The
	// event's own score and category are Score/Category; the group's are kept here.
	Group *Group
	// Labels are the appliance's labels from the appliances file (e.g. customer, site),
	// written to every line of that appliance.
	Labels map[string]string
	Raw    []byte // the record as received (darktrace-json)
}

// EventTime is when the record happened: its activity time, else its creation time; zero
// when the record has neither (or only times at or before the epoch, which are placeholders).
func (a *Alert) EventTime() time.Time {
	if !a.Time.IsZero() && a.Time.Unix() > 0 {
		return a.Time
	}
	if !a.Created.IsZero() && a.Created.Unix() > 0 {
		return a.Created
	}
	return time.Time{}
}

// SourceOf names the API source (POLL_SOURCES) that records of kind come from, "" for an
// unknown kind.
func SourceOf(kind string) string {
	switch kind {
	case KindBreach:
		return darktrace.SourceBreaches
	case KindAntigena:
		return darktrace.SourceAntigena
	case KindAIAnalyst:
		return darktrace.SourceAIAnalyst
	}
	return ""
}

// NoPriority is Alert.Priority when the record carries no model priority (0 is a real one).
const NoPriority = -1

// Acknowledgement records who acknowledged an alert and when, as far as the record says.
type Acknowledgement struct {
	Time time.Time // zero when unknown
	User string    // empty when unknown
}

// Group is an AI Analyst incident group.
type Group struct {
	ID       string  // currentGroup, e.g. "g04a3f36e-…"
	Score    float64 // groupScore normalised to 0..1; -1 when absent
	Category string  // groupCategory: Critical | Suspicious | Compliance
}

// Model identifies the Darktrace model behind an alert.
type Model struct {
	PID   int64
	UUID  string
	Name  string
	Tags  []string
	MITRE []string // technique ids, e.g. T1041
}

// Device is the source device. IP and MAC hold only validated values; DID is -1 for system
// breaches and 0 when unknown.
type Device struct {
	DID      int64
	Hostname string
	IP       string
	MAC      string
	Type     string
	SID      int64
	// Label is the device's label (devicelabel), sometimes its only human name.
	Label string
	// Placeholder is an IP-like identifier the appliance uses for a device it knows no address
	// of, e.g. "10.0.0.#36859" (C-sensor and unresolved devices). Never a valid IP.
	Placeholder string
}

// Endpoint is the destination taken from a breach's triggered filters.
type Endpoint struct {
	IP       string
	Host     string
	Port     int
	Protocol string // transport protocol name: TCP, UDP, ICMP, ...
	App      string // application protocol (the "Application protocol" filter), e.g. HTTPS
}

// Action describes an Antigena (RESPOND) action and its state.
type Action struct {
	Type      string // quarantine, connection, pol, ...
	Label     string
	State     string // pending | active | expired | cleared
	Manual    bool
	Expires   time.Time
	Triggerer string
	PBID      int64
}
