// Package ocsf maps Darktrace alerts to Open Cybersecurity Schema Framework (OCSF) events,
// version 1.3.0, and writes them as one compact JSON object per alert.
//
// Classes: a model breach and an AI Analyst incident event are each a Detection Finding
// (class_uid 2004); an Antigena action state is a Remediation Activity (class_uid 7001). The
// README section "OCSF" has the field-by-field mapping; the rules live next to the code that
// applies them (build.go).
//
// The package is stateless: what an event says (Create or Update, the remediation's step) is
// decided from the record alone, so the same record gives the same event after a restart and
// on every transport. Build returns the event as a Go value, Event as a map for callers that
// carry structured bodies (OTLP), Append the JSON line within a byte limit.
package ocsf

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	"github.com/dtforward/dtforward/alert"
)

// Version is the OCSF schema version the events follow (metadata.version). 1.3.0 is the first
// release with the Remediation category (class 7001, which Antigena actions map to) and is the
// version the schema in testdata/ocsf is taken from.
const Version = "1.3.0"

// Event returns the OCSF event for a as a JSON-shaped map (map[string]any, []any, string,
// int64, float64, bool), without a size limit. It is Build followed by ToMap.
func Event(a *alert.Alert) (map[string]any, error) {
	e, err := Build(a, "")
	if err != nil {
		return nil, err
	}
	return ToMap(e)
}

// ToMap converts an event to its JSON-shaped map: integers stay int64, other numbers float64.
func ToMap(e *Record) (map[string]any, error) {
	b, err := marshal(nil, e)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return numbers(m).(map[string]any), nil
}

// numbers replaces the json.Number values of a decoded tree by int64 or float64.
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// marshal appends e as compact JSON. HTML characters stay as they are: the line is not HTML,
// and \u003c in a model name would only hinder searching.
func marshal(dst []byte, e *Record) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return dst, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode ends with '\n'
}

// round6 rounds a score to 6 decimals so that float artefacts of scaling (0.027999999999999997)
// stay out of the output; NaN and infinities (which JSON cannot carry) become 0.
func round6(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	r := math.Round(f*1e6) / 1e6
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return f
	}
	return r
}
