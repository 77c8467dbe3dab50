package checkpoint

import "errors"

// ErrLocked is Lock's answer when another process holds the lock.
var ErrLocked = errors.New("locked by another process")
