package formatter_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/internal/testutil/parsecheck"
)

// Consumer conformance: deployed SIEM content was written against Darktrace's own CEF. These
// tests read our CEF the way that content does, from the facts it relies on ("CEF conventions" in doc.go):
//
//   - Exabeam's Darktrace CEF parser matches the raw line with regular expressions: the alert
//     id is taken only from an extension that starts with externalId= right after the
//     header's last '|'; Name is split on '/' (alert type = first part, alert name = last);
//     the link is darktraceUrl.
//   - Microsoft Sentinel (CommonSecurityLog, "AI Analyst Darktrace" workbook) maps dvc to
//     DeviceAddress and dvchost to DeviceName; C-sensor devices are recognised by a '#' in
//     DeviceName; unknown keys such as darktraceUrl land in AdditionalExtensions.
//
// The patterns below are written from those facts for this project, not copied from any
// vendor's parser.

// exabeamCEF is an Exabeam-style reading of a raw CEF line: one regular expression per field,
// anchored the way a line-matching parser anchors them.
var (
	exHeader = regexp.MustCompile(`CEF:0\|Darktrace\|DCIP\|[^|]*\|((?:[^|\\]|\\.)*)\|((?:[^|\\]|\\.)*)\|(\d+)\|externalId=(\S+)`)
	exURL    = regexp.MustCompile(`\sdarktraceUrl=(\S+)`)
	exDvc    = regexp.MustCompile(`\sdvc=([0-9A-Fa-f:.]+)\s`)
	exDvcHst = regexp.MustCompile(`\sdvchost=(.+?)\s+\w+=`)
	// An older version reads the destination only where dvchost follows it.
	exDstOld = regexp.MustCompile(`\sdst=(\S*)\sdvchost=`)
)

type exabeamEvent struct {
	alertID, alertType, alertName, severity, url, deviceIP, deviceHost, destIPOld string
}

func exabeamRead(line string) (exabeamEvent, bool) {
	m := exHeader.FindStringSubmatch(line)
	if m == nil {
		return exabeamEvent{}, false
	}
	name := strings.NewReplacer(`\|`, "|", `\\`, `\`).Replace(m[2])
	parts := strings.Split(name, "/")
	ev := exabeamEvent{alertID: m[4], alertType: parts[0], alertName: parts[len(parts)-1], severity: m[3]}
	if u := exURL.FindStringSubmatch(line); u != nil {
		ev.url = u[1]
	}
	if d := exDvc.FindStringSubmatch(line); d != nil {
		ev.deviceIP = d[1]
	}
	if d := exDvcHst.FindStringSubmatch(line); d != nil {
		ev.deviceHost = d[1]
	}
	if d := exDstOld.FindStringSubmatch(line); d != nil {
		ev.destIPOld = d[1]
	}
	return ev, true
}

// conformanceAlerts: the golden records plus the device shapes real appliances send (label
// only, placeholder only, system breach) and an acknowledged AI Analyst event in a group.
func conformanceAlerts(t *testing.T) []*alert.Alert {
	var as []*alert.Alert
	for _, c := range loadGolden(t) {
		if c.name == "hostile-strings" || c.name == "hostile-very-long-values" {
			continue // names with '/' or '|' on purpose: not what content is written for
		}
		as = append(as, c.alerts...)
	}
	at := time.UnixMilli(1700000000000).UTC()
	breach := func(id string, d alert.Device) *alert.Alert {
		return &alert.Alert{Kind: alert.KindBreach, ID: id, Appliance: "dt-lab", Time: at, Created: at,
			Name: "Compromise::Beaconing Activity To External Rare", SignatureID: "501", Score: 0.95, Severity: 10,
			Category: "Critical", Priority: 5, Model: alert.Model{PID: 501, Name: "Compromise::Beaconing Activity To External Rare"},
			Device: d, URL: "https://dt.example.com/#modelbreach/" + id, Message: "m"}
	}
	as = append(as,
		breach("7001", alert.Device{DID: 36859, Placeholder: "10.0.0.#36859"}),
		breach("7002", alert.Device{DID: 12, Label: "CEO laptop", IP: "10.0.0.12"}),
		breach("7003", alert.Device{DID: 13, Hostname: "srv-13", Label: "file server", IP: "10.0.0.13", MAC: "00:0c:29:ab:cd:ef"}),
		&alert.Alert{Kind: alert.KindAIAnalyst, ID: "e-1", Appliance: "dt-lab", Time: at, Created: at,
			Name: "Extensive Unusual SSH Connections", SignatureID: "aianalyst:LateralMovementSummary", Score: 0.98,
			Severity: 10, Category: "Critical", Priority: alert.NoPriority, Device: alert.Device{DID: 9, Hostname: "ws-9", IP: "10.0.0.9"},
			Group: &alert.Group{ID: "g04a3f36e", Score: 0.124, Category: "Suspicious"},
			Ack:   &alert.Acknowledgement{Time: at.Add(time.Hour), User: "user@company"},
			URL:   "https://dt.example.com/#aiaincidentevent/e-1", Message: "m"},
	)
	return as
}

// wantDeviceName is the device name content must see: hostname, else label, else placeholder.
func wantDeviceName(d alert.Device) string {
	for _, s := range []string{d.Hostname, d.Label, d.Placeholder} {
		if s != "" {
			return s
		}
	}
	return ""
}

func TestCEFAsExabeamReadsIt(t *testing.T) {
	as := conformanceAlerts(t)
	lines := formatAll(t, "cef", goldenOptions(), as)
	for i, a := range as {
		line := string(lines[i])
		ev, ok := exabeamRead(line)
		if !ok {
			t.Errorf("alert %s: the header + externalId pattern does not match: %s", a.ID, line)
			continue
		}
		if ev.alertID != a.ID {
			t.Errorf("alert %s: Exabeam reads alert id %q", a.ID, ev.alertID)
		}
		if a.Kind == alert.KindBreach {
			// First part = category of model, last = model; a name without "::" is both.
			cat, _, _ := strings.Cut(a.Model.Name, "::")
			model := a.Model.Name[strings.LastIndex(a.Model.Name, "::")+2:]
			if !strings.Contains(a.Model.Name, "::") {
				model = a.Model.Name
			}
			if ev.alertType != cat || ev.alertName != model {
				t.Errorf("alert %s: Name splits into type %q / name %q, want %q / %q", a.ID, ev.alertType, ev.alertName, cat, model)
			}
		}
		if ev.url != a.URL {
			t.Errorf("alert %s: darktraceUrl %q, want %q", a.ID, ev.url, a.URL)
		}
		if ev.deviceIP != a.Device.IP {
			t.Errorf("alert %s: dvc %q, want %q", a.ID, ev.deviceIP, a.Device.IP)
		}
		if want := wantDeviceName(a.Device); ev.deviceHost != want {
			t.Errorf("alert %s: dvchost %q, want %q (never the appliance)", a.ID, ev.deviceHost, want)
		}
		if a.Dest.IP != "" && wantDeviceName(a.Device) != "" && ev.destIPOld != a.Dest.IP {
			t.Errorf("alert %s: the older dst pattern reads %q, want %q", a.ID, ev.destIPOld, a.Dest.IP)
		}
	}
}

// sentinelRow is the CommonSecurityLog row a CEF line becomes (the columns content uses).
type sentinelRow struct {
	DeviceEventClassID, Activity, LogSeverity              string
	DeviceAddress, DeviceName, SourceIP, SourceHostName    string
	SourceMACAddress, ExternalID, DeviceCustomString4Label string
	DeviceCustomString4, AdditionalExtensions              string
}

// sentinelRows maps liblognorm's reading of each line to CommonSecurityLog columns the way
// Sentinel's CEF mapping does; keys without a column go to AdditionalExtensions as k=v;...
func sentinelRows(t *testing.T, lines [][]byte) []sentinelRow {
	column := map[string]bool{"dvc": true, "dvchost": true, "src": true, "shost": true, "smac": true,
		"externalId": true, "cs4": true, "cs4Label": true}
	var rows []sentinelRow
	for i, c := range parsecheck.ParseCEF(t, lines) {
		if c.Rejected {
			t.Fatalf("liblognorm rejected %s", lines[i])
		}
		var extra []string
		for k, v := range c.Ext {
			if !column[k] && !strings.HasPrefix(k, "cs") && !strings.HasPrefix(k, "cn") && !strings.HasPrefix(k, "cfp") &&
				k != "rt" && k != "start" && k != "cat" && k != "msg" && k != "dst" && k != "dhost" && k != "dpt" &&
				k != "proto" && k != "app" && k != "act" && k != "suser" {
				extra = append(extra, k+"="+v)
			}
		}
		sort.Strings(extra)
		rows = append(rows, sentinelRow{DeviceEventClassID: c.SignatureID, Activity: c.Name, LogSeverity: c.Severity,
			DeviceAddress: c.Ext["dvc"], DeviceName: c.Ext["dvchost"], SourceIP: c.Ext["src"], SourceHostName: c.Ext["shost"],
			SourceMACAddress: c.Ext["smac"], ExternalID: c.Ext["externalId"], DeviceCustomString4Label: c.Ext["cs4Label"],
			DeviceCustomString4: c.Ext["cs4"], AdditionalExtensions: strings.Join(extra, ";")})
	}
	return rows
}

func TestCEFAsSentinelReadsIt(t *testing.T) {
	as := conformanceAlerts(t)
	rows := sentinelRows(t, formatAll(t, "cef", goldenOptions(), as))
	cSensor := 0
	for i, a := range as {
		r := rows[i]
		what := fmt.Sprintf("alert %s (%s)", a.ID, a.Kind)
		if r.ExternalID != a.ID || r.DeviceAddress != a.Device.IP || r.SourceIP != a.Device.IP {
			t.Errorf("%s: ExternalID %q DeviceAddress %q SourceIP %q", what, r.ExternalID, r.DeviceAddress, r.SourceIP)
		}
		want := wantDeviceName(a.Device)
		if r.DeviceName != want || r.SourceHostName != want || r.SourceMACAddress != a.Device.MAC {
			t.Errorf("%s: DeviceName %q SourceHostName %q SourceMACAddress %q, want %q %q", what, r.DeviceName, r.SourceHostName,
				r.SourceMACAddress, want, a.Device.MAC)
		}
		if r.DeviceCustomString4Label != "appliance" || r.DeviceCustomString4 != a.Appliance {
			t.Errorf("%s: the appliance is not in DeviceCustomString4: %+v", what, r)
		}
		if strings.Contains(r.DeviceName, "#") {
			cSensor++ // what the workbook's C-sensor tile counts
			if r.DeviceAddress != "" {
				t.Errorf("%s: a placeholder device has DeviceAddress %q", what, r.DeviceAddress)
			}
		}
		if a.URL != "" && !strings.Contains(r.AdditionalExtensions, "darktraceUrl="+a.URL) {
			t.Errorf("%s: darktraceUrl not in AdditionalExtensions %q", what, r.AdditionalExtensions)
		}
		if a.Kind == alert.KindAIAnalyst && r.LogSeverity != fmt.Sprint(a.Severity) {
			t.Errorf("%s: LogSeverity %s, want the event's %d", what, r.LogSeverity, a.Severity)
		}
		// The workbook groups related AI Analyst incidents by groupingId, which it takes out
		// of AdditionalExtensions ("groupingId=" up to the next ';').
		if a.Group != nil && a.Group.ID != "" {
			_, v, ok := strings.Cut(r.AdditionalExtensions, "groupingId=")
			v, _, _ = strings.Cut(v, ";")
			if !ok || v != a.Group.ID {
				t.Errorf("%s: groupingId %q in AdditionalExtensions %q, want %q", what, v, r.AdditionalExtensions, a.Group.ID)
			}
		}
		if r.DeviceEventClassID == "" || r.DeviceEventClassID == "0" {
			t.Errorf("%s: DeviceEventClassID %q", what, r.DeviceEventClassID)
		}
	}
	if cSensor != 1 {
		t.Errorf("%d C-sensor (placeholder) devices seen, want 1", cSensor)
	}
}

// TestCEFNoFakeZeros: a breach without priority or pid carries no cn3/cn1 and a documented
// signature fallback, never a 0 that content would read as data.
func TestCEFNoFakeZeros(t *testing.T) {
	a := &alert.Alert{Kind: alert.KindBreach, ID: "8", SignatureID: "0", Name: "Unusual Activity::Unusual Activity",
		Priority: alert.NoPriority, Score: 0.5, Severity: 5, Message: "m"}
	lines := formatAll(t, "cef", goldenOptions(), []*alert.Alert{a})
	c := parsecheck.ParseCEF(t, lines)[0]
	if c.SignatureID != "modelbreach:unknown" {
		t.Errorf("signature %q, want the fallback modelbreach:unknown", c.SignatureID)
	}
	for _, k := range []string{"cn1", "cn3", "cn2", "dvc", "dvchost"} {
		if v, ok := c.Ext[k]; ok {
			t.Errorf("%s=%q written for an absent value: %s", k, v, lines[0])
		}
	}
	a.Priority = 0 // a real priority 0 is data
	c = parsecheck.ParseCEF(t, formatAll(t, "cef", goldenOptions(), []*alert.Alert{a}))[0]
	if c.Ext["cn3"] != "0" || c.Ext["cn3Label"] != "priority" {
		t.Errorf("priority 0 not written: %v", c.Ext)
	}
}

// TestScoresWithoutFloatArtefacts: 2.8/100 is 0.027999999999999997 in float64; every format
// writes 0.028 (issue 14), and the group score likewise.
func TestScoresWithoutFloatArtefacts(t *testing.T) {
	a := &alert.Alert{Kind: alert.KindAIAnalyst, ID: "e", Name: "n", SignatureID: "aianalyst:x", Score: 2.8 / 100,
		Group: &alert.Group{ID: "g", Score: 93.7 / 100}, Message: "m"}
	want := map[string][]string{
		"cef":  {"cfp1=0.028 ", "groupScore=0.937 "},
		"leef": {"\tscore=0.028\t", "\tgroupScore=0.937\t"},
		"json": {`"score":0.028,`, `"score":0.937}`},
	}
	for name, subs := range want {
		line := string(formatAll(t, name, goldenOptions(), []*alert.Alert{a})[0])
		for _, s := range subs {
			if !strings.Contains(line, s) {
				t.Errorf("%s: %q not in %s", name, s, line)
			}
		}
	}
}

// flattenObject lists the leaves of a JSON object the way syslog-ng's json-parser names them
// (nested object keys joined with '.'; arrays are leaves). Strings keep their value; other
// leaves map to "" (syslog-ng re-renders numbers, so only their presence is compared).
func flattenObject(prefix string, v any, out map[string]*string) {
	m, ok := v.(map[string]any)
	if !ok {
		if s, ok := v.(string); ok {
			out[prefix] = &s
		} else {
			out[prefix] = nil
		}
		return
	}
	for k, c := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		flattenObject(p, c, out)
	}
}

// TestDarktraceJSONAsElasticAndSC4SReadIt: Elastic's Darktrace pipeline and SC4S parse the
// message as JSON and read the record's own keys (pbid, creationTime, model.name, aiaScore,
// incidentEventUrl, codeid ...). With syslog-ng's json-parser (what SC4S runs), every key of
// the record as the API sent it is there with its value, and the URL key content links with
// is present (added when the appliance omitted it).
func TestDarktraceJSONAsElasticAndSC4SReadIt(t *testing.T) {
	var as []*alert.Alert
	for _, c := range loadGolden(t) {
		if c.name != "hostile-very-long-values" { // trimmed on purpose
			as = append(as, c.alerts...)
		}
	}
	lines := formatAll(t, "darktrace-json", goldenOptions(), as)
	got := parsecheck.ParseJSON(t, lines)
	idKey := map[string]string{alert.KindBreach: "pbid", alert.KindAntigena: "codeid", alert.KindAIAnalyst: "id"}
	urlKey := map[string]string{alert.KindBreach: "breachUrl", alert.KindAIAnalyst: "incidentEventUrl"}
	for i, a := range as {
		what := fmt.Sprintf("alert %s (%s)", a.ID, a.Kind)
		if got[i].Rejected {
			t.Errorf("%s: json-parser rejected %s", what, lines[i])
			continue
		}
		var rec any
		if err := json.Unmarshal(a.Raw, &rec); err != nil {
			t.Fatal(err)
		}
		leaves := map[string]*string{}
		flattenObject("", rec, leaves)
		for k, v := range leaves {
			g, ok := got[i].Fields[k]
			if !ok {
				t.Errorf("%s: record key %s missing", what, k)
			} else if v != nil && g != *v {
				t.Errorf("%s: %s = %q, want %q", what, k, g, *v)
			}
		}
		if g := got[i].Fields[idKey[a.Kind]]; g != a.ID {
			t.Errorf("%s: %s = %q", what, idKey[a.Kind], g)
		}
		if k := urlKey[a.Kind]; k != "" && a.URL != "" && got[i].Fields[k] != a.URL {
			t.Errorf("%s: %s = %q, want %q", what, k, got[i].Fields[k], a.URL)
		}
	}
}

// TestApplianceLabels: the labels of an appliances file are written to every format in key
// order, whatever the map's iteration order; ',' and '=' inside a label cannot split a pair.
func TestApplianceLabels(t *testing.T) {
	a := &alert.Alert{Kind: alert.KindBreach, ID: "1", SignatureID: "5", Name: "n", Priority: alert.NoPriority, Message: "m",
		Labels: map[string]string{"site": "london", "customer": "acme, inc", "tier": "gold=1", "b_unit": "sec"}}
	want := map[string]string{
		"cef":  ` applianceLabels=b_unit\=sec,customer\=acme  inc,site\=london,tier\=gold 1 msg=m`,
		"leef": "\tapplianceLabels=b_unit=sec,customer=acme  inc,site=london,tier=gold 1\tmsg=m",
		"json": `"applianceLabels":{"b_unit":"sec","customer":"acme, inc","site":"london","tier":"gold=1"},`,
	}
	for i := 0; i < 20; i++ { // map iteration order varies between runs of the loop
		for name, w := range want {
			line := string(formatAll(t, name, goldenOptions(), []*alert.Alert{a})[0])
			if !strings.Contains(line, w) {
				t.Fatalf("%s: %q not in %s", name, w, line)
			}
		}
	}
	c := parsecheck.ParseCEF(t, formatAll(t, "cef", goldenOptions(), []*alert.Alert{a}))[0]
	if c.Ext["applianceLabels"] != "b_unit=sec,customer=acme  inc,site=london,tier=gold 1" {
		t.Errorf("liblognorm reads applianceLabels=%q", c.Ext["applianceLabels"])
	}
}
