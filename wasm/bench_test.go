package wasm

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/weftos/weft/kernel"
)

// benchGuest builds the guest of a benchmark: the lean C guest
// (testdata/bench.c), the Go one on the bare ABI (testdata/goecho) or the
// Go one an app author would write with the SDK (testdata/gosdk).
func benchGuest(b *testing.B, lang string) []byte {
	switch lang {
	case "go":
		return buildGo(b)
	case "go-sdk":
		return buildGoGuest(b, "gosdk")
	}
	return buildC(b, "bench", "-mbulk-memory")
}

// BenchmarkRoundTrip: a request from one running Wasm process to another
// (not public; the client holds its messaging capability), 5-byte body,
// and its response, through the kernel, default guards on. The loop runs
// inside the client guest (send_and_await), so one op is one round trip.
// The -noguard variants turn wazero's CloseOnContextDone off (which the
// CPU guard needs) to show what the guard costs.
func BenchmarkRoundTrip(b *testing.B) {
	for _, name := range []string{"c", "go", "go-sdk", "c-noguard", "go-noguard", "go-sdk-noguard"} {
		b.Run(name, func(b *testing.B) {
			lang, noGuard := strings.CutSuffix(name, "-noguard")
			wasm := benchGuest(b, lang)
			e := newEnv(b, envOpts{noGuard: noGuard})
			m := e.compile(b, lang+".wasm", wasm)
			e.start(b, "client", m, false, ProcessOptions{})
			srv := e.start(b, "server", m, false, ProcessOptions{}, "client")
			cmd := func(n int) string { return "call our@" + srv.String() + " " + strconv.Itoa(n) }
			if got := e.mustCall(b, pid("client"), cmd(1000)); got != "hello" {
				b.Fatalf("warm-up: %q", got)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if got := e.mustCall(b, pid("client"), cmd(b.N)); got != "hello" {
				b.Fatalf("got %q", got)
			}
		})
	}
}

// BenchmarkSpawn: kernel Start of a new process from a compiled module
// until its init is running (it answered a first request), then Remove
// (kill and forget).
// It also reports the resident memory of idle processes.
func BenchmarkSpawn(b *testing.B) {
	for _, lang := range []string{"c", "go"} {
		b.Run(lang, func(b *testing.B) {
			wasm := benchGuest(b, lang)
			idle := 200
			if lang == "go" {
				idle = 20
			}
			e := newEnv(b, envOpts{limits: kernel.Limits{ProcessesPerPackage: 1 << 20, ProcessesPerNode: 1 << 20}})
			m := e.compile(b, lang+".wasm", wasm)
			ctx := context.Background()
			n := 0
			spawn := func() kernel.ProcessId {
				n++
				id := pid(fmt.Sprintf("p%d", n))
				if err := e.k.Start(kernel.Spec{ID: id, Process: m.Process(ProcessOptions{})}); err != nil {
					b.Fatal(err)
				}
				if got := e.mustCall(b, id, "x"); got != "x" {
					b.Fatalf("first answer %q", got)
				}
				return id
			}
			spawn() // warm
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := spawn()
				// Remove: a killed top-level process would stay in the table.
				if err := e.k.Remove(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()

			// Memory held by idle processes: the Go heap the instances
			// hold, and the pages of their linear memories they touched
			// (memory_linux.go keeps linear memories in mappings of
			// their own, off the heap: resident set, not heap). The heap's
			// own pages are resident from the timed loop already, so the
			// resident set grows by the mappings' touched pages alone. The
			// pool of closed instances' memories is emptied first: idle
			// processes would take their resident pages from it.
			e.host.mems.drain()
			runtime.GC()
			heap0, rss0 := heapInuse(), residentBytes(b)
			for i := 0; i < idle; i++ {
				spawn()
			}
			runtime.GC()
			b.ReportMetric(float64(heapInuse()-heap0)/float64(idle), "heap-B/idle-proc")
			b.ReportMetric(float64(residentBytes(b)-rss0)/float64(idle), "rss-B/idle-proc")
		})
	}
}

// residentBytes is this process's resident set (/proc/self/statm).
func residentBytes(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		tb.Fatalf("/proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

func heapInuse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// BenchmarkHostCall: one call of a cheap host function (self_read with
// a zero-length buffer) from a C guest: Extism's dispatch, the CPU
// guard's bookkeeping and the bounds check.
func BenchmarkHostCall(b *testing.B) {
	for _, name := range []string{"guard", "noguard"} {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, envOpts{noGuard: name == "noguard"})
			m := e.compile(b, "guest.wasm", buildC(b, "guest"))
			id := e.start(b, "caller", m, false, ProcessOptions{})
			e.mustCall(b, id, "hostcalls 1000")
			b.ReportAllocs()
			b.ResetTimer()
			if got := e.mustCall(b, id, "hostcalls "+strconv.Itoa(b.N)); got != "done" {
				b.Fatal(got)
			}
		})
	}
}
