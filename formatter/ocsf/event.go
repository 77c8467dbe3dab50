package ocsf

// The types below are the OCSF 1.3.0 attributes this package writes, nothing more. Field names
// are the schema's; "omitempty" marks the attributes the schema does not require, so an absent
// value is left out rather than written as "" or 0. Required integers (activity_id,
// severity_id, type_id, ...) never carry omitempty: 0 is a defined "Unknown" there.

// Record is one OCSF event: a Detection Finding (class 2004) for model breaches and AI Analyst
// events, a Remediation Activity (class 7001) for Antigena actions. Finding-only and
// remediation-only attributes are nil or empty for the other class.
type Record struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name,omitempty"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name,omitempty"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name,omitempty"`
	TypeUID      int64  `json:"type_uid"`
	TypeName     string `json:"type_name,omitempty"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity,omitempty"`
	// Time is the event time in Unix milliseconds (timestamp_t): when the finding was created,
	// or when the change this event reports happened.
	Time      int64 `json:"time"`
	StartTime int64 `json:"start_time,omitempty"`
	EndTime   int64 `json:"end_time,omitempty"`

	StatusID     int    `json:"status_id"`
	Status       string `json:"status,omitempty"`
	StatusDetail string `json:"status_detail,omitempty"`
	Message      string `json:"message,omitempty"`

	Metadata Metadata `json:"metadata"`

	// Detection Finding.
	FindingInfo *FindingInfo `json:"finding_info,omitempty"`
	RiskScore   *int         `json:"risk_score,omitempty"`
	RiskLevelID *int         `json:"risk_level_id,omitempty"`
	RiskLevel   string       `json:"risk_level,omitempty"`
	Evidences   []Evidence   `json:"evidences,omitempty"`

	// Remediation Activity.
	CommandUID      string    `json:"command_uid,omitempty"`
	Countermeasures []D3FEND  `json:"countermeasures,omitempty"`
	Actor           *Actor    `json:"actor,omitempty"`
	Device          *Device   `json:"device,omitempty"`
	Unmapped        *Unmapped `json:"unmapped,omitempty"`
}

// Metadata is the OCSF metadata object.
type Metadata struct {
	Version        string   `json:"version"`
	Product        Product  `json:"product"`
	UID            string   `json:"uid,omitempty"`
	CorrelationUID string   `json:"correlation_uid,omitempty"`
	LogName        string   `json:"log_name,omitempty"`
	LogProvider    string   `json:"log_provider,omitempty"`
	Labels         []string `json:"labels,omitempty"`
}

// Product is the OCSF product object.
type Product struct {
	Name       string   `json:"name"`
	VendorName string   `json:"vendor_name"`
	Version    string   `json:"version,omitempty"`
	Feature    *Feature `json:"feature,omitempty"`
}

// Feature is the OCSF feature object: the Darktrace capability that produced the record.
type Feature struct {
	Name string `json:"name"`
}

// FindingInfo is the OCSF finding_info object.
type FindingInfo struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Desc          string         `json:"desc,omitempty"`
	Types         []string       `json:"types,omitempty"`
	Analytic      *Analytic      `json:"analytic,omitempty"`
	Attacks       []Attack       `json:"attacks,omitempty"`
	SrcURL        string         `json:"src_url,omitempty"`
	CreatedTime   int64          `json:"created_time,omitempty"`
	FirstSeenTime int64          `json:"first_seen_time,omitempty"`
	LastSeenTime  int64          `json:"last_seen_time,omitempty"`
	ModifiedTime  int64          `json:"modified_time,omitempty"`
	ProductUID    string         `json:"product_uid,omitempty"`
	RelatedEvents []RelatedEvent `json:"related_events,omitempty"`
}

// Analytic is the OCSF analytic object (the Darktrace model or AI Analyst summariser).
type Analytic struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type,omitempty"`
}

// Attack is the OCSF attack (MITRE ATT&CK) object. Darktrace lists a model's tactics and
// techniques without saying which tactic a technique serves, so each attack carries either a
// technique (with its sub-technique) or a tactic, never an invented pairing.
type Attack struct {
	Technique    *Entity `json:"technique,omitempty"`
	SubTechnique *Entity `json:"sub_technique,omitempty"`
	Tactic       *Entity `json:"tactic,omitempty"`
}

// Entity is the uid/name shape of the tactic, technique, sub_technique, d3f_tactic and
// d3f_technique objects.
type Entity struct {
	UID    string `json:"uid,omitempty"`
	Name   string `json:"name,omitempty"`
	SrcURL string `json:"src_url,omitempty"`
}

// RelatedEvent is the OCSF related_event object: an AI Analyst event names the model breaches
// it was built from.
type RelatedEvent struct {
	UID      string `json:"uid"`
	TypeUID  int64  `json:"type_uid,omitempty"`
	TypeName string `json:"type_name,omitempty"`
}

// Device is the OCSF device object.
type Device struct {
	UID      string `json:"uid,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Name     string `json:"name,omitempty"`
	IP       string `json:"ip,omitempty"`
	MAC      string `json:"mac,omitempty"`
	TypeID   int    `json:"type_id"`
	Type     string `json:"type,omitempty"`
}

// Evidence is one OCSF evidences object: what one triggered model component matched (the
// destination), or one device an AI Analyst event involves.
type Evidence struct {
	DstEndpoint *NetworkEndpoint `json:"dst_endpoint,omitempty"`
	Device      *Device          `json:"device,omitempty"`
	Data        map[string]any   `json:"data,omitempty"`
}

// NetworkEndpoint is the OCSF network_endpoint object.
type NetworkEndpoint struct {
	IP       string `json:"ip,omitempty"`
	Port     int    `json:"port,omitempty"`
	Hostname string `json:"hostname,omitempty"`
	Name     string `json:"name,omitempty"`
	SvcName  string `json:"svc_name,omitempty"`
}

// D3FEND is the OCSF d3fend object (a countermeasure of a Remediation Activity).
type D3FEND struct {
	Tactic    *Entity `json:"d3f_tactic,omitempty"`
	Technique *Entity `json:"d3f_technique,omitempty"`
}

// Actor is the OCSF actor object: who started a manual Antigena action.
type Actor struct {
	User *User `json:"user,omitempty"`
}

// User is the OCSF user object.
type User struct {
	Name string `json:"name"`
}

// Unmapped carries what OCSF has no attribute for: Darktrace's own values under "darktrace",
// dtforward's under "dtforward" (version, and the trimming marker).
type Unmapped struct {
	Darktrace map[string]any `json:"darktrace,omitempty"`
	DTForward *DTForward     `json:"dtforward,omitempty"`
}

// DTForward is dtforward's part of unmapped.
type DTForward struct {
	Version       string `json:"version,omitempty"`
	Trimmed       bool   `json:"trimmed,omitempty"`
	TrimmedFields string `json:"trimmed_fields,omitempty"`
}
