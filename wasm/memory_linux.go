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
	buf    []byte
	max    uint64
	mapped bool
	noMap  bool // tests: act as if the mapping failed
}

func newMappedMemory(_, max uint64) experimental.LinearMemory {
	return &mappedMemory{max: max}
}

// Reallocate returns the first size bytes of the mapping, mapping it on
// first use; nil (the guest's memory.grow fails) past the maximum or when
// the mapping cannot be made.
func (m *mappedMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if m.buf == nil && m.max > 0 && !m.noMap {
		b, err := syscall.Mmap(-1, 0, int(m.max), syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
		if err == nil {
			m.buf, m.mapped = b, true
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
