package alert

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dtforward/dtforward/darktrace"
)

// ErrNoID is wrapped by the converters' error when a record has no usable id (pbid, codeid or
// incident event id): such a record cannot be deduplicated or linked, so the caller logs and
// skips it.
var ErrNoID = errors.New("record has no id")

// FromBreach converts a model breach. raw is the record as received; a copy is kept for
// darktrace-json (the client reuses its buffer between records);
// appliance is the label (DARKTRACE_NAME); host is the appliance host used to build the breach
// URL when the record has none (empty host: no URL is invented).
func FromBreach(b *darktrace.Breach, raw []byte, appliance, host string) (*Alert, error) {
	if b == nil {
		return nil, errors.New("model breach: nil record")
	}
	if b.PBID <= 0 {
		return nil, fmt.Errorf("model breach (model %q): pbid %d: %w", clean(b.Model.Name), b.PBID, ErrNoID)
	}
	id := strconv.FormatInt(b.PBID, 10)
	m := &b.Model.Model
	a := &Alert{
		Kind:      KindBreach,
		ID:        id,
		Appliance: clean(appliance),
		Time:      msTime(b.Time),
		Created:   msTime(b.Created()),
		Name:      clean(m.Name),
		Category:  clean(m.Category),
		Priority:  NoPriority,
		Model: Model{
			PID:   m.PID,
			UUID:  clean(m.UUID),
			Name:  clean(m.Name),
			Tags:  cleanList(m.Tags),
			MITRE: breachMITRE(b),
		},
		Device:  breachDevice(&b.Device),
		Dest:    destination(b.TriggeredComponents),
		URL:     recordURL(b.BreachURL, host, "#modelbreach/", id),
		Message: firstParagraph(m.Description),
		Raw:     bytes.Clone(raw),
	}
	if m.PID > 0 {
		// No pid: left empty for the formatters to omit or fall back on, never a fake "0".
		a.SignatureID = strconv.FormatInt(m.PID, 10)
	}
	if m.Priority != nil {
		a.Priority = *m.Priority
	}
	if ack := b.Acknowledged; ack.Acked {
		a.Ack = &Acknowledgement{Time: msTime(ack.Time), User: clean(strings.TrimSpace(ack.Username))}
	}
	if a.Name == "" {
		a.Name = "Model breach " + id
	}
	if a.Category == "" && m.Compliance {
		a.Category = "Compliance"
	}
	if a.Message == "" {
		a.Message = a.Name
	}
	a.setScore(b.Score.Float64())
	return a, nil
}

// FromAction converts one state of an Antigena (RESPOND) action; the poller calls it once per
// state change. The state comes from darktrace.Action.State, manual actions are flagged, and
// the URL points at the breach that triggered the action when there is one.
func FromAction(act *darktrace.Action, raw []byte, appliance, host string) (*Alert, error) {
	if act == nil {
		return nil, errors.New("antigena action: nil record")
	}
	if act.CodeID <= 0 {
		return nil, fmt.Errorf("antigena action (%q): codeid %d: %w", clean(act.Action), act.CodeID, ErrNoID)
	}
	id := strconv.FormatInt(act.CodeID, 10)
	typ := clean(act.Action)
	a := &Alert{
		Kind:        KindAntigena,
		ID:          id,
		Appliance:   clean(appliance),
		Time:        msTime(act.Start),
		Created:     msTime(act.Updated.Int64()),
		Name:        clean(act.Label),
		SignatureID: "antigena:" + typ,
		Category:    "Antigena",
		Priority:    NoPriority,
		Model:       Model{Name: clean(act.Model), UUID: clean(act.ModelUUID)},
		Device:      Device{DID: act.DID, IP: validIP(act.IP)},
		Message:     clean(act.Detail),
		Action: &Action{
			Type:    typ,
			Label:   clean(act.Label),
			State:   actionState(act),
			Manual:  act.Manual,
			Expires: msTime(act.Expires),
			PBID:    act.PBID,
		},
		Raw: bytes.Clone(raw),
	}
	if typ == "" {
		a.SignatureID = "antigena:unknown"
	}
	if a.Device.IP == "" {
		a.Device.Placeholder = placeholderIP(act.IP)
	}
	if act.Triggerer != nil {
		a.Action.Triggerer = clean(act.Triggerer.Username)
	}
	if a.Created.IsZero() {
		a.Created = a.Time
	}
	if a.Name == "" {
		a.Name = "Antigena action " + typ
	}
	if a.Message == "" {
		a.Message = a.Name
	}
	if act.PBID > 0 {
		a.URL = recordURL("", host, "#modelbreach/", strconv.FormatInt(act.PBID, 10))
	}
	a.setScore(act.Score.Float64())
	return a, nil
}

// actionState is darktrace.Action.State, refined: an active action whose latest history entry
// is an extension reports "extended", the lifecycle step analysts track
// (README.md, "CEF": pending, active, extended, cleared, expired).
func actionState(act *darktrace.Action) string {
	st := act.State()
	if st != "active" || len(act.History) == 0 {
		return st
	}
	last := act.History[0]
	for _, h := range act.History[1:] {
		if h.Time >= last.Time {
			last = h
		}
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(last.Action)), "extended") {
		return "extended"
	}
	return st
}

// FromIncident converts an AI Analyst incident event. Severity and category are the event's
// own (aiaScore 0–100 normalised to 0–1, category): the group an event belongs to
// (currentGroup, groupScore, groupCategory) is kept apart in Group, because a group's score
// says how bad the whole incident is, not this event. The device is the first breach device
// that carries anything; an IP with a prefix length (10.0.0.5/24) is reduced to the address,
// a bare network (10.0.0.0/24) is dropped.
func FromIncident(e *darktrace.IncidentEvent, raw []byte, appliance, host string) (*Alert, error) {
	if e == nil {
		return nil, errors.New("ai analyst incident event: nil record")
	}
	id := clean(strings.TrimSpace(e.ID))
	if id == "" {
		return nil, fmt.Errorf("ai analyst incident event (%q): %w", clean(e.Title), ErrNoID)
	}
	summariser := clean(e.Summariser)
	if summariser == "" {
		summariser = "unknown"
	}
	a := &Alert{
		Kind:        KindAIAnalyst,
		ID:          id,
		Appliance:   clean(appliance),
		Time:        msTime(e.CreatedAt),
		Created:     msTime(e.CreatedAt),
		Name:        clean(e.Title),
		SignatureID: "aianalyst:" + summariser,
		Category:    capitalize(clean(strings.TrimSpace(e.Category))),
		Priority:    NoPriority,
		URL:         recordURL(e.IncidentEventURL, host, "#aiaincidentevent/", id),
		Message:     clean(strings.TrimSpace(e.Summary)),
		Group:       incidentGroup(e),
		Raw:         bytes.Clone(raw),
	}
	if e.Acknowledged {
		a.Ack = &Acknowledgement{}
	}
	if len(e.Periods) > 0 && e.Periods[0].Start > 0 && e.Periods[0].Start < e.CreatedAt {
		a.Time = msTime(e.Periods[0].Start)
	}
	for i := range e.BreachDevices {
		d := IncidentDevice(&e.BreachDevices[i])
		if d != (Device{}) {
			a.Device = d
			break
		}
	}
	if a.Name == "" {
		a.Name = "AI Analyst incident event " + id
	}
	if a.Message == "" {
		a.Message = a.Name
	}
	a.setScore(e.AIAScore.Float64() / 100)
	return a, nil
}

// incidentGroup returns the event's incident group, nil when the record names none. A
// groupScore of 0 is taken as absent (Score -1): appliances send null for an unscored group,
// which decodes as 0.
func incidentGroup(e *darktrace.IncidentEvent) *Group {
	g := &Group{
		ID:       clean(strings.TrimSpace(e.CurrentGroup)),
		Score:    -1,
		Category: capitalize(clean(strings.TrimSpace(e.GroupCategory))),
	}
	if s := e.GroupScore.Float64(); s > 0 && !math.IsNaN(s) && !math.IsInf(s, 0) {
		g.Score = math.Min(s, 100) / 100
	}
	if g.ID == "" && g.Category == "" && g.Score < 0 {
		return nil
	}
	return g
}

// setScore clamps s to 0..1 (NaN counts as 0) and derives Severity = round(s*10).
func (a *Alert) setScore(s float64) {
	if math.IsNaN(s) || s < 0 {
		s = 0
	}
	if s > 1 {
		s = 1
	}
	a.Score = s
	a.Severity = int(math.Round(s * 10))
}

func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// clean makes s valid UTF-8. encoding/json already does this for decoded records; records built
// any other way (tests, the simulator) get the same guarantee.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cleanList drops empty and blank entries (real models carry tags like "").
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if strings.TrimSpace(s) == "" {
			continue
		}
		out = append(out, clean(s))
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// firstParagraph returns the text before the first blank line: Darktrace model descriptions
// start with what the model detects and continue with "Action: ..." advice and notes. Some
// records carry the two characters `\` `n` instead of newlines; they count as newlines.
func firstParagraph(s string) string {
	if strings.Contains(s, `\n`) {
		s = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n").Replace(s)
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return clean(s)
}

// recordURL returns the record's own URL when it has one, else https://host/<fragment><id>.
func recordURL(own, host, fragment, id string) string {
	if own = strings.TrimSpace(own); own != "" {
		return clean(own)
	}
	host = strings.TrimSpace(host)
	if host == "" {
		return ""
	}
	return "https://" + clean(host) + "/" + fragment + id
}

// validIP returns the canonical form of s when it is an IP address, "" otherwise (placeholders
// such as "192.168.16.#54818", hostnames, empty strings).
func validIP(s string) string {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || ip.Zone() != "" {
		return ""
	}
	return ip.Unmap().String()
}

// validMAC returns s as lower-case colon-separated EUI-48, "" when it is not one.
func validMAC(s string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

func breachDevice(d *darktrace.Device) Device {
	if d.DID < 0 {
		// System breaches (did -1) are about the appliance itself; whatever else the record
		// carries is not a device.
		return Device{DID: d.DID}
	}
	out := Device{
		DID:      d.DID,
		Hostname: clean(strings.TrimSpace(d.Hostname)),
		IP:       validIP(d.IP),
		MAC:      validMAC(d.MACAddress),
		Type:     clean(firstNonEmpty(d.TypeLabel, d.TypeName)),
		SID:      d.SID,
		Label:    clean(strings.TrimSpace(d.DeviceLabel)),
	}
	if out.IP == "" {
		out.Placeholder = placeholderIP(d.IP)
	}
	return out
}

// placeholderIP returns s when it is an address with a '#' part, the form the appliance uses
// for a device it knows no address of ("10.0.0.#36859"), "" otherwise.
func placeholderIP(s string) string {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '#')
	if i <= 0 || i == len(s)-1 || len(s) > 64 {
		return ""
	}
	for _, r := range s[:i] {
		if !(r == '.' || r == ':' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F')) {
			return ""
		}
	}
	for _, r := range s[i+1:] {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return s
}

// IncidentDevice is one device of an AI Analyst event: its address may come as a prefix
// ("10.0.0.5/24"), which is reduced to the address; a bare network is no device address.
func IncidentDevice(d *darktrace.BreachDevice) Device {
	ip := strings.TrimSpace(d.IP)
	if strings.Contains(ip, "/") {
		p, err := netip.ParsePrefix(ip)
		if err != nil || (p.Bits() < p.Addr().BitLen() && p.Masked().Addr() == p.Addr()) {
			ip = "" // a network, not a device address
		} else {
			ip = p.Addr().String()
		}
	}
	return Device{
		DID:      d.DID,
		Hostname: clean(strings.TrimSpace(d.Hostname)),
		IP:       validIP(ip),
		MAC:      validMAC(d.MAC),
		SID:      d.SID,
	}
}

func breachMITRE(b *darktrace.Breach) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			return
		}
		seen[id] = true
		out = append(out, clean(id))
	}
	if b.Model.Mitre != nil {
		for _, t := range b.Model.Mitre.Techniques {
			add(t)
		}
	}
	for _, t := range b.MitreTechniques {
		add(t.TechniqueID)
	}
	return out
}

// ipProtocols names the IANA protocol numbers Darktrace's "Protocol" filter reports.
var ipProtocols = map[int]string{
	1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP", 51: "AH",
	58: "ICMPv6", 89: "OSPF", 132: "SCTP",
}

// protocolName maps a numeric protocol to its name; names pass through upper-cased and unknown
// numbers stay numeric.
func protocolName(v string) string {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		if name, ok := ipProtocols[n]; ok {
			return name
		}
		return strconv.Itoa(n)
	}
	return clean(strings.ToUpper(v))
}

// destination collects the destination endpoint from the triggered filters: the first valid
// value of each filter type wins, in component order.
func destination(comps []darktrace.TriggeredComponent) Endpoint {
	var ep Endpoint
	for i := range comps {
		fillDestination(&ep, &comps[i])
	}
	return ep
}

// ComponentDestination is the destination one triggered component names, by the rules of
// the alert's own destination (OCSF makes one evidence per component).
func ComponentDestination(c *darktrace.TriggeredComponent) Endpoint {
	var ep Endpoint
	fillDestination(&ep, c)
	return ep
}

// fillDestination sets the fields of ep still empty from the component's filters.
func fillDestination(ep *Endpoint, c *darktrace.TriggeredComponent) {
	for j := range c.TriggeredFilters {
		f := &c.TriggeredFilters[j]
		v := strings.TrimSpace(string(f.Trigger.Value))
		if v == "" {
			continue
		}
		switch f.FilterType {
		case "Destination IP":
			setOnce(&ep.IP, v, validIP)
		case "Connection hostname":
			setOnce(&ep.Host, v, clean)
		case "Destination port":
			if p, err := strconv.Atoi(v); err == nil && p > 0 && p <= 65535 && ep.Port == 0 {
				ep.Port = p
			}
		case "Protocol":
			setOnce(&ep.Protocol, v, protocolName)
		case "Application protocol":
			setOnce(&ep.App, v, clean)
		}
	}
}

// setOnce sets *dst to conv(v) unless an earlier filter set it: the first valid value wins.
func setOnce(dst *string, v string, conv func(string) string) {
	if *dst == "" {
		*dst = conv(v)
	}
}
