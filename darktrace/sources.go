package darktrace

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// This file is the one table of record sources: everything that differs between
// /modelbreaches, /antigena and /aianalyst/incidentevents (name, query, decoder, id and version
// key) is an entry here. Configuration checks, the poller, backfill, alert conversion and the
// demo all read it, so adding a source is adding one entry (and its alert conversion).

// Source names, as used in POLL_SOURCES, state files, logs, metric labels and anomalies.
const (
	SourceBreaches  = "modelbreaches"
	SourceAntigena  = "antigena"
	SourceAIAnalyst = "aianalyst"
)

// Record is a decoded record of any source, as the poller and backfill see it.
type Record interface {
	// RecordKey identifies the record across polls: pbid, codeid or incident event id.
	RecordKey() string
	// RecordVersion changes when a record with the same key must be sent again: empty for
	// breaches, the action state for Antigena, score/group/acknowledged for AI Analyst events.
	RecordVersion() string
	// RecordTime orders records and ages their key out of the checkpoint (epoch ms): breach
	// creationTime, action update time, incident event createdAt.
	RecordTime() int64
	// RecordAcked is the record's acknowledged flag.
	RecordAcked() bool
}

// Query are the parameters of one request to a source.
type Query struct {
	Start, End int64 // the window, both inclusive, epoch ms
	// Range asks a source without a live window (/antigena) for [Start, End] too: backfill
	// walks a time range, the live poll reads what is current.
	Range bool
	// HideSuppressed sends includesuppressed=false (breaches): FILTER_INCLUDE_SUPPRESSED=false.
	// It is the one filter applied at the query, because a breach record does not say whether
	// it is suppressed; every other filter (score, acknowledgement, model, tag) applies after
	// decoding, so that a pbid missing from a window is one the appliance did not return.
	HideSuppressed bool
}

// Source is one record source: one API endpoint and what its records are.
type Source struct {
	Name string // POLL_SOURCES name
	Noun string // what one record is called in messages
	// IDKey is the JSON key of a record's id.
	IDKey string
	// Unchanging reports that a record never changes under its id (its version is empty), so
	// the id alone says whether it was delivered (PeekID).
	Unchanging bool
	// Windowed reports whether the live poll reads a time window. /antigena is not: it
	// returns the actions currently relevant, and state changes are found by comparing versions.
	Windowed bool
	query    func(q Query) string
	decode   func(raw []byte, anomalies AnomalyFunc) (Record, error)
}

// Path returns the path and query for q, with the parameters in the fixed order the signature
// is computed over (the appliance signs the query exactly as sent).
func (s *Source) Path(q Query) string { return s.query(q) }

// Decode decodes one record tolerantly (see scanner): only input that is not a JSON object is
// an error. Values of an unexpected type are passed to anomalies (may be nil).
func (s *Source) Decode(raw []byte, anomalies AnomalyFunc) (Record, error) {
	return s.decode(raw, anomalies)
}

func window(q Query) string {
	return "starttime=" + strconv.FormatInt(q.Start, 10) + "&endtime=" + strconv.FormatInt(q.End, 10)
}

// Sources lists every source in the order they are documented.
var Sources = []*Source{
	{
		Name: SourceBreaches, Noun: "model breach", IDKey: "pbid", Windowed: true, Unchanging: true,
		// creationtime=true windows on creation, so a breach whose activity began long before it
		// was created is still caught. Never group=device: it replaces the breach score with the
		// device score. Everything is asked for and filtered after decoding (Darktrace's advice for
		// forwarders): acknowledged breaches always (one acknowledged within a poll interval
		// would otherwise never be seen), suppressed ones unless the user hides them, and never
		// minscore, so a breach below FILTER_MIN_SCORE still fills its pbid and is not mistaken
		// for a missing one.
		query: func(q Query) string {
			return "/modelbreaches?" + window(q) +
				"&creationtime=true&includeacknowledged=true&includesuppressed=" + strconv.FormatBool(!q.HideSuppressed) +
				"&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true"
		},
		decode: func(raw []byte, anomalies AnomalyFunc) (Record, error) {
			b, err := DecodeBreach(raw, anomalies)
			return &b, err
		},
	},
	{
		Name: SourceAntigena, Noun: "antigena action", IDKey: "codeid",
		query: func(q Query) string {
			p := "/antigena?includecleared=true&includehistory=true"
			if q.Range {
				// The appliance filters these on the action's start.
				p += "&" + window(q)
			}
			return p
		},
		decode: func(raw []byte, anomalies AnomalyFunc) (Record, error) {
			a, err := DecodeAction(raw, anomalies)
			return &a, err
		},
	},
	{
		Name: SourceAIAnalyst, Noun: "ai analyst incident event", IDKey: "id", Windowed: true,
		query: func(q Query) string {
			return "/aianalyst/incidentevents?" + window(q) +
				"&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true"
		},
		decode: func(raw []byte, anomalies AnomalyFunc) (Record, error) {
			e, err := DecodeIncidentEvent(raw, anomalies)
			return &e, err
		},
	},
}

// SourceNamed returns the source called name.
func SourceNamed(name string) (*Source, error) {
	for _, s := range Sources {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown source %q (valid: %s)", name, strings.Join(SourceNames(), ", "))
}

// SourceNames returns the source names in the documented order.
func SourceNames() []string {
	out := make([]string, len(Sources))
	for i, s := range Sources {
		out[i] = s.Name
	}
	return out
}

// PBIDPath returns the path and query that fetch one breach by pbid. The appliance answers with
// one object, or {} when there is no such breach or the query's filters hide it: an
// acknowledged or suppressed breach is found only with includeacknowledged and
// includesuppressed, so both are always sent (whether it is forwarded is decided later, by the
// same filters as a window's records).
func PBIDPath(pbid int64) string {
	return "/modelbreaches?pbid=" + strconv.FormatInt(pbid, 10) +
		"&includeacknowledged=true&includesuppressed=true&minimal=false&deviceattop=true&historicmodelonly=true"
}

// RecordKey implements Record: the pbid.
func (b *Breach) RecordKey() string { return strconv.FormatInt(b.PBID, 10) }

// RecordVersion implements Record: a breach does not change once created.
func (b *Breach) RecordVersion() string { return "" }

// RecordTime implements Record: the creation time.
func (b *Breach) RecordTime() int64 { return b.Created() }

// RecordAcked implements Record.
func (b *Breach) RecordAcked() bool { return b.Acknowledged.Acked }

// RecordKey implements Record: the codeid.
func (a *Action) RecordKey() string { return strconv.FormatInt(a.CodeID, 10) }

// RecordVersion implements Record: updated, active, cleared and expires (an extension moves
// it, and a line per extension is what the SOC wants to see).
func (a *Action) RecordVersion() string {
	return ActionVersion{Updated: a.Updated.Int64(), Active: a.Active, Cleared: a.Cleared, Expires: a.Expires}.String()
}

// RecordTime implements Record: the update time, else the start.
func (a *Action) RecordTime() int64 {
	if t := a.Updated.Int64(); t != 0 {
		return t
	}
	return a.Start
}

// RecordAcked implements Record: actions are not acknowledged.
func (a *Action) RecordAcked() bool { return false }

// RecordKey implements Record: the event id.
func (e *IncidentEvent) RecordKey() string { return e.ID }

// RecordVersion implements Record: the fingerprint of what makes an incident event worth
// sending again: its group score, its own score, its group (groups merge) and its
// acknowledgement. A 64-bit hash keeps the remembered versions of a day of events small.
func (e *IncidentEvent) RecordVersion() string {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatFloat(e.GroupScore.Float64(), 'g', -1, 64) + "/" +
		strconv.FormatFloat(e.AIAScore.Float64(), 'g', -1, 64) + "/" + e.CurrentGroup + "/" +
		strconv.FormatBool(e.Acknowledged)))
	return strconv.FormatUint(h.Sum64(), 16)
}

// RecordTime implements Record: createdAt.
func (e *IncidentEvent) RecordTime() int64 { return e.CreatedAt }

// RecordAcked implements Record.
func (e *IncidentEvent) RecordAcked() bool { return e.Acknowledged }

// ActionVersion is the parsed RecordVersion of an Antigena action.
type ActionVersion struct {
	Updated, Expires int64
	Active, Cleared  bool
}

// String is the version as RecordVersion writes it.
func (v ActionVersion) String() string {
	return strconv.FormatInt(v.Updated, 10) + "/" + strconv.FormatBool(v.Active) + "/" +
		strconv.FormatBool(v.Cleared) + "/" + strconv.FormatInt(v.Expires, 10)
}

// ParseActionVersion reads a version written by String.
func ParseActionVersion(s string) (ActionVersion, bool) {
	f := strings.Split(s, "/")
	if len(f) != 4 {
		return ActionVersion{}, false
	}
	var v ActionVersion
	var e1, e2, e3, e4 error
	v.Updated, e1 = strconv.ParseInt(f[0], 10, 64)
	v.Active, e2 = strconv.ParseBool(f[1])
	v.Cleared, e3 = strconv.ParseBool(f[2])
	v.Expires, e4 = strconv.ParseInt(f[3], 10, 64)
	return v, errors.Join(e1, e2, e3, e4) == nil
}

// Final reports whether the state was the action's last: cleared, or already expired when the
// action went missing at since.
func (v ActionVersion) Final(since int64) bool {
	return v.Cleared || (v.Expires > 0 && v.Expires <= since)
}
