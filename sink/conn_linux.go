//go:build linux

package sink

import "golang.org/x/sys/unix"

// unacked returns how many bytes written to the socket the peer's kernel has not yet
// acknowledged (SIOCOUTQ: sent but unacknowledged plus not yet sent). ok is false when it
// cannot be asked, and then confirm skips the wait.
func (c *deadlineConn) unacked() (n int, ok bool) {
	rc, err := c.tcp.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	}); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
