package darktrace

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dtforward/dtforward/internal/testutil/shapes"
)

// decodeBoth decodes raw as source with the tolerant decoder and with encoding/json into the
// same type. fast is nil when the tolerant decoder failed; std is nil when encoding/json did.
func decodeBoth(t testing.TB, source string, raw []byte, anomalies AnomalyFunc) (fast, std any, id string) {
	t.Helper()
	switch source {
	case SourceBreaches:
		b, err := DecodeBreach(raw, anomalies)
		if err == nil {
			fast, id = &b, strconv.FormatInt(b.PBID, 10)
		}
		var s Breach
		if json.Unmarshal(raw, &s) == nil {
			std = &s
		}
	case SourceAntigena:
		a, err := DecodeAction(raw, anomalies)
		if err == nil {
			fast, id = &a, strconv.FormatInt(a.CodeID, 10)
		}
		var s Action
		if json.Unmarshal(raw, &s) == nil {
			std = &s
		}
	case SourceAIAnalyst:
		e, err := DecodeIncidentEvent(raw, anomalies)
		if err == nil {
			fast, id = &e, e.ID
		}
		var s IncidentEvent
		if json.Unmarshal(raw, &s) == nil {
			std = &s
		}
	default:
		t.Fatalf("unknown source %q", source)
	}
	return fast, std, id
}

func corpus(t testing.TB, source string) [][]byte {
	t.Helper()
	recs, err := shapes.Corpus(source)
	if err != nil || len(recs) == 0 {
		t.Fatalf("corpus %s: %d records, %v", source, len(recs), err)
	}
	return recs
}

func sourceIDOf(t testing.TB, source string, raw []byte) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return strings.Trim(string(m[shapes.Keys[source]]), `"`)
}

// TestDecodeMatchesEncodingJSON: on every corpus record that encoding/json can decode into the
// record types, the tolerant decoder gives exactly the same value; the records it cannot
// decode (a string where a number belongs...) the tolerant decoder still decodes, id intact.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, source := range []string{SourceBreaches, SourceAntigena, SourceAIAnalyst} {
		compared := 0
		for i, raw := range corpus(t, source) {
			fast, std, id := decodeBoth(t, source, raw, nil)
			if fast == nil {
				t.Fatalf("%s record %d: tolerant decoder failed", source, i+1)
			}
			if want := sourceIDOf(t, source, raw); id != want {
				t.Errorf("%s record %d: id %q, want %q", source, i+1, id, want)
			}
			if std == nil {
				continue
			}
			compared++
			if !reflect.DeepEqual(fast, std) {
				t.Errorf("%s record %d differs from encoding/json:\nfast %+v\nstd  %+v", source, i+1, fast, std)
			}
		}
		if compared < 5 {
			t.Errorf("%s: only %d records compared with encoding/json", source, compared)
		}
	}
	// The benchmark records too (deep logic trees, hostile strings).
	for i := range 20 {
		raw := benchBreach(i, false, 0)
		fast, std, _ := decodeBoth(t, SourceBreaches, raw, nil)
		if std == nil || !reflect.DeepEqual(fast, std) {
			t.Fatalf("bench record %d: fast %+v\nstd %+v", i, fast, std)
		}
	}
}

// TestDecodeMutations replaces each value of each corpus record (except the id) with every
// JSON type and removes it: the record always decodes with its id, and wherever encoding/json
// also accepts the variant, both agree.
func TestDecodeMutations(t *testing.T) {
	for _, source := range []string{SourceBreaches, SourceAntigena, SourceAIAnalyst} {
		variants, compared := 0, 0
		for i, raw := range corpus(t, source) {
			want := sourceIDOf(t, source, raw)
			err := shapes.Mutate(raw, shapes.Keys[source], shapes.PerPath[source], func(path string, v []byte) {
				variants++
				if !json.Valid(v) {
					t.Fatalf("%s mutated: variant is not valid JSON: %s", path, v)
				}
				fast, std, id := decodeBoth(t, source, v, nil)
				if fast == nil || id != want {
					t.Fatalf("%s record %d, %s mutated: decoded %v with id %q, want id %q\n%s", source, i+1, path, fast != nil, id, want, v)
				}
				if std != nil {
					compared++
					if !reflect.DeepEqual(fast, std) {
						t.Fatalf("%s record %d, %s mutated: differs from encoding/json:\nfast %+v\nstd  %+v\n%s", source, i+1, path, fast, std, v)
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d variants, %d also decoded by encoding/json and equal", source, variants, compared)
		if variants < shapes.MinVariants || compared < variants/5 {
			t.Errorf("%s: %d variants, %d compared: too few", source, variants, compared)
		}
	}
}

// TestDecodeAnomalies: each value of an unexpected type is reported once per record, with the
// field's path and the record id; documented shapes (ack object, string groupScore) are not.
func TestDecodeAnomalies(t *testing.T) {
	tests := []struct {
		source, in string
		want       []string
	}{
		{SourceBreaches, `{"pbid":7,"acknowledged":{"time":5,"username":"u"},"score":"0.5","model":{"name":"m","priority":4,"pid":1},"device":{"did":7,"ip":"10.0.0.#3","devicelabel":"lab"}}`, nil},
		{SourceBreaches, `{"pbid":"7","time":"1","model":{"priority":{"x":1},"tags":"a"},"device":[1],"commentCount":true,"mitreTechniques":{}}`,
			[]string{"pbid", "time", "model.priority", "model.tags", "device", "commentCount", "mitreTechniques[]"}},
		{SourceBreaches, `{"pbid":8,"triggeredComponents":[{"size":true,"triggeredFilters":[{"trigger":{"value":{"a":1}}},{"trigger":{"value":[1]}}]}]}`,
			[]string{"triggeredComponents[].size", "triggeredComponents[].triggeredFilters[].trigger.value"}},
		{SourceAntigena, `{"codeid":3,"updated":"17","triggerer":"bob","active":"true","history":[{"time":"x"}]}`, []string{"triggerer", "active", "history[].time"}},
		{SourceAIAnalyst, `{"id":"e1","groupScore":"72.5","acknowledged":{"time":1},"attackPhases":["5"],"breachDevices":[{"did":null,"ip":5}]}`,
			[]string{"acknowledged", "attackPhases", "breachDevices[].ip"}},
	}
	for _, tc := range tests {
		var got []string
		fast, _, id := decodeBoth(t, tc.source, []byte(tc.in), func(a Anomaly) {
			if a.Source != tc.source || a.ID == "" {
				t.Errorf("anomaly %+v: want source %s and the record id", a, tc.source)
			}
			got = append(got, a.Field)
		})
		if fast == nil || id == "" {
			t.Fatalf("%s: not decoded", tc.in)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s:\nanomalies %q\nwant      %q", tc.in, got, tc.want)
		}
	}
}

// TestDecodeTolerantValues: what is read from values of an unexpected type.
func TestDecodeTolerantValues(t *testing.T) {
	b, err := DecodeBreach([]byte(`{"pbid":"95","time":1.7e12,"score":"0.5","commentCount":"3",
		"acknowledged":{"time":1657678365000,"username":"user@company"},
		"model":{"name":5,"pid":"762","priority":"4","tags":["a",1,null]},
		"device":{"did":7,"ip":"10.0.0.#36859","hostname":true,"devicelabel":"Printer 2"}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Breach{PBID: 95, Time: 1.7e12, Score: 0.5, CommentCount: 3,
		Acknowledged: Acknowledgement{Acked: true, Time: 1657678365000, Username: "user@company"},
		Device:       Device{DID: 7, IP: "10.0.0.#36859", Hostname: "true", DeviceLabel: "Printer 2"}}
	want.Model.Name, want.Model.PID, want.Model.Priority, want.Model.Tags = "5", 762, new(4), []string{"a", "1", ""}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("got  %+v\nwant %+v", b, want)
	}
	for _, in := range []string{`[]`, `"x"`, `{"pbid":1,`, ``, `{"pbid" 1}`} {
		if _, err := DecodeBreach([]byte(in), nil); err == nil {
			t.Errorf("DecodeBreach(%q): no error", in)
		}
	}
}

// FuzzDecode: on any input, the tolerant decoders do not panic; on a JSON object they succeed;
// wherever encoding/json decodes the input into the record type, they agree with it.
func FuzzDecode(f *testing.F) {
	for _, source := range []string{SourceBreaches, SourceAntigena, SourceAIAnalyst} {
		for _, raw := range corpus(f, source) {
			f.Add(source, raw)
		}
	}
	f.Add(SourceBreaches, []byte(`{"pbid":1,"model":{"name":"\ud800\udc00 \ud800 \u00e9","then":null},"PBID":2,"pbid":3}`))
	f.Add(SourceBreaches, []byte("{\"pbid\":1,\"device\":{\"hostname\":\"\xff\xfe ok \xed\xa0\x80\"}}"))
	f.Add(SourceAntigena, []byte(`{"codeid":1,"triggerer":{"username":"a"},"triggerer":null}`))
	f.Fuzz(func(t *testing.T, source string, raw []byte) {
		switch source {
		case SourceBreaches, SourceAntigena, SourceAIAnalyst:
		default:
			return
		}
		fast, std, _ := decodeBoth(t, source, raw, func(Anomaly) {})
		var obj map[string]json.RawMessage
		if fast == nil && json.Unmarshal(raw, &obj) == nil {
			t.Fatalf("a valid JSON object did not decode: %q", raw)
		}
		if std != nil && fast != nil && !reflect.DeepEqual(fast, std) {
			t.Fatalf("differs from encoding/json on %q:\nfast %+v\nstd  %+v", raw, fast, std)
		}
	})
}
