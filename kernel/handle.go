package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
)

// Handle is a running process's view of the kernel: everything a process
// can do goes through it. The kernel hands one to each incarnation's Run;
// once that incarnation has stopped, every method returns ErrStopped.
// Methods are meant to be called from the process's own goroutine, but
// for Call and Deferred.Respond, which any goroutine of the incarnation
// may use.
type Handle struct {
	p     *proc
	gen   uint64
	cache targetCache
}

// ID returns the process's id.
func (h *Handle) ID() ProcessId { return h.p.id }

// Address returns the process's address on this node.
func (h *Handle) Address() Address { return h.p.addr }

// NodeID returns this node's id.
func (h *Handle) NodeID() string { return h.p.k.node }

// Limits returns the limits in force.
func (h *Handle) Limits() Limits { return h.p.k.lim }

// Await blocks until the next message arrives and returns it: requests
// and, for requests this process sent, responses and errors, in the order
// they arrived. It returns ErrStopped once the process must stop. Waiting
// costs nothing. Taking a request makes it the message being handled (the
// one Respond answers and Inherit inherits from); taking a response or an
// error makes the message that was being handled when the request was
// sent the one being handled again.
func (h *Handle) Await() (*Message, error) {
	p := h.p
	p.mu.Lock()
	for {
		if p.gen != h.gen || isClosed(p.stop) {
			p.passWake()
			p.mu.Unlock()
			return nil, ErrStopped
		}
		if p.qhead < len(p.q) {
			m := p.pop()
			if m.Kind == KindRequest {
				p.prompting = m
			} else {
				p.prompting = m.req.stash
			}
			p.blob = m.Blob
			p.mu.Unlock()
			return m, nil
		}
		p.wait()
	}
}

// wait blocks until something is delivered or the process must stop.
// p.mu is held on entry and on return. More than one goroutine may wait:
// a goroutine of an incarnation that has ended (a process that awaited
// on a goroutine of its own) may still be blocked here when the next one
// starts, so a waiter that wakes for an incarnation no longer its own
// passes the token on (passWake).
func (p *proc) wait() {
	p.waiters++
	p.mu.Unlock()
	<-p.wake // stopping sends a token too (see supervise)
	p.mu.Lock()
	p.waiters--
}

// passWake hands a wake token on to another waiter, if any: called by a
// waiter that woke for a stale Handle, so that the token it took (meant,
// perhaps, for the current incarnation) is not lost. p.mu is held.
func (p *proc) passWake() {
	if p.waiters > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Send sends a request and returns its id. A failure known at once is
// returned as a *SendError and nothing was sent. A request that expects a
// response gets it, or a KindError message, through Await later, with
// its Context.
func (h *Handle) Send(r *Request) (uint64, error) {
	m, err := h.p.k.sendRequest(h.p, h.gen, r, false, nil, &h.cache)
	if err != nil {
		return 0, err
	}
	return m.ID, nil
}

// SendAndAwait sends a request and blocks until its response arrives,
// which it returns; a failure is returned as a *SendError (with, when it
// came later, the KindError message). r.ExpectsResponse is required, and
// the target must not be the process itself. Other messages that arrive
// meanwhile wait in the mailbox, in order. The response's blob becomes the
// current blob; the message being handled does not change.
func (h *Handle) SendAndAwait(r *Request) (*Message, error) {
	p := h.p
	if _, err := p.k.sendRequest(p, h.gen, r, true, nil, &h.cache); err != nil {
		return nil, err
	}
	p.mu.Lock()
	for {
		if p.syncMsg != nil {
			ans := p.syncMsg
			p.syncMsg = nil
			p.blob = ans.Blob
			p.mu.Unlock()
			if ans.Kind == KindError {
				return ans, ans.Error
			}
			return ans, nil
		}
		if p.gen != h.gen || isClosed(p.stop) {
			p.passWake()
			p.mu.Unlock()
			return nil, ErrStopped
		}
		p.wait()
	}
}

// Call sends a request from any goroutine of the incarnation, for a
// process that serves many requests at once (a native driver): unlike
// Send and SendAndAwait, its answer does not go through the mailbox or
// change the message being handled. With r.ExpectsResponse set it waits
// for the response, which it returns, or for the SendError (returned as
// the error, with the error message), for ctx, or for the incarnation to
// stop (ErrStopped); an answer that comes after Call gave up is dropped
// and counted as late. Without, it returns the request as sent (its ID
// is the request's id) once it is delivered. Inherit is not allowed: a
// concurrent process has no message being handled to inherit from. Calls
// waiting count against max_pending_requests like any request awaiting
// its response.
func (h *Handle) Call(ctx context.Context, r *Request) (*Message, error) {
	p := h.p
	if r.Inherit {
		return nil, fmt.Errorf("kernel: send to %s: %w: Call cannot inherit", r.Target, ErrInvalid)
	}
	p.mu.Lock()
	if p.gen != h.gen || isClosed(p.stop) {
		p.mu.Unlock()
		return nil, ErrStopped
	}
	stop := p.stop
	p.mu.Unlock()
	var reply chan *Message
	if r.ExpectsResponse > 0 {
		reply = make(chan *Message, 1)
	}
	m, err := p.k.sendRequest(p, h.gen, r, false, reply, nil)
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
		err = ctx.Err()
	case <-stop:
		err = ErrStopped
	}
	p.mu.Lock()
	if p.pending[m.ID] == m {
		delete(p.pending, m.ID)
		p.removeTimeout(m)
		p.k.unindex(m)
	}
	p.mu.Unlock()
	return nil, err
}

// Respond answers the request being handled. It fails with ErrNoRequest
// when there is none, it expects no response, or it was answered (or
// handed on by an inheriting request) already.
func (h *Handle) Respond(r *Response) error {
	return h.p.k.respond(h.p, h.gen, r)
}

// Blob returns the blob of the last message taken (nil if it had none).
func (h *Handle) Blob() *Blob {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != h.gen {
		return nil
	}
	return p.blob
}

// GetState returns the process's persisted state, or ErrNoState.
func (h *Handle) GetState() ([]byte, error) {
	k := h.p.k
	if err := h.check(); err != nil {
		return nil, err
	}
	if k.state == nil {
		return nil, fmt.Errorf("kernel: get state: %w: this node has no state store", ErrInvalid)
	}
	v, ok, err := k.state.GetState(h.p.id.String())
	if err != nil {
		return nil, fmt.Errorf("kernel: get state of %s: %w", h.p.id, err)
	}
	if !ok {
		return nil, ErrNoState
	}
	return v, nil
}

// SetState replaces the process's persisted state; it is durable when
// SetState returns.
func (h *Handle) SetState(v []byte) error {
	k := h.p.k
	if err := h.check(); err != nil {
		return err
	}
	if len(v) > k.lim.MaxStateBytes {
		return fmt.Errorf("kernel: set state of %s: %w: %d bytes, at most %d allowed (max_state_bytes)", h.p.id, ErrLimit, len(v), k.lim.MaxStateBytes)
	}
	if k.state == nil {
		return fmt.Errorf("kernel: set state: %w: this node has no state store", ErrInvalid)
	}
	if err := k.state.SetState(h.p.id.String(), v); err != nil {
		return fmt.Errorf("kernel: set state of %s: %w", h.p.id, err)
	}
	return nil
}

// ClearState removes the process's persisted state.
func (h *Handle) ClearState() error {
	k := h.p.k
	if err := h.check(); err != nil {
		return err
	}
	if k.state == nil {
		return fmt.Errorf("kernel: clear state: %w: this node has no state store", ErrInvalid)
	}
	if err := k.state.ClearState(h.p.id.String()); err != nil {
		return fmt.Errorf("kernel: clear state of %s: %w", h.p.id, err)
	}
	return nil
}

// ChildSpec describes a child to spawn.
type ChildSpec struct {
	// Name is the child's process name; empty picks a fresh one. The
	// child's id is Name:package:publisher of the parent.
	Name    string
	Process Process
	OnExit  OnExit
	Public  bool
	// Capabilities the child gets; the parent must hold every one.
	Capabilities []Capability
}

// Spawn starts a child. The child holds no capability its parent lacks;
// parent and child may message each other; the child stops when the
// parent stops, and is not restored after a node restart.
func (h *Handle) Spawn(s ChildSpec) (ProcessId, error) {
	p := h.p
	if err := h.check(); err != nil {
		return ProcessId{}, err
	}
	spec := Spec{Process: s.Process, OnExit: s.OnExit, Public: s.Public, Capabilities: s.Capabilities}
	for try := 0; ; try++ {
		name := s.Name
		if name == "" {
			name = strconv.FormatUint(p.k.nextID.Add(1), 10)
		}
		spec.ID = ProcessId{Name: name, Package: p.id.Package, Publisher: p.id.Publisher}
		c, err := p.k.spawn(p, spec, false)
		if err == nil {
			return c.id, nil
		}
		if s.Name != "" || try > 8 || !isExists(err) {
			return ProcessId{}, err
		}
	}
}

// Kill stops a child of this process.
func (h *Handle) Kill(child ProcessId) error {
	p := h.p
	if err := h.check(); err != nil {
		return err
	}
	c := p.k.lookup(child)
	if c == nil || c.parent != p {
		return fmt.Errorf("kernel: kill %s: %w: not a child of %s", child, ErrNotFound, p.id)
	}
	return c.kill(p.k.ctx)
}

// Capabilities lists the capabilities the process holds.
func (h *Handle) Capabilities() []Capability { return h.p.capList() }

// Has reports whether the process holds c.
func (h *Handle) Has(c Capability) bool {
	k := h.p.k
	k.capMu.Lock()
	defer k.capMu.Unlock()
	_, key, err := k.normalize(c)
	if err != nil {
		return false
	}
	rec := k.caps[key]
	return rec != nil && h.p.holds(rec)
}

// Drop gives up the process's own copy of c.
func (h *Handle) Drop(c Capability) error {
	p := h.p
	if err := h.check(); err != nil {
		return err
	}
	k := p.k
	k.capMu.Lock()
	_, key, err := k.normalize(c)
	if err != nil {
		k.capMu.Unlock()
		return fmt.Errorf("kernel: drop: %w", err)
	}
	rec := k.caps[key]
	dropped := rec != nil && k.dropLocked(rec, p)
	k.capMu.Unlock()
	if !dropped {
		return fmt.Errorf("kernel: drop %s: %w", c, ErrNotHeld)
	}
	return k.persist(p)
}

// Grant gives another process a capability this process issues (its
// issuer is this process's address).
func (h *Handle) Grant(c Capability, to ProcessId) error {
	p := h.p
	if err := h.check(); err != nil {
		return err
	}
	k := p.k
	if r := k.resolve(c.Issuer); r != p.addr {
		return fmt.Errorf("kernel: grant %s: %w: %s may grant only capabilities it issues", c, ErrNotPermitted, p.id)
	}
	return k.Grant(c, to)
}

// Revoke takes every copy of a capability this process issues away from
// every holder, and marks it revoked so that copies on other nodes are
// refused here and those nodes are told (Kernel.Revoke).
func (h *Handle) Revoke(c Capability) error {
	if err := h.check(); err != nil {
		return err
	}
	_, err := h.p.k.revoke(h.p, c)
	return err
}

// Log writes a line to the node's log, rate-limited per process.
func (h *Handle) Log(level slog.Level, msg string) {
	if h.check() != nil {
		return
	}
	h.p.k.logLine(h.p, level, msg)
}

// Err returns ErrStopped once this incarnation has stopped or must stop,
// and nil before. A service that acts for a process through its Handle
// without calling one of its methods (the store) checks it first, so that
// nothing a stopped incarnation asks for happens.
func (h *Handle) Err() error { return h.check() }

func (h *Handle) check() error {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != h.gen || isClosed(p.stop) {
		return ErrStopped
	}
	return nil
}
