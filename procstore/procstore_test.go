package procstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
)

// These tests call the service from native kernel processes (agents),
// the way the Wasm host calls it from a guest's goroutine; store_test.go
// in this package runs real Wasm guests through it.

type env struct {
	k      *kernel.Kernel
	st     *store.Store
	drives *store.Drives
	svc    *procstore.Service
}

func newEnv(tb testing.TB, quota int64) *env {
	tb.Helper()
	return newEnvLimits(tb, quota, kernel.Limits{})
}

func newEnvLimits(tb testing.TB, quota int64, lim kernel.Limits) *env {
	tb.Helper()
	key, err := identity.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	usage := store.NewUsage(quota)
	st, err := store.Open(filepath.Join(dir, "weft.db"), store.Options{Usage: usage})
	if err != nil {
		tb.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), usage)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st, Limits: lim})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			tb.Errorf("kernel close: %v", err)
		}
		drives.Close()
		st.Close()
	})
	return &env{k: k, st: st, drives: drives, svc: procstore.New(k, st, drives, nil)}
}

// agent is a native process that runs the functions it is given on its
// own goroutine, with its handle.
type agent struct {
	id   kernel.ProcessId
	jobs chan func(h *kernel.Handle)
}

func (e *env) agent(tb testing.TB, id string) *agent {
	tb.Helper()
	pid, err := kernel.ParseProcessId(id)
	if err != nil {
		tb.Fatal(err)
	}
	a := &agent{id: pid, jobs: make(chan func(h *kernel.Handle))}
	err = e.k.Start(kernel.Spec{ID: pid, Public: true, Persist: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case job := <-a.jobs:
				job(h)
			}
		}
	})})
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// do runs fn on the agent's goroutine and waits for it.
func (a *agent) do(fn func(h *kernel.Handle)) {
	done := make(chan struct{})
	a.jobs <- func(h *kernel.Handle) { fn(h); close(done) }
	<-done
}

// call performs op as the agent.
func (e *env) call(a *agent, op abi.StoreOp) (res []byte, err error) {
	a.do(func(h *kernel.Handle) { res, err = e.svc.Call(h, &op, nil) })
	return res, err
}

func (e *env) mustCall(tb testing.TB, a *agent, op abi.StoreOp) []byte {
	tb.Helper()
	res, err := e.call(a, op)
	if err != nil {
		tb.Fatalf("%s: %v", abi.StoreOpName(op.Op), err)
	}
	return res
}

func wantCode(tb testing.TB, err error, code int32, text string) {
	tb.Helper()
	if got := procstore.Code(err); got != code || !strings.Contains(fmt.Sprint(err), text) {
		tb.Fatalf("got %v (%s), want %s containing %q", err, abi.ErrorName(got), abi.ErrorName(code), text)
	}
}

func TestKVOperations(t *testing.T) {
	e := newEnv(t, 0)
	a := e.agent(t, "a:notes:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"}) // opening again is fine
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: []byte("k1"), Value: []byte("v1")})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVSet, Package: "notes:examples", Name: "index", Key: []byte("k2"), Value: []byte("v2")})
	if got := e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("k1")}); string(got) != "v1" {
		t.Fatalf("get k1 = %q", got)
	}
	_, err := e.call(a, abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("nope")})
	wantCode(t, err, abi.ENONE, "no such key")

	tx := abi.AppendKVTx(nil, []abi.KVTxOp{{Kind: abi.KVTxSet, Key: []byte("k3"), Value: []byte("v3")}, {Kind: abi.KVTxDelete, Key: []byte("k1")}})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVTx, Name: "index", Value: tx})
	pairs, more, err := abi.DecodeKVScan(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVScan, Name: "index", Key: []byte("k"), Length: 1}))
	if err != nil || len(pairs) != 1 || string(pairs[0].Key) != "k2" || !more {
		t.Fatalf("scan page 1: %v %q more=%v", err, pairs, more)
	}
	pairs, more, err = abi.DecodeKVScan(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVScan, Name: "index", Key: []byte("k"), Value: []byte("k2")}))
	if err != nil || len(pairs) != 1 || string(pairs[0].Key) != "k3" || string(pairs[0].Value) != "v3" || more {
		t.Fatalf("scan page 2: %v %q more=%v", err, pairs, more)
	}
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVDelete, Name: "index", Key: []byte("k2")})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "tags"})
	names, err := abi.DecodeNames(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVList}))
	if err != nil || strings.Join(names, ",") != "index,tags" {
		t.Fatalf("list: %v %v", names, err)
	}
	// A bad transaction changes nothing.
	bad := abi.AppendKVTx(nil, []abi.KVTxOp{{Kind: abi.KVTxSet, Key: []byte("k4"), Value: []byte("v")}, {Kind: abi.KVTxSet, Key: nil, Value: []byte("v")}})
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreKVTx, Name: "index", Value: bad})
	wantCode(t, err, abi.EINVAL, "key")
	if _, ok, _ := e.st.KVGet("notes:examples", "index", []byte("k4")); ok {
		t.Fatal("a refused transaction wrote k4")
	}
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreKVTx, Name: "index", Value: []byte{1, 2}})
	wantCode(t, err, abi.EINVAL, "kv tx")
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: []byte("big"), Value: make([]byte, store.MaxKVValueBytes+1)})
	wantCode(t, err, abi.ELIMIT, "too large")

	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVDrop, Name: "tags"})
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreKVGet, Name: "tags", Key: []byte("k")})
	wantCode(t, err, abi.EPERM, "kv:sys:weft")
}

func TestDriveOperations(t *testing.T) {
	e := newEnv(t, 0)
	a := e.agent(t, "a:notes:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
	w := func(flags uint8, path string, off uint64, data string) {
		t.Helper()
		e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsWrite, Flags: flags, Name: "notes", Key: []byte(path), Offset: off, Value: []byte(data)})
	}
	w(abi.StoreWhole, "d/a.md", 0, "hello")
	w(abi.StoreAppend, "d/a.md", 0, " world")
	w(abi.StoreAt, "d/a.md", 0, "J")
	if got := e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("d/a.md")}); string(got) != "Jello world" {
		t.Fatalf("read = %q", got)
	}
	if got := e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Name: "notes", Key: []byte("d/a.md"), Offset: 6, Length: 100}); string(got) != "world" {
		t.Fatalf("range read = %q", got)
	}
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsMkdir, Name: "notes", Key: []byte("x/y")})
	es, err := abi.DecodeDirEntries(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsList, Name: "notes", Key: []byte("")}))
	if err != nil || len(es) != 2 || es[0].Name != "d" || !es[0].Dir || es[1].Name != "x" {
		t.Fatalf("list root: %+v %v", es, err)
	}
	st, err := abi.DecodeDirEntry(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsStat, Name: "notes", Key: []byte("d/a.md")}))
	if err != nil || st.Name != "a.md" || st.Dir || st.Size != 11 || st.ModTime == 0 {
		t.Fatalf("stat: %+v %v", st, err)
	}
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRename, Name: "notes", Key: []byte("d/a.md"), Value: []byte("x/b.md")})
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("d/a.md")})
	wantCode(t, err, abi.ENOTFOUND, "")
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreFsRemove, Name: "notes", Key: []byte("x")})
	wantCode(t, err, abi.EEXIST, "")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRemove, Flags: abi.StoreRecursive, Name: "notes", Key: []byte("x")})
	// A leading slash is the drive's root, not the host's.
	w(abi.StoreWhole, "/etc/passwd", 0, "mine")
	if got := e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("etc/passwd")}); string(got) != "mine" {
		t.Fatalf("read /etc/passwd of the drive = %q", got)
	}
	for _, p := range []string{"../escape", "a/../../b", ".weft-tmp", "a\x00b", "\xff"} {
		_, err = e.call(a, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte(p), Value: []byte("x")})
		if procstore.Code(err) != abi.EINVAL {
			t.Errorf("write to %q: %v, want WEFT_EINVAL", p, err)
		}
	}
	names, err := abi.DecodeNames(e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrList}))
	if err != nil || len(names) != 1 || names[0] != "notes" {
		t.Fatalf("drive list: %v %v", names, err)
	}
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrRemove, Name: "notes"})
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("d/a.md")})
	wantCode(t, err, abi.EPERM, "vfs:sys:weft")
}

// TestCapabilities: open gives the package's processes read and write;
// others are refused until they are granted one (by the operator, or by a
// holder attaching it to a message); revoking and dropping take it away.
func TestCapabilities(t *testing.T) {
	e := newEnv(t, 0)
	a := e.agent(t, "a:notes:examples")
	b := e.agent(t, "b:notes:examples")
	c := e.agent(t, "c:other:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
	// b, of the same package, holds them without opening.
	e.mustCall(t, b, abi.StoreOp{Op: abi.StoreKVSet, Package: "notes:examples", Name: "index", Key: []byte("k"), Value: []byte("v")})
	e.mustCall(t, b, abi.StoreOp{Op: abi.StoreFsWrite, Package: "notes:examples", Name: "notes", Key: []byte("f"), Value: []byte("data")})

	get := abi.StoreOp{Op: abi.StoreKVGet, Package: "notes:examples", Name: "index", Key: []byte("k")}
	set := abi.StoreOp{Op: abi.StoreKVSet, Package: "notes:examples", Name: "index", Key: []byte("k"), Value: []byte("c was here")}
	read := abi.StoreOp{Op: abi.StoreFsRead, Package: "notes:examples", Name: "notes", Key: []byte("f")}
	list := abi.StoreOp{Op: abi.StoreFsList, Package: "notes:examples", Name: "notes"}
	write := abi.StoreOp{Op: abi.StoreFsWrite, Package: "notes:examples", Name: "notes", Key: []byte("f"), Value: []byte("c was here")}
	for _, op := range []abi.StoreOp{get, set, read, list, write,
		{Op: abi.StoreKVOpen, Package: "notes:examples", Name: "index"},
		{Op: abi.StoreKVDrop, Package: "notes:examples", Name: "index"},
		{Op: abi.StoreDrRemove, Package: "notes:examples", Name: "notes"},
		{Op: abi.StoreKVList, Package: "notes:examples"},
	} {
		_, err := e.call(c, op)
		wantCode(t, err, abi.EPERM, "")
	}
	// c's own database of the same name is another database.
	e.mustCall(t, c, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	_, err := e.call(c, get)
	wantCode(t, err, abi.EPERM, `"kind":"read","package":"notes:examples"`)

	// The operator grants read: c reads, still cannot write.
	node := e.k.NodeID()
	if err := e.k.Grant(procstore.KVCapability(node, "notes:examples", "index", procstore.Read), c.id); err != nil {
		t.Fatal(err)
	}
	if got := e.mustCall(t, c, get); string(got) != "v" {
		t.Fatalf("granted get = %q", got)
	}
	_, err = e.call(c, set)
	wantCode(t, err, abi.EPERM, `"kind":"write"`)
	if err := e.k.Revoke(procstore.KVCapability(node, "notes:examples", "index", procstore.Read)); err != nil {
		t.Fatal(err)
	}
	_, err = e.call(c, get)
	wantCode(t, err, abi.EPERM, "")
	// a reopens to get its own copies back after the revoke.
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})

	// a attaches its drive read capability to a request to c: c can read
	// the drive, not write it.
	a.do(func(h *kernel.Handle) {
		_, err = h.Send(&kernel.Request{Target: e.k.Address(c.id), Capabilities: []kernel.Capability{procstore.DriveCapability("our", "notes:examples", "notes", procstore.Read)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The send gave c the capability before it returned.
	if got := e.mustCall(t, c, read); string(got) != "data" {
		t.Fatalf("read after attach = %q", got)
	}
	e.mustCall(t, c, list)
	_, err = e.call(c, write)
	wantCode(t, err, abi.EPERM, "")

	// Dropping the drive revokes every copy: recreated, it starts fresh.
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrRemove, Name: "notes"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
	_, err = e.call(c, list)
	wantCode(t, err, abi.EPERM, "")
	caps, err := e.k.CapabilitiesOf(c.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range caps {
		if sc.Issuer.Process == procstore.VFSIssuer {
			t.Fatalf("c still holds %s after the drive was removed", sc.Capability)
		}
	}
	// The operator's revoke of read took b's copy too; its write stays.
	bc, _ := e.k.CapabilitiesOf(b.id)
	var n int
	for _, sc := range bc {
		if sc.Issuer.Process == procstore.KVIssuer {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("b holds %d database capabilities, want 1 (write): %v", n, bc)
	}
}

func TestCapabilityParamsAreCanonical(t *testing.T) {
	for _, c := range []kernel.Capability{
		procstore.KVCapability("n", "notes:examples", "index", procstore.Read),
		procstore.DriveCapability("n", "notes:examples", "notes", procstore.Write),
		procstore.KVCapability("n", "we\"ird\\pkg\n", "é", procstore.Read),
	} {
		canon, err := kernel.CanonicalParams(c.Params, 0)
		if err != nil || canon != c.Params {
			t.Errorf("%s: canonical form %q, err %v", c.Params, canon, err)
		}
	}
	if got := procstore.DriveCapability("n", "notes:examples", "notes", procstore.Read).Params; got != `{"drive":"/notes:examples/notes","kind":"read"}` {
		t.Fatalf("drive params %s", got)
	}
}

func TestBadOps(t *testing.T) {
	e := newEnv(t, 0)
	a := e.agent(t, "a:notes:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
	for _, c := range []struct {
		op   abi.StoreOp
		code int32
		text string
	}{
		{abi.StoreOp{Op: 0}, abi.EINVAL, "unknown op 0"},
		{abi.StoreOp{Op: 99}, abi.EINVAL, "unknown op 99"},
		{abi.StoreOp{Op: abi.StoreKVGet, Flags: 1, Name: "index", Key: []byte("k")}, abi.EINVAL, "flags 1"},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: []byte("k"), Value: []byte("v")}, abi.EINVAL, "value must be empty"},
		{abi.StoreOp{Op: abi.StoreKVOpen, Name: "index", Key: []byte("k")}, abi.EINVAL, "key must be empty"},
		{abi.StoreOp{Op: abi.StoreKVList, Name: "index"}, abi.EINVAL, "name must be empty"},
		{abi.StoreOp{Op: abi.StoreFsWrite, Flags: 3, Name: "notes", Key: []byte("f")}, abi.EINVAL, "flags 3"},
		{abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("f"), Offset: 4}, abi.EINVAL, "offset must be 0"},
		{abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("f"), Length: 4}, abi.EINVAL, "length must be 0"},
		{abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Name: "notes", Key: []byte("f"), Length: 1 << 40}, abi.EINVAL, "out of range"},
		{abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAt, Name: "notes", Key: []byte("f"), Offset: 1 << 63}, abi.EINVAL, "out of range"},
		{abi.StoreOp{Op: abi.StoreKVOpen, Name: "Bad Name"}, abi.EINVAL, "invalid name"},
		{abi.StoreOp{Op: abi.StoreDrOpen, Name: "../x"}, abi.EINVAL, "invalid name"},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: nil}, abi.EINVAL, "invalid key"},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "index", Key: make([]byte, store.MaxKeyBytes+1)}, abi.EINVAL, "invalid key"},
		{abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("missing")}, abi.ENOTFOUND, ""},
		{abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Name: "notes", Key: []byte("f"), Length: store.MaxDriveWriteBytes + 1}, abi.ELIMIT, ""},
	} {
		_, err := e.call(a, c.op)
		if got := procstore.Code(err); got != c.code || !strings.Contains(fmt.Sprint(err), c.text) {
			t.Errorf("%+v: got %v (%s), want %s containing %q", c.op, err, abi.ErrorName(got), abi.ErrorName(c.code), c.text)
		}
	}
}

// TestQuota: a write past the package's quota fails with WEFT_ELIMIT and
// leaves the earlier data as it was.
func TestQuota(t *testing.T) {
	e := newEnv(t, 64<<10)
	a := e.agent(t, "a:notes:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"})
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("f"), Value: bytes.Repeat([]byte("a"), 40<<10)})
	_, err := e.call(a, abi.StoreOp{Op: abi.StoreFsWrite, Name: "notes", Key: []byte("f"), Value: bytes.Repeat([]byte("b"), 70<<10)})
	wantCode(t, err, abi.ELIMIT, "quota")
	_, err = e.call(a, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: []byte("k"), Value: make([]byte, 30<<10)})
	wantCode(t, err, abi.ELIMIT, "quota")
	got := e.mustCall(t, a, abi.StoreOp{Op: abi.StoreFsRead, Name: "notes", Key: []byte("f")})
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 40<<10)) {
		t.Fatal("a refused write changed the file")
	}
}

// TestConcurrentWriters: many processes write one database at once.
func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t, 0)
	const procs, writes = 8, 20
	agents := make([]*agent, procs)
	for i := range agents {
		agents[i] = e.agent(t, fmt.Sprintf("w%d:notes:examples", i))
	}
	e.mustCall(t, agents[0], abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	var wg sync.WaitGroup
	errs := make(chan error, procs*writes)
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range writes {
				key := fmt.Appendf(nil, "p%d-%02d", i, j)
				if _, err := e.call(a, abi.StoreOp{Op: abi.StoreKVSet, Name: "index", Key: key, Value: key}); err != nil {
					errs <- err
				}
				if j%5 == 4 {
					tx := abi.AppendKVTx(nil, []abi.KVTxOp{{Kind: abi.KVTxDelete, Key: key}, {Kind: abi.KVTxSet, Key: append(key, 'x'), Value: key}})
					if _, err := e.call(a, abi.StoreOp{Op: abi.StoreKVTx, Name: "index", Value: tx}); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	pairs, _, err := e.st.KVScan("notes:examples", "index", nil, nil, store.MaxKVScanPairs)
	if err != nil || len(pairs) != procs*writes {
		t.Fatalf("%d pairs (err %v), want %d", len(pairs), err, procs*writes)
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int32
	}{
		{nil, 0},
		{procstore.ErrNoKey, abi.ENONE},
		{procstore.ErrNoCapability, abi.EPERM},
		{store.ErrNoDB, abi.ENOTFOUND},
		{store.ErrQuota, abi.ELIMIT},
		{store.ErrTxTooLarge, abi.ELIMIT},
		{store.ErrBadPath, abi.EINVAL},
		{store.ErrClosed, abi.ESTOPPED},
		{errors.New("disk on fire"), abi.EINTERNAL},
	} {
		if got := procstore.Code(fmt.Errorf("wrapped: %w", c.err)); c.err != nil && got != c.code {
			t.Errorf("%v: %s, want %s", c.err, abi.ErrorName(got), abi.ErrorName(c.code))
		}
	}
}
