//go:build wasip1

package weft

import "runtime"

// lock is the SDK's mutex in a Wasm guest. Go on wasip1 runs every
// goroutine on one thread and switches between them only where one blocks
// or yields — never between a test and a store with neither in between —
// so a flag is a mutex: a goroutine that finds it set yields until the
// holder, parked in the collector say, runs on and clears it. (A host
// call blocks the whole instance, so no goroutine runs while the holder
// waits for the node.) sync.Mutex costs a dozen calls per Lock and Unlock
// there, atomics being calls on wasm, and every call in a guest pays the
// CPU guard's check (docs/performance.md).
type lock struct{ held bool }

func (l *lock) Lock() {
	for l.held {
		runtime.Gosched()
	}
	l.held = true
}

func (l *lock) Unlock() { l.held = false }
