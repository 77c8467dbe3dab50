package darktrace

// The record decoders of /antigena actions and /aianalyst/incidentevents (decoders.go has
// the breach decoders and the entry points).

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
