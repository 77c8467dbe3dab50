package formatter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/testutil/shapes"
	"github.com/dtforward/dtforward/simulator"
)

// ocsfSchema compiles the OCSF 1.3.0 JSON Schema vendored in testdata/ocsf.
func ocsfSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "testdata", "ocsf", "ocsf-1.3.0.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compiling the OCSF schema: %v", err)
	}
	return sch
}

// ocsfCheck formats a with f and checks that it gives exactly one line, valid against the
// schema, of the class its kind maps to, naming the record's id.
func ocsfCheck(t testing.TB, sch *jsonschema.Schema, f formatter.Formatter, a *alert.Alert, what string) []byte {
	t.Helper()
	line, err := f.Append(nil, a)
	if err != nil {
		t.Fatalf("%s: alert %s %s: %v", what, a.Kind, a.ID, err)
	}
	if bytes.ContainsAny(line, "\r\n") || len(line) == 0 {
		t.Fatalf("%s: alert %s %s: not one line: %q", what, a.Kind, a.ID, line)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		t.Fatalf("%s: alert %s %s: not JSON: %v\n%s", what, a.Kind, a.ID, err, line)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s: alert %s %s: not valid OCSF 1.3.0: %v\n%s", what, a.Kind, a.ID, err, line)
	}
	var ev struct {
		ClassUID    int `json:"class_uid"`
		FindingInfo struct {
			UID string `json:"uid"`
		} `json:"finding_info"`
		CommandUID string `json:"command_uid"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	wantClass, uid := 2004, ev.FindingInfo.UID
	if a.Kind == alert.KindAntigena {
		wantClass, uid = 7001, ev.CommandUID
	}
	if ev.ClassUID != wantClass || !strings.HasSuffix(uid, ":"+a.ID) {
		t.Fatalf("%s: alert %s %s: class %d uid %q, want class %d and a uid ending in the id", what, a.Kind, a.ID, ev.ClassUID, uid, wantClass)
	}
	return line
}

// ocsfFormatters are the line limits every record is checked at: none, the default, and the
// smallest accepted (where most hostile records are trimmed).
func ocsfFormatters(t testing.TB) map[string]formatter.Formatter {
	out := map[string]formatter.Formatter{}
	for _, max := range []int{0, 8192, formatter.MinMaxBytes} {
		f, err := formatter.New("ocsf", formatter.Options{Version: "test", MaxBytes: max})
		if err != nil {
			t.Fatal(err)
		}
		out["max "+strconv.Itoa(max)] = f
	}
	return out
}

// oddShapeAlerts are the records a simulator serves with OddFraction set (acknowledgement
// objects, label-only devices, placeholder IPs, literal \n, absent optional fields, numeric
// "updated"), fetched over HTTP and converted the way the poller does.
func oddShapeAlerts(t *testing.T) []*alert.Alert {
	t.Helper()
	now := time.Now()
	sim, err := simulator.New(simulator.Options{PublicToken: "pub", PrivateToken: "priv", Seed: 29,
		History: 2 * time.Hour, HistoryCount: 200, AckFraction: 0.3, OddFraction: 0.5, HostileFraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.AddActions(20)
	sim.AdvanceActions()
	sim.AddIncidentEvents(20)
	url, err := sim.Start("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := darktrace.New(darktrace.Config{URL: url, PublicToken: "pub", PrivateToken: "priv", AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	win := fmt.Sprintf("starttime=%d&endtime=%d", now.Add(-3*time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli())
	var as []*alert.Alert
	for source, q := range map[string]string{
		alert.SourceBreaches: "/modelbreaches?" + win + "&creationtime=true&includeacknowledged=true&includesuppressed=true" +
			"&minimal=false&deviceattop=true&historicmodelonly=true&includebreachurl=true",
		alert.SourceAntigena:  "/antigena?includecleared=true&includehistory=true",
		alert.SourceAIAnalyst: "/aianalyst/incidentevents?" + win + "&includeacknowledged=true&includeallpinned=false&includeincidenteventurl=true",
	} {
		n := 0
		err := c.Stream(context.Background(), q, func(raw []byte) error {
			a, err := alert.Decode(source, bytes.Clone(raw), "sim", c.Host())
			if err != nil {
				return fmt.Errorf("%s record %s: %w", source, alert.RecordID(raw), err)
			}
			as = append(as, a)
			n++
			return nil
		})
		if err != nil || n == 0 {
			t.Fatalf("%s: %d records, %v", source, n, err)
		}
	}
	return as
}

// TestOCSFEveryRecordIsOneValidEvent: every simulator record (half of them hostile), every
// odd-shaped record the simulator serves, every golden and public-shape record, formatted at
// no limit, the default limit and the smallest one, is exactly one event valid against the
// OCSF 1.3.0 schema, of its class, with its id.
func TestOCSFEveryRecordIsOneValidEvent(t *testing.T) {
	sch := ocsfSchema(t)
	fs := ocsfFormatters(t)
	sets := map[string][]*alert.Alert{
		"simulator": simulatorAlerts(t),
		"odd shape": oddShapeAlerts(t),
	}
	for _, c := range loadGolden(t) {
		sets["golden"] = append(sets["golden"], c.alerts...)
	}
	for _, source := range alert.Sources() {
		recs, err := shapes.Corpus(source)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range recs {
			a, err := alert.Decode(source, raw, "dt", "dt.example.com")
			if err != nil {
				t.Fatalf("%s corpus record %s: %v", source, alert.RecordID(raw), err)
			}
			sets["public shape"] = append(sets["public shape"], a)
		}
	}
	trimmed := 0
	for set, as := range sets {
		kinds := map[string]int{}
		for _, a := range as {
			kinds[a.Kind]++
			for lim, f := range fs {
				line := ocsfCheck(t, sch, f, a, set+", "+lim)
				if bytes.Contains(line, []byte(`"trimmed":true`)) {
					trimmed++
				}
			}
		}
		t.Logf("%s: %d records %v", set, len(as), kinds)
		if kinds[alert.KindBreach] == 0 || kinds[alert.KindAntigena] == 0 || kinds[alert.KindAIAnalyst] == 0 {
			t.Errorf("%s: not every kind checked: %v", set, kinds)
		}
	}
	if trimmed == 0 {
		t.Error("no line was trimmed: the size limit path went unchecked")
	}
	t.Logf("%d lines trimmed", trimmed)
}

// TestOCSFMutationsStayValid: thousands of variants of each public-shape record, each with one
// value replaced by another JSON type or removed, still give one valid event with the id.
func TestOCSFMutationsStayValid(t *testing.T) {
	sch := ocsfSchema(t)
	f, err := formatter.New("ocsf", formatter.Options{Version: "test", MaxBytes: 8192})
	if err != nil {
		t.Fatal(err)
	}
	for _, source := range alert.Sources() {
		recs, err := shapes.Corpus(source)
		if err != nil {
			t.Fatal(err)
		}
		variants := 0
		for _, raw := range recs {
			err := shapes.Mutate(raw, shapes.Keys[source], shapes.PerPath[source], func(path string, v []byte) {
				variants++
				a, err := alert.DecodeReporting(source, v, "dt", "dt.example.com", func(darktrace.Anomaly) {})
				if err != nil {
					t.Fatalf("%s, %s mutated: %v\n%s", source, path, err, v)
				}
				ocsfCheck(t, sch, f, a, source+" "+path)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%s: %d variants valid", source, variants)
		if variants < shapes.MinVariants {
			t.Errorf("%s: only %d variants", source, variants)
		}
	}
}

// TestOCSFSchemaRejects: the vendored schema is not a rubber stamp. Each mutation of a valid
// event breaks one rule of OCSF 1.3.0 and must be rejected.
func TestOCSFSchemaRejects(t *testing.T) {
	sch := ocsfSchema(t)
	f, err := formatter.New("ocsf", formatter.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var breach, action *alert.Alert
	for _, a := range loadGoldenAlerts(t) {
		switch {
		case a.Kind == alert.KindBreach && breach == nil && a.Device.IP != "":
			breach = a
		case a.Kind == alert.KindAntigena && action == nil:
			action = a
		}
	}
	for _, tc := range []struct {
		name   string
		a      *alert.Alert
		break_ func(m map[string]any)
	}{
		{"no finding_info", breach, func(m map[string]any) { delete(m, "finding_info") }},
		{"no metadata.version", breach, func(m map[string]any) { delete(m["metadata"].(map[string]any), "version") }},
		{"no product vendor", breach, func(m map[string]any) {
			delete(m["metadata"].(map[string]any)["product"].(map[string]any), "vendor_name")
		}},
		{"severity_id out of the enum", breach, func(m map[string]any) { m["severity_id"] = 7 }},
		{"activity_id of another class", breach, func(m map[string]any) { m["activity_id"] = 4 }},
		{"status_id a string", breach, func(m map[string]any) { m["status_id"] = "1" }},
		{"time as RFC 3339", breach, func(m map[string]any) { m["time"] = "2024-01-01T00:00:00Z" }},
		{"unknown attribute", breach, func(m map[string]any) { m["darktrace_score"] = 1 }},
		{"device without type_id", breach, func(m map[string]any) { delete(m["device"].(map[string]any), "type_id") }},
		{"device ip not an address", breach, func(m map[string]any) { m["device"].(map[string]any)["ip"] = "10.0.0.#1" }},
		{"finding without uid", breach, func(m map[string]any) { delete(m["finding_info"].(map[string]any), "uid") }},
		{"unknown class", breach, func(m map[string]any) { m["class_uid"] = 2005 }},
		{"remediation without command_uid", action, func(m map[string]any) { delete(m, "command_uid") }},
		{"remediation activity Create/Update", action, func(m map[string]any) { m["activity_id"] = 5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line, err := f.Append(nil, tc.a)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("the unbroken event is invalid: %v", err)
			}
			tc.break_(inst.(map[string]any))
			if err := sch.Validate(inst); err == nil {
				t.Fatalf("accepted: %v", inst)
			}
		})
	}
}

func loadGoldenAlerts(t *testing.T) []*alert.Alert {
	var as []*alert.Alert
	for _, c := range loadGolden(t) {
		as = append(as, c.alerts...)
	}
	return as
}

var (
	fuzzSchemaOnce sync.Once
	fuzzSchema     *jsonschema.Schema
)

// FuzzOCSF: for any string content, each kind of alert is one line within the limit, valid
// against the OCSF 1.3.0 schema, whose message is the alert's when nothing was trimmed.
func FuzzOCSF(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, name, host, msg, tag string, score float64, m int) {
		fuzzSchemaOnce.Do(func() { fuzzSchema = ocsfSchema(t) })
		max := fuzzLimit(m)
		fm, _ := formatter.New("ocsf", formatter.Options{Version: "1", MaxBytes: max})
		a := fuzzAlert(name, host, msg, tag, score, max)
		a.Kind = []string{alert.KindAntigena, alert.KindBreach, alert.KindAIAnalyst}[len(tag)%3]
		line := ocsfCheck(t, fuzzSchema, fm, a, "fuzz")
		checkLine(t, line, max)
		var o struct {
			Message  string `json:"message"`
			Unmapped struct {
				DTForward struct {
					Trimmed bool `json:"trimmed"`
				} `json:"dtforward"`
			} `json:"unmapped"`
		}
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(strings.ToValidUTF8(msg, "\uFFFD"), "\x00", "\uFFFD")
		if !o.Unmapped.DTForward.Trimmed && utf8.ValidString(msg) && o.Message != want {
			t.Fatalf("message %q, want %q", o.Message, want)
		}
	})
}
