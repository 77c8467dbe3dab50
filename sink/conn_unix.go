//go:build unix

package sink

import "syscall"

// peerGone reports whether the receiver closed (or reset) the connection since the last
// batch. It peeks at the socket without blocking: writing into a connection whose peer is
// gone "succeeds" for the first write, and those bytes would be lost without an error.
func (c *deadlineConn) peerGone() bool {
	if c == nil || c.tcp == nil {
		return false
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return true
	}
	const (
		alive = iota
		gone
		pending
	)
	state := alive
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			state = alive
		case err != nil || n == 0:
			state = gone // EOF or reset
		default:
			state = pending
		}
		return true
	}); err != nil {
		return true
	}
	if state == pending {
		return !c.drain()
	}
	return state == gone
}
