package wasm

import (
	"bytes"
	"fmt"
	"testing"
)

// The mapped memory hands out prefixes of one mapping, never past its
// maximum; the heap fallback grows by copying and keeps the contents.
func TestMappedMemory(t *testing.T) {
	m := &mappedMemory{max: 4 << 16}
	b := m.Reallocate(1 << 16)
	if len(b) != 1<<16 || !m.mapped {
		t.Fatalf("first page: len %d, mapped %v", len(b), m.mapped)
	}
	b[0], b[len(b)-1] = 1, 2
	g := m.Reallocate(3 << 16)
	if len(g) != 3<<16 || &g[0] != &b[0] || g[0] != 1 || g[1<<16-1] != 2 || g[2<<16] != 0 {
		t.Fatal("growing moved the memory or lost its contents")
	}
	if m.Reallocate(5<<16) != nil {
		t.Fatal("grew past the maximum")
	}
	m.Free()
	m.Free() // twice is harmless

	h := &mappedMemory{max: 4 << 16, noMap: true} // as after a failed mmap
	hb := h.Reallocate(1 << 16)
	hb[7] = 9
	hg := h.Reallocate(2 << 16)
	if len(hg) != 2<<16 || hg[7] != 9 || h.mapped {
		t.Fatal("the heap fallback lost its contents when growing")
	}
	h.Free()

	if z := (&mappedMemory{}).Reallocate(0); z == nil || len(z) != 0 {
		t.Fatalf("a memory of maximum 0: %v", z)
	}
}

// A memory handed back to the pool comes out again as the same mapping,
// zero everywhere the last guest wrote, scattered or not; one that holds
// too much is unmapped instead; a closed pool keeps nothing.
func TestMemoryPool(t *testing.T) {
	for _, swap := range []bool{false, true} {
		t.Run(fmt.Sprintf("swap=%v", swap), func(t *testing.T) {
			p := newMemoryPool()
			// With swap, the runs of pages not resident are dropped too.
			p.swapOn = func() bool { return swap }
			testMemoryPool(t, p)
		})
	}
}

func testMemoryPool(t *testing.T, p *memoryPool) {
	const max = 128 << 16
	m := &mappedMemory{max: max, pool: p}
	b := m.Reallocate(8 << 16)
	first := &b[0]
	touch := func(b []byte, pages ...int) {
		for _, pg := range pages {
			b[pg*pageSize], b[(pg+1)*pageSize-1] = 0xAA, 0xBB
		}
	}
	touch(b, 0, 1, 2, 3, 20, 21, 60, 61, 62, 63) // three resident runs, holes between
	m.Free()
	if p.count != 1 || p.resident == 0 {
		t.Fatalf("pool after a free: %d mappings, %d resident bytes", p.count, p.resident)
	}

	m2 := &mappedMemory{max: max, pool: p}
	b2 := m2.Reallocate(16 << 16)
	if &b2[0] != first {
		t.Fatal("the pooled mapping was not reused")
	}
	if i := bytes.IndexFunc(b2, func(r rune) bool { return r != 0 }); i >= 0 {
		t.Fatalf("reused memory holds the last guest's byte at %d", i)
	}
	if p.count != 0 || p.resident != 0 {
		t.Fatalf("pool after a get: %d mappings, %d resident bytes", p.count, p.resident)
	}

	// More resident than poolMaxMemory: unmapped, not pooled.
	big := m2.Reallocate(max)[:poolMaxMemory+pageSize]
	for i := 0; i < len(big); i += pageSize {
		big[i] = 1
	}
	m2.Free()
	if p.count != 0 {
		t.Fatal("a memory over poolMaxMemory was pooled")
	}

	// More runs of untouched pages than poolMaxHoles: unmapped.
	m5 := &mappedMemory{max: max, pool: p}
	b5 := m5.Reallocate(8 << 16)
	for pg := 0; pg < 4*poolMaxHoles; pg += 2 {
		touch(b5, pg)
	}
	m5.Free()
	if p.count != 0 {
		t.Fatal("a memory with more than poolMaxHoles holes was pooled")
	}

	// Other lengths do not mix.
	m3 := &mappedMemory{max: max / 2, pool: p}
	m3.Reallocate(1 << 16)[0] = 1
	m3.Free()
	if got := p.get(0, max); got != nil {
		t.Fatal("a mapping of another length came out of the pool")
	}
	m6 := &mappedMemory{initial: 1 << 16, max: max, pool: p}
	m6.Reallocate(1 << 16)[0] = 1
	m6.Free()
	if got := p.get(0, max); got != nil {
		t.Fatal("a mapping of another initial size came out of the pool")
	}

	// Idle for poolIdle: emptied.
	m7 := &mappedMemory{max: max, pool: p}
	m7.Reallocate(1 << 16)[0] = 1
	m7.Free()
	if p.len() == 0 {
		t.Fatal("nothing pooled before trim")
	}
	p.trim(p.lastGet.Add(poolIdle / 2))
	if p.len() == 0 {
		t.Fatal("trim emptied a pool in use")
	}
	p.trim(p.lastGet.Add(poolIdle))
	if p.len() != 0 {
		t.Fatalf("trim left %d mappings in an idle pool", p.len())
	}

	p.close()
	if p.count != 0 {
		t.Fatalf("closed pool holds %d", p.count)
	}
	m4 := &mappedMemory{max: max, pool: p}
	m4.Reallocate(1 << 16)
	m4.Free()
	if p.count != 0 {
		t.Fatal("a closed pool took a mapping")
	}
}
