package route

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dtforward/dtforward/alert"
	"github.com/dtforward/dtforward/deadletter"
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
	f    formatter.Formatter
	s    sink.Sink
	log  zerolog.Logger
	opts DeliveryOptions

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
	aside int        // messages the write set aside (too large), set before done
	done  chan error // buffered: the write's result
}

// DeadLetter is where a Delivery sets aside what its sink cannot take (*deadletter.File).
type DeadLetter interface {
	Write(deadletter.Record) error
	Path() string
}

// DeliveryOptions say what a Delivery does with a record its sink cannot take.
type DeliveryOptions struct {
	Sink string // the sink's name in dead letters
	// DeadLetter receives the records set aside; nil holds them instead (the batch is retried
	// and its error names the record).
	DeadLetter DeadLetter
	// PoisonRetries is how many times in a row the receiver may refuse one message before it is
	// set aside; 0 means DefaultPoisonRetries.
	PoisonRetries int
	// RefusalWait is the pause before a refused message is sent again, doubled each time up
	// to 30 s; 0 means one second.
	RefusalWait time.Duration
	// Counted is called with the reason of each record set aside (the metric); may be nil.
	Counted func(reason string)
}

// DefaultPoisonRetries is SIEM_POISON_RETRIES's default: a receiver that refuses the same
// message three times, seconds apart, means it.
const DefaultPoisonRetries = 3

// NewDelivery returns the Deliverer that formats with f and sends through s. Without options a
// record the sink cannot take is held (see DeliveryOptions).
func NewDelivery(f formatter.Formatter, s sink.Sink, log zerolog.Logger, opts ...DeliveryOptions) *Delivery {
	d := &Delivery{f: f, s: s, log: log}
	if len(opts) > 0 {
		d.opts = opts[0]
	}
	if d.opts.PoisonRetries <= 0 {
		d.opts.PoisonRetries = DefaultPoisonRetries
	}
	if d.opts.RefusalWait <= 0 {
		d.opts.RefusalWait = time.Second
	}
	return d
}

// Deliver implements poller.Deliverer.
func (d *Delivery) Deliver(ctx context.Context, alerts []*alert.Alert) error {
	_, err := d.deliver(ctx, alerts)
	return err
}

// deliver is Deliver that also says how many alerts were set aside (the rest were accepted).
func (d *Delivery) deliver(ctx context.Context, alerts []*alert.Alert) (aside int, err error) {
	for len(alerts) > 0 {
		n := min(len(alerts), Slice)
		msgs := make([]sink.Message, 0, n)
		for _, a := range alerts[:n] {
			line, err := d.f.Append(nil, a)
			if err != nil {
				// The formats fall back to a bounded record before giving up, so this is a
				// record no format could render: keep it, raw, where an operator finds it.
				if err := d.setAside(a, nil, deadletter.ReasonUnformattable, err.Error()); err != nil {
					return aside, err
				}
				aside++
				continue
			}
			msgs = append(msgs, sink.Message{Severity: a.Severity, Kind: a.Kind, Line: line, Alert: a})
		}
		alerts = alerts[n:]
		k, err := d.deliverSlice(ctx, msgs)
		aside += k
		if err != nil {
			return aside, err
		}
	}
	return aside, nil
}

// deliverSlice sends one slice until every message was accepted or set aside. A message the
// receiver refuses (sink.RejectedError) is sent again, after a pause, with the messages behind
// it; the ones before it, which the receiver accepted, are not. After PoisonRetries refusals
// in a row it goes to the dead letter and the rest flows.
func (d *Delivery) deliverSlice(ctx context.Context, msgs []sink.Message) (aside int, err error) {
	refusals := 0
	wait := d.opts.RefusalWait
	for len(msgs) > 0 {
		k, err := d.send(ctx, msgs)
		aside += k
		var rq *requeued
		var rej *sink.RejectedError
		switch {
		case err == nil:
			return aside, nil
		case errors.As(err, &rq):
			msgs = msgs[rq.accepted:]
			continue
		}
		if !errors.As(err, &rej) || rej.Index < 0 || rej.Index >= len(msgs) {
			return aside, err
		}
		m := msgs[rej.Index]
		if rej.Index == 0 {
			refusals++ // the message refused last time (it was put first) refused again
		} else {
			refusals = 1
		}
		next := rej.Next
		if next <= rej.Index || next > len(msgs) {
			next = rej.Index + 1
		}
		if refusals >= d.opts.PoisonRetries {
			if err := d.setAside(m.Alert, m.Line, deadletter.ReasonRefused, rej.Reason); err != nil {
				return aside, err
			}
			aside++
			msgs, refusals, wait = msgs[next:], 0, d.opts.RefusalWait
			continue
		}
		logAlert(d.log.Warn(), m.Alert).Str("answer", rej.Reason).Int("refusals", refusals).
			Int("poison_retries", d.opts.PoisonRetries).
			Msg("the receiver refused an alert; sending it again after a pause (the alerts it accepted are not resent)")
		rest := make([]sink.Message, 0, 1+len(msgs)-next)
		msgs = append(append(rest, m), msgs[next:]...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return aside, fmt.Errorf("the receiver refused %s (%s): %w", describe(m.Alert), rej.Reason, ctx.Err())
		}
		wait = min(2*wait, maxRefusalWait)
	}
	return aside, nil
}

// maxRefusalWait caps the pause between two sends of a refused message.
const maxRefusalWait = 30 * time.Second

// setAside writes one alert (its line when it has one) to the dead letter, counts and logs
// it. Without a dead letter, or when the dead letter cannot take it, the alert is held: the
// error names it, and the caller keeps its checkpoint.
func (d *Delivery) setAside(a *alert.Alert, line []byte, reason, answer string) error {
	r := deadletter.Record{Time: time.Now().UTC(), Sink: d.opts.Sink, Reason: reason, Answer: answer}
	if a != nil {
		r.Appliance, r.Kind, r.ID = a.Appliance, a.Kind, a.ID
	}
	switch {
	case line != nil:
		r.Line = string(line)
	case a != nil && json.Valid(a.Raw):
		r.Record = a.Raw
	case a != nil:
		r.RecordText = string(a.Raw)
	}
	if d.opts.DeadLetter == nil {
		return fmt.Errorf("%s cannot be sent (%s: %s) and there is no dead-letter file to set it aside; holding it", describe(a), reason, answer)
	}
	if err := d.opts.DeadLetter.Write(r); err != nil {
		logAlert(d.log.Error(), a).Str("reason", reason).Str("answer", answer).Err(err).
			Msg("alert cannot be sent and cannot be set aside; holding it (and the alerts behind it) until there is room")
		return fmt.Errorf("%s cannot be sent (%s: %s) and cannot be set aside: %w", describe(a), reason, answer, err)
	}
	if d.opts.Counted != nil {
		d.opts.Counted(reason)
	}
	logAlert(d.log.Error(), a).Str("reason", reason).Str("answer", answer).Str("dead_letter", d.opts.DeadLetter.Path()).
		Msg("alert set aside in the dead-letter file; the checkpoint moves past it")
	return nil
}

// describe names an alert for an error text and /readyz.
func describe(a *alert.Alert) string {
	if a == nil {
		return "a message"
	}
	return fmt.Sprintf("%s %s of appliance %s", a.Kind, a.ID, a.Appliance)
}

func logAlert(ev *zerolog.Event, a *alert.Alert) *zerolog.Event {
	if a == nil {
		return ev
	}
	return ev.Str("appliance", a.Appliance).Str("kind", a.Kind).Str("id", a.ID)
}

// send queues one slice and waits for its write. It gives up when ctx ends before the slice
// is taken into a write; once taken, the write (bounded by the sink's own deadlines, and
// cancelled with ctx) decides.
func (d *Delivery) send(ctx context.Context, msgs []sink.Message) (aside int, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
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
		return p.aside, err
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
		return 0, ctx.Err()
	}
	d.mu.Unlock()
	err = <-p.done
	return p.aside, err
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
	var rej *sink.RejectedError
	switch {
	case errors.Is(err, sink.ErrMessageTooLarge):
		// Nothing was sent and resending cannot succeed: send one by one and set aside only
		// the messages the transport can never carry.
		for _, p := range group {
			err := d.sendEach(ctx, p)
			p.done <- err
		}
	case errors.As(err, &rej) && rej.Index >= 0 && rej.Index < len(msgs):
		// Tell each slice what the receiver took: the slices before the refused message are
		// done, its own slice gets the refusal, the slices after it are sent again without
		// what the receiver already accepted of them.
		next := rej.Next
		if next <= rej.Index || next > len(msgs) {
			next = rej.Index + 1
		}
		off := 0
		for _, p := range group {
			n := len(p.msgs)
			switch {
			case off+n <= rej.Index:
				p.done <- nil
			case off <= rej.Index:
				p.done <- &sink.RejectedError{Index: rej.Index - off, Next: min(next-off, n), Reason: rej.Reason, Alert: rej.Alert}
			default:
				p.done <- &requeued{accepted: min(max(next-off, 0), n)}
			}
			off += n
		}
	default:
		for _, p := range group {
			p.done <- err
		}
	}
}

// requeued is a slice's result when the receiver refused a message of an earlier slice in the
// same write: the first accepted messages were taken, the rest is sent again at once.
type requeued struct{ accepted int }

func (r *requeued) Error() string {
	return fmt.Sprintf("sent again: a message before it was refused (%d accepted)", r.accepted)
}

func (d *Delivery) sendEach(ctx context.Context, p *pendingSlice) error {
	for i, m := range p.msgs {
		err := d.s.Send(ctx, []sink.Message{m})
		var rej *sink.RejectedError
		switch {
		case errors.Is(err, sink.ErrMessageTooLarge):
			if err := d.setAside(m.Alert, m.Line, deadletter.ReasonTooLarge, err.Error()); err != nil {
				return err
			}
			p.aside++
		case errors.As(err, &rej):
			return &sink.RejectedError{Index: i, Reason: rej.Reason, Alert: m.Alert}
		case err != nil:
			return err
		}
	}
	return nil
}
