package ocsf

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// maxTime bounds times taken from a record (year 9999): a hostile or garbled component time
// must not become a date no consumer can store.
const maxTime = 253402300799999

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	v := t.UnixMilli()
	if v < 0 || v > maxTime {
		return 0
	}
	return v
}

func firstNonZero(v ...int64) int64 {
	for _, x := range v {
		if x != 0 {
			return x
		}
	}
	return 0
}

// scoped is an identifier made unique across appliances: "<appliance>:<id>", or the id alone
// when the alert names no appliance. An appliance label longer than maxScope bytes is
// shortened to its first bytes, "~" and a hash of the whole label: identifiers are never
// trimmed, so they must stay short enough for the smallest line limit, and the same label
// always gives the same identifier.
func scoped(appliance, id string) string {
	appliance, id = txt(appliance), txt(id)
	if appliance == "" {
		return id
	}
	if len(appliance) > maxScope {
		h := fnv.New32a()
		h.Write([]byte(appliance))
		keep := maxScope - 9
		for keep > 0 && !utf8.RuneStart(appliance[keep]) {
			keep--
		}
		appliance = fmt.Sprintf("%s~%08x", appliance[:keep], h.Sum32())
	}
	return appliance + ":" + id
}

// maxScope bounds the appliance part of an identifier.
const maxScope = 64

// txt makes a string safe for every consumer of the line: NUL becomes U+FFFD (syslog-ng's JSON
// parser cuts strings at \u0000), as in the json format; the alert's strings are already valid
// UTF-8.
func txt(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func texts(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// family is the model's family, the part of a Darktrace model name before "::"
// ("Anomalous Connection" of "Anomalous Connection::Data Sent to Rare Domain").
func family(name string) string {
	f, _, ok := strings.Cut(name, "::")
	if !ok {
		return ""
	}
	return strings.TrimSpace(f)
}

// types is finding_info.types: the Darktrace category and the model family (or "AI Analyst").
func types(l ...string) []string {
	var out []string
	for _, s := range l {
		if s = txt(strings.TrimSpace(s)); s != "" && !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

var techniqueID = regexp.MustCompile(`^T[0-9]{4}(\.[0-9]{3})?$`)

// attacks lists one attack per technique (a sub-technique id "T1071.001" also names its
// technique "T1071") and one per tactic. names maps technique ids to names.
func attacks(techniques []string, names map[string]string, tactics []string) []Attack {
	var out []Attack
	for _, id := range techniques {
		id = txt(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		at := Attack{Technique: &Entity{UID: id, Name: txt(names[id])}}
		if techniqueID.MatchString(id) {
			if parent, _, sub := strings.Cut(id, "."); sub {
				at.SubTechnique = at.Technique
				at.Technique = &Entity{UID: parent, Name: txt(names[parent])}
			}
		}
		out = append(out, at)
	}
	seen := map[string]bool{}
	for _, t := range tactics {
		t = txt(strings.TrimSpace(t))
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		out = append(out, Attack{Tactic: &Entity{Name: t}})
	}
	return out
}

// labels are the appliance labels as "key=value", sorted by key.
func labels(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, txt(k)+"="+txt(v))
		}
	}
	sort.Strings(out)
	return out
}
