// decoders.go holds the hand-written record decoders on top of the scanner (scan.go), one
// switch per JSON object of a record, and stays in one file past 500 lines on purpose: each
// switch mirrors one type of types.go, and they are read and fuzzed together
// (TestDecodeMatchesEncodingJSON, FuzzDecode).

package darktrace

import "strconv"

// Anomaly is a value of an unexpected type found in a record that was nevertheless decoded:
// what could be read was kept, the rest left empty.
type Anomaly struct {
	Source string // SourceBreaches, SourceAntigena or SourceAIAnalyst
	// Field is the JSON path, with [] for array elements, e.g. "model.priority",
	// "device.ips[].sid". Names come from a fixed set, so they are safe as metric labels.
	Field string
	ID    string // the record's id as read (sanitized), "" when it has none
}

// AnomalyFunc receives each anomaly of a record once, after the record is decoded. May be nil.
type AnomalyFunc func(Anomaly)

func report(fn AnomalyFunc, s *scanner, source, id string) {
	if fn == nil {
		return
	}
	for _, f := range s.anoms {
		fn(Anomaly{Source: source, Field: f, ID: sanitizeID(id)})
	}
}

// DecodeBreach decodes one /modelbreaches record tolerantly (see scanner): only input that is
// not a JSON object is an error. A record without a pbid decodes with PBID 0; deciding to skip
// it is the caller's business.
func DecodeBreach(raw []byte, anomalies AnomalyFunc) (Breach, error) {
	var b Breach
	s := scanner{b: raw}
	if !s.object(func(k []byte) { s.breach(&b, k) }) || s.bad {
		return b, errSyntax
	}
	if b.PBID != 0 {
		report(anomalies, &s, SourceBreaches, strconv.FormatInt(b.PBID, 10))
	} else {
		report(anomalies, &s, SourceBreaches, "")
	}
	return b, nil
}

// DecodeAction decodes one /antigena record tolerantly.
func DecodeAction(raw []byte, anomalies AnomalyFunc) (Action, error) {
	var a Action
	s := scanner{b: raw}
	if !s.object(func(k []byte) { s.action(&a, k) }) || s.bad {
		return a, errSyntax
	}
	id := ""
	if a.CodeID != 0 {
		id = strconv.FormatInt(a.CodeID, 10)
	}
	report(anomalies, &s, SourceAntigena, id)
	return a, nil
}

// DecodeIncidentEvent decodes one /aianalyst/incidentevents record tolerantly.
func DecodeIncidentEvent(raw []byte, anomalies AnomalyFunc) (IncidentEvent, error) {
	var e IncidentEvent
	s := scanner{b: raw}
	if !s.object(func(k []byte) { s.incident(&e, k) }) || s.bad {
		return e, errSyntax
	}
	report(anomalies, &s, SourceAIAnalyst, e.ID)
	return e, nil
}

var breachKeys = []string{"pbid", "time", "creationTime", "commentCount", "acknowledged", "score",
	"breachUrl", "model", "device", "triggeredComponents", "mitreTechniques"}

func (s *scanner) breach(b *Breach, k []byte) {
	switch string(k) {
	case "pbid":
		s.Int(&b.PBID, "pbid")
	case "time":
		s.Int(&b.Time, "time")
	case "creationTime":
		s.Int(&b.CreationTime, "creationTime")
	case "commentCount":
		s.IntN(&b.CommentCount, "commentCount")
	case "acknowledged":
		s.ack(&b.Acknowledged)
	case "score":
		s.Float(&b.Score, "score")
	case "breachUrl":
		s.String(&b.BreachURL, "breachUrl")
	case "model":
		s.breachModel(&b.Model)
	case "device":
		s.Object("device", func(k []byte) { s.device(&b.Device, k) })
	case "triggeredComponents":
		objects(s, &b.TriggeredComponents, "triggeredComponents[]", s.component)
	case "mitreTechniques":
		objects(s, &b.MitreTechniques, "mitreTechniques[]", func(t *MitreTechnique, k []byte) {
			switch canonical(k, "technique", "techniqueID") {
			case "technique":
				s.String(&t.Technique, "mitreTechniques[].technique")
			case "techniqueID":
				s.String(&t.TechniqueID, "mitreTechniques[].techniqueID")
			}
		})
	default:
		if c, ok := fold(k, breachKeys); ok {
			s.breach(b, c)
		}
	}
}

// ack reads `acknowledged`: a bool, null, or {"time", "username"}.
func (s *scanner) ack(a *Acknowledgement) {
	switch s.peek() {
	case '{':
		*a = Acknowledgement{Acked: true}
		s.object(func(k []byte) {
			switch canonical(k, "time", "username") {
			case "time":
				s.Int(&a.Time, "acknowledged.time")
			case "username":
				s.String(&a.Username, "acknowledged.username")
			}
		})
	case 'n':
		if !s.isNull() {
			s.fail()
		}
		*a = Acknowledgement{}
	default:
		var v bool
		s.Bool(&v, "acknowledged")
		*a = Acknowledgement{Acked: v}
	}
}

// breachModel reads both model shapes, as BreachModel.UnmarshalJSON does.
func (s *scanner) breachModel(m *BreachModel) {
	var flat Model
	var then, now *Model
	if s.isNull() {
		*m = BreachModel{}
		return
	}
	ok := s.object(func(k []byte) {
		switch string(k) {
		case "then":
			s.modelPtr(&then, "model.then")
		case "now":
			s.modelPtr(&now, "model.now")
		default:
			if c, ok := fold(k, []string{"then", "now"}); ok {
				if string(c) == "then" {
					s.modelPtr(&then, "model.then")
				} else {
					s.modelPtr(&now, "model.now")
				}
				return
			}
			s.model(&flat, k, "model.")
		}
	})
	if !ok {
		s.skip()
		s.anomaly("model")
		return
	}
	switch {
	case then != nil:
		m.Model = *then
	case now != nil:
		m.Model = *now
	default:
		m.Model = flat
	}
	m.Now = now
}

func (s *scanner) modelPtr(dst **Model, field string) {
	if s.isNull() {
		*dst = nil
		return
	}
	m := *dst
	if m == nil {
		m = new(Model)
	}
	if !s.object(func(k []byte) { s.model(m, k, field+".") }) {
		s.skip()
		s.anomaly(field)
		return
	}
	*dst = m
}

var modelKeys = []string{"name", "pid", "phid", "uuid", "tags", "priority", "category", "compliance",
	"description", "logic", "actions", "mitre"}

// model reads one key of a model; prefix names where it is ("model.", "model.then.").
func (s *scanner) model(m *Model, k []byte, prefix string) {
	switch string(k) {
	case "name":
		s.String(&m.Name, prefix+"name")
	case "pid":
		s.Int(&m.PID, prefix+"pid")
	case "phid":
		s.Int(&m.PHID, prefix+"phid")
	case "uuid":
		s.String(&m.UUID, prefix+"uuid")
	case "tags":
		s.Strings(&m.Tags, prefix+"tags")
	case "priority":
		if s.isNull() {
			m.Priority = nil
			return
		}
		var v int64
		if s.Int(&v, prefix+"priority") {
			p := int(v)
			m.Priority = &p
		}
	case "category":
		s.String(&m.Category, prefix+"category")
	case "compliance":
		s.Bool(&m.Compliance, prefix+"compliance")
	case "description":
		s.String(&m.Description, prefix+"description")
	case "logic":
		m.Logic = s.raw()
	case "actions":
		m.Actions = s.raw()
	case "mitre":
		if s.isNull() {
			m.Mitre = nil
			return
		}
		mm := m.Mitre
		if mm == nil {
			mm = new(ModelMitre)
		}
		ok := s.object(func(k []byte) {
			switch canonical(k, "tactics", "techniques") {
			case "tactics":
				s.Strings(&mm.Tactics, prefix+"mitre.tactics")
			case "techniques":
				s.Strings(&mm.Techniques, prefix+"mitre.techniques")
			}
		})
		if !ok {
			s.skip()
			s.anomaly(prefix + "mitre")
			return
		}
		m.Mitre = mm
	default:
		if c, ok := fold(k, modelKeys); ok {
			s.model(m, c, prefix)
		}
	}
}

var deviceKeys = []string{"did", "ip", "ips", "sid", "hostname", "macaddress", "vendor", "typename",
	"typelabel", "firstSeen", "lastSeen", "tags", "devicelabel"}

func (s *scanner) device(d *Device, k []byte) {
	switch string(k) {
	case "did":
		s.Int(&d.DID, "device.did")
	case "ip":
		s.String(&d.IP, "device.ip")
	case "ips":
		objects(s, &d.IPs, "device.ips[]", func(ip *DeviceIP, k []byte) {
			switch canonical(k, "ip", "timems", "time", "sid") {
			case "ip":
				s.String(&ip.IP, "device.ips[].ip")
			case "timems":
				s.Int(&ip.TimeMS, "device.ips[].timems")
			case "time":
				s.String(&ip.Time, "device.ips[].time")
			case "sid":
				s.Int(&ip.SID, "device.ips[].sid")
			}
		})
	case "sid":
		s.Int(&d.SID, "device.sid")
	case "hostname":
		s.String(&d.Hostname, "device.hostname")
	case "macaddress":
		s.String(&d.MACAddress, "device.macaddress")
	case "vendor":
		s.String(&d.Vendor, "device.vendor")
	case "typename":
		s.String(&d.TypeName, "device.typename")
	case "typelabel":
		s.String(&d.TypeLabel, "device.typelabel")
	case "firstSeen":
		s.Int(&d.FirstSeen, "device.firstSeen")
	case "lastSeen":
		s.Int(&d.LastSeen, "device.lastSeen")
	case "devicelabel":
		s.String(&d.DeviceLabel, "device.devicelabel")
	case "tags":
		objects(s, &d.Tags, "device.tags[]", func(t *DeviceTag, k []byte) {
			switch canonical(k, "tid", "name") {
			case "tid":
				s.Int(&t.TID, "device.tags[].tid")
			case "name":
				s.String(&t.Name, "device.tags[].name")
			}
		})
	default:
		if c, ok := fold(k, deviceKeys); ok {
			s.device(d, c)
		}
	}
}

var componentKeys = []string{"time", "cbid", "cid", "chid", "size", "threshold", "interval", "logic",
	"metric", "triggeredFilters"}

func (s *scanner) component(c *TriggeredComponent, k []byte) {
	switch string(k) {
	case "time":
		s.Int(&c.Time, "triggeredComponents[].time")
	case "cbid":
		s.Int(&c.CBID, "triggeredComponents[].cbid")
	case "cid":
		s.Int(&c.CID, "triggeredComponents[].cid")
	case "chid":
		s.Int(&c.CHID, "triggeredComponents[].chid")
	case "size":
		s.Float(&c.Size, "triggeredComponents[].size")
	case "threshold":
		s.Float(&c.Threshold, "triggeredComponents[].threshold")
	case "interval":
		s.Int(&c.Interval, "triggeredComponents[].interval")
	case "logic":
		c.Logic = s.raw()
	case "metric":
		s.Object("triggeredComponents[].metric", func(k []byte) {
			switch canonical(k, "mlid", "name", "label") {
			case "mlid":
				s.Int(&c.Metric.MLID, "triggeredComponents[].metric.mlid")
			case "name":
				s.String(&c.Metric.Name, "triggeredComponents[].metric.name")
			case "label":
				s.String(&c.Metric.Label, "triggeredComponents[].metric.label")
			}
		})
	case "triggeredFilters":
		objects(s, &c.TriggeredFilters, "triggeredComponents[].triggeredFilters[]", s.filter)
	default:
		if f, ok := fold(k, componentKeys); ok {
			s.component(c, f)
		}
	}
}

var filterKeys = []string{"cfid", "id", "filterType", "arguments", "comparatorType", "trigger"}

func (s *scanner) filter(f *TriggeredFilter, k []byte) {
	const p = "triggeredComponents[].triggeredFilters[]."
	switch string(k) {
	case "cfid":
		s.Int(&f.CFID, p+"cfid")
	case "id":
		s.String(&f.ID, p+"id")
	case "filterType":
		s.String(&f.FilterType, p+"filterType")
	case "arguments":
		f.Arguments = s.raw()
	case "comparatorType":
		s.String(&f.ComparatorType, p+"comparatorType")
	case "trigger":
		s.Object(p+"trigger", func(k []byte) {
			if string(k) == "value" || bytesEqualFold(k, "value") {
				s.FlexString(&f.Trigger.Value, p+"trigger.value")
			}
		})
	default:
		if c, ok := fold(k, filterKeys); ok {
			s.filter(f, c)
		}
	}
}

func bytesEqualFold(k []byte, name string) bool {
	_, ok := fold(k, []string{name})
	return ok
}

var actionKeys = []string{"codeid", "did", "ip", "action", "label", "detail", "manual", "triggerer",
	"score", "pbid", "model", "modeluuid", "start", "expires", "updated", "blocked", "active",
	"cleared", "agemail", "aghost", "history"}

func (s *scanner) action(a *Action, k []byte) {
	switch string(k) {
	case "codeid":
		s.Int(&a.CodeID, "codeid")
	case "did":
		s.Int(&a.DID, "did")
	case "ip":
		s.String(&a.IP, "ip")
	case "action":
		s.String(&a.Action, "action")
	case "label":
		s.String(&a.Label, "label")
	case "detail":
		s.String(&a.Detail, "detail")
	case "manual":
		s.Bool(&a.Manual, "manual")
	case "triggerer":
		if s.isNull() {
			a.Triggerer = nil
			return
		}
		t := a.Triggerer
		if t == nil {
			t = new(Triggerer)
		}
		ok := s.object(func(k []byte) {
			switch canonical(k, "username", "reason") {
			case "username":
				s.String(&t.Username, "triggerer.username")
			case "reason":
				s.String(&t.Reason, "triggerer.reason")
			}
		})
		if !ok {
			// A bare name is what can be read of who triggered it.
			if s.peek() == '"' {
				a.Triggerer = &Triggerer{Username: s.str()}
			} else {
				s.skip()
			}
			s.anomaly("triggerer")
			return
		}
		a.Triggerer = t
	case "score":
		s.Float(&a.Score, "score")
	case "pbid":
		s.Int(&a.PBID, "pbid")
	case "model":
		s.String(&a.Model, "model")
	case "modeluuid":
		s.String(&a.ModelUUID, "modeluuid")
	case "start":
		s.Int(&a.Start, "start")
	case "expires":
		s.Int(&a.Expires, "expires")
	case "updated":
		s.FlexInt(&a.Updated, "updated")
	case "blocked":
		s.Bool(&a.Blocked, "blocked")
	case "active":
		s.Bool(&a.Active, "active")
	case "cleared":
		s.Bool(&a.Cleared, "cleared")
	case "agemail":
		s.Bool(&a.AGEmail, "agemail")
	case "aghost":
		s.String(&a.AGHost, "aghost")
	case "history":
		objects(s, &a.History, "history[]", func(h *ActionHistory, k []byte) { s.history(h, k) })
	default:
		if c, ok := fold(k, actionKeys); ok {
			s.action(a, c)
		}
	}
}

var historyKeys = []string{"family", "username", "action", "reason", "time"}

func (s *scanner) history(h *ActionHistory, k []byte) {
	switch string(k) {
	case "family":
		s.String(&h.Family, "history[].family")
	case "username":
		s.String(&h.Username, "history[].username")
	case "action":
		s.String(&h.Action, "history[].action")
	case "reason":
		s.String(&h.Reason, "history[].reason")
	case "time":
		s.Int(&h.Time, "history[].time")
	default:
		if c, ok := fold(k, historyKeys); ok {
			s.history(h, c)
		}
	}
}

var incidentKeys = []string{"id", "createdAt", "title", "summary", "summariser", "aiaScore", "groupScore",
	"currentGroup", "groupCategory", "groupPreviousGroups", "category", "acknowledged", "pinned",
	"mitreTactics", "attackPhases", "periods", "breachDevices", "relatedBreaches", "details",
	"incidentEventUrl"}

func (s *scanner) incident(e *IncidentEvent, k []byte) {
	switch string(k) {
	case "id":
		s.String(&e.ID, "id")
	case "createdAt":
		s.Int(&e.CreatedAt, "createdAt")
	case "title":
		s.String(&e.Title, "title")
	case "summary":
		s.String(&e.Summary, "summary")
	case "summariser":
		s.String(&e.Summariser, "summariser")
	case "aiaScore":
		s.Float(&e.AIAScore, "aiaScore")
	case "groupScore":
		s.Float(&e.GroupScore, "groupScore")
	case "currentGroup":
		s.String(&e.CurrentGroup, "currentGroup")
	case "groupCategory":
		s.String(&e.GroupCategory, "groupCategory")
	case "groupPreviousGroups":
		s.Strings(&e.GroupPreviousGroups, "groupPreviousGroups")
	case "category":
		s.String(&e.Category, "category")
	case "acknowledged":
		if s.peek() == '{' {
			// As on breaches: an acknowledgement object means acknowledged.
			s.skip()
			e.Acknowledged = true
			s.anomaly("acknowledged")
			return
		}
		s.Bool(&e.Acknowledged, "acknowledged")
	case "pinned":
		s.Bool(&e.Pinned, "pinned")
	case "mitreTactics":
		s.Strings(&e.MitreTactics, "mitreTactics")
	case "attackPhases":
		s.Ints(&e.AttackPhases, "attackPhases")
	case "periods":
		objects(s, &e.Periods, "periods[]", func(p *Period, k []byte) {
			switch canonical(k, "start", "end") {
			case "start":
				s.Int(&p.Start, "periods[].start")
			case "end":
				s.Int(&p.End, "periods[].end")
			}
		})
	case "breachDevices":
		objects(s, &e.BreachDevices, "breachDevices[]", func(d *BreachDevice, k []byte) { s.breachDevice(d, k) })
	case "relatedBreaches":
		objects(s, &e.RelatedBreaches, "relatedBreaches[]", func(r *RelatedBreach, k []byte) { s.relatedBreach(r, k) })
	case "details":
		e.Details = s.raw()
	case "incidentEventUrl":
		s.String(&e.IncidentEventURL, "incidentEventUrl")
	default:
		if c, ok := fold(k, incidentKeys); ok {
			s.incident(e, c)
		}
	}
}

var breachDeviceKeys = []string{"did", "sid", "hostname", "ip", "mac", "subnet", "identifier"}

func (s *scanner) breachDevice(d *BreachDevice, k []byte) {
	const p = "breachDevices[]."
	switch string(k) {
	case "did":
		s.Int(&d.DID, p+"did")
	case "sid":
		s.Int(&d.SID, p+"sid")
	case "hostname":
		s.String(&d.Hostname, p+"hostname")
	case "ip":
		s.String(&d.IP, p+"ip")
	case "mac":
		s.String(&d.MAC, p+"mac")
	case "subnet":
		s.String(&d.Subnet, p+"subnet")
	case "identifier":
		s.String(&d.Identifier, p+"identifier")
	default:
		if c, ok := fold(k, breachDeviceKeys); ok {
			s.breachDevice(d, c)
		}
	}
}

var relatedBreachKeys = []string{"modelName", "pbid", "threatScore", "timestamp"}

func (s *scanner) relatedBreach(r *RelatedBreach, k []byte) {
	const p = "relatedBreaches[]."
	switch string(k) {
	case "modelName":
		s.String(&r.ModelName, p+"modelName")
	case "pbid":
		s.Int(&r.PBID, p+"pbid")
	case "threatScore":
		s.Float(&r.ThreatScore, p+"threatScore")
	case "timestamp":
		s.Int(&r.Timestamp, p+"timestamp")
	default:
		if c, ok := fold(k, relatedBreachKeys); ok {
			s.relatedBreach(r, c)
		}
	}
}
