package simulator

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/dtforward/dtforward/darktrace"
)

// actionRec is one Antigena action and its mutable lifecycle state.
type actionRec struct {
	darktrace.Action
	state   string // pending, active, extended, expired, cleared
	hostile bool   // usernames in its history carry hostile strings too
}

var actionKinds = [][3]string{
	{"quarantine", "Quarantine device", "Quarantine the device from all network traffic"},
	{"connection", "Block matching connections", "Block connections to %s on port %s"},
	{"pol", "Enforce pattern of life", "Enforce the device's normal pattern of life"},
	{"gpol", "Enforce group pattern of life", "Enforce the group's pattern of life"},
	{"quarantineOutgoing", "Block all outgoing traffic", "Block all outgoing traffic from the device"},
	{"quarantineIncoming", "Block all incoming traffic", "Block all incoming traffic to the device"},
}

var usernames = []string{"alice.admin", "bob@corp.example", "soc-analyst", "CORP\\carol"}

// newActionLocked creates one action at now (epoch ms). s.mu must be held for writing.
func (s *Simulator) newActionLocked(now int64) *actionRec {
	r := s.actionRand
	s.nextCodeID++
	k := actionKinds[r.IntN(len(actionKinds))]
	a := &actionRec{}
	a.CodeID = s.nextCodeID
	hostileRec := r.Float64() < s.opts.HostileFraction
	devIdx := r.IntN(normalDevices)
	if hostileRec {
		devIdx = normalDevices + r.IntN(hostileDevices)
	}
	d := &s.devices[devIdx].Device
	a.DID, a.IP = d.DID, d.IP
	a.Action.Action, a.Label = k[0], k[1]
	a.Detail = k[2]
	if k[0] == "connection" {
		a.Detail = "Block connections to " + rareDomains[r.IntN(len(rareDomains))] + " on port " + appProtos[r.IntN(len(appProtos))][0]
	}
	a.Start = now
	a.Expires = now + int64(time.Duration(1+r.IntN(24))*time.Hour/time.Millisecond)
	a.AGEmail = r.IntN(5) == 0
	if r.IntN(4) == 0 {
		// Manual actions: no model, score 0, and a person who started them.
		a.Manual = true
		user := usernames[r.IntN(len(usernames))]
		reason := "Containing a suspected compromise"
		if hostileRec {
			user = hostile(r, user)
			reason = hostile(r, reason)
		}
		a.Triggerer = &darktrace.Triggerer{Username: user, Reason: reason}
	} else {
		a.Score = darktrace.FlexFloat(float64(300+r.IntN(701)) / 1000)
		// Antigena answers a recent device breach (never a System::System one).
		var b *breachRec
		n := s.createdBy(now)
		for try := 0; try < 8 && b == nil && n > 0; try++ {
			if c := &s.breaches[n-1-r.IntN(min(n, 50))]; c.dev >= 0 {
				b = c
			}
		}
		if b != nil {
			a.PBID = b.pbid
			m := &s.models[b.model]
			a.Model, a.ModelUUID = m.Name, m.UUID
			d = &s.devices[b.dev].Device
			a.DID, a.IP = d.DID, d.IP
		} else {
			m := &s.models[1+r.IntN(len(modelSeeds))]
			a.Model, a.ModelUUID = m.Name, m.UUID
		}
	}
	if hostileRec {
		a.hostile = true
		a.AGHost = hostile(r, "host")
	}
	user := ""
	if a.Triggerer != nil {
		user = a.Triggerer.Username
	}
	if !a.Manual && r.IntN(3) == 0 {
		// Human confirmation mode: the action waits until someone approves it.
		a.state = "pending"
		a.History = []darktrace.ActionHistory{{Family: "ANTIGENA", Action: "created (requires confirmation)", Time: now}}
	} else {
		a.state = "active"
		a.Active = true
		a.Blocked = a.Action.Action != "pol"
		a.History = []darktrace.ActionHistory{{Family: "ANTIGENA", Username: user, Action: "created", Time: now}}
	}
	a.Updated = darktrace.FlexInt(now)
	s.actions = append(s.actions, a)
	s.logActionLocked(a)
	return a
}

// advanceLocked moves a one lifecycle step at now; false when it is already cleared.
func (s *Simulator) advanceLocked(a *actionRec, now int64) bool {
	if now <= a.Updated.Int64() {
		now = a.Updated.Int64() + 1 // every transition gets a distinct "updated"
	}
	user := usernames[s.actionRand.IntN(len(usernames))]
	if a.hostile {
		user = hostile(s.actionRand, user)
	}
	switch a.state {
	case "pending":
		a.state, a.Active, a.Blocked = "active", true, a.Action.Action != "pol"
		a.History = append(a.History, darktrace.ActionHistory{Family: "ANTIGENA", Username: user, Action: "created", Reason: "confirmed", Time: now})
	case "active":
		a.state = "extended"
		a.Expires += int64(2 * time.Hour / time.Millisecond)
		a.History = append(a.History, darktrace.ActionHistory{Family: "ANTIGENA", Username: user, Action: "extended", Reason: "still suspicious", Time: now})
	case "extended":
		a.state, a.Active, a.Cleared, a.Blocked = "cleared", false, true, false
		a.History = append(a.History, darktrace.ActionHistory{Family: "ANTIGENA", Username: user, Action: "cleared", Reason: "false positive", Time: now})
	case "expired":
		a.state, a.Blocked = "active", a.Action.Action != "pol"
		a.Expires = now + int64(time.Hour/time.Millisecond)
		a.History = append(a.History, darktrace.ActionHistory{Family: "ANTIGENA", Username: user, Action: "reactivated (expired)", Reason: "activity resumed", Time: now})
	default:
		return false
	}
	a.Updated = darktrace.FlexInt(now)
	s.logActionLocked(a)
	return true
}

func (s *Simulator) logActionLocked(a *actionRec) {
	s.actionLog = append(s.actionLog, ActionState{
		CodeID: a.CodeID, State: a.state, Updated: a.Updated.Int64(),
		Active: a.Active, Cleared: a.Cleared, Expires: a.Expires,
	})
}

// AddActions creates n Antigena actions now (some awaiting confirmation, some active at once,
// some manual) and returns their codeids.
func (s *Simulator) AddActions(n int) []int64 {
	return makeN(s, n, func(now int64) int64 { return s.newActionLocked(now).CodeID })
}

// AdvanceActions moves every action that is not cleared one lifecycle step
// (pending → active → extended → cleared; expired → active), each with a new "updated", and
// returns the states it produced.
func (s *Simulator) AdvanceActions() []ActionState {
	return s.changeActions(s.advanceLocked)
}

// ExpireActions lets every active or extended action run out: its expiry moves into the past
// and "updated" past it, while it stays active and not cleared, as on the appliance. The next
// AdvanceActions reactivates it ("reactivated (expired)") for another hour. It returns the
// states it produced, with State "expired".
func (s *Simulator) ExpireActions() []ActionState {
	return s.changeActions(func(a *actionRec, now int64) bool {
		if a.state != "active" && a.state != "extended" {
			return false
		}
		at := max(now, a.Updated.Int64()+2)
		a.state = "expired"
		a.Expires = at - 1
		a.Blocked = false
		a.Updated = darktrace.FlexInt(at)
		s.logActionLocked(a)
		return true
	})
}

// changeActions applies change to every action under the lock and returns the state each
// change logged.
func (s *Simulator) changeActions(change func(a *actionRec, now int64) bool) []ActionState {
	now := s.Now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ActionState
	for _, a := range s.actions {
		if change(a, now) {
			out = append(out, s.actionLog[len(s.actionLog)-1])
		}
	}
	return out
}

// RemoveActions deletes actions from the appliance, as when it purges old ones: they are no
// longer listed, whatever their state. It returns how many it removed.
func (s *Simulator) RemoveActions(codeids ...int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.actions)
	s.actions = slices.DeleteFunc(s.actions, func(a *actionRec) bool { return slices.Contains(codeids, a.CodeID) })
	return n - len(s.actions)
}

// Actions returns the current state of every action, in codeid order.
func (s *Simulator) Actions() []darktrace.Action {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]darktrace.Action, len(s.actions))
	for i, a := range s.actions {
		out[i] = a.Action
		out[i].History = append([]darktrace.ActionHistory(nil), a.History...)
	}
	return out
}

// ActionStates returns every state emitted so far: each action's creation and every
// transition, in the order they happened.
func (s *Simulator) ActionStates() []ActionState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]ActionState(nil), s.actionLog...)
}

func appendAction(w *jw, a *darktrace.Action, history bool, odd oddShape) {
	w.obj()
	w.kInt("codeid", a.CodeID)
	w.kInt("did", a.DID)
	if odd.placeholderIP {
		w.kStr("ip", fmt.Sprintf("10.0.0.#%d", 30000+a.DID))
	} else {
		w.kStr("ip", a.IP)
	}
	w.kStr("action", a.Action)
	w.kStr("label", a.Label)
	w.kStr("detail", a.Detail)
	w.kBool("manual", a.Manual)
	w.key("triggerer")
	if a.Triggerer == nil {
		w.null()
	} else {
		w.obj()
		w.kStr("username", a.Triggerer.Username)
		w.kStr("reason", a.Triggerer.Reason)
		w.endObj()
	}
	w.kFloat("score", float64(a.Score))
	w.kInt("pbid", a.PBID)
	w.kStr("model", a.Model)
	w.kStr("modeluuid", a.ModelUUID)
	w.kInt("start", a.Start)
	w.kInt("expires", a.Expires)
	if odd.numberUpdated {
		w.kInt("updated", a.Updated.Int64())
	} else {
		w.kStr("updated", strconv.FormatInt(a.Updated.Int64(), 10)) // a string on real appliances
	}
	w.kBool("blocked", a.Blocked)
	w.kBool("active", a.Active)
	w.kBool("cleared", a.Cleared)
	w.kBool("agemail", a.AGEmail)
	w.kStr("aghost", a.AGHost)
	if history {
		w.objects("history", len(a.History), func(i int) {
			h := &a.History[i]
			w.kStr("family", h.Family)
			w.kStr("username", h.Username)
			w.kStr("action", h.Action)
			w.kStr("reason", h.Reason)
			w.kInt("time", h.Time)
		})
	}
	w.endObj()
}
