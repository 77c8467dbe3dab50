package ocsf

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrTooLong is returned (wrapped) when an event does not fit the byte limit even after
// everything but its identifiers and triage fields was removed.
var ErrTooLong = errors.New("ocsf: event longer than the size limit after trimming")

// step is one trimming step: it shortens or removes one attribute and reports whether it
// changed anything. excess is how many bytes the line is over the limit.
type step struct {
	name  string
	apply func(e *Record, excess int) bool
}

// trimSteps is the trimming order, first = trimmed first: free text, then lists an analyst can
// look up from the finding, then the remaining names. What is never trimmed is the bounded
// record every line keeps: class, activity, type, severity, status, times, risk, metadata
// (version, product, uid, correlation uid), finding_info.uid, command_uid and the device's
// uid and addresses.
var trimSteps = []step{
	cut("finding_info.desc", func(e *Record) *string { return fiStr(e, func(f *FindingInfo) *string { return &f.Desc }) }),
	cut("message", func(e *Record) *string { return &e.Message }),
	drop("unmapped.darktrace", func(e *Record) bool {
		if e.Unmapped == nil || e.Unmapped.Darktrace == nil {
			return false
		}
		e.Unmapped.Darktrace = nil
		return true
	}),
	drop("evidences", func(e *Record) bool { return clearSlice(&e.Evidences) }),
	drop("finding_info.related_events", func(e *Record) bool {
		return e.FindingInfo != nil && clearSlice(&e.FindingInfo.RelatedEvents)
	}),
	drop("finding_info.attacks", func(e *Record) bool { return e.FindingInfo != nil && clearSlice(&e.FindingInfo.Attacks) }),
	drop("metadata.labels", func(e *Record) bool { return clearSlice(&e.Metadata.Labels) }),
	drop("finding_info.types", func(e *Record) bool { return e.FindingInfo != nil && clearSlice(&e.FindingInfo.Types) }),
	cut("finding_info.src_url", func(e *Record) *string { return fiStr(e, func(f *FindingInfo) *string { return &f.SrcURL }) }),
	cut("status_detail", func(e *Record) *string { return &e.StatusDetail }),
	drop("countermeasures", func(e *Record) bool { return clearSlice(&e.Countermeasures) }),
	cut("actor.user.name", func(e *Record) *string {
		if e.Actor == nil || e.Actor.User == nil {
			return nil
		}
		return &e.Actor.User.Name
	}),
	cut("device.name", func(e *Record) *string { return devStr(e, func(d *Device) *string { return &d.Name }) }),
	cut("device.type", func(e *Record) *string { return devStr(e, func(d *Device) *string { return &d.Type }) }),
	// The captions repeat what the ids say; the descriptive times and the log names can be
	// looked up in Darktrace from the finding's uid.
	drop("captions", func(e *Record) bool {
		changed := e.ActivityName+e.CategoryName+e.ClassName+e.TypeName+e.Severity+e.Status+e.RiskLevel != ""
		e.ActivityName, e.CategoryName, e.ClassName, e.TypeName = "", "", "", ""
		e.Severity, e.Status, e.RiskLevel = "", "", ""
		return changed
	}),
	drop("risk_level_id", func(e *Record) bool {
		// The severity says it: the risk level is the severity one step down.
		changed := e.RiskLevelID != nil
		e.RiskLevelID = nil
		return changed
	}),
	drop("metadata.log", func(e *Record) bool {
		m := &e.Metadata
		changed := m.Product.Feature != nil || m.LogName != "" || m.LogProvider != ""
		m.Product.Feature, m.LogName, m.LogProvider = nil, "", ""
		return changed
	}),
	drop("times", func(e *Record) bool {
		changed := e.StartTime != 0 || e.EndTime != 0
		e.StartTime, e.EndTime = 0, 0
		if f := e.FindingInfo; f != nil {
			changed = changed || f.CreatedTime != 0 || f.FirstSeenTime != 0 || f.LastSeenTime != 0 || f.ModifiedTime != 0
			f.CreatedTime, f.FirstSeenTime, f.LastSeenTime, f.ModifiedTime = 0, 0, 0, 0
		}
		return changed
	}),
	drop("unmapped.dtforward.version", func(e *Record) bool {
		if e.Unmapped == nil || e.Unmapped.DTForward == nil || e.Unmapped.DTForward.Version == "" {
			return false
		}
		e.Unmapped.DTForward.Version = ""
		return true
	}),
	cut("device.hostname", func(e *Record) *string { return devStr(e, func(d *Device) *string { return &d.Hostname }) }),
	drop("device.mac", func(e *Record) bool {
		if e.Device == nil || e.Device.MAC == "" {
			return false
		}
		e.Device.MAC = ""
		return true
	}),
	drop("finding_info.analytic", func(e *Record) bool {
		if e.FindingInfo == nil || e.FindingInfo.Analytic == nil {
			return false
		}
		e.FindingInfo.Analytic = nil
		return true
	}),
	cut("finding_info.product_uid", func(e *Record) *string {
		return fiStr(e, func(f *FindingInfo) *string { return &f.ProductUID })
	}),
	// The event's own uid is the finding's (or command's) uid with the step it reports, so
	// it can go before them; the correlation uid before the title, which triage reads.
	drop("metadata.uid", func(e *Record) bool {
		changed := e.Metadata.UID != ""
		e.Metadata.UID = ""
		return changed
	}),
	drop("metadata.correlation_uid", func(e *Record) bool {
		changed := e.Metadata.CorrelationUID != ""
		e.Metadata.CorrelationUID = ""
		return changed
	}),
	cut("finding_info.title", func(e *Record) *string { return fiStr(e, func(f *FindingInfo) *string { return &f.Title }) }),
}

func fiStr(e *Record, f func(*FindingInfo) *string) *string {
	if e.FindingInfo == nil {
		return nil
	}
	return f(e.FindingInfo)
}

func devStr(e *Record, f func(*Device) *string) *string {
	if e.Device == nil {
		return nil
	}
	return f(e.Device)
}

func clearSlice[T any](s *[]T) bool {
	if len(*s) == 0 {
		return false
	}
	*s = nil
	return true
}

// cut shortens a string attribute by the excess (each byte of a string takes at least one byte
// in JSON, so one cut is enough unless the attribute is shorter than the excess, when it is
// emptied); the cut falls between characters.
func cut(name string, field func(*Record) *string) step {
	return step{name: name, apply: func(e *Record, excess int) bool {
		p := field(e)
		if p == nil || *p == "" {
			return false
		}
		keep := len(*p) - excess
		if keep <= 0 {
			*p = ""
			return true
		}
		for keep > 0 && !utf8.RuneStart((*p)[keep]) {
			keep--
		}
		*p = (*p)[:keep]
		return true
	}}
}

func drop(name string, f func(*Record) bool) step {
	return step{name: name, apply: func(e *Record, _ int) bool { return f(e) }}
}

// markerMax bounds the trimmed_fields list (shorter than the other formats' 100 bytes: an
// OCSF event's fixed part is larger, and the list must leave room for it at the smallest line
// limit); markerMore ends a list cut there.
const (
	markerMax  = 64
	markerMore = ",..."
)

// Append appends e as one compact JSON line of at most max bytes (0: no limit). A longer event
// is trimmed in the order of trimSteps and marked in unmapped.dtforward (trimmed: true,
// trimmed_fields: the attributes shortened or removed, in trimming order). e is modified when
// it is trimmed.
func Append(dst []byte, e *Record, max int) ([]byte, error) {
	start := len(dst)
	out, err := marshal(dst, e)
	if err != nil {
		return dst[:start], err
	}
	if max <= 0 || len(out)-start <= max {
		return out, nil
	}
	var trimmed []string
	for i := 0; i < len(trimSteps); {
		excess := len(out) - start - max
		if excess <= 0 {
			return out, nil
		}
		if !trimSteps[i].apply(e, excess) {
			i++
			continue
		}
		if !contains(trimmed, trimSteps[i].name) {
			trimmed = append(trimmed, trimSteps[i].name)
		}
		mark(e, trimmed)
		if out, err = marshal(dst[:start], e); err != nil {
			return dst[:start], err
		}
	}
	if len(out)-start <= max {
		return out, nil
	}
	return dst[:start], fmt.Errorf("%w: %d > %d bytes", ErrTooLong, len(out)-start, max)
}

func mark(e *Record, trimmed []string) {
	u := e.unmapped()
	if u.DTForward == nil {
		u.DTForward = &DTForward{}
	}
	u.DTForward.Trimmed = true
	list := strings.Join(trimmed, ",")
	if len(list) > markerMax {
		list = list[:strings.LastIndexByte(list[:markerMax-len(markerMore)+1], ',')] + markerMore
	}
	u.DTForward.TrimmedFields = list
}
