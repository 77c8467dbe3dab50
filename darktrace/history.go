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
// record's, or absent when a later extension or reactivation replaced the one it had. Its
// Action is what its Raw decodes to (FuzzEarlierSteps), built without decoding it.
//
// The work is linear in the history but for the output itself: each state's Raw carries its
// history up to its entry, as the appliance would have shown it. Each entry is encoded once
// and raw split into its members once; every state is then written out in one pass.
func (a *Action) EarlierSteps(raw []byte, since ActionVersion) (steps []ActionStep, missed int, err error) {
	hist := slices.Clone(a.History)
	slices.SortStableFunc(hist, func(x, y ActionHistory) int { return cmp.Compare(x.Time, y.Time) })
	last := len(hist)
	if !expired(a.Active, a.Cleared, a.Updated.Int64(), a.Expires) {
		// The record shows what its latest entry did; an expired record shows the expiry,
		// which came after it.
		last--
	}
	// The states before the latest extension or reactivation had an expiry the record no
	// longer shows.
	lastNewExpiry := -1
	for i := range hist {
		if changesExpiry(hist[i].Action) {
			lastNewExpiry = i
		}
	}
	var w *stateWriter // made for the first state rebuilt: a record with none costs nothing
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
		if w == nil {
			if w, err = newStateWriter(raw, hist); err != nil {
				return nil, 0, err
			}
		}
		act := *a
		act.History = hist[: i+1 : i+1] // a caller appending to it cannot write over the next state's
		act.Updated = FlexInt(h.Time)
		act.Active, act.Cleared = active, cleared
		if lastNewExpiry > i {
			act.Expires = 0
		}
		if !active {
			// A pending or cleared action blocks nothing; an active one blocks as the record says.
			act.Blocked = false
		}
		steps = append(steps, ActionStep{Action: act, Raw: w.state(i, &act, lastNewExpiry > i)})
	}
	return steps, missed, nil
}

// The members of a record that a rebuilt state rewrites, in the order the ones the record
// lacks are appended.
const (
	setHistory = iota
	setUpdated
	setActive
	setCleared
	setExpires
	setBlocked
	setCount
)

var setNames = [setCount]string{"history", "updated", "active", "cleared", "expires", "blocked"}

// stateWriter writes the states of one record: the record's members split once, its history
// entries encoded once.
type stateWriter struct {
	obj     object
	hist    []byte // "[" and every entry, oldest first, each followed by ","
	histEnd []int  // hist[:histEnd[i]] ends with entry i (without its ",")
}

func newStateWriter(raw []byte, hist []ActionHistory) (*stateWriter, error) {
	obj, err := splitObject(raw, setNames[:]...)
	if err != nil {
		return nil, err
	}
	w := &stateWriter{obj: obj, histEnd: make([]int, len(hist))}
	// json.Encoder writes an entry as json.Marshal of the history writes it, then a newline;
	// the newline becomes the separator.
	var buf bytes.Buffer
	buf.WriteByte('[')
	enc := json.NewEncoder(&buf)
	for i := range hist {
		if err := enc.Encode(&hist[i]); err != nil {
			return nil, err
		}
		w.histEnd[i] = buf.Len() - 1
		buf.Bytes()[buf.Len()-1] = ','
	}
	w.hist = buf.Bytes()
	return w, nil
}

// state returns the record as it was right after history entry i: act, the state rebuilt,
// without an expiry when noExpiry.
func (w *stateWriter) state(i int, act *Action, noExpiry bool) []byte {
	var vals [setCount]setValue
	vals[setHistory] = setValue{op: opSet, b: w.hist[:w.histEnd[i]], tail: ']'}
	vals[setUpdated] = setValue{op: opSet, b: strconv.AppendQuote(nil, strconv.FormatInt(act.Updated.Int64(), 10))}
	vals[setActive] = setValue{op: opSet, b: strconv.AppendBool(nil, act.Active)}
	vals[setCleared] = setValue{op: opSet, b: strconv.AppendBool(nil, act.Cleared)}
	vals[setExpires] = setValue{op: opSet, b: strconv.AppendInt(nil, act.Expires, 10)}
	if noExpiry {
		vals[setExpires] = setValue{op: opDrop}
	}
	if !act.Active {
		vals[setBlocked] = setValue{op: opSet, b: []byte("false")}
	}
	// The values other than the history are a few bytes each, names of absent members included.
	return w.obj.appendWith(make([]byte, 0, w.obj.size+w.histEnd[i]+128), vals[:])
}

// object is a JSON object split into its top-level members, to be written out again with
// some of them replaced.
type object struct {
	members []objectMember
	names   []string // the members that can be replaced (see appendWith)
	size    int      // room for the members kept, with separators, and the names of the others
}

type objectMember struct {
	text  []byte // `"name":value` as received (the name as the decoders read it)
	value int    // where the value starts in text
	set   int    // index in names it matches case-insensitively (as the decoders match), else -1
	first bool   // the first member matching that name
}

// setValue is what appendWith does with the members of one name.
type setValue struct {
	op   int    // opKeep (zero), opSet or opDrop
	b    []byte // opSet: the new value, followed by tail when tail is not 0
	tail byte
}

const (
	opKeep = iota // the members of the name stay as they are
	opSet         // the first member of the name gets the value, the others go; added last when absent
	opDrop        // every member of the name goes
)

var errNotObject = errors.New("not a JSON object")

// splitObject splits the JSON object raw into its members, matching each against names.
func splitObject(raw []byte, names ...string) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return object{}, errNotObject
	}
	if len(names) > 64 {
		panic("darktrace: splitObject takes at most 64 names")
	}
	o := object{names: names}
	seen := make([]bool, len(names))
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return object{}, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return object{}, err
		}
		text := jsontext.AppendKeepingBytes(nil, name)
		text = append(text, ':')
		m := objectMember{value: len(text), set: slices.IndexFunc(names, func(n string) bool { return strings.EqualFold(n, name) })}
		m.text = append(text, v...)
		if m.set >= 0 {
			m.first = !seen[m.set]
			seen[m.set] = true
		}
		o.members = append(o.members, m)
		if m.set < 0 {
			o.size += len(m.text) + 1
		} else {
			o.size += m.value + 1 + 24 // a replaced value's room is the caller's to add
		}
	}
	return o, nil
}

// appendWith appends the object with vals[k] applied to the members named names[k]; the
// others are kept as they are, in their order.
func (o *object) appendWith(out []byte, vals []setValue) []byte {
	out = append(out, '{')
	open := len(out)
	put := func(name, value []byte, tail byte) {
		if len(out) > open {
			out = append(out, ',')
		}
		out = append(append(out, name...), value...)
		if tail != 0 {
			out = append(out, tail)
		}
	}
	var done uint64 // bit k: a member named names[k] was met (splitObject takes at most 64 names)
	for i := range o.members {
		m := &o.members[i]
		if m.set < 0 || vals[m.set].op == opKeep {
			put(nil, m.text, 0)
			continue
		}
		done |= 1 << m.set
		if m.first && vals[m.set].op == opSet {
			put(m.text[:m.value], vals[m.set].b, vals[m.set].tail)
		}
	}
	for k := range vals {
		if done&(1<<k) == 0 && vals[k].op == opSet {
			// Absent: added under the name as given.
			put(append(jsontext.AppendKeepingBytes(nil, o.names[k]), ':'), vals[k].b, vals[k].tail)
		}
	}
	return append(out, '}')
}
