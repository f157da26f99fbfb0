//go:build !linux

package wasm

import (
	"context"
	"time"
)

// withLinearMemory leaves linear memories on Go's heap where anonymous
// mappings are not set up (memory_linux.go).
func withLinearMemory(ctx context.Context, _ *memoryPool) (_ context.Context, release func()) {
	return ctx, func() {}
}

// memoryPool is memory_linux.go's; elsewhere there is nothing to pool.
type memoryPool struct{}

func newMemoryPool() *memoryPool { return nil }

func (p *memoryPool) close() {}

func (p *memoryPool) drain() {}

func (p *memoryPool) len() int { return 0 }

func (p *memoryPool) trim(time.Time) {}
