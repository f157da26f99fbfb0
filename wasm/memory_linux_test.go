package wasm

import (
	"testing"
)

// The mapped memory hands out prefixes of one mapping, never past its
// maximum; the heap fallback grows by copying and keeps the contents.
func TestMappedMemory(t *testing.T) {
	m := newMappedMemory(0, 4<<16).(*mappedMemory)
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

	if z := newMappedMemory(0, 0).Reallocate(0); z == nil || len(z) != 0 {
		t.Fatalf("a memory of maximum 0: %v", z)
	}
}
