//go:build !linux

package wasm

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// withLinearMemory keeps linear memories on Go's heap where anonymous
// mappings are not set up (memory_linux.go), charging each to acct as it
// is made and grown and refunding it when it is freed, as there.
func withLinearMemory(ctx context.Context, _ *memoryPool, acct *account) (_ context.Context, release func()) {
	made := make([]*heapMemory, 0, 2) // the guest's memory and Extism's
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m := &heapMemory{max: max, acct: acct}
		made = append(made, m)
		return m
	}))
	return ctx, func() {
		for _, m := range made {
			m.Free()
		}
	}
}

// heapMemory is a linear memory on the heap, grown by copying (wazero
// lets an unshared memory move).
type heapMemory struct {
	buf     []byte
	max     uint64
	acct    *account
	charged uint64
	made    bool
}

// Reallocate returns the first size bytes of the memory; nil (the
// guest's memory.grow fails) past the maximum or past a budget, but never
// when wazero makes the memory (see mappedMemory.Reallocate).
func (m *heapMemory) Reallocate(size uint64) []byte {
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
	if m.buf == nil {
		m.buf = []byte{}
	}
	if size > uint64(len(m.buf)) {
		m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
	}
	return m.buf[:size:size]
}

// Free drops the memory and refunds its charge; calling it again does
// nothing.
func (m *heapMemory) Free() {
	m.buf = nil
	m.acct.refund(int64(m.charged))
	m.charged = 0
}

// memoryPool is memory_linux.go's; elsewhere there is nothing to pool.
type memoryPool struct{}

func newMemoryPool() *memoryPool { return nil }

func (p *memoryPool) close() {}

func (p *memoryPool) drain() {}

func (p *memoryPool) len() int { return 0 }

func (p *memoryPool) trim(time.Time) {}
