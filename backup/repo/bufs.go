package repo

import (
	"math/bits"
	"sync"
)

// Buffers a backup goes through once per chunk (its copy, its sealed
// form) and once per pack are recycled rather than left to the garbage
// collector: a run otherwise allocates four times the data it reads, and
// on a machine where page faults are dear that is a tenth of its time
// (docs/performance.md). A buffer is given back only where nothing can
// still read it.

// chunkBufs holds buffers by size class: class k has capacity 1<<k.
var chunkBufs [bits.UintSize]sync.Pool

const (
	minBufClass = 16 // 64 KiB: smaller buffers are not worth keeping
	maxBufClass = 27 // 128 MiB: more than maxBlob sealed
)

// getBuf returns an empty buffer with room for n bytes.
func getBuf(n int) []byte {
	k := max(bits.Len(uint(max(n, 1)-1)), minBufClass)
	if k > maxBufClass {
		return make([]byte, 0, n)
	}
	if v, ok := chunkBufs[k].Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return make([]byte, 0, 1<<k)
}

// putBuf gives back a buffer from getBuf, which its caller no longer
// reads or writes.
func putBuf(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return // not one of getBuf's
	}
	if k := bits.Len(uint(c)) - 1; k >= minBufClass && k <= maxBufClass {
		chunkBufs[k].Put(&b)
	}
}
