package kernel

import (
	"fmt"
	"time"
)

// Deferred is a request a process took off its hands to answer later
// (Handle.Defer): a timer that answers when it fires, a driver serving
// many requests at once, a process that fans out and answers when its own
// answers are in. Respond answers it exactly once, from any goroutine of
// the incarnation that deferred it. The requester's timeout still
// applies: an answer after it is dropped and counted as late
// (Stats.LateResponses), as for any answer. If the incarnation stops
// first, the requester gets a killed error, as for every request a
// stopping process owed.
type Deferred struct {
	p   *proc
	gen uint64
	m   *Message
}

// Defer takes the request being handled off the process's hands and
// returns it as a Deferred, to answer later with Deferred.Respond. After
// it, Respond and an inheriting request no longer see that request: it
// is handed on, as if answered. Defer fails with ErrNoRequest when the
// message being handled is not a request that expects a response (or it
// was answered or handed on already), and with ErrLimit when the process
// holds max_pending_requests deferred requests already.
func (h *Handle) Defer() (*Deferred, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != h.gen || isClosed(p.stop) {
		return nil, ErrStopped
	}
	pm := p.prompting
	switch {
	case pm == nil || pm.Kind != KindRequest:
		return nil, fmt.Errorf("kernel: defer: %w: %s is not handling a request", ErrNoRequest, p.id)
	case pm.rsvp == nil:
		return nil, fmt.Errorf("kernel: defer: %w: request %d from %s expects no response", ErrNoRequest, pm.ID, *pm.src)
	case pm.answered:
		return nil, fmt.Errorf("kernel: defer: %w: request %d from %s was already answered or handed on", ErrNoRequest, pm.ID, *pm.src)
	case len(p.deferred) >= p.k.lim.MaxPendingRequests:
		return nil, fmt.Errorf("kernel: defer: %w: %s holds %d deferred requests (max_pending_requests)", ErrLimit, p.id, len(p.deferred))
	}
	pm.answered = true
	if p.deferred == nil {
		p.deferred = make(map[*Message]struct{})
	}
	p.deferred[pm] = struct{}{}
	return &Deferred{p: p, gen: h.gen, m: pm}, nil
}

// ID is the deferred request's id.
func (d *Deferred) ID() uint64 { return d.m.ID }

// Source is who sent the deferred request.
func (d *Deferred) Source() Address { return d.m.Source() }

// Deadline is when the requester stops waiting for the answer (its
// timeout, counted from when it sent the request), on the kernel's
// clock: an answer after it is late.
func (d *Deferred) Deadline() time.Time {
	return d.p.k.epoch.Add(time.Duration(d.m.deadline - 1))
}

// Request is the deferred request as the process took it.
func (d *Deferred) Request() *Message { return d.m }

// Respond answers the deferred request, as Handle.Respond answers the one
// being handled (a response with Inherit and no blob carries the
// request's). It fails with ErrNoRequest on a second answer, and with
// ErrStopped once the incarnation that deferred it has stopped (the
// requester has had a killed error then). A response the requester no
// longer waits for (it timed out) is dropped and counted as late; that is
// not an error here.
func (d *Deferred) Respond(r *Response) error {
	p := d.p
	p.mu.Lock()
	if p.gen != d.gen || isClosed(p.stop) {
		p.mu.Unlock()
		return ErrStopped
	}
	if _, ok := p.deferred[d.m]; !ok {
		p.mu.Unlock()
		return fmt.Errorf("kernel: respond: %w: deferred request %d from %s was already answered", ErrNoRequest, d.m.ID, *d.m.src)
	}
	delete(p.deferred, d.m)
	p.mu.Unlock()
	resp, attach, err := p.k.buildResponse(p, d.m, r)
	if err != nil {
		p.mu.Lock()
		if p.gen == d.gen && !isClosed(p.stop) {
			p.deferred[d.m] = struct{}{} // not answered: it may be tried again
			p.mu.Unlock()
			return err
		}
		p.mu.Unlock()
		// Stopped meanwhile, with this request out of reap's sight: it is
		// owed a killed error all the same.
		p.k.fail(d.m.rsvp, d.m.ID, p.k.sendErr(ErrKilled, p.addr, d.m, fmt.Sprintf("%s stopped before it answered", p.id)))
		return err
	}
	p.k.answer(d.m.rsvp, resp, attach)
	return nil
}
