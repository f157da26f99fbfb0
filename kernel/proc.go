package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// proc is the kernel's record of one process: its mailbox, its
// capabilities, its outstanding requests and its place in the tree.
type proc struct {
	k        *Kernel
	id       ProcessId
	addr     Address
	impl     Process
	parent   *proc
	public   bool
	persist  bool
	system   bool // the node's own (StartSystem)
	data     []byte
	onExit   OnExit
	msgCap   *capRecord         // its messaging capability, pinned while it exists
	children map[*proc]struct{} // guarded by k.mu

	mu sync.Mutex
	// Mailbox: a FIFO of messages. Requests are refused past the mailbox
	// limits; responses and errors to pending requests always go in.
	q       []*Message
	qhead   int
	qbytes  int64
	waiters int           // goroutines blocked in Await or SendAndAwait (see wait)
	wake    chan struct{} // capacity 1
	// SendAndAwait: the id the process waits for, and the answer once there.
	syncMsg *Message

	pending   map[uint64]*Message   // requests it sent that expect a response
	to        timeouts              // their deadlines
	received  uint64                // messages delivered to it (requests and answers)
	late      uint64                // answers that came after it stopped waiting
	prompting *Message              // the message it is handling
	deferred  map[*Message]struct{} // requests taken off its hands (Handle.Defer), not answered yet
	blob      *Blob                 // the blob of the last message it took
	caps      map[*capRecord]struct{}

	state      ProcState
	gen        uint64          // incarnation; a Handle of an older one is stale
	stop       <-chan struct{} // closed when the current incarnation must stop
	cancel     context.CancelFunc
	killReq    bool
	killCh     chan struct{} // closed by kill; ends a restart backoff
	killClosed bool          // killCh is closed; p.mu
	done       chan struct{} // closed when the supervisor returns
	restarts   int
	lastErr    string
	startedAt  time.Time
	logs       logBucket
	changed    chan struct{} // closed and replaced on every state change
	gone       atomic.Bool   // removed from the table
}

func (k *Kernel) newProc(id ProcessId, parent *proc, s Spec) *proc {
	return &proc{
		k:        k,
		id:       id,
		addr:     Address{Node: k.node, Process: id},
		impl:     s.Process,
		parent:   parent,
		public:   s.Public,
		persist:  s.Persist,
		system:   s.system,
		data:     s.Data,
		onExit:   s.OnExit,
		children: make(map[*proc]struct{}),
		wake:     make(chan struct{}, 1),
		pending:  make(map[uint64]*Message),
		caps:     make(map[*capRecord]struct{}),
		killCh:   make(chan struct{}),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
	}
}

// pinMessaging mints p's messaging capability and pins it for p's life.
func (k *Kernel) pinMessaging(p *proc) {
	k.capMu.Lock()
	rec, _ := k.mintLocked(Capability{Issuer: p.addr, Params: MessagingParams})
	rec.pins++
	p.msgCap = rec
	k.capMu.Unlock()
}

// spawn registers and starts a process. parent is nil for a top-level one.
// mint says the kernel mints s.Capabilities (top level); otherwise the
// parent must hold them.
func (k *Kernel) spawn(parent *proc, s Spec, mint bool) (*proc, error) {
	p, err := k.register(parent, s, mint, nil)
	if err != nil {
		return nil, err
	}
	k.startProc(p)
	return p, nil
}

// startProc starts p's supervisor.
func (k *Kernel) startProc(p *proc) {
	k.wg.Add(1)
	go k.supervise(p)
}

// register checks s, enters the process in the table with its
// capabilities (and held, records already admitted) and persists it, but
// does not start it.
func (k *Kernel) register(parent *proc, s Spec, mint bool, held []*capRecord) (*proc, error) {
	if s.Process == nil {
		return nil, fmt.Errorf("kernel: start %s: %w: no Process", s.ID, ErrInvalid)
	}
	if err := s.ID.Validate(); err != nil {
		return nil, fmt.Errorf("kernel: start: %w", err)
	}
	if s.ID.Package == KernelProcess.Package && s.ID.Publisher == KernelProcess.Publisher && !s.system {
		return nil, fmt.Errorf("kernel: start %s: %w: package sys:weft is the node's own", s.ID, ErrNotPermitted)
	}
	if err := s.OnExit.validate(k); err != nil {
		return nil, fmt.Errorf("kernel: start %s: %w", s.ID, err)
	}
	// Resolve capabilities before anything is registered.
	caps := make([]Capability, 0, len(s.Capabilities))
	for _, c := range s.Capabilities {
		nc, _, err := k.normalize(c)
		if err != nil {
			return nil, fmt.Errorf("kernel: start %s: %w", s.ID, err)
		}
		caps = append(caps, nc)
	}
	grantTo := make([]*proc, 0, len(s.GrantTo))
	for _, g := range s.GrantTo {
		gp := k.lookup(g)
		if gp == nil {
			return nil, fmt.Errorf("kernel: start %s: grant messaging to %s: %w", s.ID, g, ErrNotFound)
		}
		grantTo = append(grantTo, gp)
	}

	p := k.newProc(s.ID, parent, s)
	p.state = StateRunning
	k.mu.Lock()
	switch {
	case k.closing:
		k.mu.Unlock()
		return nil, ErrClosed
	case k.procs[s.ID] != nil:
		k.mu.Unlock()
		return nil, fmt.Errorf("kernel: start %s: %w", s.ID, ErrExists)
	case len(k.procs)-2 >= k.lim.ProcessesPerNode:
		k.mu.Unlock()
		return nil, fmt.Errorf("kernel: start %s: %w: %d processes on this node (processes_per_node)", s.ID, ErrLimit, k.lim.ProcessesPerNode)
	case k.perPkg[s.ID.PackageId()] >= k.lim.ProcessesPerPackage:
		k.mu.Unlock()
		return nil, fmt.Errorf("kernel: start %s: %w: %d processes in package %s (processes_per_package)", s.ID, ErrLimit, k.lim.ProcessesPerPackage, s.ID.PackageId())
	}
	if parent != nil {
		// A parent that is going away takes no new children.
		parent.mu.Lock()
		gone := parent.killReq || parent.state != StateRunning
		parent.mu.Unlock()
		if gone {
			k.mu.Unlock()
			return nil, fmt.Errorf("kernel: spawn %s: %w", s.ID, ErrStopped)
		}
		parent.children[p] = struct{}{}
	}
	k.procs[s.ID] = p
	k.perPkg[s.ID.PackageId()]++
	k.mu.Unlock()

	k.pinMessaging(p)
	var touched []*proc
	k.capMu.Lock()
	for _, c := range caps {
		var rec *capRecord
		if mint {
			// Minted when issued here; one issued elsewhere only if
			// some process here holds it already (as Grant).
			if rec = k.caps[string(EncodeCapability(c))]; rec == nil {
				var err error
				if rec, err = k.mintLocked(c); err != nil {
					k.capMu.Unlock()
					k.unregister(p)
					return nil, fmt.Errorf("kernel: start %s: %w", s.ID, err)
				}
			}
			if c.Issuer.Node == k.node {
				k.unrevokeLocked(c, rec.key) // granted again
			}
		} else {
			// A child gets only what its parent really holds.
			rec = k.caps[string(EncodeCapability(c))]
			if rec == nil || !parent.holds(rec) {
				k.capMu.Unlock()
				k.unregister(p)
				return nil, fmt.Errorf("kernel: spawn %s: %w: parent %s does not hold %s", s.ID, ErrNotHeld, parent.id, c)
			}
		}
		k.grantLocked(rec, p)
	}
	for _, rec := range held {
		k.grantLocked(rec, p)
	}
	if parent != nil {
		// Parent and child may message each other.
		k.grantLocked(p.msgCap, parent)
		k.grantLocked(parent.msgCap, p)
		touched = append(touched, parent)
	}
	for _, gp := range grantTo {
		if k.grantLocked(p.msgCap, gp) {
			touched = append(touched, gp)
		}
	}
	k.capMu.Unlock()

	if err := k.persist(p); err != nil {
		k.unregister(p)
		return nil, fmt.Errorf("kernel: start %s: %w", s.ID, err)
	}
	for _, t := range touched {
		k.persistLogged(t)
	}
	return p, nil
}

// unregister removes p from the table and drops its capabilities.
func (k *Kernel) unregister(p *proc) {
	k.mu.Lock()
	if k.procs[p.id] == p {
		p.gone.Store(true)
		p.mu.Lock()
		k.stats.retiredRouted.Add(p.received)
		k.stats.retiredLate.Add(p.late)
		p.received, p.late = 0, 0
		p.mu.Unlock()
		delete(k.procs, p.id)
		k.perPkg[p.id.PackageId()]--
		if k.perPkg[p.id.PackageId()] <= 0 {
			delete(k.perPkg, p.id.PackageId())
		}
	}
	if p.parent != nil {
		delete(p.parent.children, p)
	}
	k.mu.Unlock()
	k.capMu.Lock()
	p.mu.Lock()
	p.notifyLocked()
	held := make([]*capRecord, 0, len(p.caps))
	for rec := range p.caps {
		held = append(held, rec)
	}
	p.mu.Unlock()
	for _, rec := range held {
		k.dropLocked(rec, p)
	}
	if p.msgCap != nil {
		p.msgCap.pins--
		k.collectLocked(p.msgCap)
	}
	k.capMu.Unlock()
}

// kill asks p to stop for good and waits for it, or for ctx.
func (p *proc) kill(ctx context.Context) error {
	p.mu.Lock()
	p.killReq = true
	if !p.killClosed {
		close(p.killCh)
		p.killClosed = true
	}
	cancel := p.cancel
	done := p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kernel: kill %s: waiting for it to stop: %w", p.id, ctx.Err())
	}
}

func (p *proc) info() ProcessInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := ProcessInfo{
		ID:           p.id,
		State:        p.state,
		Public:       p.public,
		Persisted:    p.persist,
		OnExit:       p.onExit,
		Restarts:     p.restarts,
		MailboxDepth: len(p.q) - p.qhead,
		Pending:      len(p.pending),
		LastError:    p.lastErr,
		Started:      p.startedAt,
	}
	if p.parent != nil {
		id := p.parent.id
		in.Parent = &id
	}
	return in
}

// holds reports whether p holds rec. The caller holds k.capMu.
func (p *proc) holds(rec *capRecord) bool {
	_, ok := rec.holders[p]
	return ok
}

// push appends m to the mailbox and wakes the process. p.mu is held.
func (p *proc) push(m *Message) {
	p.q = append(p.q, m)
	p.qbytes += m.size()
	if p.waiters > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// pop takes the oldest message. p.mu is held and the mailbox is not empty.
func (p *proc) pop() *Message {
	m := p.q[p.qhead]
	p.q[p.qhead] = nil
	p.qhead++
	p.qbytes -= m.size()
	switch {
	case p.qhead == len(p.q):
		p.q = p.q[:0]
		p.qhead = 0
	case p.qhead > 64 && p.qhead*2 > len(p.q):
		n := copy(p.q, p.q[p.qhead:])
		clear(p.q[n:])
		p.q = p.q[:n]
		p.qhead = 0
	}
	return m
}

// supervise runs p, and again as its on_exit says, until it stops for good.
func (k *Kernel) supervise(p *proc) {
	defer k.wg.Done()
	var backoff time.Duration
	for {
		ctx, cancel := context.WithCancel(k.ctx)
		p.mu.Lock()
		if p.killReq || k.ctx.Err() != nil {
			p.setStateLocked(StateKilled)
			p.mu.Unlock()
			cancel()
			// Killed before it ran: what waits in its mailbox is still
			// owed a killed error.
			k.reap(p)
			break
		}
		p.gen++
		gen := p.gen
		p.setStateLocked(StateRunning)
		p.cancel = cancel
		p.stop = ctx.Done()
		p.startedAt = k.clock.Now()
		started := p.startedAt
		p.mu.Unlock()
		// Stopping wakes a process blocked in Await: one channel to wait
		// on keeps the hot path free of select.
		unwake := context.AfterFunc(ctx, func() {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		})

		err := runSafely(ctx, p, &Handle{p: p, gen: gen})
		cancel()
		unwake()
		ran := k.clock.Now().Sub(started)

		p.mu.Lock()
		killed := p.killReq || k.ctx.Err() != nil
		p.gen++ // the old Handle is stale from here on
		p.cancel = nil
		if err != nil {
			p.lastErr = err.Error()
		} else {
			p.lastErr = ""
		}
		p.mu.Unlock()
		if err != nil && !killed {
			k.log.Warn("process exited with an error", "process", p.id.String(), "err", err)
		} else {
			k.log.Debug("process exited", "process", p.id.String(), "killed", killed)
		}
		k.reap(p)

		if killed {
			p.setState(StateKilled)
			break
		}
		if p.onExit.Kind == OnExitRestart {
			backoff = k.restart.next(backoff, ran)
			p.mu.Lock()
			p.restarts++
			p.setStateLocked(StateRestarting)
			p.mu.Unlock()
			k.stats.restarts.Add(1)
			k.log.Info("restarting process", "process", p.id.String(), "backoff", backoff)
			wait := make(chan struct{})
			t := k.clock.AfterFunc(backoff, func() { close(wait) })
			select {
			case <-wait:
				continue
			case <-p.killCh:
				t.Stop()
			case <-k.ctx.Done():
				t.Stop()
			}
			p.setState(StateKilled)
			break
		}
		if p.onExit.Kind == OnExitRequests {
			k.sendExitRequests(p)
		}
		p.setState(StateExited)
		break
	}
	// A spawned child that stopped is forgotten; installed processes stay.
	if p.parent != nil {
		k.unregister(p)
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	close(done)
}

func (p *proc) setState(s ProcState) {
	p.mu.Lock()
	p.setStateLocked(s)
	p.mu.Unlock()
}

// setStateLocked changes p's state and wakes whoever watches it. p.mu is held.
func (p *proc) setStateLocked(s ProcState) {
	p.state = s
	p.notifyLocked()
}

func (p *proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// runSafely runs the process, turning a panic into an error.
func runSafely(ctx context.Context, p *proc, h *Handle) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	return p.impl.Run(ctx, h)
}

// reap cleans up after an incarnation of p: what p owed answers to gets a
// killed error, its own outstanding requests are forgotten, its children
// stop, and its mailbox keeps only what came after.
func (k *Kernel) reap(p *proc) {
	p.mu.Lock()
	var owed []*Message
	seen := make(map[*Message]bool)
	owe := func(m *Message) {
		if m != nil && m.Kind == KindRequest && m.rsvp != nil && !m.answered && !seen[m] {
			seen[m] = true
			m.answered = true
			owed = append(owed, m)
		}
	}
	owe(p.prompting)
	for _, m := range p.pending {
		owe(m.stash)
	}
	for p.qhead < len(p.q) {
		owe(p.pop())
	}
	for m := range p.deferred {
		m.answered = false // deferred: owed all the same
		owe(m)
	}
	clear(p.deferred)
	for _, m := range p.pending {
		k.unindex(m)
	}
	clear(p.pending)
	p.stopTimeouts()
	p.prompting, p.blob, p.syncMsg = nil, nil, nil
	p.mu.Unlock()

	for _, m := range owed {
		k.fail(m.rsvp, m.ID, k.sendErr(ErrKilled, p.addr, m, fmt.Sprintf("%s stopped before it answered", p.id)))
	}
	k.mu.RLock()
	children := make([]*proc, 0, len(p.children))
	for c := range p.children {
		children = append(children, c)
	}
	k.mu.RUnlock()
	for _, c := range children {
		c.kill(context.Background())
	}
}

// logBucket is a token bucket for a process's log lines.
type logBucket struct {
	tokens  float64
	last    time.Time
	dropped int
}

// Log writes a line to the node's log on behalf of p, rate-limited.
func (k *Kernel) logLine(p *proc, level slog.Level, msg string) {
	if len(msg) > k.lim.MaxLogLineBytes {
		msg = msg[:k.lim.MaxLogLineBytes] + "…"
	}
	p.mu.Lock()
	b := &p.logs
	now := k.clock.Now()
	if b.last.IsZero() {
		b.tokens = float64(k.lim.LogBurst)
	} else {
		b.tokens += now.Sub(b.last).Seconds() * k.lim.LogLinesPerSecond
		if b.tokens > float64(k.lim.LogBurst) {
			b.tokens = float64(k.lim.LogBurst)
		}
	}
	b.last = now
	if b.tokens < 1 {
		b.dropped++
		p.mu.Unlock()
		return
	}
	b.tokens--
	dropped := b.dropped
	b.dropped = 0
	p.mu.Unlock()
	if dropped > 0 {
		k.log.Log(context.Background(), level, msg, "process", p.id.String(), "dropped_before", dropped)
		return
	}
	k.log.Log(context.Background(), level, msg, "process", p.id.String())
}
