package p2p

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/wasm"
)

// benchServer and benchClient are the C bench guest's processes
// (wasm/testdata/bench.c): the server echoes each request's body; a
// client told "call ADDR N" sends N requests to ADDR with send_and_await
// and answers with the last response's body.
var (
	benchServer = kernel.ProcessId{Name: "server", Package: "bench", Publisher: "test"}
	benchClient = kernel.ProcessId{Name: "client", Package: "bench", Publisher: "test"}
)

// benchModule builds wasm/testdata/bench.c with clang (as make bench does
// for the wasm package's benchmarks) and compiles it on a new wasm host,
// closed when b ends.
func benchModule(b *testing.B) *wasm.Module {
	b.Helper()
	code := wasmtest.BuildC(b, "../wasm/testdata/bench.c")
	host, err := wasm.NewHost(context.Background(), wasm.Config{CacheDir: filepath.Join(b.TempDir(), "wazero")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := host.Close(context.Background()); err != nil {
			b.Errorf("close the wasm host: %v", err)
		}
	})
	mod, err := host.Compile("bench.wasm", code)
	if err != nil {
		b.Fatal(err)
	}
	return mod
}

// startGuest starts a process of mod on n with the network capability, as
// a manifest's request_networking grants it.
func startGuest(b *testing.B, n *testNode, mod *wasm.Module, id kernel.ProcessId, public bool) {
	b.Helper()
	if err := n.k.Start(kernel.Spec{
		ID:           id,
		Public:       public,
		Capabilities: []kernel.Capability{networkCap(n.k)},
		Process:      mod.Process(wasm.ProcessOptions{}),
	}); err != nil {
		b.Fatal(err)
	}
}

// guestCall tells client on n to send count requests to target and checks
// the last answer is the guest's "hello".
func guestCall(n *testNode, client kernel.ProcessId, target kernel.Address, count int) error {
	m, err := n.k.Send(context.Background(), &kernel.Request{
		Target:          n.k.Address(client),
		ExpectsResponse: time.Hour,
		Body:            []byte("call " + target.String() + " " + strconv.Itoa(count)),
	})
	if err != nil {
		return err
	}
	if string(m.Body) != "hello" {
		return fmt.Errorf("the client guest answered %q, want hello", m.Body)
	}
	return nil
}

// BenchmarkRemoteRoundTrip is a request from the C bench guest on node A
// to the C bench guest on node B (public, with the network capability;
// addressed by B's node id) and its response back, on loopback. The loop
// runs inside the client guest (send_and_await), so an op is one round
// trip. serial: one client; 64-in-flight: 64 client processes on A, each
// sending its share of b.N one after another. Over TCP (yamux), beside
// BenchmarkLibp2pFloor; the quic- ones over QUIC.
func BenchmarkRemoteRoundTrip(b *testing.B) {
	mod := benchModule(b)
	for _, tr := range []struct{ prefix, listen string }{{"", "/tcp/"}, {"quic-", "/quic-v1"}} {
		listen := tcpListen
		if tr.listen != "/tcp/" {
			listen = quicListen
		}
		a := startNode(b, func(c *Config) { c.Listen = listen })
		bn := startNode(b, func(c *Config) { c.Listen = listen }, noRateLimit)
		if _, err := a.Connect(context.Background(), bn.addr(b, tr.listen)); err != nil {
			b.Fatal(err)
		}
		startGuest(b, bn, mod, benchServer, true)
		target := bn.k.Address(benchServer)
		if !strings.HasPrefix(target.String(), bn.NodeID()+"@") {
			b.Fatalf("server address %s does not name B's node %s", target, bn.NodeID())
		}
		clients := make([]kernel.ProcessId, 64)
		for i := range clients {
			clients[i] = benchClient
			clients[i].Name += strconv.Itoa(i)
			startGuest(b, a, mod, clients[i], false)
		}
		if err := guestCall(a, clients[0], target, 1000); err != nil { // warm up
			b.Fatal(err)
		}
		for _, n := range []int{1, 64} {
			b.Run(tr.prefix+inFlightName(n), func(b *testing.B) {
				b.ReportAllocs()
				inFlight(b, n, func(w, n int) error { return guestCall(a, clients[w], target, n) })
			})
		}
	}
}

// BenchmarkConnectionSetup is a fresh node's first message to another:
// from Connect (dial, security handshake, muxer, identify) to the echo
// process's answer to the first request. direct: over TCP on loopback;
// relayed: to a node that listens nowhere and is reachable only through its
// reservation on a relay (circuit relay v2), dialed at its circuit address.
// Making the fresh node (key, kernel, host) and closing it are not timed.
func BenchmarkConnectionSetup(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		target := startNode(b)
		connectFresh(b, target.addr(b, "/tcp/"), target.echoAt())
	})
	b.Run("relayed", func(b *testing.B) {
		r := startNode(b, func(c *Config) { c.RelayService.Enabled = true })
		circuit := r.addr(b, "/tcp/") + "/p2p-circuit/p2p/"
		target := startNode(b, func(c *Config) { c.Listen = nil; c.StaticRelays = []string{r.addr(b, "/tcp/")} })
		circuit += target.NodeID()
		waitUntil(b, "the target to advertise its relayed address", func() bool {
			for _, s := range target.ListenAddrs() {
				if s == circuit {
					return true
				}
			}
			return false
		})
		connectFresh(b, circuit, target.echoAt())
	})
}

// connectFresh times, b.N times, a new node's Connect to addr and its first
// request to echo.
func connectFresh(b *testing.B, addr string, echo kernel.Address) {
	b.Helper()
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		sender, stop := freshNode(b)
		b.StartTimer()
		err := firstRequest(ctx, sender, addr, echo)
		b.StopTimer()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// firstRequest connects n to addr and sends "hello" to echo.
func firstRequest(ctx context.Context, n *testNode, addr string, echo kernel.Address) error {
	if _, err := n.Connect(ctx, addr); err != nil {
		return err
	}
	m, err := n.k.Send(ctx, &kernel.Request{Target: echo, ExpectsResponse: 10 * time.Second, Body: []byte("hello")})
	if err != nil {
		return err
	}
	if string(m.Body) != "hello" {
		return fmt.Errorf("first answer %q, want hello", m.Body)
	}
	return nil
}

// freshNode starts a node with a new key, kernel and data dir, and returns
// it with the function that closes it (a benchmark makes one per op, so
// they are closed as it goes, not when it ends).
func freshNode(b *testing.B) (*testNode, func()) {
	b.Helper()
	key, err := identity.Generate()
	if err != nil {
		b.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key})
	if err != nil {
		b.Fatal(err)
	}
	n, err := New(Config{Kernel: k, Key: key, DataDir: b.TempDir(), Listen: tcpListen})
	if err != nil {
		b.Fatal(err)
	}
	return &testNode{Node: n, k: k, key: key}, func() {
		if err := n.Close(); err != nil {
			b.Errorf("close node: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			b.Errorf("close kernel: %v", err)
		}
	}
}
