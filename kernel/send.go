package kernel

import (
	"context"
	"fmt"
	"unicode/utf8"
)

// checkSizes refuses a message with a field over its limit.
func (k *Kernel) checkSizes(target Address, body []byte, metadata string, blob *Blob, ncaps int, ctxLen int) *SendError {
	l := &k.lim
	switch {
	case len(body) > l.MaxBodyBytes:
		return k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("body is %d bytes, at most %d allowed (max_body_bytes)", len(body), l.MaxBodyBytes))
	case len(metadata) > l.MaxMetadataBytes:
		return k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("metadata is %d bytes, at most %d allowed (max_metadata_bytes)", len(metadata), l.MaxMetadataBytes))
	case blob != nil && len(blob.Bytes)+len(blob.Mime) > l.MaxBlobBytes:
		return k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("blob is %d bytes, at most %d allowed (max_blob_bytes)", len(blob.Bytes)+len(blob.Mime), l.MaxBlobBytes))
	case ncaps > l.MaxMessageCapabilities:
		return k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("%d capabilities attached, at most %d allowed (max_message_capabilities)", ncaps, l.MaxMessageCapabilities))
	case ctxLen > l.MaxContextBytes:
		return k.sendErr(ErrTooLarge, target, nil, fmt.Sprintf("context is %d bytes, at most %d allowed (max_context_bytes)", ctxLen, l.MaxContextBytes))
	}
	return nil
}

// checkMetadata refuses metadata that is not UTF-8: it is a string at
// every edge (protobuf requires valid UTF-8 there).
func checkMetadata(target Address, metadata string) error {
	if metadata != "" && !utf8.ValidString(metadata) {
		return fmt.Errorf("kernel: send to %s: %w: metadata is not valid UTF-8", target, ErrInvalid)
	}
	return nil
}

// sendRequest sends r from p. gen is the sender's incarnation; zero sends
// on p's behalf whatever its state (exit requests, the operator). A
// request that expects a response is registered as pending before it is
// delivered; syncWait and reply say how its answer is handed over.
func (k *Kernel) sendRequest(p *proc, gen uint64, r *Request, syncWait bool, reply chan *Message, cache *targetCache) (*Message, error) {
	target := k.resolve(r.Target)
	if err := k.checkSizes(target, r.Body, r.Metadata, r.Blob, len(r.Capabilities), len(r.Context)); err != nil {
		return nil, err
	}
	if err := checkMetadata(target, r.Metadata); err != nil {
		return nil, err
	}
	if r.ExpectsResponse < 0 || r.ExpectsResponse > k.lim.MaxTimeout {
		return nil, fmt.Errorf("kernel: send to %s: %w: timeout %v is outside 0 to %v (max_timeout)", target, ErrInvalid, r.ExpectsResponse, k.lim.MaxTimeout)
	}
	if (syncWait || reply != nil) && r.ExpectsResponse == 0 {
		return nil, fmt.Errorf("kernel: send to %s: %w: waiting for a response needs a timeout", target, ErrInvalid)
	}
	if target.Node != k.node {
		return k.sendRemote(p, gen, r, target, syncWait, reply)
	}
	var t *proc
	if cache != nil && cache.p != nil && cache.addr == target && !cache.p.gone.Load() {
		t = cache.p
	} else {
		t = k.lookup(target.Process)
		if t == nil {
			return nil, k.sendErr(ErrNoSuchProcess, target, nil, "no process "+target.Process.String()+" on this node")
		}
		if cache != nil {
			cache.addr, cache.p = target, t
		}
	}
	if syncWait && t == p {
		return nil, fmt.Errorf("kernel: send to %s: %w: a process cannot send to itself and await the response", target, ErrInvalid)
	}
	attach, attached, err := k.resolveAttach(p, target, r.Capabilities)
	if err != nil {
		return nil, err
	}

	m := &Message{
		Kind:            KindRequest,
		src:             &p.addr,
		dst:             &t.addr,
		Inherit:         r.Inherit,
		ExpectsResponse: r.ExpectsResponse,
		Body:            r.Body,
		Metadata:        r.Metadata,
		Capabilities:    attached,
		Blob:            r.Blob,
	}
	p.mu.Lock()
	if gen != 0 && (p.gen != gen || isClosed(p.stop)) {
		p.mu.Unlock()
		return nil, ErrStopped
	}
	if t != p && !t.public && p != k.operator {
		if _, ok := p.caps[t.msgCap]; !ok {
			p.mu.Unlock()
			return nil, k.sendErr(ErrNoCapability, target, nil, fmt.Sprintf("%s is not public and %s does not hold its messaging capability", target.Process, p.id))
		}
	}
	handedOff, err := k.registerLocked(p, m, r, target, syncWait, reply)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}

	var granted []*capRecord
	if len(attach) > 0 {
		granted = k.grantAll(attach, t)
	}
	if err := k.deliverRequest(t, m); err != nil {
		p.mu.Lock()
		k.unregisterLocked(p, m, handedOff)
		p.mu.Unlock()
		if len(granted) > 0 {
			k.dropAll(granted, t)
		}
		return nil, err
	}
	return m, nil
}

// registerLocked gives request m from p its id and reply-to: with
// r.Inherit, the blob and, when it expects no response of its own, the id
// and reply-to of the request p is handling, which it returns as handed
// off (the answer then goes straight to the original requester); with
// r.ExpectsResponse, a fresh id and p's pending entry and timeout. p.mu is
// held.
func (k *Kernel) registerLocked(p *proc, m *Message, r *Request, target Address, syncWait bool, reply chan *Message) (handedOff *Message, err error) {
	if r.Inherit {
		pm := p.prompting
		if m.Blob == nil {
			m.Blob = p.blob
		}
		if pm != nil && pm.Kind == KindRequest && pm.rsvp != nil && !pm.answered && r.ExpectsResponse == 0 {
			m.ID, m.rsvp = pm.ID, pm.rsvp
			m.ExpectsResponse = pm.ExpectsResponse
			pm.answered = true
			handedOff = pm
		}
	}
	if handedOff == nil {
		m.ID = k.nextID.Add(1)
	}
	if r.ExpectsResponse > 0 {
		if len(p.pending) >= k.lim.MaxPendingRequests {
			return nil, k.sendErr(ErrMailboxFull, target, nil, fmt.Sprintf("%s has %d requests awaiting responses (max_pending_requests)", p.id, len(p.pending)))
		}
		m.rsvp = p
		m.deadline = k.now() + int64(r.ExpectsResponse)
		m.reqContext = r.Context
		m.stash = p.prompting
		m.syncWait = syncWait
		m.reply = reply
		p.pending[m.ID] = m
		p.addTimeout(m)
	}
	return handedOff, nil
}

// unregisterLocked undoes registerLocked for a request that could not be
// delivered. p.mu is held.
func (k *Kernel) unregisterLocked(p *proc, m, handedOff *Message) {
	if handedOff != nil {
		handedOff.answered = false
	}
	if p.pending[m.ID] == m {
		delete(p.pending, m.ID)
		p.removeTimeout(m)
		k.unindex(m)
	}
}

// deliverRequest puts a request into t's mailbox, or says why it cannot.
func (k *Kernel) deliverRequest(t *proc, m *Message) error {
	t.mu.Lock()
	switch {
	case t.impl == nil:
		t.mu.Unlock()
		return k.sendErr(ErrNoSuchProcess, *m.dst, nil, t.id.String()+" is a system process and takes no requests")
	case t.state == StateExited || t.state == StateKilled:
		st := t.state
		t.mu.Unlock()
		return k.sendErr(ErrNoSuchProcess, *m.dst, nil, fmt.Sprintf("%s is not running (%s)", t.id, st))
	case len(t.q)-t.qhead >= k.lim.MailboxLength:
		t.mu.Unlock()
		return k.sendErr(ErrMailboxFull, *m.dst, nil, fmt.Sprintf("mailbox of %s holds %d messages (mailbox_length)", t.id, k.lim.MailboxLength))
	case t.qbytes+m.size() > k.lim.MailboxBytes:
		t.mu.Unlock()
		return k.sendErr(ErrMailboxFull, *m.dst, nil, fmt.Sprintf("mailbox of %s would exceed %d bytes (mailbox_bytes)", t.id, k.lim.MailboxBytes))
	}
	t.push(m)
	t.received++
	k.observe(m, t.addr) // under t.mu, so taps see a request before its answer
	t.mu.Unlock()
	return nil
}

// respond answers the request p is handling.
func (k *Kernel) respond(p *proc, gen uint64, r *Response) error {
	p.mu.Lock()
	if p.gen != gen || isClosed(p.stop) {
		p.mu.Unlock()
		return ErrStopped
	}
	pm := p.prompting
	switch {
	case pm == nil || pm.Kind != KindRequest:
		p.mu.Unlock()
		return fmt.Errorf("kernel: respond: %w: %s is not handling a request", ErrNoRequest, p.id)
	case pm.rsvp == nil:
		p.mu.Unlock()
		return fmt.Errorf("kernel: respond: %w: request %d from %s expects no response", ErrNoRequest, pm.ID, *pm.src)
	case pm.answered:
		p.mu.Unlock()
		return fmt.Errorf("kernel: respond: %w: request %d from %s was already answered or handed on", ErrNoRequest, pm.ID, *pm.src)
	}
	pm.answered = true
	p.mu.Unlock()
	rsvp := pm.rsvp
	resp, attach, err := k.buildResponse(p, pm, r)
	if err != nil {
		p.mu.Lock()
		pm.answered = false
		p.mu.Unlock()
		return err
	}
	k.answer(rsvp, resp, attach)
	return nil
}

// buildResponse checks r and makes the response to pm.
func (k *Kernel) buildResponse(p *proc, pm *Message, r *Response) (*Message, []*capRecord, error) {
	to := k.replyAddr(pm.rsvp, pm)
	if err := k.checkSizes(to, r.Body, r.Metadata, r.Blob, len(r.Capabilities), 0); err != nil {
		return nil, nil, err
	}
	if err := checkMetadata(to, r.Metadata); err != nil {
		return nil, nil, err
	}
	attach, attached, err := k.resolveAttach(p, to, r.Capabilities)
	if err != nil {
		return nil, nil, err
	}
	resp := &Message{
		ID:           pm.ID,
		Kind:         KindResponse,
		src:          &p.addr,
		dst:          &pm.rsvp.addr,
		Inherit:      r.Inherit,
		Body:         r.Body,
		Metadata:     r.Metadata,
		Capabilities: attached,
		Blob:         r.Blob,
	}
	if pm.rsvp == k.rm.proc {
		dst := to // the requester on another node
		resp.dst = &dst
	}
	if resp.Blob == nil && r.Inherit {
		resp.Blob = pm.Blob
	}
	return resp, attach, nil
}

// complete hands an answer (a response or an error) to the requester r if
// it still waits for request id, and reports whether it did. An answer
// nobody waits for any more is counted as late.
func (k *Kernel) complete(r *proc, id uint64, ans *Message) bool {
	if r == k.rm.proc {
		return k.answerRemote(id, ans, nil)
	}
	r.mu.Lock()
	req := r.pending[id]
	if req == nil {
		r.late++
		r.mu.Unlock()
		return false
	}
	delete(r.pending, id)
	r.removeTimeout(req)
	k.unindex(req)
	r.deliverAnswerLocked(req, ans)
	k.observe(ans, r.addr)
	r.mu.Unlock()
	return true
}

// deliverAnswerLocked hands the answer to request req, already taken out
// of p.pending, to p: to the operator's caller, to a SendAndAwait, or into
// the mailbox. p.mu is held.
func (p *proc) deliverAnswerLocked(req, ans *Message) {
	ans.req = req
	if ans.Error != nil {
		ans.Error.Context = req.reqContext
	}
	p.received++
	switch {
	case req.reply != nil:
		req.reply <- ans // capacity 1, one answer per request
	case req.syncWait:
		p.syncMsg = ans
		if p.waiters > 0 {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	default:
		p.push(ans)
	}
}

// fail delivers a SendError to whoever waits at rsvp for request id.
func (k *Kernel) fail(rsvp *proc, id uint64, e *SendError) {
	k.complete(rsvp, id, &Message{ID: id, Kind: KindError, src: &rsvp.addr, dst: &e.Target, Error: e})
}

// sendExitRequests sends a dead process's on_exit requests in its name.
func (k *Kernel) sendExitRequests(p *proc) {
	for _, er := range p.onExit.Requests {
		_, err := k.sendRequest(p, 0, &Request{Target: er.Target, Body: er.Body, Metadata: er.Metadata, Blob: er.Blob}, false, nil, nil)
		if err != nil {
			k.log.Warn("on_exit request failed", "process", p.id.String(), "target", er.Target.String(), "err", err)
		}
	}
}

// Send sends a request from operator:sys:weft, the voice of the node's
// owner: it may message any local process without a capability, and
// attaches whatever capabilities it is given (minting them). With
// ExpectsResponse set it waits for the response, the SendError (returned
// as the error, with the error message), or ctx; without, it returns the
// request as delivered (its ID is the request's id; the receiver owns the
// rest). Safe for concurrent use.
func (k *Kernel) Send(ctx context.Context, r *Request) (*Message, error) {
	var reply chan *Message
	if r.ExpectsResponse > 0 {
		reply = make(chan *Message, 1)
	}
	m, err := k.sendRequest(k.operator, 0, r, false, reply, nil)
	if err != nil {
		return nil, err
	}
	if reply == nil {
		return m, nil
	}
	select {
	case ans := <-reply:
		if ans.Kind == KindError {
			return ans, ans.Error
		}
		return ans, nil
	case <-ctx.Done():
		op := k.operator
		op.mu.Lock()
		if op.pending[m.ID] == m {
			delete(op.pending, m.ID)
			op.removeTimeout(m)
			k.unindex(m)
		}
		op.mu.Unlock()
		return nil, ctx.Err()
	}
}

// targetCache remembers the last target a Handle sent to, so that a
// process talking to the same peer skips the table lookup.
type targetCache struct {
	addr Address
	p    *proc
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
