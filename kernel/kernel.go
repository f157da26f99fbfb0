package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Process is a process as the kernel knows it. The kernel calls Run on a
// goroutine of its own each time the process starts (again, after a
// restart); the process loops on h.Await, handling one message at a time,
// and returns when Await reports ErrStopped or when it is done. Delivery is
// the kernel's: it owns the mailbox, so limits, ordering and
// send-and-await work the same for every implementation. Stopping is ctx:
// the kernel cancels it to stop the process and Run must return soon
// after. A Wasm instance and a native driver are two implementations.
type Process interface {
	Run(ctx context.Context, h *Handle) error
}

// ProcessFunc adapts a function to Process.
type ProcessFunc func(ctx context.Context, h *Handle) error

// Run calls f.
func (f ProcessFunc) Run(ctx context.Context, h *Handle) error { return f(ctx, h) }

// StateStore keeps each process's state durably. Implementations must make
// SetState and ClearState durable before they return. GetState reports
// ok=false, and no error, when the process has no state.
type StateStore interface {
	GetState(process string) (value []byte, ok bool, err error)
	SetState(process string, value []byte) error
	ClearState(process string) error
}

// TableStore keeps the persisted process table: one opaque record per
// process, encoded by the kernel. PutProcess and DeleteProcess must be
// durable before they return; deleting an absent record is not an error.
type TableStore interface {
	PutProcess(process string, record []byte) error
	DeleteProcess(process string) error
	Processes() (map[string][]byte, error)
}

// RestartPolicy shapes on_exit restart: the first restart waits Initial,
// each further one twice the last, at most Max; a run that lasted Stable
// or longer resets the backoff.
type RestartPolicy struct {
	Initial time.Duration `toml:"restart_initial"`
	Max     time.Duration `toml:"restart_max"`
	Stable  time.Duration `toml:"restart_stable"`
}

// DefaultRestartPolicy: 250 ms, doubling to at most 30 s, reset after a
// minute of stable running.
func DefaultRestartPolicy() RestartPolicy {
	return RestartPolicy{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Stable: time.Minute}
}

// next returns the wait before the next restart, given the last wait and
// how long the process ran.
func (r RestartPolicy) next(last, ran time.Duration) time.Duration {
	if last == 0 || ran >= r.Stable {
		return r.Initial
	}
	d := last * 2
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	return d
}

// Config wires a Kernel.
type Config struct {
	// Keyring signs and verifies capabilities; its NodeID is this node's
	// id. Required.
	Keyring Keyring
	// State keeps process state; nil makes state operations fail.
	State StateStore
	// Table keeps the process table; nil persists nothing.
	Table TableStore
	// Limits; zero fields take their defaults.
	Limits Limits
	// Restart; zero fields take DefaultRestartPolicy's.
	Restart RestartPolicy
	// Clock; nil is the real clock.
	Clock Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// Revocations keeps the marks of revoked capabilities issued on this
	// node (docs/capabilities.md); nil keeps them in memory only.
	Revocations RevocationStore
	// CheckNodeID says why a string is not a node id, or returns nil when
	// it is one: aliases must not be node ids and must stand for one
	// (SetAlias). Nil accepts the form identity.NodeID writes.
	CheckNodeID func(string) error
}

// Errors of kernel operations that are not SendErrors.
var (
	ErrStopped      = errors.New("process stopped")
	ErrClosed       = errors.New("kernel closed")
	ErrExists       = errors.New("process already exists")
	ErrNotFound     = errors.New("no such process")
	ErrInvalid      = errors.New("invalid argument")
	ErrNoRequest    = errors.New("no request awaits a response")
	ErrNoState      = errors.New("no state")
	ErrLimit        = errors.New("limit reached")
	ErrNotHeld      = errors.New("capability not held")
	ErrNotPermitted = errors.New("not permitted")
)

// Kernel names processes, routes messages between them, keeps their
// capabilities and starts, stops and restarts them.
type Kernel struct {
	node    string
	keys    Keyring
	state   StateStore
	table   TableStore
	lim     Limits
	restart RestartPolicy
	clock   Clock
	log     *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu      sync.RWMutex
	procs   map[ProcessId]*proc
	perPkg  map[PackageId]int
	closing bool
	wg      sync.WaitGroup // one per supervisor goroutine

	capMu sync.Mutex
	caps  map[string]*capRecord // canonical encoding → record

	persistMu sync.Mutex

	nextID   atomic.Uint64
	epoch    time.Time // deadlines count nanoseconds from here
	operator *proc
	kernelP  *proc
	netCap   *capRecord
	stats    stats

	tapMu sync.Mutex             // serialises changes to taps
	taps  atomic.Pointer[tapSet] // nil when nobody taps

	rm remoteState // messaging with other nodes (remote.go)
}

// New makes a kernel. It starts no process; the system processes
// kernel:sys:weft and operator:sys:weft exist from the start.
func New(cfg Config) (*Kernel, error) {
	if cfg.Keyring == nil {
		return nil, fmt.Errorf("kernel: %w: Config.Keyring is required", ErrInvalid)
	}
	node := cfg.Keyring.NodeID()
	if err := ValidateNode(node); err != nil || node == OurNode {
		return nil, fmt.Errorf("kernel: %w: node id %q from the keyring is not a valid node id", ErrInvalid, node)
	}
	lim := cfg.Limits.WithDefaults()
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	rp := cfg.Restart
	d := DefaultRestartPolicy()
	if rp.Initial <= 0 {
		rp.Initial = d.Initial
	}
	if rp.Max <= 0 {
		rp.Max = d.Max
	}
	if rp.Stable <= 0 {
		rp.Stable = d.Stable
	}
	k := &Kernel{
		node:    node,
		keys:    cfg.Keyring,
		state:   cfg.State,
		table:   cfg.Table,
		lim:     lim,
		restart: rp,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		procs:   make(map[ProcessId]*proc),
		perPkg:  make(map[PackageId]int),
		caps:    make(map[string]*capRecord),
	}
	if k.clock == nil {
		k.clock = realClock{}
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.epoch = k.clock.Now()
	k.kernelP = k.newProc(KernelProcess, nil, Spec{})
	k.operator = k.newProc(OperatorProcess, nil, Spec{})
	for _, p := range []*proc{k.kernelP, k.operator} {
		p.state = StateRunning
		k.procs[p.id] = p
		k.pinMessaging(p)
	}
	k.capMu.Lock()
	k.netCap, _ = k.mintLocked(Capability{Issuer: k.kernelP.addr, Params: NetworkParams})
	k.netCap.pins++
	k.capMu.Unlock()
	if err := k.initRemote(cfg); err != nil {
		return nil, err
	}
	return k, nil
}

// NodeID returns this node's id.
func (k *Kernel) NodeID() string { return k.node }

// Limits returns the limits in force.
func (k *Kernel) Limits() Limits { return k.lim }

// Address returns p's address on this node.
func (k *Kernel) Address(p ProcessId) Address { return Address{Node: k.node, Process: p} }

// Spec describes a process to start.
type Spec struct {
	ID      ProcessId
	Process Process
	OnExit  OnExit
	Public  bool
	// Capabilities are granted to the process before it starts (the ones
	// its user approved). The kernel mints them.
	Capabilities []Capability
	// GrantTo receives the process's messaging capability.
	GrantTo []ProcessId
	// Persist puts the process in the persisted table, so that Restore
	// brings it back after a node restart. Data is kept with it, opaque to
	// the kernel, for the caller of Restore to make the Process again.
	Persist bool
	Data    []byte

	system bool // set by StartSystem: the node's own, in sys:weft
}

// StartSystem starts one of the node's own processes, in package sys:weft
// (which Start refuses), for the daemon: never persisted, never public
// unless s says so, and out of reach of Kill, Restart and Remove.
func (k *Kernel) StartSystem(s Spec) error {
	if s.ID.PackageId() != (PackageId{Package: KernelProcess.Package, Publisher: KernelProcess.Publisher}) {
		return fmt.Errorf("kernel: start system process %s: %w: not in package sys:weft", s.ID, ErrInvalid)
	}
	if s.Persist {
		return fmt.Errorf("kernel: start system process %s: %w: system processes are not persisted", s.ID, ErrInvalid)
	}
	s.system = true
	_, err := k.spawn(nil, s, true)
	return err
}

// Start starts a top-level process (an installed package's).
func (k *Kernel) Start(s Spec) error {
	_, err := k.spawn(nil, s, true)
	return err
}

// Kill stops a process for good: its on_exit does not apply, everything
// waiting on it gets a killed error, and its children stop with it. It
// waits for the process to return from Run, or for ctx. A top-level
// process stays in the table (ProcessInfo.State is killed) until Remove;
// Restart starts it again.
func (k *Kernel) Kill(ctx context.Context, id ProcessId) error {
	p, err := k.lookupUser(id)
	if err != nil {
		return err
	}
	return p.kill(ctx)
}

// Restart kills a process if it runs and starts it again, with a fresh
// backoff.
func (k *Kernel) Restart(ctx context.Context, id ProcessId) error {
	p, err := k.lookupUser(id)
	if err != nil {
		return err
	}
	if p.parent != nil {
		return fmt.Errorf("kernel: restart %s: %w: a spawned child is restarted by its parent", id, ErrNotPermitted)
	}
	if err := p.kill(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return ErrClosed
	}
	if k.procs[id] != p {
		return fmt.Errorf("kernel: restart %s: %w", id, ErrNotFound)
	}
	p.mu.Lock()
	p.killReq = false
	p.killCh, p.killClosed = make(chan struct{}), false
	p.done = make(chan struct{})
	// Running from here on: requests sent before Run starts wait in the
	// mailbox instead of finding the process killed.
	p.setStateLocked(StateRunning)
	p.mu.Unlock()
	k.startProc(p)
	return nil
}

// Remove kills a top-level process and forgets it: its table record, its
// state and the capabilities it holds are gone. (Uninstall.)
func (k *Kernel) Remove(ctx context.Context, id ProcessId) error {
	p, err := k.lookupUser(id)
	if err != nil {
		return err
	}
	if err := p.kill(ctx); err != nil {
		return err
	}
	k.unregister(p)
	if k.table != nil && p.persist {
		k.persistMu.Lock()
		err = k.table.DeleteProcess(id.String())
		k.persistMu.Unlock()
		if err != nil {
			return fmt.Errorf("kernel: remove %s: %w", id, err)
		}
	}
	if k.state != nil {
		if err := k.state.ClearState(id.String()); err != nil {
			return fmt.Errorf("kernel: remove %s: clear state: %w", id, err)
		}
	}
	return nil
}

// Forget deletes the persisted record and the state of a process that is
// not in the table: one Restore could not bring back (an uninstall or an
// install that a crash cut short leaves such records). A process in the
// table fails with ErrExists; use Remove.
func (k *Kernel) Forget(id ProcessId) error {
	if err := id.Validate(); err != nil {
		return fmt.Errorf("kernel: forget: %w", err)
	}
	if k.lookup(id) != nil {
		return fmt.Errorf("kernel: forget %s: %w: it is in the table; remove it instead", id, ErrExists)
	}
	if k.table != nil {
		k.persistMu.Lock()
		err := k.table.DeleteProcess(id.String())
		k.persistMu.Unlock()
		if err != nil {
			return fmt.Errorf("kernel: forget %s: %w", id, err)
		}
	}
	if k.state != nil {
		if err := k.state.ClearState(id.String()); err != nil {
			return fmt.Errorf("kernel: forget %s: clear state: %w", id, err)
		}
	}
	return nil
}

// TapCount reports how many taps are open.
func (k *Kernel) TapCount() int {
	if set := k.taps.Load(); set != nil {
		return len(set.taps)
	}
	return 0
}

// Close stops every process (no on_exit applies) and waits for them, or
// for ctx. The kernel cannot be used afterwards.
func (k *Kernel) Close(ctx context.Context) error {
	k.mu.Lock()
	k.closing = true
	k.mu.Unlock()
	k.cancel()
	k.closeRemote()
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("kernel: close: %w", ctx.Err())
	}
	return nil
}

func (k *Kernel) lookup(id ProcessId) *proc {
	k.mu.RLock()
	p := k.procs[id]
	k.mu.RUnlock()
	return p
}

// lookupUser finds a process that is not a system process.
func (k *Kernel) lookupUser(id ProcessId) (*proc, error) {
	p := k.lookup(id)
	if p == nil {
		return nil, fmt.Errorf("kernel: %s: %w", id, ErrNotFound)
	}
	if p == k.operator || p == k.kernelP || p.system {
		return nil, fmt.Errorf("kernel: %s: %w: system process", id, ErrNotPermitted)
	}
	return p, nil
}

// local reports whether a is on this node.
func (k *Kernel) local(a Address) bool { return a.Node == k.node || a.Node == OurNode }

// resolve replaces "our" with this node's id, and an alias (SetAlias)
// with the node id it stands for.
func (k *Kernel) resolve(a Address) Address {
	if a.Node == OurNode {
		a.Node = k.node
	} else if al := k.rm.aliases.Load(); al != nil {
		if n, ok := (*al)[a.Node]; ok {
			a.Node = n
		}
	}
	return a
}

// ProcState is where a process is in its life.
type ProcState uint8

const (
	StateRunning    ProcState = iota + 1 // Run is executing
	StateRestarting                      // waiting out its restart backoff
	StateExited                          // returned or crashed; on_exit did not restart it
	StateKilled                          // killed, or the node is stopping
)

func (s ProcState) String() string {
	switch s {
	case StateRunning:
		return "running"
	case StateRestarting:
		return "restarting"
	case StateExited:
		return "exited"
	case StateKilled:
		return "killed"
	}
	return fmt.Sprintf("ProcState(%d)", uint8(s))
}

// ProcessInfo is a process as Processes reports it.
type ProcessInfo struct {
	ID           ProcessId
	Parent       *ProcessId
	State        ProcState
	Public       bool
	Persisted    bool
	OnExit       OnExit
	Restarts     int
	MailboxDepth int
	Pending      int
	LastError    string
	Started      time.Time
}

// Processes lists every process, system processes included, sorted by id.
func (k *Kernel) Processes() []ProcessInfo {
	k.mu.RLock()
	ps := make([]*proc, 0, len(k.procs))
	for _, p := range k.procs {
		ps = append(ps, p)
	}
	k.mu.RUnlock()
	out := make([]ProcessInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b ProcessInfo) int {
		if a.ID.String() < b.ID.String() {
			return -1
		}
		if a.ID.String() > b.ID.String() {
			return 1
		}
		return 0
	})
	return out
}

// Process reports one process.
func (k *Kernel) Process(id ProcessId) (ProcessInfo, error) {
	p := k.lookup(id)
	if p == nil {
		return ProcessInfo{}, fmt.Errorf("kernel: %s: %w", id, ErrNotFound)
	}
	return p.info(), nil
}

// WaitProcess blocks until cond holds for the process, or the process
// leaves the table (ErrNotFound), or ctx ends, and returns what it last saw.
func (k *Kernel) WaitProcess(ctx context.Context, id ProcessId, cond func(ProcessInfo) bool) (ProcessInfo, error) {
	for {
		p := k.lookup(id)
		if p == nil {
			return ProcessInfo{}, fmt.Errorf("kernel: %s: %w", id, ErrNotFound)
		}
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		in := p.info()
		if k.lookup(id) != p {
			continue
		}
		if cond(in) {
			return in, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return in, fmt.Errorf("kernel: waiting for %s: %w", id, ctx.Err())
		}
	}
}

// Stats are the kernel's counters since it started.
type Stats struct {
	Routed        uint64               // requests and responses delivered
	SendErrors    map[ErrorKind]uint64 // failed sends, by kind
	Restarts      uint64               // on_exit restarts
	LateResponses uint64               // answers that came after the requester stopped waiting, or from another node matching no request
	Processes     int
}

type stats struct {
	errors   [len(errorKindNames)]atomic.Uint64
	restarts atomic.Uint64
	late     atomic.Uint64 // answers for a process no longer in the table
	// Counters of processes that left the table, so totals survive them.
	retiredRouted, retiredLate atomic.Uint64
}

// Stats returns the counters.
func (k *Kernel) Stats() Stats {
	s := Stats{
		Routed:        k.stats.retiredRouted.Load(),
		SendErrors:    make(map[ErrorKind]uint64),
		Restarts:      k.stats.restarts.Load(),
		LateResponses: k.stats.late.Load() + k.stats.retiredLate.Load(),
	}
	for _, kind := range ErrorKinds {
		s.SendErrors[kind] = k.stats.errors[kind].Load()
	}
	k.mu.RLock()
	s.Processes = len(k.procs)
	for _, p := range k.procs {
		p.mu.Lock()
		s.Routed += p.received
		s.LateResponses += p.late
		p.mu.Unlock()
	}
	k.mu.RUnlock()
	return s
}

// pendingTimeouts counts the requests in every process's timeout heap.
func (k *Kernel) pendingTimeouts() int {
	n := 0
	k.mu.RLock()
	for _, p := range k.procs {
		p.mu.Lock()
		n += len(p.to.h)
		p.mu.Unlock()
	}
	k.mu.RUnlock()
	return n
}

func (k *Kernel) sendErr(kind ErrorKind, target Address, req *Message, detail string) *SendError {
	k.stats.errors[kind].Add(1)
	return &SendError{Kind: kind, Target: target, Message: req, Detail: detail}
}
