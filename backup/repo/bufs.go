package repo

import (
	"math/bits"
	"sync"
)

// Buffers a backup goes through once per chunk (its copy, its sealed
// form) and a restore once per range and blob are recycled rather than
// left to the garbage collector: a run otherwise allocates four times the
// data it reads, and on a machine where page faults are dear that is a
// tenth of its time (docs/performance.md). A buffer is given back only
// where nothing can still read it. What is kept for reuse is bounded
// (maxKept bytes in all, the room going to the classes in use), so that
// the recycling never holds more than a run in flight needs.

// Buffers come in size classes: class k has capacity 1<<k.
const (
	minBufClass = 16 // 64 KiB: smaller buffers are not worth keeping
	maxBufClass = 27 // 128 MiB: more than maxBlob sealed
	maxKept     = 64 << 20
)

var bufs struct {
	mu   sync.Mutex
	kept int // bytes in free
	free [maxBufClass + 1][][]byte
}

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) []byte {
	k := max(bits.Len(uint(max(n, 1)-1)), minBufClass)
	if k > maxBufClass {
		return make([]byte, 0, n)
	}
	bufs.mu.Lock()
	if f := bufs.free[k]; len(f) > 0 {
		b := f[len(f)-1]
		bufs.free[k] = f[:len(f)-1]
		bufs.kept -= cap(b)
		bufs.mu.Unlock()
		return b[:0]
	}
	bufs.mu.Unlock()
	return make([]byte, 0, 1<<k)
}

// putBuf gives back a buffer from getBuf, which its caller no longer
// reads or writes. It is kept for reuse while fewer than maxKept bytes
// are.
func putBuf(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return // not one of getBuf's
	}
	k := bits.Len(uint(c)) - 1
	if k < minBufClass || k > maxBufClass {
		return
	}
	bufs.mu.Lock()
	defer bufs.mu.Unlock()
	// Make room by dropping buffers of the class that holds the most,
	// so that a class the run no longer asks for (the buffers of a rare
	// large chunk) cannot keep the room from those it does.
	for bufs.kept+c > maxKept {
		most, j := 0, -1
		for i := minBufClass; i <= maxBufClass; i++ {
			if held := len(bufs.free[i]) << i; i != k && held > most {
				most, j = held, i
			}
		}
		if j < 0 {
			return
		}
		f := bufs.free[j]
		f[len(f)-1] = nil
		bufs.free[j] = f[:len(f)-1]
		bufs.kept -= 1 << j
	}
	bufs.free[k] = append(bufs.free[k], b[:0])
	bufs.kept += c
}
