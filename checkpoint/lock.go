package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrLocked is Lock's answer when another process holds the lock (errors.Is matches a
// *LockedError).
var ErrLocked = errors.New("locked by another process")

// Holder is the process holding a lock, as written into the lock file.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
	// What says what the holder does with the state ("run", "run shard 1 of 3", "backfill").
	What string `json:"what,omitempty"`
}

// String names the holder for an error message.
func (h Holder) String() string {
	if h.PID == 0 {
		return "another process (it has not recorded itself yet)"
	}
	s := fmt.Sprintf("pid %d on host %s, started %s", h.PID, h.Host, h.Started.UTC().Format(time.RFC3339))
	if h.What != "" {
		s = h.What + ", " + s
	}
	return s
}

// LockedError is a lock another process holds.
type LockedError struct {
	Path   string
	Holder Holder
}

// Error implements error.
func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is locked by %s", e.Path, e.Holder)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// self is this process as a lock holder.
func self(what string) Holder {
	host, _ := os.Hostname()
	return Holder{PID: os.Getpid(), Host: host, Started: processStart, What: what}
}

// processStart is when this process started (near enough: when the package was initialised).
var processStart = time.Now().Truncate(time.Second)

func readHolder(path string) Holder {
	var h Holder
	b, err := os.ReadFile(path)
	if err == nil {
		_ = json.Unmarshal(b, &h)
	}
	return h
}
