package wasm

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/weftos/weft/kernel"
)

// memBudget accounts the linear memory the host's instances hold, on the
// node and per package, against guest_memory_total and
// guest_memory_per_package. A memory is charged its size as wazero asks
// for it (instantiate, memory.grow), not its resident pages, and the
// charge is given back when wazero frees the memory: a mapping kept in
// the memory pool counts against no one.
//
// The grow path costs two compare-and-swap loops on counters; the mutex
// guards only the table of packages, taken when an instance starts and
// ends and when a process spawns.
type memBudget struct {
	nodeMax, pkgMax int64
	node            atomic.Int64

	mu   sync.Mutex
	pkgs map[kernel.PackageId]*pkgMemory
}

// pkgMemory is one package's use. It stays in the table while an account
// or a reservation refers to it.
type pkgMemory struct {
	id   kernel.PackageId
	used atomic.Int64
	refs int // memBudget.mu
}

func newMemBudget(lim kernel.Limits) *memBudget {
	return &memBudget{nodeMax: lim.GuestMemoryTotal, pkgMax: lim.GuestMemoryPerPackage, pkgs: make(map[kernel.PackageId]*pkgMemory)}
}

// budgetError says which budget a charge did not fit, in a sentence for
// people (the process's error, or the guest's last_error after a spawn).
type budgetError struct {
	key       string // the limit's config key
	whose     string // "package p:q" or "the node"
	n         int64  // the bytes asked for
	used, max int64
}

func (e *budgetError) Error() string {
	return fmt.Sprintf("%d bytes of linear memory do not fit %s's guest memory budget, %d of %d bytes in use (%s)", e.n, e.whose, e.used, e.max, e.key)
}

// Unwrap makes a budget error a kernel.ErrLimit, which a guest sees as
// WEFT_ELIMIT.
func (e *budgetError) Unwrap() error { return kernel.ErrLimit }

// acquire returns package id's entry, holding a reference to it.
func (b *memBudget) acquire(id kernel.PackageId) *pkgMemory {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.pkgs[id]
	if p == nil {
		p = &pkgMemory{id: id}
		b.pkgs[id] = p
	}
	p.refs++
	return p
}

// drop lets go of a reference acquire returned.
func (b *memBudget) drop(p *pkgMemory) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.refs--; p.refs == 0 {
		delete(b.pkgs, p.id)
	}
}

// take charges n bytes to p and to the node, or, when either budget
// would be exceeded, charges nothing and says which.
func (b *memBudget) take(p *pkgMemory, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := takeFrom(&p.used, n, b.pkgMax); err != nil {
		err.key, err.whose = "guest_memory_per_package", "package "+p.id.String()
		return err
	}
	if err := takeFrom(&b.node, n, b.nodeMax); err != nil {
		p.used.Add(-n)
		err.key, err.whose = "guest_memory_total", "the node"
		return err
	}
	return nil
}

// takeFrom adds n to c unless that makes it more than max.
func takeFrom(c *atomic.Int64, n, max int64) *budgetError {
	for {
		u := c.Load()
		if u+n > max {
			return &budgetError{n: n, used: u, max: max}
		}
		if c.CompareAndSwap(u, u+n) {
			return nil
		}
	}
}

// force charges n bytes to p and to the node whatever the budgets say.
func (b *memBudget) force(p *pkgMemory, n int64) {
	p.used.Add(n)
	b.node.Add(n)
}

// give hands back n bytes charged to p.
func (b *memBudget) give(p *pkgMemory, n int64) {
	if n != 0 {
		p.used.Add(-n)
		b.node.Add(-n)
	}
}

// GuestMemory is the linear memory the host's instances hold, in bytes:
// on the node, and by package (only packages that hold some). Bytes a
// parent's spawn reserved for a child not yet made count as held.
type GuestMemory struct {
	Total    int64
	Packages map[kernel.PackageId]int64
}

// GuestMemory reports what the instances hold against the budgets
// guest_memory_total and guest_memory_per_package.
func (h *Host) GuestMemory() GuestMemory {
	b := h.budget
	g := GuestMemory{Total: b.node.Load(), Packages: make(map[kernel.PackageId]int64)}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, p := range b.pkgs {
		if u := p.used.Load(); u != 0 {
			g.Packages[id] = u
		}
	}
	return g
}

// account is what one instance's memories charge: its package, and the
// bytes reserved ahead for its initial memories (credit), which those
// take first. Only the instance's goroutine uses it: wazero makes, grows
// and frees an instance's memories on the goroutine that calls into it.
type account struct {
	b      *memBudget
	pkg    *pkgMemory
	credit int64
}

// open makes the account of an instance of a package whose memories
// start at initial bytes. It reserves them, or takes over what the
// parent's spawn reserved (res, which may be nil); it fails, reserving
// nothing, when they do not fit.
func (b *memBudget) open(id kernel.PackageId, initial int64, res *reservation) (*account, error) {
	if res.claim() {
		return &account{b: b, pkg: res.pkg, credit: res.n}, nil
	}
	p := b.acquire(id)
	if err := b.take(p, initial); err != nil {
		b.drop(p)
		return nil, err
	}
	return &account{b: b, pkg: p, credit: initial}, nil
}

// charge charges n more bytes of one of the instance's memories, from
// the credit first. made says the memory is being made rather than
// grown: wazero cannot fail that (it would panic), so what the credit
// does not cover is charged whatever the budgets say; the credit,
// reserved before the instance was made, covers it exactly
// (Module.initial).
func (a *account) charge(n int64, made bool) bool {
	if a == nil {
		return true
	}
	c := min(a.credit, n)
	a.credit -= c
	n -= c
	if made {
		a.b.force(a.pkg, n)
		return true
	}
	return a.b.take(a.pkg, n) == nil
}

// refund gives back n bytes a memory was charged (it was freed).
func (a *account) refund(n int64) {
	if a != nil {
		a.b.give(a.pkg, n)
	}
}

// settle gives back the credit the instance's memories did not take: call
// it once the instance is made, or failed to be.
func (a *account) settle() {
	a.b.give(a.pkg, a.credit)
	a.credit = 0
}

// close settles the account and lets go of its package. Every memory
// charged to it must have been freed.
func (a *account) close() {
	a.settle()
	a.b.drop(a.pkg)
}

// reservation is the initial memory of a child, reserved by its parent's
// spawn so that a spawn that does not fit fails at the call. The child's
// first instance takes it over (claim); if the child never runs (it was
// stopped first), its parent's instance cancels it when it ends.
type reservation struct {
	b     *memBudget
	pkg   *pkgMemory
	n     int64
	state atomic.Int32 // reservationPending, then claimed or cancelled
}

const (
	reservationPending = iota
	reservationClaimed
	reservationCancelled
)

// reserve reserves n bytes for a child of package id.
func (b *memBudget) reserve(id kernel.PackageId, n int64) (*reservation, error) {
	p := b.acquire(id)
	if err := b.take(p, n); err != nil {
		b.drop(p)
		return nil, err
	}
	return &reservation{b: b, pkg: p, n: n}, nil
}

// claim takes the reservation over, with its bytes and its reference to
// the package; false when there is none or it is gone.
func (r *reservation) claim() bool {
	return r != nil && r.state.CompareAndSwap(reservationPending, reservationClaimed)
}

// cancel gives the reservation back unless it was claimed.
func (r *reservation) cancel() {
	if r.state.CompareAndSwap(reservationPending, reservationCancelled) {
		r.b.give(r.pkg, r.n)
		r.b.drop(r.pkg)
	}
}

// pending reports whether the reservation is neither claimed nor
// cancelled yet.
func (r *reservation) pending() bool { return r.state.Load() == reservationPending }

// extismKernelMemory is the initial linear memory of Extism's kernel
// module, which every instance has beside the guest's (16 pages in
// Extism v1.7.1; TestInitialMemory checks it).
const extismKernelMemory = 16 << 16

// initialMemory is the bytes an instance of a module starts with: the
// guest's memory's minimum, read from its memory section, and Extism's
// kernel memory.
func initialMemory(wasm []byte) int64 {
	return int64(memoryMinPages(wasm))<<16 + extismKernelMemory
}

// memoryMinPages reads the minimum of the module's first memory from its
// memory section, 0 when it has none (a module that imports its memory
// is refused by checkImports). The module was inspected already.
func memoryMinPages(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	r := &wasmReader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sec := &wasmReader{b: r.take(r.uleb())}
		if id != 5 || r.err != nil {
			continue
		}
		if sec.uleb() == 0 {
			return 0
		}
		sec.byte() // flags
		if n := sec.uleb(); sec.err == nil {
			return n
		}
		return 0
	}
	return 0
}
