package wasm

import (
	"context"
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// withLinearMemory makes the instances instantiated with ctx keep their
// linear memories in anonymous mappings of their own rather than on Go's
// heap. Every instance has two memories — the guest's and Extism's kernel
// module's, 1 MiB at least, most of it never touched — and on the heap
// each is zeroed when made (memclr), scanned by the collector's
// bookkeeping and returned by the scavenger: two thirds of a C process's
// spawn time. A fresh mapping costs one mmap, its pages are zero and
// become resident only when the guest touches them, and munmap gives them
// back at once when wazero closes the module.
func withLinearMemory(ctx context.Context) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(newMappedMemory))
}

// mappedMemory is a linear memory in an anonymous mapping that reserves
// its maximum size up front (address space only, MAP_NORESERVE), so that
// growing it never moves it. Should the mapping fail (address space
// exhausted, a restrictive overcommit policy), the memory lives on the
// heap instead, as it would without an allocator.
type mappedMemory struct {
	buf      []byte
	max      uint64
	mapped   bool
	noMap    bool // tests: act as if the mapping failed
	populate bool // fault the initial size in when mapping (populateBytes)
}

func newMappedMemory(initial, max uint64) experimental.LinearMemory {
	return &mappedMemory{max: max, populate: initial >= populateBytes}
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

// Reallocate returns the first size bytes of the mapping, mapping it on
// first use; nil (the guest's memory.grow fails) past the maximum.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.buf == nil && m.max > 0 && !m.noMap {
		b, err := syscall.Mmap(-1, 0, int(m.max), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
		if err == nil {
			m.buf, m.mapped = b, true
			if m.populate && size > 0 {
				_ = syscall.Madvise(b[:size], madvPopulateWrite)
			}
		}
	}
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

// Free unmaps the memory; wazero calls it when it closes the module, after
// which nothing may touch the memory.
func (m *mappedMemory) Free() {
	if m.mapped {
		_ = syscall.Munmap(m.buf[:cap(m.buf)])
	}
	m.buf, m.mapped = nil, false
}
