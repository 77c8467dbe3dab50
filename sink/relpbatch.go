package sink

import (
	"fmt"
	"slices"
	"strings"
)

// relpBatch is the progress of one Send.
type relpBatch struct {
	msgs      []Message
	pending   []inflight // sent on the current connection, unanswered, in send order
	retry     []int      // batch indices to send (again) before next, ascending
	next      int        // first batch index never sent
	acked     int
	written   int // bytes, resends included
	sanitized int
	// ok marks the batch indices the receiver accepted; refused holds the first refusal.
	// Both are only kept once a message was refused (nil until then).
	ok      []bool
	refused *relpRefusal
}

// relpRefusal is a non-200 answer to one message.
type relpRefusal struct {
	idx int
	rsp relpRsp
}

// accept records a 200 answer for the message at idx.
func (b *relpBatch) accept(idx int) {
	b.acked++
	if b.ok == nil {
		b.ok = make([]bool, len(b.msgs))
	}
	b.ok[idx] = true
}

// refuse records a refusal; the earliest one in the batch is the one reported.
func (b *relpBatch) refuse(idx int, rsp relpRsp) {
	if b.ok == nil {
		b.ok = make([]bool, len(b.msgs))
	}
	if b.refused == nil || idx < b.refused.idx {
		b.refused = &relpRefusal{idx: idx, rsp: rsp}
	}
}

// rejection is the RejectedError for the first refused message, when every message before it
// was accepted (so the caller may take them as delivered); nil otherwise.
func (b *relpBatch) rejection() *RejectedError {
	r := b.refused
	if slices.Contains(b.ok[:r.idx], false) {
		return nil
	}
	next := r.idx + 1
	for next < len(b.msgs) && b.ok[next] {
		next++
	}
	return &RejectedError{Index: r.idx, Next: next, Alert: b.msgs[r.idx].Alert,
		Reason: strings.TrimSpace(fmt.Sprintf("%03d %s", r.rsp.code, r.rsp.text))}
}

// take returns the batch index to send next, and whether it is sent for the first time.
func (b *relpBatch) take() (idx int, fresh bool) {
	if len(b.retry) > 0 {
		idx, b.retry = b.retry[0], b.retry[1:]
		return idx, false
	}
	b.next++
	return b.next - 1, true
}

func (b *relpBatch) more() bool { return len(b.retry) > 0 || b.next < len(b.msgs) }

// canTake says whether a message is due: after a refusal, only the unanswered messages before
// the refused one are (sent again on a new connection), so that the refusal can be reported
// with everything before it accepted.
func (b *relpBatch) canTake() bool {
	switch {
	case !b.more():
		return false
	case b.refused == nil:
		return true
	case len(b.retry) > 0:
		return b.retry[0] < b.refused.idx
	default:
		return b.next < b.refused.idx
	}
}

// requeue puts the unanswered messages of a lost connection in front of the rest.
func (b *relpBatch) requeue() {
	retry := make([]int, 0, len(b.pending)+len(b.retry))
	for _, p := range b.pending {
		retry = append(retry, p.idx)
	}
	b.retry = append(retry, b.retry...)
	slices.Sort(b.retry)
	b.pending = b.pending[:0]
}
