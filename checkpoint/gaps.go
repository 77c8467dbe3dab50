package checkpoint

import "slices"

// GapState is the persisted pbid gap tracking of the breach source.
type GapState struct {
	// MaxPBID is the highest pbid delivered (or filtered) so far.
	MaxPBID int64 `json:"max"`
	// Missing are the pbids below MaxPBID not seen yet, oldest first.
	Missing []MissingPBID `json:"missing,omitempty"`
}

// MissingPBID is one pbid missing between delivered ones.
type MissingPBID struct {
	PBID    int64 `json:"p"`
	Since   int64 `json:"s"`           // noticed, epoch ms
	Checked int64 `json:"c,omitempty"` // last by-id check, epoch ms; 0 = never
}

// Clone returns a deep copy (nil for nil).
func (g *GapState) Clone() *GapState {
	if g == nil {
		return nil
	}
	return &GapState{MaxPBID: g.MaxPBID, Missing: slices.Clone(g.Missing)}
}
