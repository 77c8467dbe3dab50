package ocsf

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/alert"
)

// hostnameRE is OCSF's hostname_t pattern: a value that is not a hostname (a Darktrace label,
// an address with spaces) goes to the endpoint's name instead, so that no consumer that checks
// the type rejects the event.
var hostnameRE = regexp.MustCompile(`^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])$`)

func isHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

// device maps the alert's device; nil for system breaches (did -1, about the appliance itself)
// and for records without any device value.
func device(d *alert.Device) *Device {
	if d.DID < 0 {
		return nil
	}
	out := &Device{IP: d.IP, MAC: d.MAC}
	if d.DID > 0 {
		out.UID = strconv.FormatInt(d.DID, 10)
	}
	host := txt(strings.TrimSpace(d.Hostname))
	if isHostname(host) {
		out.Hostname = host
		host = ""
	}
	out.Name = firstText(host, d.Label, d.Placeholder)
	out.TypeID, out.Type = deviceType(d.Type)
	if out.UID == "" && out.Hostname == "" && out.Name == "" && out.IP == "" {
		return nil // OCSF's device needs at least one of them
	}
	return out
}

func firstText(l ...string) string {
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" {
			return s
		}
	}
	return ""
}

// deviceTypes maps words of Darktrace's device type labels to OCSF device type_id.
var deviceTypes = []struct {
	word string
	id   int
	name string
}{
	{"laptop", 3, "Laptop"}, {"desktop", 2, "Desktop"}, {"server", 1, "Server"},
	{"tablet", 4, "Tablet"}, {"mobile", 5, "Mobile"}, {"phone", 5, "Mobile"},
	{"virtual", 6, "Virtual"}, {"iot", 7, "IOT"}, {"firewall", 9, "Firewall"},
	{"switch", 10, "Switch"}, {"router", 12, "Router"}, {"load balancer", 15, "Load Balancer"},
}

// deviceType returns type_id and type: a known word of the label maps to its OCSF type, an
// unknown label is Other (99) with the label as type, no label is Unknown (0).
func deviceType(label string) (int, string) {
	label = txt(strings.TrimSpace(label))
	if label == "" {
		return 0, ""
	}
	l := strings.ToLower(label)
	for _, t := range deviceTypes {
		if strings.Contains(l, t.word) {
			return t.id, t.name
		}
	}
	return 99, label
}

// deviceUnmapped keeps the Darktrace device values OCSF has no place for.
func deviceUnmapped(d map[string]any, dev *alert.Device) {
	m := map[string]any{}
	if dev.DID != 0 {
		m["did"] = dev.DID
	}
	if dev.SID != 0 {
		m["sid"] = dev.SID
	}
	if dev.Label != "" {
		m["label"] = txt(dev.Label)
	}
	if dev.Placeholder != "" {
		m["placeholder"] = txt(dev.Placeholder)
	}
	if dev.Type != "" {
		m["type"] = txt(dev.Type)
	}
	if len(m) > 0 {
		d["device"] = m
	}
}
