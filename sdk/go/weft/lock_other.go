//go:build !wasip1

package weft

import "sync"

// lock is sync.Mutex outside a Wasm guest: the SDK's tests run it on the
// host, where goroutines run in parallel (lock_wasip1.go).
type lock = sync.Mutex
