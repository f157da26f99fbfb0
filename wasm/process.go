package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"unsafe"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// ProcessOptions configures the processes made from a Module.
type ProcessOptions struct {
	// Resolve finds the module a spawn names: a Wasm file of the
	// spawning process's own package, by its path relative to the
	// package root. nil makes spawn fail with WEFT_ENOTFOUND.
	Resolve func(wasmPath string) (*Module, error)
}

// Process returns a kernel.Process that runs the module: each Run makes a
// fresh instance, calls its init once on the calling goroutine and throws
// the instance away when init returns or traps.
func (m *Module) Process(opts ProcessOptions) kernel.Process {
	return &process{mod: m, opts: opts}
}

type process struct {
	mod  *Module
	opts ProcessOptions
	res  *reservation // a spawned child's initial memory, reserved by its parent's spawn
}

type instKey struct{}

// guestKilled in inst.guestSince marks an instance the CPU guard killed.
const guestKilled = -1

// inst is one running instance: everything the host functions need,
// reachable from the call's context.
type inst struct {
	host *Host
	mod  *Module
	opts *ProcessOptions
	h    *kernel.Handle
	mem  api.Memory
	acct *account // what its linear memories are charged to

	// spawned holds the reservations of children it spawned that have not
	// run yet; Run cancels those left when the instance ends.
	spawned []*reservation

	// guestSince is the epoch at which the instance last entered guest
	// code, 0 while it is in host code (or not running), guestKilled once
	// the guard killed it. Host functions swap it to 0 on entry and set
	// it back on return.
	guestSince atomic.Int64

	cancel context.CancelFunc
	failed atomic.Pointer[error]

	// The current message: its encoding (message_read) and blob (blob_read).
	msg     []byte
	hasMsg  bool
	blob    *kernel.Blob
	am      abi.Message
	lastErr string

	req     kernel.Request
	resp    kernel.Response
	scratch []byte

	// One-entry caches of address text, both ways.
	tgtText string
	tgtAddr kernel.Address
	srcAddr kernel.Address
	srcText string
	dstAddr kernel.Address
	dstText string
	self    string

	state      []byte
	stateKnown bool // state/stateOK reflect the store
	stateOK    bool

	// The last store call's result, when it did not fit the guest's
	// buffer (store_result reads it); storeBuf is reused for results.
	storeRes []byte
	storeBuf []byte

	// deferred holds the requests the guest deferred and has not
	// answered, by the token defer returned (respond_deferred);
	// lastToken is the last token given, so that none is given twice in
	// the instance's life. Only the process's goroutine uses them. When
	// the instance ends they are dropped: the kernel owes the requests
	// left a killed error.
	deferred  map[int64]*kernel.Deferred
	lastToken int64
}

// kill stops the instance: it records why, and cancels the instance's
// context, which makes wazero stop the guest at its next check.
func (in *inst) kill(err error) {
	if in.failed.CompareAndSwap(nil, &err) {
		in.cancel()
	}
}

// Run runs one incarnation of the process.
//
// The instance's initial linear memory is reserved from the guest memory
// budgets first (for a spawned child's first incarnation, the parent's
// spawn reserved it); when it does not fit, Run fails at once, with the
// budget in its error, and the process's on_exit applies.
//
// The CPU guard watches the instance from before it is made: wazero runs
// the module's start function while instantiating it, and a guest may
// spin there, or in _initialize, as well as in init. A guard kill at any
// of these ends Run with the same error.
func (p *process) Run(ctx context.Context, h *kernel.Handle) error {
	m := p.mod
	host := m.host
	acct, err := host.budget.open(h.ID().PackageId(), m.initial, p.res)
	if err != nil {
		return fmt.Errorf("wasm: %s: cannot start: %w", m.name, err)
	}
	defer acct.close()
	in := &inst{host: host, mod: m, opts: &p.opts, h: h, acct: acct}
	defer in.cancelSpawned()
	runCtx := ctx
	ctx, in.cancel = context.WithCancel(ctx)
	defer in.cancel()

	maxLine := h.Limits().MaxLogLineBytes
	stdout := &lineWriter{h: h, level: slog.LevelInfo, max: maxLine}
	stderr := &lineWriter{h: h, level: slog.LevelWarn, max: maxLine}
	mc := wazero.NewModuleConfig().
		WithStdout(stdout).
		WithStderr(stderr).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)

	host.track(in)
	in.guestSince.Store(host.epoch.Load())
	err = p.run(ctx, in, mc)
	in.guestSince.Store(0)
	host.untrack(in)
	in.deferred = nil
	stdout.flush()
	stderr.flush()

	if f := in.failed.Load(); f != nil {
		return *f
	}
	if runCtx.Err() != nil {
		return nil // the kernel stopped it
	}
	return err
}

// run makes the instance, runs its _initialize and init, and throws it
// away. The caller has the CPU guard watch in, from before run is called
// until it returns; run stops the watch (guestSince 0) when init returns,
// so that the instance's closing is not counted.
func (p *process) run(ctx context.Context, in *inst, mc wazero.ModuleConfig) error {
	m := p.mod
	ictx, release := withLinearMemory(ctx, m.host.mems, in.acct)
	defer release() // last: frees what wazero did not
	plug, err := m.compiled.Instance(ictx, extism.PluginInstanceConfig{ModuleConfig: mc})
	in.acct.settle() // the initial memories are made: give back what they did not take
	if err != nil {
		return fmt.Errorf("wasm: %s: instantiate: %w", m.name, err)
	}
	defer plug.Close(context.Background())
	plug.SetLogger(func(extism.LogLevel, string) {})
	mod, err := pluginModule(plug, "mainModule")
	if err != nil {
		return fmt.Errorf("wasm: %s: %w", m.name, err)
	}
	kmod, err := pluginModule(plug, "extism")
	if err != nil {
		return fmt.Errorf("wasm: %s: %w", m.name, err)
	}
	in.mem = mod.Memory()
	if in.mem == nil {
		return fmt.Errorf("wasm: %s: instance has no memory", m.name)
	}

	rc, err := callInit(ctx, in, plug, kmod, mod, m.reactor)
	in.guestSince.Store(0)
	if err != nil {
		return fmt.Errorf("wasm: %s: init failed: %w", m.name, err)
	}
	if rc != 0 {
		return fmt.Errorf("wasm: %s: init returned %d", m.name, int32(rc))
	}
	return nil
}

// keepSpawned records the reservation of a child just spawned, and
// forgets those its children took over or that were given back.
func (in *inst) keepSpawned(r *reservation) {
	in.spawned = slices.DeleteFunc(in.spawned, func(r *reservation) bool { return !r.pending() })
	in.spawned = append(in.spawned, r)
}

// cancelSpawned gives back the reservations of children that have not
// run: they stop with this instance, before they run.
func (in *inst) cancelSpawned() {
	for _, r := range in.spawned {
		r.cancel()
	}
	in.spawned = nil
}

// pluginModule digs a module out of an Extism Plugin: "mainModule", the
// guest's, or "extism", Extism's own kernel module. Extism v1.7.1 gives
// host functions only its kernel's memory (CurrentPlugin.Memory), not
// the guest's, and keeps both modules in unexported fields. A field is
// found by name and checked by type (pluginField), so a future Extism
// without it fails here with an error, never with a wrong pointer.
func pluginModule(p *extism.Plugin, field string) (api.Module, error) {
	idx := moduleFields[field]
	if idx == nil {
		return nil, fmt.Errorf("this Extism version keeps no %s api.Module in Plugin; weft cannot run its instances", field)
	}
	mod := *(*api.Module)(pluginFieldAddr(p, idx))
	if mod == nil {
		return nil, fmt.Errorf("Extism plugin has no %s module", field)
	}
	return mod, nil
}

// The unexported fields of extism.Plugin the host reads, found once: the
// two modules, and the function Extism made to call a reactor's
// _initialize (extismReactorInit). nil where this Extism has no such
// field of that type.
var (
	moduleFields = map[string][]int{
		"mainModule": pluginField(reflect.TypeFor[api.Module](), "mainModule"),
		"extism":     pluginField(reflect.TypeFor[api.Module](), "extism"),
	}
	reactorInitField = pluginField(reflect.TypeFor[func(context.Context) error](), "guestRuntime", "mainRuntime", "init")
)

// pluginField returns the index path of the field of extism.Plugin named
// by path (through nested structs), or nil unless it exists with type t.
func pluginField(t reflect.Type, path ...string) []int {
	var idx []int
	cur := reflect.TypeFor[extism.Plugin]()
	for _, name := range path {
		if cur.Kind() != reflect.Struct {
			return nil
		}
		f, ok := cur.FieldByName(name)
		if !ok || len(f.Index) != 1 {
			return nil
		}
		idx = append(idx, f.Index[0])
		cur = f.Type
	}
	if cur != t {
		return nil
	}
	return idx
}

// pluginFieldAddr is the address of p's field at index path idx.
func pluginFieldAddr(p *extism.Plugin, idx []int) unsafe.Pointer {
	return unsafe.Pointer(reflect.ValueOf(p).Elem().FieldByIndex(idx).UnsafeAddr())
}

// callInit runs the guest: its _initialize when it exports one (a WASI
// reactor's, docs/abi.md), then init, whose i32 it returns. It calls the
// exports itself, with the context values Extism's host functions look
// for, rather than through Plugin.Call: Extism's call sets an input, then
// reads back an error and an output through its kernel module, each a
// lookup and a call that allocates, and writes into the kernel's memory:
// the largest part of a C process's spawn (docs/performance.md, "Wasm
// processes"), for an input and output the guest ABI never uses (the
// Extism input is empty, as it was). The instance is the context's last value, the first found: every
// host call looks it up.
func callInit(ctx context.Context, in *inst, plug *extism.Plugin, kmod, mod api.Module, reactor bool) (uint32, error) {
	ctx = context.WithValue(ctx, extism.PluginCtxKey("extism"), kmod)
	ctx = context.WithValue(ctx, extism.InputOffsetKey("inputOffset"), uint64(0))
	ctx = context.WithValue(ctx, extism.PluginCtxKey("plugin"), plug)
	ctx = context.WithValue(ctx, instKey{}, in)
	if reactor {
		initialize := extismReactorInit(plug)
		if initialize == nil {
			f := mod.ExportedFunction("_initialize")
			initialize = func(ctx context.Context) error { _, err := f.Call(ctx); return err }
		}
		if err := initialize(ctx); exitErr(err) != nil {
			return 1, fmt.Errorf("_initialize: %w", err)
		}
	}
	f := mod.ExportedFunction("init")
	if f == nil {
		return 1, errors.New("no init export") // checkModule refused it already
	}
	res, err := f.Call(ctx)
	var exit *sys.ExitError
	if errors.As(err, &exit) { // the guest called proc_exit
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	if len(res) == 0 {
		return 0, nil
	}
	return api.DecodeU32(res[0]), nil
}

// extismReactorInit returns the function Extism made, when it made the
// instance, to call the guest's _initialize (its guest runtime's init;
// Extism looks the export up for every instance and keeps it), or nil if
// this Extism keeps none where v1.7.1 does. Calling it rather than
// looking the export up again spares every spawn a lookup, which makes
// wazero allocate a 10 KiB machine stack: a fifth of what a C process's
// spawn allocates, and the collector's work with it (docs/performance.md).
// A module is a reactor here only if it exports _initialize, which Extism
// then prefers over every other start-up (reactorModule).
func extismReactorInit(p *extism.Plugin) func(context.Context) error {
	if reactorInitField == nil {
		return nil
	}
	return *(*func(context.Context) error)(pluginFieldAddr(p, reactorInitField))
}

// exitErr turns a proc_exit(0) during _initialize into no error.
func exitErr(err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		return nil
	}
	return err
}

// lineWriter turns a guest's standard stream into log lines.
type lineWriter struct {
	h     *kernel.Handle
	level slog.Level
	max   int
	buf   []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.buf = append(w.buf, b...)
			if len(w.buf) >= w.max {
				w.flush()
			}
			break
		}
		w.buf = append(w.buf, b[:i]...)
		b = b[i+1:]
		w.flush()
	}
	return n, nil
}

func (w *lineWriter) flush() {
	if len(w.buf) == 0 {
		return
	}
	w.h.Log(w.level, string(w.buf))
	w.buf = w.buf[:0]
}
