package wasm

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkBareRoundTrip is the yardstick of the round-trip goal (issue
// 3): two bare wazero instances — no Extism, no kernel, no ABI — ping-pong
// through a host function and a goroutine hand-off over unbuffered
// channels. One op is one round trip: A's hop wakes B and waits, B's hop
// returns, B calls hop again, which wakes A. The guest is testdata/bare.wat.
// -guard turns on wazero's CloseOnContextDone, as weft's CPU guard does.
func BenchmarkBareRoundTrip(b *testing.B) {
	for _, name := range []string{"noguard", "guard"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(name == "guard"))
			defer rt.Close(ctx)
			type side struct{ in, out chan struct{} }
			type sideKey struct{}
			_, err := rt.NewHostModuleBuilder("env").NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, _ api.Module, _ []uint64) {
					s := ctx.Value(sideKey{}).(*side)
					s.out <- struct{}{}
					<-s.in
				}), nil, nil).Export("hop").Instantiate(ctx)
			if err != nil {
				b.Fatal(err)
			}
			compiled, err := rt.CompileModule(ctx, buildWAT(b, "bare"))
			if err != nil {
				b.Fatal(err)
			}
			ab, ba := make(chan struct{}), make(chan struct{})
			instance := func(name string, s *side) (api.Function, context.Context) {
				m, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(name))
				if err != nil {
					b.Fatal(err)
				}
				return m.ExportedFunction("run"), context.WithValue(ctx, sideKey{}, s)
			}
			runA, ctxA := instance("a", &side{out: ab, in: ba})
			runB, ctxB := instance("b", &side{out: ba, in: ab})
			errB := make(chan error, 1)
			// B takes A's first request, answers and takes the next one
			// N-1 times from inside its guest, and answers the last.
			go func() {
				<-ab
				_, err := runB.Call(ctxB, uint64(b.N-1))
				ba <- struct{}{}
				errB <- err
			}()
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := runA.Call(ctxA, uint64(b.N)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := <-errB; err != nil {
				b.Fatal(err)
			}
		})
	}
}
