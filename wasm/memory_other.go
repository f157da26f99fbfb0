//go:build !linux

package wasm

import "context"

// withLinearMemory leaves linear memories on Go's heap where anonymous
// mappings are not set up (memory_linux.go).
func withLinearMemory(ctx context.Context) context.Context { return ctx }
