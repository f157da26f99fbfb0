package procstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/wasm"
)

// The store through real Wasm: testdata/goprobe (the Go SDK's typed API)
// and testdata/cprobe.c (sdk/c/weft.h's) perform the store op a request
// carries and answer with its result. Both speak one protocol:
//
//	request body empty            → answer "", metadata "ok" (a way to hand the probe capabilities)
//	request body = a store op     → do it (metadata N: N times), answer its result, metadata "ok"
//	                                 or metadata "error CODE DETAIL"

// probes names the guests; each builds once per test binary.
var probes = []string{"go", "c"}

var probeBuild struct {
	mu   sync.Mutex
	wasm map[string][]byte
}

// repoRoot is the module root, one directory up.
func repoRoot(tb testing.TB) string {
	root, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// probeWasm builds the probe in language lang (cached on disk under
// os.TempDir by the hash of its sources, like the wasm package's test
// guests).
func probeWasm(tb testing.TB, lang string) []byte {
	tb.Helper()
	probeBuild.mu.Lock()
	defer probeBuild.mu.Unlock()
	if b := probeBuild.wasm[lang]; b != nil {
		return b
	}
	root := repoRoot(tb)
	var srcs []string
	var cmd *exec.Cmd
	out := filepath.Join(os.TempDir(), "weft-procstore-test")
	if err := os.MkdirAll(out, 0o755); err != nil {
		tb.Fatal(err)
	}
	switch lang {
	case "go":
		for _, g := range []string{"abi/*.go", "sdk/go/weft/*.go", "procstore/testdata/goprobe/*.go"} {
			m, _ := filepath.Glob(filepath.Join(root, g))
			srcs = append(srcs, m...)
		}
		goTool := os.Getenv("GO")
		if goTool == "" {
			goTool = "go"
		}
		cmd = exec.Command(goTool, "build", "-buildmode=c-shared", "-o", "OUT", "./procstore/testdata/goprobe")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	case "c":
		clang := os.Getenv("CLANG")
		if clang == "" {
			clang = "clang"
		}
		if _, err := exec.LookPath(clang); err != nil {
			tb.Fatalf("%s is not installed: run `make tools`", clang)
		}
		srcs = []string{filepath.Join(root, "sdk/c/weft.h"), filepath.Join(root, "procstore/testdata/cprobe.c")}
		cmd = exec.Command(clang, "--target=wasm32-wasi", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
			"-mbulk-memory", "-mexec-model=reactor", "-Wl,--strip-all", "-I", filepath.Join(root, "sdk/c"), "-o", "OUT", "procstore/testdata/cprobe.c")
	}
	h := sha256.New()
	h.Write([]byte(runtime.Version() + strings.Join(cmd.Args, " ")))
	for _, f := range srcs {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	file := filepath.Join(out, lang+"probe-"+hex.EncodeToString(h.Sum(nil))[:24]+".wasm")
	if b, err := os.ReadFile(file); err == nil {
		return b
	}
	tmp := file + ".tmp"
	cmd.Args[slicesIndex(cmd.Args, "OUT")] = tmp
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the %s probe: %v\n%s", lang, err, msg)
	}
	if err := os.Rename(tmp, file); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	if probeBuild.wasm == nil {
		probeBuild.wasm = make(map[string][]byte)
	}
	probeBuild.wasm[lang] = b
	return b
}

func slicesIndex(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	panic("no " + v)
}

// wasmEnv is env with a Wasm host serving the store.
type wasmEnv struct {
	*env
	host *wasm.Host
}

func newWasmEnv(tb testing.TB, quota int64) *wasmEnv {
	tb.Helper()
	e := newEnvLimits(tb, quota, kernel.Limits{MaxBodyBytes: 4 << 20})
	host, err := wasm.NewHost(context.Background(), wasm.Config{
		CacheDir: filepath.Join(os.TempDir(), "weft-procstore-test", "wazero"),
		Limits:   kernel.Limits{MaxBodyBytes: 4 << 20},
	})
	if err != nil {
		tb.Fatal(err)
	}
	host.SetStore(e.svc)
	// Registered after newEnv's, so it runs first: processes stop before
	// the host closes.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.k.Close(ctx); err != nil {
			tb.Errorf("kernel close: %v", err)
		}
		if err := host.Close(ctx); err != nil {
			tb.Errorf("host close: %v", err)
		}
	})
	return &wasmEnv{env: e, host: host}
}

// start runs probe lang as process id.
func (e *wasmEnv) start(tb testing.TB, lang, id string) kernel.ProcessId {
	tb.Helper()
	mod, err := e.host.Compile(lang+"probe", probeWasm(tb, lang))
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := kernel.ParseProcessId(id)
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.k.Start(kernel.Spec{ID: pid, Public: true, Process: mod.Process(wasm.ProcessOptions{})}); err != nil {
		tb.Fatal(err)
	}
	return pid
}

// probeError is a failure the probe reported.
type probeError struct {
	code   int32
	detail string
}

func (e *probeError) Error() string { return abi.ErrorName(e.code) + ": " + e.detail }

// do sends op to the probe (n times when n > 1) and returns the result.
func (e *wasmEnv) do(tb testing.TB, probe kernel.ProcessId, op abi.StoreOp, n int) ([]byte, error) {
	tb.Helper()
	meta := ""
	if n > 1 {
		meta = strconv.Itoa(n)
	}
	ans, err := e.k.Send(context.Background(), &kernel.Request{
		Target:          e.k.Address(probe),
		ExpectsResponse: time.Minute,
		Body:            abi.AppendStoreOp(nil, &op),
		Metadata:        meta,
	})
	if err != nil {
		tb.Fatalf("send %s to %s: %v", abi.StoreOpName(op.Op), probe, err)
	}
	if ans.Metadata == "ok" {
		return ans.Body, nil
	}
	code, detail, ok := strings.Cut(strings.TrimPrefix(ans.Metadata, "error "), " ")
	c, cerr := strconv.Atoi(code)
	if !strings.HasPrefix(ans.Metadata, "error ") || !ok || cerr != nil {
		tb.Fatalf("%s: the probe answered metadata %q", probe, ans.Metadata)
	}
	return nil, &probeError{int32(c), detail}
}

func (e *wasmEnv) must(tb testing.TB, probe kernel.ProcessId, op abi.StoreOp) []byte {
	tb.Helper()
	res, err := e.do(tb, probe, op, 1)
	if err != nil {
		tb.Fatalf("%s: %s: %v", probe, abi.StoreOpName(op.Op), err)
	}
	return res
}

func wantProbeCode(tb testing.TB, err error, code int32, text string) {
	tb.Helper()
	pe, ok := err.(*probeError)
	if !ok || pe.code != code || !strings.Contains(pe.detail, text) {
		tb.Fatalf("got %v, want %s containing %q", err, abi.ErrorName(code), text)
	}
}

// TestProbes runs every store operation from Wasm, in Go and in C.
func TestProbes(t *testing.T) {
	for _, lang := range probes {
		t.Run(lang, func(t *testing.T) {
			e := newWasmEnv(t, 0)
			p := e.start(t, lang, "probe:notes:examples")
			other := e.start(t, lang, "probe:other:examples")

			e.must(t, p, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
			e.must(t, p, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: []byte("a"), Value: []byte("1")})
			e.must(t, p, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: []byte("b"), Value: bytes.Repeat([]byte("v"), 300<<10)})
			if got := e.must(t, p, abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("a")}); string(got) != "1" {
				t.Fatalf("get a = %q", got)
			}
			// Larger than any first buffer: the store_result path.
			if got := e.must(t, p, abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("b")}); len(got) != 300<<10 {
				t.Fatalf("get b: %d bytes", len(got))
			}
			_, err := e.do(t, p, abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("zz")}, 1)
			wantProbeCode(t, err, abi.ENONE, "no such key")
			tx := abi.AppendKVTx(nil, []abi.KVTxOp{{Kind: abi.KVTxDelete, Key: []byte("b")}, {Kind: abi.KVTxSet, Key: []byte("c"), Value: []byte("3")}})
			e.must(t, p, abi.StoreOp{Op: abi.StoreKVTx, Name: "index", Value: tx})
			pairs, more, err := abi.DecodeKVScan(e.must(t, p, abi.StoreOp{Op: abi.StoreKVScan, Name: "index"}))
			if err != nil || more || len(pairs) != 2 || string(pairs[0].Key) != "a" || string(pairs[1].Value) != "3" {
				t.Fatalf("scan: %q more=%v err=%v", pairs, more, err)
			}
			e.must(t, p, abi.StoreOp{Op: abi.StoreKVDelete, Name: "index", Key: []byte("a")})
			names, err := abi.DecodeNames(e.must(t, p, abi.StoreOp{Op: abi.StoreKVList}))
			if err != nil || len(names) != 1 || names[0] != "index" {
				t.Fatalf("kv list: %v %v", names, err)
			}

			e.must(t, p, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("dir/big"), Value: big})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAppend, Name: "notes", Key: []byte("dir/big"), Value: []byte("!")})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAt, Name: "notes", Key: []byte("dir/big"), Offset: 1, Value: []byte("X")})
			got := e.must(t, p, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("dir/big")})
			if len(got) != len(big)+1 || got[1] != 'X' || got[len(got)-1] != '!' {
				t.Fatalf("read back %d bytes", len(got))
			}
			if got := e.must(t, p, abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Name: "notes", Key: []byte("dir/big"), Offset: 0, Length: 3}); string(got) != "0X2" {
				t.Fatalf("range = %q", got)
			}
			es, err := abi.DecodeDirEntries(e.must(t, p, abi.StoreOp{Op: abi.StoreFsList, Name: "notes", Key: []byte("dir")}))
			if err != nil || len(es) != 1 || es[0].Name != "big" || es[0].Size != uint64(len(big)+1) {
				t.Fatalf("dir list: %+v %v", es, err)
			}
			ent, err := abi.DecodeDirEntry(e.must(t, p, abi.StoreOp{Op: abi.StoreFsStat, Name: "notes", Key: []byte("dir")}))
			if err != nil || !ent.Dir || ent.Name != "dir" {
				t.Fatalf("stat: %+v %v", ent, err)
			}
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsMkdir, Name: "notes", Key: []byte("m/n")})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsRename, Name: "notes", Key: []byte("dir/big"), Value: []byte("m/n/big")})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsRemove, Name: "notes", Key: []byte("dir")})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsRemove, Flags: abi.StoreRecursive, Name: "notes", Key: []byte("m")})
			_, err = e.do(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("../../x"), Value: []byte("x")}, 1)
			wantProbeCode(t, err, abi.EINVAL, "")
			dn, err := abi.DecodeNames(e.must(t, p, abi.StoreOp{Op: abi.StoreDrList}))
			if err != nil || len(dn) != 1 || dn[0] != "notes" {
				t.Fatalf("drive list: %v %v", dn, err)
			}
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("f"), Value: []byte("data")})

			// Another package's probe is refused until granted, then can
			// read but not write.
			get := abi.StoreOp{Op: abi.StoreKVGet, Package: "notes:examples", Name: "index", Key: []byte("c")}
			read := abi.StoreOp{Op: abi.StoreFsRead, Package: "notes:examples", Name: "notes", Key: []byte("f")}
			_, err = e.do(t, other, get, 1)
			wantProbeCode(t, err, abi.EPERM, "kv:sys:weft")
			_, err = e.do(t, other, read, 1)
			wantProbeCode(t, err, abi.EPERM, "vfs:sys:weft")
			node := e.k.NodeID()
			// Handed over attached to a message, as a holder would.
			_, err = e.k.Send(context.Background(), &kernel.Request{Target: e.k.Address(other), ExpectsResponse: time.Minute,
				Capabilities: []kernel.Capability{procstore.KVCapability(node, "notes:examples", "index", procstore.Read), procstore.DriveCapability(node, "notes:examples", "notes", procstore.Read)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := e.must(t, other, get); string(got) != "3" {
				t.Fatalf("granted get = %q", got)
			}
			if got := e.must(t, other, read); string(got) != "data" {
				t.Fatalf("granted read = %q", got)
			}
			_, err = e.do(t, other, abi.StoreOp{Op: abi.StoreKVSet, Package: "notes:examples", Name: "index", Key: []byte("c"), Value: []byte("x")}, 1)
			wantProbeCode(t, err, abi.EPERM, `"kind":"write"`)
			_, err = e.do(t, other, abi.StoreOp{Op: abi.StoreKVDrop, Package: "notes:examples", Name: "index"}, 1)
			wantProbeCode(t, err, abi.EPERM, "own package")
			// Garbage in the op is refused by the node, not a crash.
			_, err = e.do(t, p, abi.StoreOp{Op: 77}, 1)
			wantProbeCode(t, err, abi.EINVAL, "unknown op")

			e.must(t, p, abi.StoreOp{Op: abi.StoreKVDrop, Name: "index"})
			_, err = e.do(t, other, get, 1)
			wantProbeCode(t, err, abi.EPERM, "")
			if info, _ := e.k.Process(p); info.State != kernel.StateRunning {
				t.Fatalf("probe %s is %v", p, info.State)
			}
		})
	}
}

// TestProbeQuota: from Wasm, a write past the quota fails with
// WEFT_ELIMIT and the earlier data stays.
func TestProbeQuota(t *testing.T) {
	for _, lang := range probes {
		t.Run(lang, func(t *testing.T) {
			e := newWasmEnv(t, 100<<10)
			p := e.start(t, lang, "probe:notes:examples")
			e.must(t, p, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
			e.must(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("f"), Value: bytes.Repeat([]byte("a"), 60<<10)})
			_, err := e.do(t, p, abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAppend, Name: "notes", Key: []byte("f"), Value: bytes.Repeat([]byte("b"), 60<<10)}, 1)
			wantProbeCode(t, err, abi.ELIMIT, "quota")
			if got := e.must(t, p, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("f")}); !bytes.Equal(got, bytes.Repeat([]byte("a"), 60<<10)) {
				t.Fatalf("after the refused append the file has %d bytes", len(got))
			}
		})
	}
}
