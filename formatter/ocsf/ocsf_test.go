package ocsf

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dtforward/dtforward/alert"
)

func TestSeverityID(t *testing.T) {
	for _, tc := range []struct {
		score    float64
		category string
		want     int
	}{
		{0, "", 1}, {0.19, "", 1}, {0.2, "", 2}, {0.45, "", 3}, {0.6, "", 4}, {0.8, "", 5}, {1, "Antigena", 5},
		{0.1, "Critical", 4}, {0.95, "Critical", 5},
		{0.05, "Suspicious", 2}, {0.5, "Suspicious", 3}, {0.99, "suspicious", 4},
		{0.1, "Compliance", 2}, {0.9, "Compliance", 3},
		{1, "Informational", 1},
		{-1, "", 1}, {7, "", 5},
	} {
		if got := severityID(tc.score, tc.category); got != tc.want {
			t.Errorf("severityID(%v, %q) = %d, want %d", tc.score, tc.category, got, tc.want)
		}
	}
}

func breach(ack *alert.Acknowledgement) *alert.Alert {
	at := time.UnixMilli(1700000000000).UTC()
	return &alert.Alert{Kind: alert.KindBreach, ID: "1207", Appliance: "dt-lab", Time: at, Created: at.Add(time.Minute),
		Name: "Compromise::Beaconing", Score: 0.95, Category: "Critical", Priority: alert.NoPriority,
		Model:  alert.Model{PID: 501, Name: "Compromise::Beaconing", MITRE: []string{"T1071.001", "T1041"}},
		Device: alert.Device{DID: 12, Hostname: "srv-12", IP: "10.0.0.12", Type: "Server"},
		URL:    "https://dt.example.com/#modelbreach/1207", Message: "m", Ack: ack}
}

// TestAcknowledgementIsAnUpdate: the same breach before and after its acknowledgement is a
// Create and an Update of one finding uid, with distinct event uids.
func TestAcknowledgementIsAnUpdate(t *testing.T) {
	created, err := Build(breach(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	acked, err := Build(breach(&alert.Acknowledgement{User: "jane", Time: time.UnixMilli(1700000900000)}), "")
	if err != nil {
		t.Fatal(err)
	}
	if created.ActivityID != 1 || created.StatusID != 1 || created.TypeUID != 200401 {
		t.Errorf("unacknowledged: activity %d status %d type %d, want Create/New/200401", created.ActivityID, created.StatusID, created.TypeUID)
	}
	if acked.ActivityID != 2 || acked.StatusID != 4 || acked.TypeUID != 200402 || acked.Time != 1700000900000 {
		t.Errorf("acknowledged: activity %d status %d type %d time %d, want Update/Resolved/200402 at the ack time",
			acked.ActivityID, acked.StatusID, acked.TypeUID, acked.Time)
	}
	if created.FindingInfo.UID != "dt-lab:1207" || acked.FindingInfo.UID != created.FindingInfo.UID {
		t.Errorf("finding uids %q, %q: want the same dt-lab:1207", created.FindingInfo.UID, acked.FindingInfo.UID)
	}
	if created.Metadata.UID == acked.Metadata.UID {
		t.Errorf("both events have metadata.uid %q", acked.Metadata.UID)
	}
	if !strings.Contains(acked.StatusDetail, "jane") {
		t.Errorf("status_detail %q does not name who acknowledged", acked.StatusDetail)
	}
	at := created.FindingInfo.Attacks
	if len(at) != 2 || at[0].Technique.UID != "T1071" || at[0].SubTechnique == nil || at[0].SubTechnique.UID != "T1071.001" || at[1].Technique.UID != "T1041" {
		t.Errorf("attacks %+v", at)
	}
	if d := created.Device; d == nil || d.TypeID != 1 || d.UID != "12" || d.Hostname != "srv-12" {
		t.Errorf("device %+v", d)
	}
}

// TestAntigenaLifecycle: one action through its states is one command_uid, Isolate until the
// action is lifted, then Restore.
func TestAntigenaLifecycle(t *testing.T) {
	want := map[string][2]int{"pending": {1, 99}, "active": {1, 1}, "extended": {1, 1}, "expired": {3, 1}, "cleared": {3, 1}}
	for state, w := range want {
		a := &alert.Alert{Kind: alert.KindAntigena, ID: "501", Appliance: "dt-lab", Score: 0.5, Category: "Antigena",
			Action: &alert.Action{Type: "connection", State: state, PBID: 95, Triggerer: "jane"}}
		e, err := Build(a, "")
		if err != nil {
			t.Fatal(err)
		}
		if e.ClassUID != 7001 || e.ActivityID != w[0] || e.StatusID != w[1] || e.CommandUID != "dt-lab:501" ||
			e.TypeUID != 700100+int64(w[0]) || e.Metadata.CorrelationUID != "dt-lab:95" || e.Actor == nil {
			t.Errorf("%s: class %d activity %d status %d command %q type %d correlation %q actor %v", state,
				e.ClassUID, e.ActivityID, e.StatusID, e.CommandUID, e.TypeUID, e.Metadata.CorrelationUID, e.Actor)
		}
	}
}

// TestEventMap: the map form (for structured OTLP bodies) keeps integers as int64 and is the
// same event as the line.
func TestEventMap(t *testing.T) {
	m, err := Event(breach(nil))
	if err != nil {
		t.Fatal(err)
	}
	if m["class_uid"] != int64(2004) || m["risk_score"] != int64(95) {
		t.Errorf("class_uid %#v risk_score %#v, want int64", m["class_uid"], m["risk_score"])
	}
	fi := m["finding_info"].(map[string]any)
	if fi["uid"] != "dt-lab:1207" {
		t.Errorf("finding_info.uid %v", fi["uid"])
	}
	e, _ := Build(breach(nil), "")
	line, err := Append(nil, e, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fromLine map[string]any
	if err := json.Unmarshal(line, &fromLine); err != nil {
		t.Fatal(err)
	}
	if len(fromLine) != len(m) {
		t.Errorf("line has %d attributes, map %d", len(fromLine), len(m))
	}
}

// TestTrimKeepsIdentifiers: at a small limit, free text goes first, the identifiers and triage
// values stay, and the line says what was trimmed.
func TestTrimKeepsIdentifiers(t *testing.T) {
	a := breach(nil)
	a.Message = strings.Repeat("long description ", 200)
	a.Device.Label = strings.Repeat("label ", 100)
	e, _ := Build(a, "1.0")
	line, err := Append(nil, e, 600)
	if err != nil {
		t.Fatal(err)
	}
	if len(line) > 600 {
		t.Fatalf("%d bytes > 600", len(line))
	}
	var got Record
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if got.FindingInfo == nil || got.FindingInfo.UID != "dt-lab:1207" || got.SeverityID != 5 || got.Device == nil || got.Device.IP != "10.0.0.12" {
		t.Errorf("identifiers or triage values lost: %s", line)
	}
	if got.Unmapped == nil || got.Unmapped.DTForward == nil || !got.Unmapped.DTForward.Trimmed ||
		!strings.HasPrefix(got.Unmapped.DTForward.TrimmedFields, "finding_info.desc,message") {
		t.Errorf("no trimming marker: %s", line)
	}
	// Nothing is trimmed without need.
	e, _ = Build(a, "1.0")
	if line, _ = Append(nil, e, 0); strings.Contains(string(line), "trimmed") {
		t.Errorf("trimmed without a limit: %s", line)
	}
}

// TestLongApplianceLabel: identifiers stay short and stable whatever the appliance label.
func TestLongApplianceLabel(t *testing.T) {
	long := strings.Repeat("appliance-é", 30)
	a, b := scoped(long, "1"), scoped(long, "1")
	if a != b || len(a) > maxScope+2 || !strings.HasSuffix(a, ":1") {
		t.Errorf("scoped: %q, %q", a, b)
	}
	if scoped(long, "1") == scoped(long+"x", "1") {
		t.Error("two labels sharing a prefix give the same identifier")
	}
	if scoped("dt", "1") != "dt:1" || scoped("", "1") != "1" {
		t.Error("short labels must be kept as they are")
	}
}
