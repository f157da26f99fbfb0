package procstore_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// BenchmarkStore compares the store's operations made directly on the
// engine (engine), through this package from a native process (native),
// and from Wasm processes through the SDKs (go, c), all in one run: kv get
// and set of a 4 KiB value, and a 1 MiB file written whole and read
// whole. A Wasm probe repeats the operation b.N times inside one request
// (metadata N), so its figures are the store call's cost and not a
// message's. The goal (issue 5) is the Wasm paths within 2× the engine.
func BenchmarkStore(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 4<<10)
	file := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	const pkg, db, drive = "notes:examples", "bench", "bench"
	ops := []struct {
		name string
		op   abi.StoreOp
		size int
	}{
		{"kv-get-4k", abi.StoreOp{Op: abi.StoreKVGet, Name: db, Key: []byte("key")}, len(value)},
		{"kv-set-4k", abi.StoreOp{Op: abi.StoreKVSet, Name: db, Key: []byte("key"), Value: value}, len(value)},
		{"file-write-1m", abi.StoreOp{Op: abi.StoreFsWrite, Name: drive, Key: []byte("f"), Value: file}, len(file)},
		{"file-read-1m", abi.StoreOp{Op: abi.StoreFsRead, Name: drive, Key: []byte("f")}, len(file)},
	}

	b.Run("engine", func(b *testing.B) {
		e := newEnv(b, 0)
		if err := e.st.CreateDB(pkg, db); err != nil {
			b.Fatal(err)
		}
		if err := e.drives.Create(pkg, drive); err != nil {
			b.Fatal(err)
		}
		fns := map[string]func() error{
			"kv-get-4k":     func() error { _, _, err := e.st.KVGet(pkg, db, []byte("key")); return err },
			"kv-set-4k":     func() error { return e.st.KVSet(pkg, db, []byte("key"), value) },
			"file-write-1m": func() error { return e.drives.WriteFile(pkg, drive, "f", file) },
			"file-read-1m":  func() error { _, err := e.drives.ReadFile(pkg, drive, "f"); return err },
		}
		if err := fns["kv-set-4k"](); err != nil {
			b.Fatal(err)
		}
		if err := fns["file-write-1m"](); err != nil {
			b.Fatal(err)
		}
		for _, o := range ops {
			b.Run(o.name, func(b *testing.B) {
				b.SetBytes(int64(o.size))
				b.ReportAllocs()
				for b.Loop() {
					if err := fns[o.name](); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})

	b.Run("native", func(b *testing.B) {
		e := newEnv(b, 0)
		a := e.agent(b, "bench:notes:examples")
		e.mustCall(b, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: db})
		e.mustCall(b, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: drive})
		e.mustCall(b, a, ops[1].op)
		e.mustCall(b, a, ops[2].op)
		for _, o := range ops {
			b.Run(o.name, func(b *testing.B) {
				b.SetBytes(int64(o.size))
				b.ReportAllocs()
				var err error
				b.ResetTimer()
				a.do(func(h *kernel.Handle) {
					var out []byte
					for range b.N {
						if out, err = e.svc.Call(h, &o.op, out[:0]); err != nil {
							return
						}
					}
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	})

	for _, lang := range probes {
		b.Run(lang, func(b *testing.B) {
			e := newWasmEnv(b, 0)
			p := e.start(b, lang, "bench:notes:examples")
			e.must(b, p, abi.StoreOp{Op: abi.StoreKVOpen, Name: db})
			e.must(b, p, abi.StoreOp{Op: abi.StoreDrOpen, Name: drive})
			e.must(b, p, ops[1].op)
			e.must(b, p, ops[2].op)
			for _, o := range ops {
				b.Run(o.name, func(b *testing.B) {
					b.SetBytes(int64(o.size))
					b.ReportAllocs()
					b.ResetTimer()
					if _, err := e.do(b, p, o.op, b.N); err != nil {
						b.Fatalf("%s ×%s: %v", o.name, strconv.Itoa(b.N), err)
					}
				})
			}
		})
	}
}
