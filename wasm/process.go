package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"unsafe"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

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
}

// kill stops the instance: it records why, and cancels the instance's
// context, which makes wazero stop the guest at its next check.
func (in *inst) kill(err error) {
	if in.failed.CompareAndSwap(nil, &err) {
		in.cancel()
	}
}

// Run runs one incarnation of the process.
func (p *process) Run(ctx context.Context, h *kernel.Handle) error {
	m := p.mod
	host := m.host
	in := &inst{host: host, mod: m, opts: &p.opts, h: h}
	runCtx := ctx
	ctx, in.cancel = context.WithCancel(ctx)
	defer in.cancel()
	ctx = context.WithValue(ctx, instKey{}, in)

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
	plug, err := m.compiled.Instance(withLinearMemory(ctx), extism.PluginInstanceConfig{ModuleConfig: mc})
	if err != nil {
		return fmt.Errorf("wasm: %s: instantiate: %w", m.name, err)
	}
	defer plug.Close(context.Background())
	plug.SetLogger(func(extism.LogLevel, string) {})
	mod, err := mainModule(plug)
	if err != nil {
		return fmt.Errorf("wasm: %s: %w", m.name, err)
	}
	in.mem = mod.Memory()
	if in.mem == nil {
		return fmt.Errorf("wasm: %s: instance has no memory", m.name)
	}

	host.track(in)
	in.guestSince.Store(host.epoch.Load())
	rc, _, err := plug.CallWithContext(ctx, "init", nil)
	in.guestSince.Store(0)
	host.untrack(in)
	stdout.flush()
	stderr.flush()

	if f := in.failed.Load(); f != nil {
		return *f
	}
	if runCtx.Err() != nil {
		return nil // the kernel stopped it
	}
	if err != nil {
		return fmt.Errorf("wasm: %s: init failed: %w", m.name, err)
	}
	if rc != 0 {
		return fmt.Errorf("wasm: %s: init returned %d", m.name, int32(rc))
	}
	return nil
}

// mainModule digs the guest's own module out of an Extism Plugin.
// Extism v1.7.1 gives host functions only the memory of its own kernel
// (CurrentPlugin.Memory), not the guest's, and keeps the guest's module
// in the unexported field mainModule. The field is read by name and
// checked by type, so a future Extism without it fails here with an
// error, never with a wrong pointer.
func mainModule(p *extism.Plugin) (api.Module, error) {
	v := reflect.ValueOf(p).Elem()
	f := v.FieldByName("mainModule")
	if !f.IsValid() || f.Type() != reflect.TypeFor[api.Module]() {
		return nil, errors.New("this Extism version keeps no mainModule api.Module in Plugin; weft cannot reach the guest's memory")
	}
	mod := *(*api.Module)(unsafe.Pointer(f.UnsafeAddr()))
	if mod == nil {
		return nil, errors.New("Extism plugin has no main module")
	}
	return mod, nil
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
