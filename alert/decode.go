package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dtforward/dtforward/darktrace"
)

// Sources accepted by Decode: darktrace's source table names.
const (
	SourceBreaches  = darktrace.SourceBreaches
	SourceAntigena  = darktrace.SourceAntigena
	SourceAIAnalyst = darktrace.SourceAIAnalyst
)

// Decode converts one API record given as JSON. source is SourceBreaches, SourceAntigena,
// SourceAIAnalyst, or "" to recognise the record by its id key (pbid, codeid, or id with
// createdAt). The returned Alert keeps raw as its Raw field.
func Decode(source string, raw []byte, appliance, host string) (*Alert, error) {
	return DecodeReporting(source, raw, appliance, host, nil)
}

// ErrUnknownSource is returned by Decode when source is "" and the record's keys do not say
// what it is.
var ErrUnknownSource = errors.New("cannot tell the record type (no pbid, codeid or id key)")

// DecodeReporting is Decode with the tolerant decoders' anomalies (values of an unexpected
// type, which cost only that value) passed to anomalies (may be nil).
func DecodeReporting(source string, raw []byte, appliance, host string, anomalies darktrace.AnomalyFunc) (*Alert, error) {
	if source == "" {
		source = DetectSource(raw)
		if source == "" {
			return nil, ErrUnknownSource
		}
	}
	src, err := darktrace.SourceNamed(source)
	if err != nil {
		return nil, err
	}
	rec, err := src.Decode(raw, anomalies)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Noun, err)
	}
	return FromRecord(rec, raw, appliance, host)
}

// FromRecord converts a record decoded by the darktrace source table.
func FromRecord(rec darktrace.Record, raw []byte, appliance, host string) (*Alert, error) {
	switch r := rec.(type) {
	case *darktrace.Breach:
		return FromBreach(r, raw, appliance, host)
	case *darktrace.Action:
		return FromAction(r, raw, appliance, host)
	case *darktrace.IncidentEvent:
		return FromIncident(r, raw, appliance, host)
	}
	return nil, fmt.Errorf("no conversion for %T", rec)
}

// Sources lists the source names Decode accepts.
func Sources() []string { return darktrace.SourceNames() }

// DetectSource names the source of a JSON object by its keys, "" when it cannot tell.
func DetectSource(raw []byte) string {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return ""
	}
	_, pbid := probe["pbid"]
	_, model := probe["model"]
	_, codeid := probe["codeid"]
	_, id := probe["id"]
	_, created := probe["createdAt"]
	switch {
	case codeid:
		return SourceAntigena
	case pbid && (model || !id):
		return SourceBreaches
	case id && (created || bytes.Contains(raw, []byte(`"summariser"`))):
		return SourceAIAnalyst
	}
	return ""
}

// RecordID extracts a record's id for error messages about records that could not be
// converted: pbid, codeid or id, whichever is present, "?" when none is.
func RecordID(raw []byte) string {
	if id := darktrace.RecordID(raw); id != "" {
		return clean(id)
	}
	return "?"
}
