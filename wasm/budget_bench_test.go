package wasm

import (
	"context"
	"fmt"
	"testing"

	"github.com/weftos/weft/kernel"
)

// BenchmarkGrowGuest: a process of testdata/grow.wat starts, grows its
// memory a page at a time from 1 page to memory_per_process (64 MiB:
// 1023 memory.grow calls, each one charged to the guest memory budgets),
// answers, and is removed. ns/grow is the op's time over its grows;
// BenchmarkSpawn/c is most of the rest.
func BenchmarkGrowGuest(b *testing.B) {
	const grows = 64<<20/(1<<16) - 1
	e := newEnv(b, envOpts{limits: kernel.Limits{ProcessesPerPackage: 1 << 20, ProcessesPerNode: 1 << 20}})
	m := e.compile(b, "grow.wasm", buildWAT(b, "grow"))
	ctx := context.Background()
	run := func(i int) {
		id := pid(fmt.Sprintf("g%d", i))
		if err := e.k.Start(kernel.Spec{ID: id, Process: m.Process(ProcessOptions{})}); err != nil {
			b.Fatal(err)
		}
		if got := e.mustCall(b, id, ""); got != "\x00\x04\x00\x00" {
			b.Fatalf("grew to %q pages; want 1024", got)
		}
		if err := e.k.Remove(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	run(-1) // warm
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run(i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*grows), "ns/grow")
}
