package simulator

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/dtforward/dtforward/darktrace"
	"github.com/dtforward/dtforward/internal/jsontext"
)

// LargePBIDBase is the first pbid of the synthetic records a "large" fault adds to a response.
// They are not part of the store (Breaches does not list them), so tests comparing delivered
// records with the oracle can tell them apart.
const LargePBIDBase = int64(1) << 40

const (
	flagAck uint8 = 1 << iota
	flagSuppressed
	flagHostile
	flagNoCreation
	flagSystem
	flagHeld // created, but not visible through the API until released (HoldBreaches)
)

// breachRec is the compact stored form of a breach (40 bytes); everything else about it is
// regenerated from (seed, pbid) when it is rendered.
type breachRec struct {
	pbid    int64
	time    int64 // activity, epoch ms
	created int64 // creation, epoch ms (also when the record hides it)
	dev     int32 // index into devices; -1 for system breaches
	model   uint16
	score   uint16 // thousandths
	flags   uint8
}

// windowTime is the time a creationtime=true window filters on: records without creationTime
// fall back to time, as on the appliance builds that lack the field.
func (b *breachRec) windowCreated() int64 {
	if b.flags&flagNoCreation != 0 {
		return b.time
	}
	return b.created
}

// newBreachRec draws the stored attributes of a breach created at created (epoch ms).
func (s *Simulator) newBreachRec(r *rand.Rand, pbid, created int64) breachRec {
	o := &s.opts
	b := breachRec{pbid: pbid, created: created}
	late := r.Float64() < o.LateFraction
	if late {
		span := int64(o.LateDelay/time.Millisecond) - 60_000
		b.time = created - 60_000 - r.Int64N(max(span, 1))
	} else {
		b.time = created - 1000 - r.Int64N(29_000)
	}
	switch {
	case r.Float64() < o.SystemFraction:
		b.flags |= flagSystem
		b.dev = -1
		b.model = systemModelIndex
	case r.Float64() < o.HostileFraction:
		b.flags |= flagHostile
		b.dev = int32(normalDevices + r.IntN(hostileDevices))
		b.model = uint16(1 + len(modelSeeds) + r.IntN(hostileModels))
	default:
		b.dev = int32(r.IntN(normalDevices))
		b.model = uint16(1 + r.IntN(len(modelSeeds)))
	}
	b.score = uint16(100 + r.IntN(901))
	if b.flags&flagSystem != 0 {
		b.score = uint16(r.IntN(1001))
	}
	if r.Float64() < o.AckFraction {
		b.flags |= flagAck
	}
	if r.IntN(50) == 0 {
		b.flags |= flagSuppressed
	}
	if r.Float64() < o.MissingCreationFraction {
		b.flags |= flagNoCreation
	}
	return b
}

var (
	rareDomains = []string{"cdn.rare-domain.example", "update.example.net", "paste.example.org",
		"x7f3k2.dyn.example.com", "api.saas.example", "login.example.co"}
	appProtos = [][3]string{{"443", "6", "HTTPS"}, {"80", "6", "HTTP"}, {"53", "17", "DNS"},
		{"445", "6", "SMB"}, {"3389", "6", "RDP"}, {"22", "6", "SSH"}, {"8443", "6", "HTTPS"}}
)

// breach expands a stored record into the full API record (historicmodelonly=true,
// deviceattop=true, includebreachurl=true, minimal=false).
func (s *Simulator) breach(b *breachRec) darktrace.Breach {
	r := newRand(s.opts.Seed, streamBreach+uint64(b.pbid))
	m := &s.models[b.model]
	out := darktrace.Breach{
		PBID: b.pbid, Time: b.time, CreationTime: b.created,
		Acknowledged: darktrace.Acknowledgement{Acked: b.flags&flagAck != 0},
		Score:        darktrace.FlexFloat(float64(b.score) / 1000),
	}
	if b.flags&flagNoCreation != 0 {
		out.CreationTime = 0
	}
	if r.IntN(4) == 0 {
		out.CommentCount = 1 + r.IntN(3)
	}
	if !s.opts.NoURLs {
		out.BreachURL = "https://" + s.urlHost() + "/#modelbreach/" + strconv.FormatInt(b.pbid, 10)
	}
	out.Model.Model = m.Model
	if b.dev < 0 {
		out.Device = darktrace.Device{DID: -1}
		out.TriggeredComponents = []darktrace.TriggeredComponent{}
		applyOddBreach(&out, s.odd(oddBreach, b.pbid))
		return out
	}
	out.Device = s.devices[b.dev].Device
	hostileValues := b.flags&flagHostile != 0
	comps := 1 + r.IntN(2)
	for i := 0; i < comps; i++ {
		c := darktrace.TriggeredComponent{
			Time: b.time - int64(i)*int64(r.IntN(600_000)), CBID: b.pbid*4 + int64(i),
			CID: int64(1000 + r.IntN(9000)), Interval: []int64{3600, 86400, 600, 60}[r.IntN(4)],
			Logic: m.compLogic, Metric: m.metric,
		}
		c.CHID = c.CID*2 + int64(r.IntN(5))
		c.Threshold = darktrace.FlexFloat(1 + r.IntN(100))
		c.Size = c.Threshold + darktrace.FlexFloat(1+r.IntN(1000))
		ap := appProtos[r.IntN(len(appProtos))]
		dstIP := fmt.Sprintf("%d.%d.%d.%d", 11+r.IntN(180), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		host := rareDomains[r.IntN(len(rareDomains))]
		if hostileValues {
			host = hostile(r, host)
		}
		filters := []struct{ typ, cmp, arg, val string }{
			{"Destination IP", "does not match", "10.0.0.0/8", dstIP},
			{"Connection hostname", "display", "", host},
			{"Destination port", "=", ap[0], ap[0]},
			{"Protocol", "=", ap[1], ap[1]},
			{"Application protocol", "is", ap[2], ap[2]},
			{"Direction", "is", "out", "out"},
		}
		for j, f := range filters {
			if j > 1 && r.IntN(3) == 0 {
				continue // components do not always filter on everything
			}
			tf := darktrace.TriggeredFilter{
				CFID: c.CID*10 + int64(j), ID: string(rune('A' + j)), FilterType: f.typ,
				ComparatorType: f.cmp,
			}
			if f.arg != "" {
				tf.Arguments = jsontext.AppendKeepingBytes([]byte(`{"value":`), f.arg)
				tf.Arguments = append(tf.Arguments, '}')
			} else {
				tf.Arguments = []byte(`{}`)
			}
			if f.cmp == "display" {
				tf.ID = "d" + strconv.Itoa(j)
			}
			tf.Trigger.Value = darktrace.FlexString(f.val)
			c.TriggeredFilters = append(c.TriggeredFilters, tf)
		}
		out.TriggeredComponents = append(out.TriggeredComponents, c)
	}
	if m.Mitre != nil {
		for i, id := range m.Mitre.Techniques {
			out.MitreTechniques = append(out.MitreTechniques, darktrace.MitreTechnique{Technique: m.techniqueNames[i], TechniqueID: id})
		}
	}
	applyOddBreach(&out, s.odd(oddBreach, b.pbid))
	return out
}

// breachRender says how /modelbreaches renders records.
type breachRender struct {
	flatModel   bool // historicmodelonly=true
	deviceAtTop bool
	url         bool
	minimal     bool
}

// appendBreach renders one record as the API does under the given parameters.
func (s *Simulator) appendBreach(w *jw, b *breachRec, p breachRender) {
	full := s.breach(b)
	odd := s.odd(oddBreach, b.pbid)
	w.obj()
	w.kInt("pbid", full.PBID)
	w.kInt("time", full.Time)
	if full.CreationTime != 0 {
		w.kInt("creationTime", full.CreationTime)
	}
	if !odd.noComments {
		w.kInt("commentCount", int64(full.CommentCount))
	}
	if ack := full.Acknowledged; ack.Time != 0 || ack.Username != "" {
		w.key("acknowledged")
		w.obj()
		w.kInt("time", ack.Time)
		w.kStr("username", ack.Username)
		w.endObj()
	} else {
		w.kBool("acknowledged", ack.Acked)
	}
	w.kFloat("score", float64(full.Score))
	if p.url && full.BreachURL != "" {
		w.kStr("breachUrl", full.BreachURL)
	}
	model := &full.Model.Model // the model definition, as the record's odd shapes render it
	w.key("model")
	if p.flatModel {
		appendModel(w, model, p.minimal)
	} else {
		// The {then, now} shape: "now" is the model as edited since the breach fired.
		now := *model
		now.PHID++
		w.obj()
		w.key("then")
		appendModel(w, model, p.minimal)
		w.key("now")
		appendModel(w, &now, p.minimal)
		w.endObj()
	}
	switch {
	case p.deviceAtTop && p.minimal:
		w.key("device")
		w.obj()
		w.kInt("did", full.Device.DID)
		w.endObj()
	case p.deviceAtTop:
		w.key("device")
		appendDevice(w, &full.Device)
	default:
		w.kInt("did", full.Device.DID)
	}
	if !p.minimal {
		w.key("triggeredComponents")
		w.arr()
		for i := range full.TriggeredComponents {
			appendComponent(w, &full.TriggeredComponents[i])
		}
		w.endArr()
		if !odd.noComments {
			w.objects("mitreTechniques", len(full.MitreTechniques), func(i int) {
				t := &full.MitreTechniques[i]
				w.kStr("technique", t.Technique)
				w.kStr("techniqueID", t.TechniqueID)
			})
		}
	}
	w.endObj()
}

func appendModel(w *jw, m *darktrace.Model, minimal bool) {
	w.obj()
	w.kStr("name", m.Name)
	w.kInt("pid", m.PID)
	w.kInt("phid", m.PHID)
	w.kStr("uuid", m.UUID)
	w.kStrs("tags", m.Tags)
	if m.Priority != nil {
		w.kInt("priority", int64(*m.Priority))
	}
	w.kStr("category", m.Category)
	w.kBool("compliance", m.Compliance)
	if !minimal {
		w.kStr("description", m.Description)
		w.kRaw("logic", m.Logic)
		w.kRaw("actions", m.Actions)
		if m.Mitre != nil {
			w.key("mitre")
			w.obj()
			w.kStrs("tactics", m.Mitre.Tactics)
			w.kStrs("techniques", m.Mitre.Techniques)
			w.endObj()
		}
	}
	w.endObj()
}

func appendDevice(w *jw, d *darktrace.Device) {
	w.obj()
	w.kInt("did", d.DID)
	if d.DID < 0 {
		w.endObj()
		return
	}
	if d.DeviceLabel == "" || d.IP != "" {
		w.kStr("ip", d.IP)
	}
	w.objects("ips", len(d.IPs), func(i int) {
		ip := &d.IPs[i]
		w.kStr("ip", ip.IP)
		w.kInt("timems", ip.TimeMS)
		w.kStr("time", ip.Time)
		w.kInt("sid", ip.SID)
	})
	w.kInt("sid", d.SID)
	if d.Hostname != "" {
		w.kStr("hostname", d.Hostname)
	}
	if d.MACAddress != "" {
		w.kStr("macaddress", d.MACAddress)
	}
	if d.DeviceLabel != "" {
		w.kStr("devicelabel", d.DeviceLabel)
	}
	if d.DeviceLabel == "" || d.Vendor != "" {
		w.kStr("vendor", d.Vendor)
	}
	w.kStr("typename", d.TypeName)
	w.kStr("typelabel", d.TypeLabel)
	w.kInt("firstSeen", d.FirstSeen)
	w.kInt("lastSeen", d.LastSeen)
	w.objects("tags", len(d.Tags), func(i int) {
		t := &d.Tags[i]
		w.kInt("tid", t.TID)
		w.kInt("expiry", 0)
		w.kInt("thid", t.TID)
		w.kStr("name", t.Name)
		w.kBool("restricted", false)
		w.key("data")
		w.obj()
		w.kBool("auto", false)
		w.kInt("color", 200)
		w.kStr("description", "")
		w.endObj()
		w.kBool("isReferenced", true)
	})
	w.endObj()
}

func appendComponent(w *jw, c *darktrace.TriggeredComponent) {
	w.obj()
	w.kInt("time", c.Time)
	w.kInt("cbid", c.CBID)
	w.kInt("cid", c.CID)
	w.kInt("chid", c.CHID)
	w.kFloat("size", float64(c.Size))
	w.kFloat("threshold", float64(c.Threshold))
	w.kInt("interval", c.Interval)
	w.kRaw("logic", c.Logic)
	w.key("metric")
	w.obj()
	w.kInt("mlid", c.Metric.MLID)
	w.kStr("name", c.Metric.Name)
	w.kStr("label", c.Metric.Label)
	w.endObj()
	w.objects("triggeredFilters", len(c.TriggeredFilters), func(i int) {
		f := &c.TriggeredFilters[i]
		w.kInt("cfid", f.CFID)
		w.kStr("id", f.ID)
		w.kStr("filterType", f.FilterType)
		w.kRaw("arguments", f.Arguments)
		w.kStr("comparatorType", f.ComparatorType)
		w.key("trigger")
		w.obj()
		w.kStr("value", string(f.Trigger.Value))
		w.endObj()
	})
	w.endObj()
}

// AcknowledgeBreach marks a breach acknowledged, hiding it from queries without
// includeacknowledged=true; false if pbid is unknown.
func (s *Simulator) AcknowledgeBreach(pbid int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findLocked(pbid)
	if b != nil {
		b.flags |= flagAck
	}
	return b != nil
}

// UnacknowledgeBreach clears a breach's acknowledgement, as an analyst who reopens it does;
// false if pbid is unknown.
func (s *Simulator) UnacknowledgeBreach(pbid int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findLocked(pbid)
	if b != nil {
		b.flags &^= flagAck
	}
	return b != nil
}
