package kernel

import (
	"container/heap"
	"time"
)

// timeouts holds one process's pending requests in a min-heap by deadline,
// with one timer armed for the earliest. A request answered in time is
// removed from the heap (O(log n)); the timer is not re-armed for that, it
// fires at its old deadline, finds nothing due and re-arms for the new
// earliest, so the steady request/response path does no timer work at
// all. Everything here is guarded by the owning process's mutex, which the
// send and answer paths hold anyway: timeouts take no lock of their own.
type timeouts struct {
	h     reqHeap
	timer Timer
	armed int64 // deadline the timer is armed for; zero when idle
}

// now is the current time on the kernel's deadline scale, never zero.
func (k *Kernel) now() int64 { return int64(k.clock.Since(k.epoch)) + 1 }

// addTimeout puts a pending request in p's heap. p.mu is held.
func (p *proc) addTimeout(m *Message) {
	heap.Push(&p.to.h, m)
	if p.to.armed == 0 || m.deadline < p.to.armed {
		p.armTimeout(m.deadline)
	}
}

// removeTimeout takes a request out of p's heap if it is there. p.mu is held.
func (p *proc) removeTimeout(m *Message) {
	if m.heapIdx > 0 {
		heap.Remove(&p.to.h, int(m.heapIdx-1))
	}
}

// armTimeout sets p's timer for deadline d. p.mu is held.
func (p *proc) armTimeout(d int64) {
	p.to.armed = d
	wait := time.Duration(d - p.k.now())
	if wait < 0 {
		wait = 0
	}
	if p.to.timer == nil {
		p.to.timer = p.k.clock.AfterFunc(wait, p.fireTimeouts)
	} else {
		p.to.timer.Reset(wait)
	}
}

// fireTimeouts fails every pending request of p whose deadline has passed.
// For remote:sys:weft, which stands for requesters on other nodes, the
// errors are forwarded to their nodes once p.mu is released.
func (p *proc) fireTimeouts() {
	k := p.k
	type fwd struct {
		in  inboundReq
		ans *Message
	}
	var forward []fwd
	p.mu.Lock()
	now := k.now()
	p.to.armed = 0
	for len(p.to.h) > 0 && p.to.h[0].deadline <= now {
		req := heap.Pop(&p.to.h).(*Message)
		if p.pending[req.ID] != req {
			continue
		}
		delete(p.pending, req.ID)
		e := k.sendErr(ErrTimeout, *req.dst, req, "no response within "+req.ExpectsResponse.String())
		ans := &Message{ID: req.ID, Kind: KindError, src: &p.addr, dst: req.dst, Error: e}
		if p == k.rm.proc {
			if in, ok := k.takeInboundLocked(req.ID); ok {
				forward = append(forward, fwd{in, ans})
			}
			continue
		}
		k.unindex(req)
		p.deliverAnswerLocked(req, ans)
		k.observe(ans, p.addr)
	}
	if len(p.to.h) > 0 {
		p.armTimeout(p.to.h[0].deadline)
	}
	p.mu.Unlock()
	for _, f := range forward {
		k.forwardAnswer(f.in, f.ans, nil)
	}
}

// stopTimeouts forgets every timeout. p.mu is held.
func (p *proc) stopTimeouts() {
	for len(p.to.h) > 0 {
		heap.Pop(&p.to.h)
	}
	if p.to.timer != nil {
		p.to.timer.Stop()
	}
	p.to.armed = 0
}

// reqHeap orders requests by deadline; each knows its index plus one
// (zero: not in the heap).
type reqHeap []*Message

func (h reqHeap) Len() int           { return len(h) }
func (h reqHeap) Less(i, j int) bool { return h[i].deadline < h[j].deadline }
func (h reqHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = int32(i + 1)
	h[j].heapIdx = int32(j + 1)
}
func (h *reqHeap) Push(x any) {
	m := x.(*Message)
	*h = append(*h, m)
	m.heapIdx = int32(len(*h))
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
