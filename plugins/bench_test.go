package plugins_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/wasm"
	"google.golang.org/protobuf/types/known/durationpb"
)

// benchGuest compiles the lean C guest of wasm's benchmarks
// (wasm/testdata/bench.c): "call ADDR N" sends N requests with body
// "hello" to ADDR with send_and_await, one at a time.
func benchGuest(b *testing.B) []byte {
	return wasmtest.BuildC(b, "../wasm/testdata/bench.c")
}

// floorRequest is what a guest's "hello" request is on the wire.
func floorRequest() *driver.Request {
	return driver.NewRequest(&weftv1.Message{
		Id: 1, Source: "node@client:test:weft.dev", Target: "node@probe:drivers:weft",
		Kind: &weftv1.Message_Request{Request: &weftv1.Request{Body: []byte("hello"), ExpectsResponse: durationpb.New(5 * time.Second)}},
	})
}

// BenchmarkGoPluginFloor: one bare go-plugin gRPC unary call from this
// process to the probe driver (the same two binaries and the same
// message as BenchmarkDriverRoundTrip), one at a time ("1") and 64 in
// flight ("64"; ns/op is then per message).
func BenchmarkGoPluginFloor(b *testing.B) {
	d := &plugins.Decl{Name: "probe", Path: probeBin, SHA256: sum(b, probeBin)}
	conn, stop, err := plugins.LaunchForTest(d, 64<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	req := floorRequest()
	for _, inFlight := range []int{1, 64} {
		b.Run(strconv.Itoa(inFlight), func(b *testing.B) {
			b.ReportAllocs()
			var wg sync.WaitGroup
			per := b.N / inFlight
			b.ResetTimer()
			for w := range inFlight {
				n := per
				if w == 0 {
					n += b.N % inFlight
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range n {
						if r, err := conn.Handle(context.Background(), req); err != nil || string(r.Body) != "hello" {
							b.Errorf("handle: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkDriverRoundTrip: a request from a running Wasm C guest to the
// probe driver subprocess and its answer, through the kernel
// (send_and_await in the guest, deferred and answered by the driver's
// process), one at a time ("1"); and 64 guests calling at once ("64";
// ns/op is then per message, so msgs/s = 1e9 / ns/op).
func BenchmarkDriverRoundTrip(b *testing.B) {
	e := newEnv(b)
	host, err := wasm.NewHost(context.Background(), wasm.Config{CacheDir: filepath.Join(b.TempDir(), "cache")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { host.Close(context.Background()) })
	mod, err := host.Compile("bench.wasm", benchGuest(b))
	if err != nil {
		b.Fatal(err)
	}
	e.start(b, probe(b, "probe"))
	clients := make([]kernel.ProcessId, 64)
	for i := range clients {
		clients[i] = kernel.ProcessId{Name: "client" + strconv.Itoa(i), Package: "test", Publisher: "weft.dev"}
		if err := e.k.Start(kernel.Spec{ID: clients[i], Process: mod.Process(wasm.ProcessOptions{})}); err != nil {
			b.Fatal(err)
		}
	}
	call := func(b *testing.B, c kernel.ProcessId, n int) {
		m, err := e.k.Send(context.Background(), &kernel.Request{
			Target: e.k.Address(c), ExpectsResponse: time.Hour,
			Body: []byte("call our@probe:drivers:weft " + strconv.Itoa(n)),
		})
		if err != nil || string(m.Body) != "hello" {
			b.Errorf("call: %v %q", err, m.Body)
		}
	}
	call(b, clients[0], 1000) // warm up
	for _, inFlight := range []int{1, 64} {
		b.Run(strconv.Itoa(inFlight), func(b *testing.B) {
			b.ReportAllocs()
			per := b.N / inFlight
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range inFlight {
				n := per
				if w == 0 {
					n += b.N % inFlight
				}
				if n == 0 {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					call(b, clients[w], n)
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkDriverLaunch: from starting a declared driver to its first
// answered request (launch, checksum, handshake with mTLS, Start), and
// its stop.
func BenchmarkDriverLaunch(b *testing.B) {
	e := newEnv(b)
	for b.Loop() {
		m, err := plugins.NewManager(e.k, e.svc, nil, []plugins.Decl{probe(b, "probe")})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		if got, err := e.ask("probe", "echo", 10*time.Second); err != nil || got != "echo" {
			b.Fatalf("first request: %q, %v", got, err)
		}
		b.StopTimer()
		if err := m.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		if err := e.k.Remove(context.Background(), plugins.ID("probe")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
