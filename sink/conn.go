package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// flushAt is the buffered size at which deadlineConn writes mid-batch. 64 KiB keeps memory
// small and still turns hundreds of messages into one syscall.
const flushAt = 64 << 10

// deadlineConn is the net.Conn srslog writes to. It adds what srslog lacks: a write deadline
// on every write (Timeout, or ctx's deadline when earlier), an abort when ctx is cancelled,
// and, for streams, buffering of a batch so that a batch costs a few syscalls rather than
// one per message. For UDP every Write goes out at once as one datagram.
//
// The first error is sticky: after a failed or partial write the stream is in an unknown
// state and the connection must be dropped.
type deadlineConn struct {
	net.Conn               // the conn written to: *tls.Conn or the raw TCP/UDP conn
	tcp      *net.TCPConn  // the socket underneath, for peerGone; nil for UDP
	setup    time.Duration // how long the TCP connect took
	timeout  time.Duration
	buffered bool
	buf      []byte
	written  int // bytes handed to the kernel in the current batch
	packets  int // datagrams sent in the current batch (UDP)
	err      error

	mu        sync.Mutex // guards cancelled and deadline changes against the ctx callback
	ctx       context.Context
	cancelled bool
	stop      func() bool
}

func newDeadlineConn(c net.Conn, tcp *net.TCPConn, timeout time.Duration, buffered bool) *deadlineConn {
	return &deadlineConn{Conn: c, tcp: tcp, timeout: timeout, buffered: buffered, ctx: context.Background()}
}

// begin arms ctx for one batch: cancelling it interrupts a blocked write at once.
func (c *deadlineConn) begin(ctx context.Context) {
	c.mu.Lock()
	c.ctx, c.cancelled = ctx, false
	c.mu.Unlock()
	c.written, c.packets = 0, 0
	c.stop = context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.ctx != ctx {
			return // fired late, for a batch that is over
		}
		c.cancelled = true
		_ = c.Conn.SetWriteDeadline(time.Unix(1, 0))
	})
}

func (c *deadlineConn) end() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.mu.Lock()
	c.ctx = context.Background() // a callback that fires late must not touch the next batch
	c.mu.Unlock()
}

// Write buffers p (streams) or sends it as one datagram (UDP).
func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if !c.buffered {
		return c.writeNow(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= flushAt {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flush writes what is buffered.
func (c *deadlineConn) flush() error {
	if c.err != nil {
		return c.err
	}
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.writeNow(c.buf)
	c.buf = c.buf[:0]
	return err
}

func (c *deadlineConn) writeNow(p []byte) (int, error) {
	c.mu.Lock()
	if c.cancelled {
		c.mu.Unlock()
		c.err = fmt.Errorf("write abandoned: %w", context.Cause(c.ctx))
		return 0, c.err
	}
	d := time.Now().Add(c.timeout)
	if cd, ok := c.ctx.Deadline(); ok && cd.Before(d) {
		d = cd
	}
	_ = c.Conn.SetWriteDeadline(d)
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.written += n
	if !c.buffered && err == nil {
		c.packets++
	}
	if err != nil {
		var ne net.Error
		switch {
		case c.ctx.Err() != nil:
			err = fmt.Errorf("write abandoned: %w (%v)", context.Cause(c.ctx), err)
		case errors.As(err, &ne) && ne.Timeout():
			err = fmt.Errorf("write timed out after %v (receiver not reading?): %w", c.timeout, err)
		}
		c.err = err
	}
	return n, err
}

// Close closes the connection. After a failed write it closes the socket directly: a TLS
// close_notify would be written with crypto/tls's own 5 s deadline into a connection that is
// already known to be stuck or broken.
func (c *deadlineConn) Close() error {
	if c.err != nil && c.tcp != nil {
		return c.tcp.Close()
	}
	return c.Conn.Close()
}

// takeWritten returns the bytes written since begin.
func (c *deadlineConn) takeWritten() int {
	n := c.written
	c.written = 0
	return n
}

// peerState is what a look at the socket tells about the receiver.
type peerState int

const (
	peerAlive  peerState = iota // nothing to read: a syslog collector never sends
	peerClosed                  // EOF: the collector closed its end
	peerReset                   // a reset or another error: the connection is broken
)

// peerGone reports whether the receiver closed or reset the connection.
func (c *deadlineConn) peerGone() bool { return c.peer() != peerAlive }

// drain reads whatever the peer sent (TLS session tickets, alerts, or stray data from a
// plain TCP receiver) for a moment, and reports what is left of the connection.
func (c *deadlineConn) drain() peerState {
	_ = c.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	var scratch [4096]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return peerAlive
			case errors.Is(err, io.EOF):
				return peerClosed // FIN, or a TLS close_notify
			default:
				return peerReset
			}
		}
	}
}

// freshSettle is how long confirm watches a new connection after its first batch was
// acknowledged. A load balancer with no healthy backend or a collector at its session limit
// accepts and then drops the connection within milliseconds; when our bytes reached its
// kernel before it did, they were acknowledged and are lost all the same, and only the close
// or reset that follows tells. Paid once per connection, so it costs no throughput. The watch
// grows by 4× the time the TCP connect took, which tracks both the distance to the
// collector and how loaded the machines are: a slow peer also drops slowly.
const freshSettle = 200 * time.Millisecond

// errPeerGone marks a batch written into a connection the collector dropped.
var errPeerGone = errors.New("the collector closed or reset the connection: the batch was not delivered")

// confirm is called after a batch was flushed. Writing into a TCP connection the peer has
// already closed succeeds (the kernel only learns of the reset later), so success of the
// writes proves nothing. confirm waits, within the write deadline, until the peer's kernel has
// acknowledged every byte (Linux SIOCOUTQ reaches 0) and checks that the peer has not reset
// the connection; fresh adds freshSettle of watching on a new connection.
//
// A syslog collector never closes a connection it is still reading, and one that closes
// with unread bytes in its socket sends a reset, not a FIN. So a reset fails the batch, and so
// does a FIN, except on an established connection whose bytes were all acknowledged: then
// the collector read them and closed (a graceful restart), and the next Send reconnects. On
// a fresh connection even that fails the batch: a TLS-terminating proxy with no backend reads
// our records into its own buffers and closes within milliseconds, which looks the same.
// Without SIOCOUTQ a FIN always fails the batch. A false alarm costs a resent batch
// (duplicates), never a gap.
//
// What it cannot see: bytes the collector (or a proxy in front of it) read and then lost,
// e.g. a hung collector killed with a full buffer. Only an application-level acknowledgement
// (RELP) closes that; see README "Delivery guarantees".
func (c *deadlineConn) confirm(fresh bool) error {
	if c.err != nil {
		return c.err
	}
	if c.tcp == nil || (c.written == 0 && !fresh) {
		return nil
	}
	deadline := time.Now().Add(c.timeout)
	if cd, ok := c.ctx.Deadline(); ok && cd.Before(deadline) {
		deadline = cd
	}
	pause := 20 * time.Microsecond
	for {
		st := c.peer()
		n, ok := c.unacked()
		switch {
		case st == peerReset, st == peerClosed && (fresh || !ok || n > 0):
			return c.fail(errPeerGone)
		case st == peerClosed:
			return nil
		case !ok || n == 0:
			return c.settle(fresh, deadline)
		case !time.Now().Before(deadline):
			return c.fail(fmt.Errorf("the collector did not acknowledge %d bytes within %v (host down or not reading?)", n, c.timeout))
		}
		if err := c.sleep(min(pause, time.Until(deadline))); err != nil {
			return err
		}
		pause = min(pause*2, 2*time.Millisecond)
	}
}

// settle watches a fresh connection for freshSettle (plus 4× its connect time) after its
// bytes were acknowledged.
func (c *deadlineConn) settle(fresh bool, deadline time.Time) error {
	if !fresh {
		return nil
	}
	if err := c.sleep(min(freshSettle+4*c.setup, c.timeout/2, time.Until(deadline))); err != nil {
		return err
	}
	if c.peer() != peerAlive {
		return c.fail(errPeerGone)
	}
	return nil
}

// sleep waits d or until the batch's ctx is cancelled.
func (c *deadlineConn) sleep(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return c.fail(fmt.Errorf("delivery check abandoned: %w", context.Cause(c.ctx)))
	}
}

// fail makes err the connection's sticky error: the connection must be dropped.
func (c *deadlineConn) fail(err error) error {
	c.err = err
	return err
}
