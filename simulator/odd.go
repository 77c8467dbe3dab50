package simulator

import (
	"fmt"
	"strings"

	"github.com/dtforward/dtforward/darktrace"
)

// streamOdd + kind + record id seeds the choice of odd shapes for one record, so turning
// Options.OddFraction on does not change any other random draw of a seed.
const (
	streamOdd      = 1 << 42
	oddBreach      = 0
	oddAction      = 1 << 38
	oddIncident    = 2 << 38
	oddIncidentMax = 1 << 38 // incident ids are hashed into this range
)

// oddShape says in which of the shapes real appliances (and other builds) send a record
// differs from the simulator's usual rendering (the shapes collected in
// testdata/realshapes, whose README says where each comes from).
type oddShape struct {
	ackObject      bool // acknowledged as {"time": ms, "username": "…"} (acknowledged records only)
	labelOnly      bool // the device has only a devicelabel: no hostname, IP or MAC
	placeholderIP  bool // device.ip like "10.0.0.#36859" (C-sensor / unresolved device)
	literalNewline bool // the two characters `\` `n` instead of newlines in descriptions
	noPriority     bool // model.priority absent
	noURL          bool // breachUrl / incidentEventUrl absent
	noComments     bool // commentCount and mitreTechniques absent
	numberUpdated  bool // Antigena "updated" as a number instead of a string
}

func (o oddShape) any() bool { return o != oddShape{} }

// odd draws the odd shapes of the record with this id: none for 1-OddFraction of the records,
// otherwise each shape with probability 1/2 (at least one).
func (s *Simulator) odd(kind uint64, id int64) oddShape {
	if s.opts.OddFraction <= 0 {
		return oddShape{}
	}
	r := newRand(s.opts.Seed, streamOdd+kind+uint64(id)%oddIncidentMax)
	if r.Float64() >= s.opts.OddFraction {
		return oddShape{}
	}
	for {
		o := oddShape{
			ackObject: r.IntN(2) == 0, labelOnly: r.IntN(2) == 0, placeholderIP: r.IntN(2) == 0,
			literalNewline: r.IntN(2) == 0, noPriority: r.IntN(2) == 0, noURL: r.IntN(2) == 0,
			noComments: r.IntN(2) == 0, numberUpdated: r.IntN(2) == 0,
		}
		if o.labelOnly && o.placeholderIP {
			o.placeholderIP = r.IntN(2) == 0
			o.labelOnly = !o.placeholderIP
		}
		if o.any() {
			return o
		}
	}
}

// applyOddBreach reshapes the expanded breach as the odd shapes say.
func applyOddBreach(b *darktrace.Breach, o oddShape) {
	if o.ackObject && b.Acknowledged.Acked {
		b.Acknowledged.Time = max(b.Created(), b.Time) + 60_000
		b.Acknowledged.Username = "analyst@dt.example.com"
	}
	if o.noURL {
		b.BreachURL = ""
	}
	if o.noComments {
		b.CommentCount = 0
		b.MitreTechniques = nil
	}
	if o.noPriority {
		b.Model.Priority = nil
	}
	if o.literalNewline {
		b.Model.Description = strings.ReplaceAll(b.Model.Description, "\n", `\n`)
	}
	if b.Device.DID < 0 {
		return
	}
	switch {
	case o.labelOnly:
		b.Device = darktrace.Device{DID: b.Device.DID, SID: b.Device.SID, TypeName: b.Device.TypeName,
			TypeLabel: b.Device.TypeLabel, FirstSeen: b.Device.FirstSeen, LastSeen: b.Device.LastSeen,
			DeviceLabel: fmt.Sprintf("Label device %d", b.Device.DID)}
	case o.placeholderIP:
		b.Device.IP = fmt.Sprintf("10.0.0.#%d", 30000+b.Device.DID)
		b.Device.IPs = nil
		b.Device.MACAddress = ""
	}
}

// oddIncidentID maps an incident event id to the number odd() draws from.
func oddIncidentID(id string) int64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	return int64(h % oddIncidentMax)
}
