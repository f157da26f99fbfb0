package wasm

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
)

// withLinearMemory makes the instances instantiated with ctx keep their
// linear memories in anonymous mappings of their own rather than on Go's
// heap, taken from pool when it has one of the right size. Every instance
// has two memories — the guest's and Extism's kernel module's, 1 MiB at
// least, most of it never touched — and on the heap each is zeroed when
// made (memclr), scanned by the collector's bookkeeping and returned by
// the scavenger: two thirds of a C process's spawn time. A fresh mapping
// costs one mmap, its pages are zero and become resident only when the
// guest touches them.
//
// Each memory is charged to acct as it is made and grown (memBudget),
// and refunded when it is freed; a grow the budgets refuse fails in the
// guest (memory.grow returns -1).
//
// release frees every memory made under ctx that wazero has not freed:
// call it when instantiating failed, or once the instance is closed
// (where it finds nothing left to free). wazero frees a memory when it
// closes its module, but a module whose instantiation failed part way
// (its start function trapped or exited, a data segment did not fit) is
// never closed, unless its context was done (the CPU guard): without
// release its mapping would never be unmapped nor pooled, nor its charge
// refunded.
func withLinearMemory(ctx context.Context, pool *memoryPool, acct *account) (_ context.Context, release func()) {
	made := make([]*mappedMemory, 0, 2) // the guest's memory and Extism's
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(initial, max uint64) experimental.LinearMemory {
		m := &mappedMemory{initial: initial, max: max, populate: initial >= populateBytes, pool: pool, acct: acct}
		made = append(made, m)
		return m
	}))
	return ctx, func() {
		for _, m := range made {
			m.Free()
		}
	}
}

// mappedMemory is a linear memory in an anonymous mapping that reserves
// its maximum size up front (address space only, MAP_NORESERVE), so that
// growing it never moves it. Should the mapping fail (address space
// exhausted, a restrictive overcommit policy), the memory lives on the
// heap instead, as it would without an allocator.
type mappedMemory struct {
	buf      []byte
	initial  uint64 // the pool's size class is (initial, max)
	max      uint64
	used     uint64 // the largest size handed out: what the guest could touch
	mapped   bool
	noMap    bool // tests: act as if the mapping failed
	populate bool // fault the initial size in when mapping (populateBytes)
	pool     *memoryPool
	acct     *account // nil: charged to no one (tests)
	charged  uint64   // bytes charged to acct
	made     bool     // the first Reallocate, wazero's making it, is done
}

// populateBytes: a memory that starts at least this large is faulted in
// whole when mapped (MADV_POPULATE_WRITE), in one call rather than a page
// fault per page. A guest that starts with megabytes writes most of them
// at once — Go's runtime does, and its tens of thousands of data
// segments: a Go process's spawn took 6.5–6.7 ms page by page, 3.7–4.2 ms
// populated (BenchmarkSpawn/go), against 4.7–5.0 ms on the heap. Smaller
// memories (a C guest's 256 KiB, Extism's 1 MiB kernel memory) stay
// resident only where touched. Kernels before 5.14 refuse the advice,
// and the pages then fault in as they are touched.
const populateBytes = 2 << 20

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14), which package
// syscall does not name.
const madvPopulateWrite = 23

// Reallocate returns the first size bytes of the mapping, mapping it (or
// taking one from the pool) on first use; nil (the guest's memory.grow
// fails) past the maximum or past a budget. The first call, wazero
// making the memory, never fails for a budget: wazero would panic on a
// nil there (NewMemoryInstance), and the instance's initial memories
// were reserved before it was made (account.charge).
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > m.charged {
		if !m.acct.charge(int64(size-m.charged), !m.made) {
			return nil
		}
		m.charged = size
	}
	m.made = true
	if m.buf == nil && m.max > 0 && !m.noMap {
		b := m.pool.get(m.initial, m.max)
		if b == nil {
			var err error
			b, err = syscall.Mmap(-1, 0, int(m.max), syscall.PROT_READ|syscall.PROT_WRITE,
				syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
			if err != nil {
				b = nil
			}
		}
		if b != nil {
			m.buf, m.mapped = b, true
			if m.populate && size > 0 {
				_ = syscall.Madvise(b[:size], madvPopulateWrite)
			}
		}
	}
	m.used = max(m.used, size)
	if m.mapped {
		return m.buf[:size:size]
	}
	// On the heap: grow by copying (wazero lets an unshared memory move;
	// nil would read as a failure to grow).
	if m.buf == nil {
		m.buf = []byte{}
	}
	if size > uint64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf[:size:size]
}

// Free hands the mapping back to the pool, zeroed, or unmaps it, and
// refunds the memory's charge; wazero calls it when it closes the module,
// after which nothing may touch the memory. Calling it again does
// nothing.
func (m *mappedMemory) Free() {
	if m.mapped && !m.pool.put(m.buf[:cap(m.buf)], m.initial, m.used) {
		_ = syscall.Munmap(m.buf[:cap(m.buf)])
	}
	m.buf, m.mapped, m.used = nil, false, 0
	m.acct.refund(int64(m.charged))
	m.charged = 0
}

// memoryPool keeps the mappings of closed instances' memories, zeroed,
// for the next instances. Unmapping a memory when its process exits, and
// faulting its pages in again in the next one, cost a C process a third
// of its spawn (BenchmarkSpawn/c): munmap and madvise(MADV_DONTNEED)
// alike change page tables that both vCPUs may cache, and each waits
// for the other to flush its TLB. Zeroing the few pages a small guest
// touched, with ordinary stores, changes no page table.
//
// A memory is zeroed page by page where it is resident (mincore). The
// rest of what the guest could have touched is pages it never touched,
// which are zero, or, when the machine has swap, pages swapped out, which
// still hold its data: with swap on, those runs are dropped with
// MADV_DONTNEED, which flushes nothing when no page there is present.
// (Without swap no page can be out: swapoff brings every page back in
// before it returns.) So a pooled mapping is zero wherever the next guest
// can look — but for one window: machineHasSwap trusts an answer of no
// swap for 10 ms, and a page swapped out within 10 ms of a swapon, in an
// instance that exits in that time, would keep its data.
//
// A memory with more resident than poolMaxMemory, or more than
// poolMaxHoles runs of pages that are not, is unmapped instead, and so is
// anything past the pool's bounds: poolMaxMappings mappings holding
// poolMaxResident of resident pages. The pool's pages count in the node's
// resident set; a pool from which nothing was taken for poolIdle is
// emptied (trim).
type memoryPool struct {
	mu       sync.Mutex
	free     map[[2]uint64][]pooledMapping // by initial size and length
	count    int
	resident int
	closed   bool
	swapOn   func() bool // machineHasSwap; tests replace it
	lastGet  time.Time   // when a mapping last left the pool (trim)
}

type pooledMapping struct {
	buf      []byte
	resident int
}

const (
	poolMaxMappings = 64
	poolMaxResident = 32 << 20
	poolMaxMemory   = 4 << 20 // resident bytes of one memory
	poolMaxHoles    = 8
	poolIdle        = 30 * time.Second
)

var pageSize = os.Getpagesize()

func newMemoryPool() *memoryPool {
	return &memoryPool{free: make(map[[2]uint64][]pooledMapping), swapOn: machineHasSwap}
}

// get returns a zeroed mapping of length n for a memory that starts at
// initial bytes, or nil. Memories are pooled by both: an instance's two
// memories, the guest's and Extism's, then take back the pages each
// touched before.
func (p *memoryPool) get(initial, n uint64) []byte {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k := [2]uint64{initial, n}
	s := p.free[k]
	if len(s) == 0 {
		return nil
	}
	e := s[len(s)-1]
	p.free[k] = s[:len(s)-1]
	p.count--
	p.resident -= e.resident
	p.lastGet = time.Now()
	return e.buf
}

// trim empties the pool when no mapping has left it for poolIdle, so that
// a node that stopped spawning gives the pool's pages back. The CPU guard
// (Host.watchdog) calls it on every tick.
func (p *memoryPool) trim(now time.Time) {
	p.mu.Lock()
	idle := p.count > 0 && now.Sub(p.lastGet) >= poolIdle
	p.mu.Unlock()
	if idle {
		p.drain()
	}
}

// put zeroes buf's first used bytes and keeps buf, or reports false and
// leaves buf to its owner to unmap.
func (p *memoryPool) put(buf []byte, initial, used uint64) bool {
	if p == nil || used > uint64(len(buf)) || len(buf)%pageSize != 0 {
		return false
	}
	p.mu.Lock()
	full := p.closed || p.count >= poolMaxMappings
	p.mu.Unlock()
	if full {
		return false
	}
	pages := (int(used) + pageSize - 1) / pageSize
	vec := make([]byte, pages)
	if pages > 0 {
		if mincore(buf[:pages*pageSize], vec) != nil {
			return false
		}
	}
	resident, holes := 0, 0
	forRuns(vec, func(lo, hi int, in bool) {
		if in {
			resident += (hi - lo) * pageSize
		} else {
			holes++
		}
	})
	if resident > poolMaxMemory || holes > poolMaxHoles {
		return false
	}
	ok, swap := true, p.swapOn()
	forRuns(vec, func(lo, hi int, in bool) {
		b := buf[lo*pageSize : hi*pageSize]
		if in {
			clear(b)
		} else if swap && syscall.Madvise(b, syscall.MADV_DONTNEED) != nil {
			ok = false
		}
	})
	if !ok {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.count >= poolMaxMappings || p.resident+resident > poolMaxResident {
		return false
	}
	k := [2]uint64{initial, uint64(len(buf))}
	p.free[k] = append(p.free[k], pooledMapping{buf: buf, resident: resident})
	p.count++
	p.resident += resident
	return true
}

// len is the number of pooled mappings.
func (p *memoryPool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// forRuns calls f for each run of pages [lo, hi) that are all resident
// (in) or all not, by mincore's vector.
func forRuns(vec []byte, f func(lo, hi int, in bool)) {
	for lo := 0; lo < len(vec); {
		in := vec[lo]&1 != 0
		hi := lo + 1
		for hi < len(vec) && (vec[hi]&1 != 0) == in {
			hi++
		}
		f(lo, hi, in)
		lo = hi
	}
}

// close unmaps every pooled mapping; the pool keeps nothing after.
func (p *memoryPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.drain()
}

// drain unmaps every pooled mapping.
func (p *memoryPool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.free {
		for _, e := range s {
			_ = syscall.Munmap(e.buf)
		}
		delete(p.free, k)
	}
	p.count, p.resident = 0, 0
}

// mincore fills vec with the residency of b's pages (bit 0 set: resident).
func mincore(b, vec []byte) error {
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if e != 0 {
		return e
	}
	return nil
}

// machineHasSwap reports whether the machine has any swap space
// (sysinfo(2)); if it cannot tell, it says yes. A system call is dear
// next to the rest of a spawn (docs/performance.md) and each exiting
// instance frees two memories, so an answer of no swap is kept for swapRecheck; once swap is seen the
// answer stays yes. The window this leaves is a swapon followed, within
// swapRecheck, by the swapping out of a page of an instance that then
// exits: see memoryPool.
func machineHasSwap() bool {
	now := time.Now().UnixNano()
	if c := swapChecked.Load(); c != 0 && now-c < int64(swapRecheck) {
		return false
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) != nil || si.Totalswap > 0 {
		swapChecked.Store(0)
		return true
	}
	swapChecked.Store(now)
	return false
}

// swapChecked is when machineHasSwap last found no swap (Unix ns), 0 when
// it did not.
var swapChecked atomic.Int64

const swapRecheck = 10 * time.Millisecond
