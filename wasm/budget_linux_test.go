package wasm

import (
	"testing"

	"github.com/weftos/weft/kernel"
)

// BenchmarkReallocate: one page more of a mapped memory, as memory.grow
// asks the allocator for it, charged to no one (as before the budgets)
// or to a package and the node (account.charge).
func BenchmarkReallocate(b *testing.B) {
	for _, name := range []string{"unaccounted", "accounted"} {
		b.Run(name, func(b *testing.B) {
			const max = 1 << 30
			var acct *account
			if name == "accounted" {
				bud := newMemBudget(kernel.Limits{GuestMemoryPerPackage: max, GuestMemoryTotal: max})
				var err error
				if acct, err = bud.open(kernel.PackageId{Package: "p", Publisher: "weft.dev"}, 0, nil); err != nil {
					b.Fatal(err)
				}
				defer acct.close()
			}
			m := &mappedMemory{max: max, acct: acct}
			size := uint64(page)
			m.Reallocate(size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if size += page; size > max {
					m.Free()
					size = page
				}
				if m.Reallocate(size) == nil {
					b.Fatalf("no memory of %d bytes", size)
				}
			}
			b.StopTimer()
			m.Free()
		})
	}
}
