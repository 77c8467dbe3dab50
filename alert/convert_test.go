package alert_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/darktrace"
)

func decode[T any](t *testing.T, s string) *T {
	t.Helper()
	v := new(T)
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func TestFromBreach(t *testing.T) {
	tests := []struct {
		name  string
		rec   string
		host  string
		check func(t *testing.T, a *alert.Alert)
	}{
		{name: "severity rounds and clamps", rec: `{"pbid":1,"score":0.449,"model":{"name":"m","pid":2}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Severity != 4 || a.Score != 0.449 {
				t.Errorf("severity %d score %v", a.Severity, a.Score)
			}
		}},
		{name: "score above 1 clamped", rec: `{"pbid":1,"score":"3.5","model":{"name":"m"}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Score != 1 || a.Severity != 10 {
				t.Errorf("score %v severity %d", a.Score, a.Severity)
			}
		}},
		{name: "negative score is 0", rec: `{"pbid":1,"score":-1}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Score != 0 || a.Severity != 0 {
				t.Errorf("score %v", a.Score)
			}
		}},
		{name: "placeholder ip and bad mac dropped, hostname kept", rec: `{"pbid":1,"device":{"did":5,"ip":"192.168.16.#54818","macaddress":"zz:zz","hostname":" 10.1.1.1 "}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Device.IP != "" || a.Device.MAC != "" || a.Device.Hostname != "10.1.1.1" || a.Device.DID != 5 {
				t.Errorf("device %+v", a.Device)
			}
		}},
		{name: "ipv6 and dashed mac normalised", rec: `{"pbid":1,"device":{"did":5,"ip":"2001:DB8::1","macaddress":"AA-BB-CC-DD-EE-FF"}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Device.IP != "2001:db8::1" || a.Device.MAC != "aa:bb:cc:dd:ee:ff" {
				t.Errorf("device %+v", a.Device)
			}
		}},
		{name: "system breach keeps only did", rec: `{"pbid":1,"device":{"did":-1,"ip":"10.0.0.1","hostname":"x"}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Device != (alert.Device{DID: -1}) {
				t.Errorf("device %+v", a.Device)
			}
		}},
		{name: "url built from host", rec: `{"pbid":77}`, host: "dt.example:8443", check: func(t *testing.T, a *alert.Alert) {
			if a.URL != "https://dt.example:8443/#modelbreach/77" {
				t.Errorf("url %q", a.URL)
			}
		}},
		{name: "no host no url", rec: `{"pbid":77}`, check: func(t *testing.T, a *alert.Alert) {
			if a.URL != "" {
				t.Errorf("url %q", a.URL)
			}
		}},
		{name: "record url wins", rec: `{"pbid":77,"breachUrl":"https://fqdn/#modelbreach/77"}`, host: "other", check: func(t *testing.T, a *alert.Alert) {
			if a.URL != "https://fqdn/#modelbreach/77" {
				t.Errorf("url %q", a.URL)
			}
		}},
		{name: "creationTime missing falls back to time", rec: `{"pbid":1,"time":1700000000000}`, check: func(t *testing.T, a *alert.Alert) {
			if !a.Created.Equal(time.UnixMilli(1700000000000)) || a.Created.Location() != time.UTC {
				t.Errorf("created %v", a.Created)
			}
		}},
		{name: "then/now model uses then", rec: `{"pbid":1,"model":{"then":{"name":"old","pid":3},"now":{"name":"new","pid":3}}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Name != "old" || a.SignatureID != "3" {
				t.Errorf("name %q sig %q", a.Name, a.SignatureID)
			}
		}},
		{name: "message is first paragraph, tags cleaned, mitre merged", rec: `{"pbid":1,"model":{"name":"m","tags":["", " ","A"],"description":"First\nstill first\n\nAction: x","mitre":{"techniques":["T1"]}},"mitreTechniques":[{"techniqueID":"T1"},{"techniqueID":"T2"}]}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Message != "First\nstill first" || strings.Join(a.Model.Tags, ",") != "A" || strings.Join(a.Model.MITRE, ",") != "T1,T2" {
				t.Errorf("msg %q tags %q mitre %q", a.Message, a.Model.Tags, a.Model.MITRE)
			}
		}},
		{name: "destination from filters, first valid wins", rec: `{"pbid":1,"triggeredComponents":[{"triggeredFilters":[
			{"filterType":"Destination IP","trigger":{"value":"not-ip"}},{"filterType":"Destination IP","trigger":{"value":"8.8.8.8"}},
			{"filterType":"Destination port","trigger":{"value":70000}},{"filterType":"Destination port","trigger":{"value":"53"}},
			{"filterType":"Protocol","trigger":{"value":17}},{"filterType":"Connection hostname","trigger":{"value":"dns.example"}},
			{"filterType":"Application protocol","trigger":{"value":"DNS"}}]}]}`, check: func(t *testing.T, a *alert.Alert) {
			want := alert.Endpoint{IP: "8.8.8.8", Host: "dns.example", Port: 53, Protocol: "UDP", App: "DNS"}
			if a.Dest != want {
				t.Errorf("dest %+v, want %+v", a.Dest, want)
			}
		}},
		{name: "unknown protocol number kept", rec: `{"pbid":1,"triggeredComponents":[{"triggeredFilters":[{"filterType":"Protocol","trigger":{"value":"253"}}]}]}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Dest.Protocol != "253" {
				t.Errorf("proto %q", a.Dest.Protocol)
			}
		}},
		{name: "compliance flag gives category", rec: `{"pbid":1,"model":{"name":"m","compliance":true}}`, check: func(t *testing.T, a *alert.Alert) {
			if a.Category != "Compliance" {
				t.Errorf("category %q", a.Category)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := decode[darktrace.Breach](t, tc.rec)
			a, err := alert.FromBreach(b, []byte(tc.rec), "lab", tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if a.Kind != alert.KindBreach || a.Appliance != "lab" || string(a.Raw) != tc.rec {
				t.Errorf("kind %q appliance %q raw kept %v", a.Kind, a.Appliance, string(a.Raw) == tc.rec)
			}
			tc.check(t, a)
		})
	}
}

func TestConvertersRejectRecordsWithoutID(t *testing.T) {
	if _, err := alert.FromBreach(&darktrace.Breach{}, nil, "", ""); !errors.Is(err, alert.ErrNoID) {
		t.Errorf("breach: %v", err)
	}
	if _, err := alert.FromAction(&darktrace.Action{}, nil, "", ""); !errors.Is(err, alert.ErrNoID) {
		t.Errorf("action: %v", err)
	}
	if _, err := alert.FromIncident(&darktrace.IncidentEvent{ID: "  "}, nil, "", ""); !errors.Is(err, alert.ErrNoID) {
		t.Errorf("incident: %v", err)
	}
	if _, err := alert.FromBreach(nil, nil, "", ""); err == nil {
		t.Error("nil breach accepted")
	}
}

func TestFromAction(t *testing.T) {
	tests := []struct {
		name, rec, state string
	}{
		{"pending", `{"codeid":1,"action":"quarantine","active":false,"cleared":false}`, "pending"},
		{"active", `{"codeid":1,"action":"quarantine","active":true,"expires":2000,"updated":"1000"}`, "active"},
		{"extended", `{"codeid":1,"action":"quarantine","active":true,"expires":2000,"updated":"1000","history":[{"action":"created","time":1},{"action":"extended","time":5}]}`, "extended"},
		{"extension superseded", `{"codeid":1,"action":"quarantine","active":true,"expires":2000,"updated":"1000","history":[{"action":"extended","time":1},{"action":"reactivated (cleared)","time":5}]}`, "active"},
		{"expired", `{"codeid":1,"action":"quarantine","active":true,"expires":2000,"updated":"3000"}`, "expired"},
		{"cleared", `{"codeid":1,"action":"quarantine","active":false,"cleared":true}`, "cleared"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := alert.FromAction(decode[darktrace.Action](t, tc.rec), nil, "lab", "h")
			if err != nil {
				t.Fatal(err)
			}
			if a.Action == nil || a.Action.State != tc.state {
				t.Fatalf("state %+v, want %s", a.Action, tc.state)
			}
			if a.SignatureID != "antigena:quarantine" || a.URL != "" {
				t.Errorf("sig %q url %q", a.SignatureID, a.URL)
			}
		})
	}
	a, _ := alert.FromAction(decode[darktrace.Action](t, `{"codeid":9,"action":"connection","manual":true,"triggerer":{"username":"jane"},"pbid":5,"score":0.87}`), nil, "", "h")
	if !a.Action.Manual || a.Action.Triggerer != "jane" || a.URL != "https://h/#modelbreach/5" || a.Severity != 9 {
		t.Errorf("manual action %+v %+v", a, a.Action)
	}
}

func TestFromIncident(t *testing.T) {
	tests := []struct {
		name, rec string
		score     float64
		ip        string
		group     *alert.Group
	}{
		{"string group score kept apart", `{"id":"x","currentGroup":"g1","groupScore":"87.5","aiaScore":10,"breachDevices":[{"did":1,"ip":"10.0.0.5/24"}]}`,
			0.1, "10.0.0.5", &alert.Group{ID: "g1", Score: 0.875}},
		{"null group score is absent", `{"id":"x","groupScore":null,"groupCategory":"critical","aiaScore":64,"breachDevices":[{"did":null,"ip":null},{"did":2,"ip":"10.0.0.0/24"}]}`,
			0.64, "", &alert.Group{Score: -1, Category: "Critical"}},
		{"no group", `{"id":"x","aiaScore":150,"breachDevices":[{"did":3,"ip":"10.0.0.5/33"}]}`, 1, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := alert.FromIncident(decode[darktrace.IncidentEvent](t, tc.rec), nil, "lab", "h")
			if err != nil {
				t.Fatal(err)
			}
			if a.Score != tc.score || a.Device.IP != tc.ip {
				t.Errorf("score %v ip %q, want %v %q", a.Score, a.Device.IP, tc.score, tc.ip)
			}
			if (a.Group == nil) != (tc.group == nil) || (a.Group != nil && *a.Group != *tc.group) {
				t.Errorf("group %+v, want %+v", a.Group, tc.group)
			}
			if a.URL != "https://h/#aiaincidentevent/x" || a.SignatureID != "aianalyst:unknown" || a.Priority != alert.NoPriority {
				t.Errorf("url %q sig %q priority %d", a.URL, a.SignatureID, a.Priority)
			}
		})
	}
}

// TestFromIncidentSeverityFromEvent: the events of issue 10 (aiaScore 98, 93.7, 85.5, 55.5 in
// a group scored 12 and categorised "suspicious") take severity and category from the event.
func TestFromIncidentSeverityFromEvent(t *testing.T) {
	for _, tc := range []struct {
		aia, cat string
		sev      int
		wantCat  string
	}{{"98", "critical", 10, "Critical"}, {"93.7", "critical", 9, "Critical"}, {"85.5", "suspicious", 9, "Suspicious"}, {"55.5", "compliance", 6, "Compliance"}} {
		rec := `{"id":"e1","aiaScore":` + tc.aia + `,"category":"` + tc.cat + `","currentGroup":"g9","groupScore":12,"groupCategory":"suspicious"}`
		a, err := alert.FromIncident(decode[darktrace.IncidentEvent](t, rec), nil, "lab", "h")
		if err != nil {
			t.Fatal(err)
		}
		if a.Severity != tc.sev || a.Category != tc.wantCat {
			t.Errorf("aiaScore %s: severity %d category %q, want %d %q", tc.aia, a.Severity, a.Category, tc.sev, tc.wantCat)
		}
		if a.Group == nil || a.Group.ID != "g9" || a.Group.Score != 0.12 || a.Group.Category != "Suspicious" {
			t.Errorf("aiaScore %s: group %+v", tc.aia, a.Group)
		}
	}
}

func TestSplitRecords(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		err      string
	}{
		{"array", `[{"a":1},{"b":2}]`, 2, ""},
		{"empty array", ` [ ] `, 0, ""},
		{"object", `{"a":1}`, 1, ""},
		{"lines", "{\"a\":1}\n{\"a\":2}\n\n{\"a\":3}", 3, ""},
		{"empty", "  \n", 0, ""},
		{"bom", "\ufeff[{\"a\":1}]", 1, ""},
		{"syntax in array", "[{\"a\":1},\n {\"b\": x}]", 0, "line 2, column 8"},
		{"syntax in lines", "{\"a\":1}\n{\"b\":\n  x}", 0, "line 3, column 3"},
		{"truncated", `[{"a":1}`, 0, "unexpected end of input"},
		{"trailing garbage", `[{"a":1}] x`, 0, "line 1, column 11"},
		{"scalar", `42`, 0, "expected a JSON object or array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := alert.SplitRecords([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(recs) != tc.n {
				t.Fatalf("%d records, err %v; want %d", len(recs), err, tc.n)
			}
		})
	}
}

func TestDetectSource(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"pbid":1,"model":{}}`, alert.SourceBreaches},
		{`{"codeid":1,"pbid":3}`, alert.SourceAntigena},
		{`{"id":"u","createdAt":1}`, alert.SourceAIAnalyst},
		{`{"x":1}`, ""},
		{`nope`, ""},
	}
	for _, tc := range tests {
		if got := alert.DetectSource([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, got, tc.want)
		}
	}
	if _, err := alert.Decode("bogus", []byte(`{}`), "", ""); err == nil || !strings.Contains(err.Error(), "modelbreaches, antigena, aianalyst") {
		t.Errorf("unknown source: %v", err)
	}
}

// The client hands each record in a reused buffer; the alert must keep its own copy.
func TestRawIsCopied(t *testing.T) {
	raw := []byte(`{"pbid":5,"model":{"name":"m"}}`)
	a, err := alert.Decode("", raw, "", "")
	if err != nil {
		t.Fatal(err)
	}
	copy(raw, `XXXXXXXXXX`)
	if string(a.Raw) != `{"pbid":5,"model":{"name":"m"}}` {
		t.Errorf("Raw aliases the input buffer: %s", a.Raw)
	}
}
