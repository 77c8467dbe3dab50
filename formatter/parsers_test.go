package formatter_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/internal/testutil/parsecheck"
)

// The oracle below states, independently of the formatters' code, what a third-party parser
// must read back for each alert field: the alert's value with the documented sanitising
// applied (package doc, "Safety").

// sanitize maps C0 controls (except keep) and DEL to U+FFFD, invalid UTF-8 to U+FFFD.
func sanitize(s, keep string) string {
	// strings.Map ranges over s: each invalid byte becomes one U+FFFD, as in the formatters
	// (strings.ToValidUTF8 would merge runs).
	return strings.Map(func(r rune) rune {
		if (r < 0x20 || r == 0x7f) && !strings.ContainsRune(keep, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func cefVal(s string) string { return sanitize(strings.Trim(s, " \t"), "\t\r\n") }

func cefHdr(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(cefVal(s))
}

func joinList(l []string, val func(string) string) string {
	var out []string
	for _, s := range l {
		if v := val(s); v != "" {
			out = append(out, v)
		}
	}
	return strings.Join(out, ",")
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// num is a score as the formats write it: rounded to 6 decimals, shortest form.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e6)/1e6, 'f', -1, 64)
}

// devName is the breaching device's name with the documented fallbacks.
func devName(d alert.Device) string {
	for _, s := range []string{d.Hostname, d.Label, d.Placeholder} {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// wantSig is the header signature: the alert's, or "<kind>:unknown" when it has none or it is
// a breach's absent pid written as "0".
func wantSig(a *alert.Alert) string {
	s := strings.TrimSpace(a.SignatureID)
	if s == "" || (a.Kind == alert.KindBreach && a.Model.PID == 0 && s == "0") {
		k := a.Kind
		if k == "" {
			k = "darktrace"
		}
		return k + ":unknown"
	}
	return s
}

// wantLabels is "k=v,k2=v2" sorted by key, ',' and '=' inside a key or value as spaces.
func wantLabels(m map[string]string, val func(string) string) string {
	var keys []string
	for k := range m {
		if strings.TrimSpace(k) != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	clean := func(s string) string { return val(strings.NewReplacer(",", " ", "=", " ").Replace(s)) }
	var out []string
	for _, k := range keys {
		if ck := clean(k); ck != "" {
			out = append(out, ck+"="+clean(m[k]))
		}
	}
	return strings.Join(out, ",")
}

// wantCEF is the extension every CEF line must carry for a ("CEF conventions" in doc.go).
func wantCEF(a *alert.Alert) map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	custom := func(k, label, v string) {
		if v != "" {
			m[k+"Label"] = label
			m[k] = v
		}
	}
	if !a.Created.IsZero() {
		put("rt", ms(a.Created))
	}
	if !a.Time.IsZero() {
		put("start", ms(a.Time))
	}
	put("externalId", cefVal(a.ID))
	put("cat", cefVal(a.Category))
	put("dvc", a.Device.IP)
	put("dvchost", cefVal(devName(a.Device)))
	put("src", a.Device.IP)
	put("shost", cefVal(devName(a.Device)))
	put("smac", a.Device.MAC)
	put("dst", a.Dest.IP)
	put("dhost", cefVal(a.Dest.Host))
	if a.Dest.Port > 0 {
		put("dpt", strconv.Itoa(a.Dest.Port))
	}
	put("proto", cefVal(a.Dest.Protocol))
	put("app", cefVal(a.Dest.App))
	custom("cs1", "modelUuid", cefVal(a.Model.UUID))
	custom("cs2", "modelTags", joinList(a.Model.Tags, cefVal))
	custom("cs3", "mitreTechniques", joinList(a.Model.MITRE, cefVal))
	custom("cs4", "appliance", cefVal(a.Appliance))
	if a.Model.PID != 0 {
		custom("cn1", "modelPid", strconv.FormatInt(a.Model.PID, 10))
	}
	if a.Device.DID != 0 {
		custom("cn2", "deviceId", strconv.FormatInt(a.Device.DID, 10))
	}
	if a.Kind == alert.KindBreach && a.Priority >= 0 {
		custom("cn3", "priority", strconv.Itoa(a.Priority))
	}
	custom("cfp1", "score", num(a.Score))
	put("darktraceUrl", cefVal(a.URL))
	if a.Action != nil {
		put("act", cefVal(a.Action.Type))
		custom("cs5", "actionState", cefVal(a.Action.State))
		put("suser", cefVal(a.Action.Triggerer))
		put("modelName", cefVal(strings.ReplaceAll(a.Model.Name, "::", "/")))
	}
	if g := a.Group; g != nil {
		put("groupingId", cefVal(g.ID))
		if g.Score >= 0 {
			put("groupScore", num(g.Score))
		}
		put("groupCategory", cefVal(g.Category))
	}
	if a.Ack != nil {
		put("acknowledged", "true")
		if !a.Ack.Time.IsZero() {
			put("ackTime", ms(a.Ack.Time))
		}
		put("ackUser", cefVal(a.Ack.User))
	}
	put("applianceLabels", wantLabels(a.Labels, cefVal))
	put("msg", cefVal(a.Message))
	return m
}

var leefKeyEq = regexp.MustCompile(` ([A-Za-z0-9_.-]+)( *)=`)

func leefVal(s string) string {
	s = strings.Trim(s, " \t\r\n")
	s = sanitize(s, "\t\r\n")
	s = strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(s)
	switch {
	case strings.HasPrefix(s, `"`):
		s = "\u201c" + s[1:]
	case strings.HasPrefix(s, `'`):
		s = "\u2018" + s[1:]
	}
	// Two passes: a replaced '=' can expose no new match, but adjacent matches share a space.
	for i := 0; i < 2; i++ {
		s = leefKeyEq.ReplaceAllString(s, " $1$2:")
	}
	return s
}

func leefHdr(s string) string {
	return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ", "|", " ").Replace(sanitize(strings.Trim(s, " \t\r\n"), "\t\r\n"))
}

func leefList(l []string) string {
	return leefVal(joinList(l, func(s string) string {
		return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(sanitize(strings.Trim(s, " \t\r\n"), "\t\r\n"))
	}))
}

// wantLEEF is the attribute set of a LEEF line for a.
func wantLEEF(a *alert.Alert) map[string]string {
	m := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	t := a.Time
	if t.IsZero() {
		t = a.Created
	}
	if !t.IsZero() {
		put("devTime", t.UTC().Format("2006-01-02T15:04:05.000-0700"))
		put("devTimeFormat", "yyyy-MM-dd'T'HH:mm:ss.SSSZ")
	}
	put("sev", strconv.Itoa(min(max(a.Severity, 1), 10)))
	put("cat", leefVal(a.Category))
	put("src", a.Device.IP)
	put("srcMAC", a.Device.MAC)
	put("dst", a.Dest.IP)
	if a.Dest.Port > 0 {
		put("dstPort", strconv.Itoa(a.Dest.Port))
	}
	put("proto", leefVal(a.Dest.Protocol))
	put("url", leefVal(a.URL))
	put("kind", a.Kind)
	put("id", leefVal(a.ID))
	put("name", leefVal(a.Name))
	put("modelName", leefVal(a.Model.Name))
	if a.Model.PID != 0 {
		put("modelPid", strconv.FormatInt(a.Model.PID, 10))
	}
	put("modelUuid", leefVal(a.Model.UUID))
	if a.Kind == alert.KindBreach {
		put("pbid", leefVal(a.ID))
	} else if a.Action != nil && a.Action.PBID > 0 {
		put("pbid", strconv.FormatInt(a.Action.PBID, 10))
	}
	if a.Device.DID != 0 {
		put("did", strconv.FormatInt(a.Device.DID, 10))
	}
	put("hostname", leefVal(devName(a.Device)))
	put("dstHost", leefVal(a.Dest.Host))
	put("score", num(a.Score))
	if a.Kind == alert.KindBreach && a.Priority >= 0 {
		put("priority", strconv.Itoa(a.Priority))
	}
	put("tags", leefList(a.Model.Tags))
	put("mitreTechniques", leefList(a.Model.MITRE))
	put("appliance", leefVal(a.Appliance))
	if a.Action != nil {
		put("action", leefVal(a.Action.Type))
		put("actionState", leefVal(a.Action.State))
		put("usrName", leefVal(a.Action.Triggerer))
	}
	if g := a.Group; g != nil {
		put("groupingId", leefVal(g.ID))
		if g.Score >= 0 {
			put("groupScore", num(g.Score))
		}
		put("groupCategory", leefVal(g.Category))
	}
	if a.Ack != nil {
		put("acknowledged", "true")
		if !a.Ack.Time.IsZero() {
			put("ackTime", a.Ack.Time.UTC().Format("2006-01-02T15:04:05.000-0700"))
		}
		put("ackUser", leefVal(a.Ack.User))
	}
	put("applianceLabels", leefVal(wantLabels(a.Labels, func(s string) string {
		return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(sanitize(strings.Trim(s, " \t\r\n"), "\t\r\n"))
	})))
	put("msg", leefVal(a.Message))
	return m
}

// compareTrimmed compares got with want; keys named in the trimmed marker may be shorter
// (a prefix of the wanted value) or missing.
func compareTrimmed(t *testing.T, what string, got, want map[string]string, markerKey string, trimKeys map[string]string) {
	t.Helper()
	trimmed := map[string]bool{}
	all := false // the marker list was cut ("...") : any key may have been trimmed
	if mk, ok := got[markerKey]; ok {
		all = strings.HasSuffix(mk, ",...")
		for _, k := range strings.Split(mk, ",") {
			trimmed[k] = true
			if tk, ok := trimKeys[k]; ok {
				trimmed[tk] = true
			}
		}
		delete(got, markerKey)
		delete(got, markerKey+"Label")
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case (trimmed[k] || all) && (!ok || strings.HasPrefix(w, g)):
		case !ok:
			t.Errorf("%s: key %s missing (want %q)", what, k, w)
		case g != w:
			t.Errorf("%s: %s = %.300q, want %.300q", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && !trimmed[k] {
			t.Errorf("%s: unexpected key %s = %q", what, k, g)
		}
	}
}

// hostileAlphabet mixes what breaks CEF, LEEF, JSON and syslog framing.
var hostileAlphabet = []string{"a", "Z", "0", " ", " ", "|", "=", `\`, "\r", "\n", "\t", `"`, "'", "\x00", "\x01",
	"\x7f", "\xff", "\xc3", "é", "\u2028", "msg=", " act=allow", " dst=1.1.1.1", "CEF:0|", "LEEF:2.0|", "\\n", "\\=",
	"<13>1 ", "x09", ":", ",", "{", "}", "[", "-", ".", "_"}

func hostile(rng *rand.Rand, maxLen int) string {
	n := rng.Intn(maxLen + 1)
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(hostileAlphabet[rng.Intn(len(hostileAlphabet))])
	}
	return b.String()
}

// randomAlert builds an alert whose every free-text field is hostile; the simulator's hostile
// records end up the same way after conversion.
func randomAlert(rng *rand.Rand, long bool) *alert.Alert {
	l := 40
	if long {
		l = 4000
	}
	kinds := []string{alert.KindBreach, alert.KindAntigena, alert.KindAIAnalyst}
	a := &alert.Alert{
		Kind:        kinds[rng.Intn(3)],
		ID:          strconv.Itoa(rng.Intn(1e6) + 1),
		Appliance:   hostile(rng, 20),
		Time:        time.UnixMilli(1.7e12 + rng.Int63n(1e9)).UTC(),
		Created:     time.UnixMilli(1.7e12 + rng.Int63n(1e9)).UTC(),
		Name:        hostile(rng, l),
		SignatureID: hostile(rng, 20),
		Score:       float64(rng.Intn(1001)) / 1000,
		Category:    hostile(rng, 12),
		Priority:    rng.Intn(6),
		Model:       alert.Model{PID: rng.Int63n(5000), UUID: hostile(rng, 36), Name: hostile(rng, l), Tags: []string{hostile(rng, 15), hostile(rng, 15)}, MITRE: []string{hostile(rng, 8)}},
		Device:      alert.Device{DID: rng.Int63n(3000) - 1, Hostname: hostile(rng, l), IP: "10.0.0.1", MAC: "aa:bb:cc:dd:ee:ff", Type: hostile(rng, 10)},
		Dest:        alert.Endpoint{IP: "2001:db8::1", Host: hostile(rng, l), Port: rng.Intn(65536), Protocol: hostile(rng, 5), App: hostile(rng, 6)},
		URL:         "https://dt.example.com/#modelbreach/1?" + hostile(rng, 20),
		Message:     hostile(rng, l*3),
	}
	a.Severity = int(a.Score*10 + 0.5)
	// The fields of real-shaped records: devices known by label or placeholder only, absent
	// priority, acknowledgements, AI Analyst groups and appliance labels.
	switch rng.Intn(3) {
	case 0:
		a.Device.Hostname, a.Device.Label = "", hostile(rng, 20)
	case 1:
		a.Device.Hostname, a.Device.IP, a.Device.Placeholder = "", "", "10.0.0.#"+strconv.Itoa(rng.Intn(99999))
	}
	if rng.Intn(4) == 0 {
		a.Priority = alert.NoPriority
	}
	if rng.Intn(2) == 0 {
		a.Ack = &alert.Acknowledgement{User: hostile(rng, 15)}
		if rng.Intn(2) == 0 {
			a.Ack.Time = time.UnixMilli(1.7e12 + rng.Int63n(1e9)).UTC()
		}
	}
	if a.Kind == alert.KindAIAnalyst {
		a.Group = &alert.Group{ID: "g" + hostile(rng, 10), Score: -1, Category: hostile(rng, 10)}
		if rng.Intn(2) == 0 {
			a.Group.Score = float64(rng.Intn(1001)) / 1000
		}
	}
	if rng.Intn(2) == 0 {
		a.Labels = map[string]string{"site": hostile(rng, 12), "customer": hostile(rng, 12), "b_2": "x"}
	}
	if a.Kind == alert.KindAntigena {
		a.Action = &alert.Action{Type: hostile(rng, 12), Label: hostile(rng, 20), State: "active", Manual: rng.Intn(2) == 0, Triggerer: hostile(rng, 10), PBID: rng.Int63n(100)}
	}
	a.Raw, _ = json.Marshal(map[string]any{"pbid": a.ID, "model": map[string]any{"name": a.Name, "description": a.Message, "logic": map[string]any{"x": a.Model.Tags}}})
	return a
}

// checkAlerts is every golden alert, the simulator's records and seeded random hostile ones
// (some long enough to be trimmed).
func checkAlerts(t *testing.T) []*alert.Alert {
	var as []*alert.Alert
	for _, c := range loadGolden(t) {
		as = append(as, c.alerts...)
	}
	as = append(as, simulatorAlerts(t)...)
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 400; i++ {
		as = append(as, randomAlert(rng, i%20 == 0))
	}
	return as
}

func formatAll(t *testing.T, name string, o formatter.Options, as []*alert.Alert) [][]byte {
	t.Helper()
	f, err := formatter.New(name, o)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([][]byte, len(as))
	for i, a := range as {
		l, err := f.Append(nil, a)
		if err != nil {
			t.Fatalf("alert %d (%s): %v", i, a.ID, err)
		}
		if bytes.ContainsAny(l, "\r\n\x00") || !utf8.Valid(l) {
			t.Fatalf("alert %d: line has raw CR/LF/NUL or invalid UTF-8: %q", i, l)
		}
		if o.MaxBytes > 0 && len(l) > o.MaxBytes {
			t.Fatalf("alert %d: %d bytes > %d", i, len(l), o.MaxBytes)
		}
		lines[i] = l
	}
	return lines
}

var cefTrimKeys = map[string]string{"cs2": "cs2Label", "cs3": "cs3Label", "cs1": "cs1Label", "cs4": "cs4Label"}

// TestCEFParsesWithLiblognorm checks every CEF line with liblognorm, field by field.
func TestCEFParsesWithLiblognorm(t *testing.T) {
	as := checkAlerts(t)
	lines := formatAll(t, "cef", formatter.Options{Version: "1.2|3", MaxBytes: 8192}, as)
	got := parsecheck.ParseCEF(t, lines)
	for i, a := range as {
		g := got[i]
		what := fmt.Sprintf("alert %d (%s) %.300q", i, a.ID, lines[i])
		if g.Rejected {
			t.Errorf("%s: liblognorm rejected the line", what)
			continue
		}
		if g.Vendor != "Darktrace" || g.Product != "DCIP" || g.Version != "1.2|3" {
			t.Errorf("%s: header vendor/product/version = %q/%q/%q", what, g.Vendor, g.Product, g.Version)
		}
		if want := cefHdr(wantSig(a)); g.SignatureID != want && !(g.Ext["cs6"] != "" && strings.HasPrefix(want, g.SignatureID)) {
			t.Errorf("%s: signature id %q, want %q", what, g.SignatureID, want)
		}
		if want := cefHdr(strings.ReplaceAll(a.Name, "::", "/")); g.Name != want && !(g.Ext["cs6"] != "" && strings.HasPrefix(want, g.Name)) {
			t.Errorf("%s: name %.300q, want %.300q", what, g.Name, want)
		}
		if g.Severity != strconv.Itoa(a.Severity) {
			t.Errorf("%s: severity %q, want %d", what, g.Severity, a.Severity)
		}
		compareTrimmed(t, what, g.Ext, wantCEF(a), "cs6", cefTrimKeys)
	}
}

// TestLEEFParsesWithSyslogNG checks every LEEF 2.0 and 1.0 line with syslog-ng's kv-parser and
// with a literal split at the delimiter (QRadar's reading); both must agree with the alert.
func TestLEEFParsesWithSyslogNG(t *testing.T) {
	as := checkAlerts(t)
	var lines [][]byte
	for _, v := range []string{"2.0", "1.0"} {
		lines = append(lines, formatAll(t, "leef", formatter.Options{Version: "1.2|3", LEEFVersion: v, MaxBytes: 8192}, as)...)
	}
	got := parsecheck.ParseLEEF(t, lines)
	for i := range lines {
		a := as[i%len(as)]
		g := got[i]
		what := fmt.Sprintf("line %d (%s) %.300q", i, a.ID, lines[i])
		if g.Rejected {
			t.Errorf("%s: syslog-ng rejected the line", what)
			continue
		}
		wantV := "2.0"
		if i >= len(as) {
			wantV = "1.0"
		}
		if g.Version != wantV || g.Vendor != "Darktrace" || g.Product != "DCIP" || g.ProductVersion != "1.2 3" {
			t.Errorf("%s: header %q/%q/%q/%q", what, g.Version, g.Vendor, g.Product, g.ProductVersion)
		}
		if want := leefHdr(wantSig(a)); g.EventID != want && !(g.Attrs["trimmed"] != "" && strings.HasPrefix(want, g.EventID)) {
			t.Errorf("%s: event id %q, want %q", what, g.EventID, want)
		}
		literal := map[string]string{}
		for _, p := range strings.Split(g.Raw, "\t") {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				t.Errorf("%s: attribute %q has no '='", what, p)
			}
			literal[k] = v
		}
		want := wantLEEF(a)
		compareTrimmed(t, what+" (kv-parser)", g.Attrs, want, "trimmed", nil)
		compareTrimmed(t, what+" (literal split)", literal, want, "trimmed", nil)
	}
}

// TestJSONParses checks json and darktrace-json lines with syslog-ng's json-parser and with
// encoding/json, comparing the normalized schema field by field.
func TestJSONParses(t *testing.T) {
	as := checkAlerts(t)
	js := formatAll(t, "json", formatter.Options{Version: "v1", MaxBytes: 8192}, as)
	dj := formatAll(t, "darktrace-json", formatter.Options{MaxBytes: 8192}, as)
	got := parsecheck.ParseJSON(t, append(append([][]byte{}, js...), dj...))
	for i, a := range as {
		what := fmt.Sprintf("alert %d (%s) %.300q", i, a.ID, js[i])
		if got[i].Rejected || got[len(as)+i].Rejected {
			t.Errorf("%s: syslog-ng json-parser rejected json or darktrace-json", what)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(js[i], &m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		trimmed := m["trimmed"] == true
		str := func(k, want string) {
			t.Helper()
			g, _ := m[k].(string)
			if g != want && !(trimmed && strings.HasPrefix(want, g)) {
				t.Errorf("%s: %s = %q, want %q", what, k, g, want)
			}
		}
		if m["schemaVersion"] != float64(2) || m["kind"] != a.Kind || m["id"] != a.ID {
			t.Errorf("%s: schemaVersion/kind/id wrong", what)
		}
		v := func(s string) string {
			return sanitize(s, "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f")
		}
		str("name", v(a.Name))
		str("message", v(a.Message))
		str("modelName", v(a.Model.Name))
		str("signatureId", v(wantSig(a)))
		if wantScore, _ := strconv.ParseFloat(num(a.Score), 64); m["score"] != wantScore || m["severity"] != float64(a.Severity) {
			t.Errorf("%s: score/severity %v/%v", what, m["score"], m["severity"])
		}
		if d, _ := m["device"].(map[string]any); d != nil {
			if g, _ := d["hostname"].(string); g != v(a.Device.Hostname) && !trimmed {
				t.Errorf("%s: device.hostname %q", what, g)
			}
		}
		if g := got[i].Fields["name"]; g != v(a.Name) && !trimmed {
			t.Errorf("%s: syslog-ng json name = %q, want %q", what, g, v(a.Name))
		}
	}
}
