package sink

import (
	"context"
	"errors"
	"fmt"
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
	net.Conn              // the conn written to: *tls.Conn or the raw TCP/UDP conn
	tcp      *net.TCPConn // the socket underneath, for peerGone; nil for UDP
	timeout  time.Duration
	buffered bool
	buf      []byte
	written  int // bytes handed to the kernel in the current batch
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
	c.written = 0
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

// drain reads whatever the peer sent (TLS session tickets, alerts, or stray data from a
// plain TCP receiver) for a moment, and reports whether the connection is still usable.
func (c *deadlineConn) drain() bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	var scratch [4096]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			var ne net.Error
			return errors.As(err, &ne) && ne.Timeout()
		}
	}
}
