package darktrace

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/dtforward/dtforward/internal/jsontext"
)

// /antigena has no window: a poll sees each action as it is now. A state the action passed
// through between two polls that saw it (or while a sink was down and its poller could not
// poll) is gone from the record, but not from its history (includehistory=true): every
// confirmation, extension, clear and reactivation is an entry with its time. EarlierSteps
// rebuilds the record as the appliance showed it right after each such entry, so that each
// state change can still be forwarded once.

// ActionStep is an earlier state of an Antigena action, rebuilt from its history.
type ActionStep struct {
	Action Action // as the appliance showed it right after the history entry
	Raw    []byte // the record's own bytes, rewritten to show that state
}

// historyEffect returns the state an action is in right after a history entry named action;
// ok is false for an entry whose effect is not known.
func historyEffect(action string) (active, cleared, ok bool) {
	s := strings.ToLower(strings.TrimSpace(action))
	switch {
	case strings.HasPrefix(s, "created (requires confirmation)"):
		return false, false, true // pending
	case strings.HasPrefix(s, "created"), strings.HasPrefix(s, "extended"), strings.HasPrefix(s, "reactivated"):
		return true, false, true
	case strings.HasPrefix(s, "cleared"):
		return false, true, true
	}
	return false, false, false
}

// changesExpiry reports whether a history entry sets a new expiry (an extension, a
// reactivation): the expiry before it is not in the record any more.
func changesExpiry(action string) bool {
	s := strings.ToLower(strings.TrimSpace(action))
	return strings.HasPrefix(s, "extended") || strings.HasPrefix(s, "reactivated")
}

// expired is the one rule for an expired action: still active, not cleared, updated after it
// ran out (the appliance keeps an expired action "active").
func expired(active, cleared bool, updated, expires int64) bool {
	return active && !cleared && expires > 0 && updated > expires
}

// Expired reports whether the version is an expired action.
func (v ActionVersion) Expired() bool { return expired(v.Active, v.Cleared, v.Updated, v.Expires) }

// EarlierSteps returns, oldest first, the states of a (decoded from raw) that its history
// records after since — the last state delivered, or for an action never delivered the time
// from which its states are wanted (only Updated set) — other than the state the record
// itself shows. missed counts the states after since that the history cannot give back: an
// entry whose meaning is unknown, and an expiry (never a history entry) that a later
// "reactivated (expired)" entry reveals, unless since was that expiry.
//
// A rebuilt state has the history up to its entry, "updated" at the entry's time, active and
// cleared as the entry left them (blocked false when it is not active); its expiry is the
// record's, or absent when a later extension or reactivation replaced the one it had.
func (a *Action) EarlierSteps(raw []byte, since ActionVersion) (steps []ActionStep, missed int, err error) {
	hist := slices.Clone(a.History)
	slices.SortStableFunc(hist, func(x, y ActionHistory) int { return cmp.Compare(x.Time, y.Time) })
	last := len(hist)
	if !expired(a.Active, a.Cleared, a.Updated.Int64(), a.Expires) {
		// The record shows what its latest entry did; an expired record shows the expiry,
		// which came after it.
		last--
	}
	first := true
	for i := range hist {
		h := &hist[i]
		if h.Time <= since.Updated {
			continue
		}
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(h.Action)), "reactivated (expired)") && !(first && since.Expired()) {
			missed++ // the expiry before it was never seen
		}
		first = false
		if i >= last {
			break // the state the record shows
		}
		active, cleared, ok := historyEffect(h.Action)
		if !ok {
			missed++
			continue
		}
		histJSON, err := json.Marshal(hist[:i+1])
		if err != nil {
			return nil, 0, err
		}
		set := []member{
			{"history", histJSON},
			{"updated", strconv.AppendQuote(nil, strconv.FormatInt(h.Time, 10))},
			{"active", strconv.AppendBool(nil, active)},
			{"cleared", strconv.AppendBool(nil, cleared)},
			{"expires", strconv.AppendInt(nil, a.Expires, 10)},
		}
		if slices.ContainsFunc(hist[i+1:], func(l ActionHistory) bool { return changesExpiry(l.Action) }) {
			set[len(set)-1].value = nil
		}
		if !active {
			// A pending or cleared action blocks nothing; an active one blocks as the record says.
			set = append(set, member{"blocked", []byte("false")})
		}
		b, err := rewriteObject(raw, set)
		if err != nil {
			return nil, 0, err
		}
		act, err := DecodeAction(b, nil)
		if err != nil {
			return nil, 0, err
		}
		steps = append(steps, ActionStep{Action: act, Raw: b})
	}
	return steps, missed, nil
}

// member is one top-level member of a JSON object to set; a nil value removes it.
type member struct {
	name  string
	value []byte
}

var errNotObject = errors.New("not a JSON object")

// rewriteObject returns the JSON object raw with the members of set replaced (names match
// case-insensitively, as the decoders read them), the ones it lacks appended, and the others
// kept as they are, in their order.
func rewriteObject(raw []byte, set []member) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	done := make([]bool, len(set))
	out := make([]byte, 0, len(raw)+256)
	out = append(out, '{')
	put := func(name string, v []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = jsontext.AppendKeepingBytes(out, name)
		out = append(out, ':')
		out = append(out, v...)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		i := slices.IndexFunc(set, func(m member) bool { return strings.EqualFold(m.name, name) })
		if i < 0 {
			put(name, v)
			continue
		}
		if !done[i] && set[i].value != nil {
			put(name, set[i].value)
		}
		done[i] = true
	}
	for i, m := range set {
		if !done[i] && m.value != nil {
			put(m.name, m.value)
		}
	}
	return append(out, '}'), nil
}
