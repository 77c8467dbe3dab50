//go:build !linux

package sink

// unacked cannot ask the kernel for the send queue outside Linux. confirm then only waits
// the settle time on a fresh connection and peeks for a close or reset: a peer that drops a
// connection whose bytes it had acknowledged is noticed if it does so within that time (or
// before the next batch, which reconnects). See README "Delivery guarantees".
func (c *deadlineConn) unacked() (n int, ok bool) { return 0, false }
