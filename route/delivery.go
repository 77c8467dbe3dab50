package route

import (
	"context"
	"errors"
	"sync"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/formatter"
	"github.com/dtforward/dtforward/sink"
)

// Slice is the most lines one sink write carries. An appliance hands its batch over a
// slice at a time and queues behind the others between slices, so a huge batch or a slow
// collector delays another appliance by at most one slice, and formatted lines are held one
// slice at a time per appliance.
const Slice = 500

// Delivery is the poller.Deliverer of one destination, shared by every appliance: it formats a
// batch and sends it through the destination's sink (sink.Sink is not required to be concurrent-safe).
//
// Slices queue in arrival order. One writer at a time takes the queue's head and, behind it,
// as many whole queued slices as fit in Slice lines, and sends them in one write: a
// group commit. With hundreds of appliances the file sink then fsyncs once per group instead
// of once per appliance, and a syslog sink makes one write. Every slice in the group gets the
// group's result; a failed group is retried whole by each appliance (duplicates, never a gap).
// The lines of one batch stay in order; other appliances' lines may come between its slices.
type Delivery struct {
	f   formatter.Formatter
	s   sink.Sink
	log zerolog.Logger

	mu      sync.Mutex
	queue   []*pendingSlice
	writing bool
	room    chan struct{} // closed when the queue shrinks; nil while nobody waits
}

// pendingSlice is one appliance's slice waiting for (or in) a sink write.
type pendingSlice struct {
	ctx   context.Context
	msgs  []sink.Message
	taken bool       // in a write; it can no longer be withdrawn
	done  chan error // buffered: the write's result
}

// NewDelivery returns the Deliverer that formats with f and sends through s.
func NewDelivery(f formatter.Formatter, s sink.Sink, log zerolog.Logger) *Delivery {
	return &Delivery{f: f, s: s, log: log}
}

// Deliver implements poller.Deliverer.
func (d *Delivery) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	for len(alerts) > 0 {
		n := min(len(alerts), Slice)
		msgs := make([]sink.Message, 0, n)
		for _, a := range alerts[:n] {
			line, err := d.f.Append(nil, a)
			if err != nil {
				d.log.Error().Str("kind", a.Kind).Str("id", a.ID).Str("appliance", a.Appliance).Err(err).
					Msg("alert cannot be formatted; skipped")
				continue
			}
			msgs = append(msgs, sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line, Alert: a})
		}
		alerts = alerts[n:]
		if len(msgs) == 0 {
			continue
		}
		if err := d.send(ctx, msgs); err != nil {
			return err
		}
	}
	return nil
}

// send queues one slice and waits for its write. It gives up when ctx ends before the slice
// is taken into a write; once taken, the write (bounded by the sink's own deadlines, and
// cancelled with ctx) decides.
func (d *Delivery) send(ctx context.Context, msgs []sink.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := &pendingSlice{ctx: ctx, msgs: msgs, done: make(chan error, 1)}
	d.mu.Lock()
	d.queue = append(d.queue, p)
	start := !d.writing
	d.writing = true
	d.mu.Unlock()
	if start {
		go d.write()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
	}
	d.mu.Lock()
	if !p.taken {
		for i, q := range d.queue {
			if q == p {
				d.queue = append(d.queue[:i], d.queue[i+1:]...)
				d.shrunkLocked()
				break
			}
		}
		d.mu.Unlock()
		return ctx.Err()
	}
	d.mu.Unlock()
	return <-p.done
}

// WaitRoom returns once fewer than limit slices wait for the sink, or with ctx.Err(). Fetches
// call it first: with a slow collector, appliances then stop fetching batches that could only
// pile up in memory behind it, so memory follows the configuration, not the appliance count.
func (d *Delivery) WaitRoom(ctx context.Context, limit int) error {
	for {
		d.mu.Lock()
		if len(d.queue) < limit {
			d.mu.Unlock()
			return nil
		}
		if d.room == nil {
			d.room = make(chan struct{})
		}
		room := d.room
		d.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d *Delivery) shrunkLocked() {
	if d.room != nil {
		close(d.room)
		d.room = nil
	}
}

// Queued returns how many slices wait for a write.
func (d *Delivery) Queued() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue)
}

// write sends groups of queued slices until the queue is empty.
func (d *Delivery) write() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.writing = false
			d.mu.Unlock()
			return
		}
		n, lines := 0, 0
		for _, p := range d.queue {
			if n > 0 && lines+len(p.msgs) > Slice {
				break
			}
			p.taken = true
			lines += len(p.msgs)
			n++
		}
		group := d.queue[:n:n]
		d.queue = append([]*pendingSlice(nil), d.queue[n:]...)
		d.shrunkLocked()
		d.mu.Unlock()
		d.writeGroup(group)
	}
}

// writeGroup sends a group in one write and reports to each slice. The write is cancelled as
// soon as any member's context ends (shutdown cancels them all); the others then retry.
func (d *Delivery) writeGroup(group []*pendingSlice) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, p := range group {
		stop := context.AfterFunc(p.ctx, cancel)
		defer stop()
	}
	msgs := group[0].msgs
	if len(group) > 1 {
		msgs = make([]sink.Message, 0, Slice)
		for _, p := range group {
			msgs = append(msgs, p.msgs...)
		}
	}
	err := d.s.Send(ctx, msgs)
	if !errors.Is(err, sink.ErrMessageTooLarge) {
		for _, p := range group {
			p.done <- err
		}
		return
	}
	// Nothing was sent and resending cannot succeed: send one by one and drop (with a log
	// line) only the messages the transport can never carry.
	for _, p := range group {
		p.done <- d.sendEach(ctx, p.msgs)
	}
}

func (d *Delivery) sendEach(ctx context.Context, msgs []sink.Message) error {
	for _, m := range msgs {
		err := d.s.Send(ctx, []sink.Message{m})
		switch {
		case errors.Is(err, sink.ErrMessageTooLarge):
			d.log.Error().Str("kind", m.Kind).Int("bytes", len(m.Line)).Msg("message too large for the transport; skipped")
		case err != nil:
			return err
		}
	}
	return nil
}
