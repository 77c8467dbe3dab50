//go:build unix

package sink

import "syscall"

// peer reports whether the receiver closed (FIN) or reset the connection. It peeks at the
// socket without blocking: writing into a connection whose peer is gone "succeeds" for the
// first write, and those bytes would be lost without an error.
func (c *deadlineConn) peer() peerState {
	if c == nil || c.tcp == nil {
		return peerAlive
	}
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return peerReset
	}
	const pending = peerReset + 1
	state := peerAlive
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			state = peerAlive
		case err != nil:
			state = peerReset
		case n == 0:
			state = peerClosed
		default:
			state = pending
		}
		return true
	}); err != nil {
		return peerReset
	}
	if state == pending {
		return c.drain()
	}
	return state
}
