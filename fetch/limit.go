// FIFO is the semaphore behind the process-wide request limit: it shares the API request
// slots fairly between appliances. A plain sync.Mutex or a buffered
// channel lets a goroutine that releases and re-acquires in a loop (an appliance with a huge
// backlog) barge ahead of one that has been waiting; a FIFO queue bounds every waiter's wait to
// the turns of those queued before it.
package fetch

import (
	"container/list"
	"context"
	"sync"
)

// FIFO is a counting semaphore whose waiters are served strictly in arrival order, and whose
// Acquire gives up when its context ends. The zero value is a FIFO of size 1 (a fair,
// cancellable mutex).
type FIFO struct {
	mu      sync.Mutex
	size    int // 0 means 1
	held    int
	waiters list.List // of chan struct{}, closed when the slot is handed over
}

// NewFIFO returns a FIFO with n slots (n < 1 is taken as 1).
func NewFIFO(n int) *FIFO { return &FIFO{size: max(n, 1)} }

func (f *FIFO) capacity() int { return max(f.size, 1) }

// Acquire takes a slot, waiting behind everyone already queued. It returns ctx.Err() (holding
// nothing) if ctx ends first.
func (f *FIFO) Acquire(ctx context.Context) error {
	f.mu.Lock()
	if f.held < f.capacity() && f.waiters.Len() == 0 {
		f.held++
		f.mu.Unlock()
		return nil
	}
	if err := ctx.Err(); err != nil {
		f.mu.Unlock()
		return err
	}
	ready := make(chan struct{})
	elem := f.waiters.PushBack(ready)
	f.mu.Unlock()

	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		select {
		case <-ready:
			// Handed the slot just as ctx ended: pass it on rather than leak it.
			f.mu.Unlock()
			f.Release()
		default:
			f.waiters.Remove(elem)
			f.mu.Unlock()
		}
		return ctx.Err()
	}
}

// Release returns a slot, handing it straight to the longest waiter if there is one.
func (f *FIFO) Release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if front := f.waiters.Front(); front != nil {
		f.waiters.Remove(front)
		close(front.Value.(chan struct{})) // the slot changes hands; held stays the same
		return
	}
	if f.held == 0 {
		panic("fetch: FIFO Release without Acquire")
	}
	f.held--
}

// Waiting returns how many goroutines are queued for a slot (for tests and metrics).
func (f *FIFO) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiters.Len()
}

// InUse returns how many slots are held.
func (f *FIFO) InUse() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}
