package kernel

import (
	"container/heap"
	"sync"
	"time"
)

// timeouts keeps every outstanding request that expects a response in a
// min-heap by deadline, with one timer armed for the earliest. A request
// answered in time is removed from the heap (O(log n)); the timer is not
// re-armed for that, it fires at its old deadline, finds nothing due and
// re-arms for the new earliest, so the steady request/response path does
// no timer work at all.
type timeouts struct {
	clock  Clock
	expire func([]expired)

	mu     sync.Mutex
	h      reqHeap
	timer  Timer
	armed  time.Time // deadline the timer is armed for; zero when idle
	closed bool
}

// expired is a request whose deadline passed, copied out under the lock.
type expired struct {
	req   *Message
	owner *proc
	id    uint64
}

func (t *timeouts) add(m *Message) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	heap.Push(&t.h, m)
	if t.armed.IsZero() || m.deadline.Before(t.armed) {
		t.arm(m.deadline)
	}
	t.mu.Unlock()
}

func (t *timeouts) remove(m *Message) {
	t.mu.Lock()
	if m.heapIdx > 0 {
		heap.Remove(&t.h, m.heapIdx-1)
	}
	t.mu.Unlock()
}

// arm sets the timer for deadline d. t.mu is held.
func (t *timeouts) arm(d time.Time) {
	t.armed = d
	wait := d.Sub(t.clock.Now())
	if wait < 0 {
		wait = 0
	}
	if t.timer == nil {
		t.timer = t.clock.AfterFunc(wait, t.fire)
	} else {
		t.timer.Reset(wait)
	}
}

func (t *timeouts) fire() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	now := t.clock.Now()
	var due []expired
	for len(t.h) > 0 && !t.h[0].deadline.After(now) {
		m := heap.Pop(&t.h).(*Message)
		due = append(due, expired{m, m.owner, m.ID})
	}
	t.armed = time.Time{}
	if len(t.h) > 0 {
		t.arm(t.h[0].deadline)
	}
	t.mu.Unlock()
	if len(due) > 0 {
		t.expire(due)
	}
}

func (t *timeouts) close() {
	t.mu.Lock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.mu.Unlock()
}

func (t *timeouts) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.h)
}

// reqHeap orders requests by deadline; each knows its index plus one
// (zero: not in the heap).
type reqHeap []*Message

func (h reqHeap) Len() int           { return len(h) }
func (h reqHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h reqHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i + 1
	h[j].heapIdx = j + 1
}
func (h *reqHeap) Push(x any) {
	m := x.(*Message)
	*h = append(*h, m)
	m.heapIdx = len(*h)
}
func (h *reqHeap) Pop() any {
	old := *h
	n := len(old)
	m := old[n-1]
	old[n-1] = nil
	m.heapIdx = 0
	*h = old[:n-1]
	return m
}
