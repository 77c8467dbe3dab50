//go:build !unix

package sink

// peerGone cannot peek without blocking here; a dead peer shows up as a write error instead.
func (c *deadlineConn) peerGone() bool { return false }
