package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dtforward/dtforward/darktrace"
)

// Sources accepted by Decode, named like the API endpoints (and POLL_SOURCES).
const (
	SourceBreaches  = "modelbreaches"
	SourceAntigena  = "antigena"
	SourceAIAnalyst = "aianalyst"
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
	switch source {
	case SourceBreaches:
		b, err := darktrace.DecodeBreach(raw, anomalies)
		if err != nil {
			return nil, fmt.Errorf("model breach: %w", err)
		}
		return FromBreach(&b, raw, appliance, host)
	case SourceAntigena:
		a, err := darktrace.DecodeAction(raw, anomalies)
		if err != nil {
			return nil, fmt.Errorf("antigena action: %w", err)
		}
		return FromAction(&a, raw, appliance, host)
	case SourceAIAnalyst:
		e, err := darktrace.DecodeIncidentEvent(raw, anomalies)
		if err != nil {
			return nil, fmt.Errorf("ai analyst incident event: %w", err)
		}
		return FromIncident(&e, raw, appliance, host)
	}
	return nil, fmt.Errorf("unknown source %q (valid: %s)", source, strings.Join(Sources(), ", "))
}

// Sources lists the source names Decode accepts.
func Sources() []string { return []string{SourceBreaches, SourceAntigena, SourceAIAnalyst} }

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
	var probe struct {
		PBID   json.RawMessage `json:"pbid"`
		CodeID json.RawMessage `json:"codeid"`
		ID     json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(raw, &probe)
	for _, v := range []json.RawMessage{probe.PBID, probe.CodeID, probe.ID} {
		if len(v) > 0 && len(v) < 80 {
			return clean(strings.Trim(string(v), `"`))
		}
	}
	return "?"
}
