// Package wasm runs weft processes as WebAssembly instances through
// Extism (wazero underneath): it compiles modules once and caches the
// machine code on disk, makes one instance per process run, provides the
// guest ABI of docs/abi.md as host functions in import module "weft",
// keeps the sandbox closed, and enforces the memory and guest-CPU limits.
package wasm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
)

// Config wires a Host.
type Config struct {
	// CacheDir keeps wazero's compiled machine code between runs; empty
	// keeps it in memory only.
	CacheDir string
	// Limits: MemoryPerProcess, GuestMemoryPerPackage, GuestMemoryTotal,
	// GuestCPUTime and MaxModuleBytes apply here; zero fields take their
	// defaults.
	Limits kernel.Limits
	// Logger; nil discards.
	Logger *slog.Logger

	// noGuard turns off wazero's CloseOnContextDone, which the CPU guard
	// needs to stop a guest: benchmarks only, to measure the guard's cost.
	noGuard bool
}

// Host compiles modules and runs their processes. It is safe for
// concurrent use.
type Host struct {
	lim     kernel.Limits
	log     *slog.Logger
	noGuard bool
	store   atomic.Pointer[procstore.Service]
	cache   wazero.CompilationCache
	funcs   []extism.HostFunction
	mems    *memoryPool // linear memories of closed instances, for reuse
	budget  *memBudget  // linear memory held, against the guest memory budgets

	// epoch counts watchdog ticks; instances record it when they enter
	// guest code (see inst.guestSince).
	epoch     atomic.Int64
	tick      time.Duration
	killTicks int64

	mu      sync.Mutex
	modules map[[32]byte]*Module
	live    map[*inst]struct{}
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// wasiOutputEnv makes Extism send every guest's stdout and stderr to the
// node's own, bypassing the instance's configuration (and so the node's
// log and its rate limit).
const wasiOutputEnv = "EXTISM_ENABLE_WASI_OUTPUT"

// NewHost makes a Host. It refuses to start when EXTISM_ENABLE_WASI_OUTPUT
// is set: weft routes guest output to its log itself, and that variable
// would silently bypass it.
func NewHost(ctx context.Context, cfg Config) (*Host, error) {
	if _, ok := os.LookupEnv(wasiOutputEnv); ok {
		return nil, fmt.Errorf("wasm: %s is set; it would send guest output around the node's log: unset it", wasiOutputEnv)
	}
	lim := cfg.Limits.WithDefaults()
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("wasm: %w", err)
	}
	if lim.MemoryPerProcess < minMemory {
		return nil, fmt.Errorf("wasm: memory_per_process is %d bytes; at least %d are needed (the Extism kernel alone takes 1 MiB)", lim.MemoryPerProcess, minMemory)
	}
	for _, b := range []struct {
		key string
		v   int64
	}{{"guest_memory_per_package", lim.GuestMemoryPerPackage}, {"guest_memory_total", lim.GuestMemoryTotal}} {
		if b.v < minMemory {
			return nil, fmt.Errorf("wasm: %s is %d bytes; at least %d are needed to start one process (the Extism kernel alone takes 1 MiB)", b.key, b.v, minMemory)
		}
	}
	h := &Host{
		lim:     lim,
		log:     cfg.Logger,
		noGuard: cfg.noGuard,
		modules: make(map[[32]byte]*Module),
		live:    make(map[*inst]struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		mems:    newMemoryPool(),
		budget:  newMemBudget(lim),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache in %s: %w", cfg.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	h.funcs = hostFunctions()
	// The guard kills a guest that has been in guest code for killTicks
	// ticks: between GuestCPUTime and 1.25 × GuestCPUTime.
	h.killTicks = 4
	h.tick = lim.GuestCPUTime / time.Duration(h.killTicks)
	if h.tick < time.Millisecond {
		h.tick = time.Millisecond
	}
	h.epoch.Store(1)
	go h.watchdog()
	return h, nil
}

// minMemory is the least MemoryPerProcess a Host accepts: the Extism
// kernel's 1 MiB plus a little for the guest.
const minMemory = 2 << 20

// SetStore makes svc serve the store host call of every instance started
// from now on; until then a store call fails with WEFT_EINTERNAL ("this
// node has no store"). The store's service needs the kernel, which is
// made after the host, hence a setter.
func (h *Host) SetStore(svc *procstore.Service) { h.store.Store(svc) }

// Close stops the guard and frees every compiled module. Processes must
// have stopped (close the kernel first).
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	mods := make([]*Module, 0, len(h.modules))
	for _, m := range h.modules {
		mods = append(mods, m)
	}
	h.modules = nil
	h.mu.Unlock()
	close(h.stop)
	<-h.done
	var errs []error
	for _, m := range mods {
		if err := m.compiled.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("wasm: close %s: %w", m.name, err))
		}
	}
	if err := h.cache.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("wasm: close compilation cache: %w", err))
	}
	h.mems.close()
	return errors.Join(errs...)
}

// Module is a compiled module, shared by every process made from it.
type Module struct {
	host     *Host
	name     string
	compiled *extism.CompiledPlugin
	reactor  bool  // exports _initialize (a WASI reactor)
	initial  int64 // bytes of linear memory an instance starts with
}

// Name is the name the module was compiled under.
func (m *Module) Name() string { return m.name }

// Compile compiles a module, or returns the Module already compiled from
// the same bytes. name is for messages (usually the file's path in its
// package). It refuses a module over max_module_bytes, a malformed one,
// one that lacks the memory, init or weft_abi_vN exports, declares only
// ABI versions this node does not speak, or imports what the node does
// not provide to it (a function of a later ABI version than it declares
// included).
func (h *Host) Compile(name string, wasm []byte) (*Module, error) {
	if int64(len(wasm)) > h.lim.MaxModuleBytes {
		return nil, fmt.Errorf("wasm: %s: module is %d bytes, at most %d allowed (max_module_bytes)", name, len(wasm), h.lim.MaxModuleBytes)
	}
	info, err := inspect(wasm)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s: malformed module: %w", name, err)
	}
	if err := checkModule(info); err != nil {
		return nil, fmt.Errorf("wasm: %s: %w", name, err)
	}
	sum := sha256.Sum256(wasm)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, fmt.Errorf("wasm: %s: host closed", name)
	}
	if m := h.modules[sum]; m != nil {
		h.mu.Unlock()
		return m, nil
	}
	h.mu.Unlock()

	rc := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithCloseOnContextDone(!h.noGuard).
		WithMemoryLimitPages(uint32(h.lim.MemoryPerProcess / 65536))
	manifest := extism.Manifest{
		Wasm: []extism.Wasm{extism.WasmData{Data: wasm, Name: "main"}},
		// Closed: no allowed host, no config, variables hold nothing.
		AllowedHosts: nil,
		Memory:       &extism.ManifestMemory{MaxVarBytes: 0, MaxHttpResponseBytes: 0},
	}
	cp, err := extism.NewCompiledPlugin(context.Background(), manifest, extism.PluginConfig{
		RuntimeConfig: rc,
		EnableWasi:    true,
	}, h.funcs)
	if err != nil {
		return nil, fmt.Errorf("wasm: %s: compile: %w", name, err)
	}
	_, reactor := info.exports["_initialize"]
	m := &Module{host: h, name: name, compiled: cp, reactor: reactor, initial: initialMemory(wasm)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		_ = cp.Close(context.Background())
		return nil, fmt.Errorf("wasm: %s: host closed", name)
	}
	if old := h.modules[sum]; old != nil {
		_ = cp.Close(context.Background())
		return old, nil
	}
	h.modules[sum] = m
	return m, nil
}

func checkModule(info *moduleInfo) error {
	if len(info.versions) == 0 {
		return errors.New("exports no weft_abi_vN function: not a weft module")
	}
	// Versions are additions (abi.Version): the module gets the functions
	// of the newest version it declares that this node speaks.
	level := 0
	for _, v := range info.versions {
		if v <= abi.Version {
			level = max(level, v)
		}
	}
	if level == 0 {
		slices.Sort(info.versions)
		word := "version"
		if len(info.versions) > 1 {
			word = "versions"
		}
		return fmt.Errorf("declares ABI %s %s; this node speaks %s", word, versionList(info.versions), spokenVersions())
	}
	if ex, ok := info.exports["memory"]; !ok || ex.kind != kindMemory {
		return errors.New("exports no memory named \"memory\"")
	}
	ex, ok := info.exports["init"]
	if !ok || ex.kind != kindFunc {
		return errors.New("exports no function named \"init\"")
	}
	if !ex.typ.equal(nil, []byte{0x7f}) {
		return fmt.Errorf("init has type %s; want () -> (i32)", ex.typ)
	}
	if ex, ok := info.exports["_initialize"]; ok && (ex.kind != kindFunc || !ex.typ.equal(nil, nil)) {
		return fmt.Errorf("_initialize is not a function of type () -> (): a WASI reactor's takes and returns nothing")
	}
	return checkImports(info.imports, level)
}

// versionList is "1", "1 and 2", "1, 2 and 3", ….
func versionList(vs []int) string {
	s := strconv.Itoa(vs[0])
	for i, v := range vs[1:] {
		if i == len(vs)-2 {
			s += " and "
		} else {
			s += ", "
		}
		s += strconv.Itoa(v)
	}
	return s
}

// spokenVersions names the ABI versions this node speaks: every one from
// 1 to abi.Version.
func spokenVersions() string {
	vs := make([]int, abi.Version)
	for i := range vs {
		vs[i] = i + 1
	}
	if len(vs) == 1 {
		return "version 1"
	}
	return "versions " + versionList(vs)
}

// watchdog is the CPU guard: every tick it advances the epoch and kills
// each instance that entered guest code killTicks or more ticks ago and
// has not called into the node since.
func (h *Host) watchdog() {
	defer close(h.done)
	t := time.NewTicker(h.tick)
	defer t.Stop()
	var victims []*inst
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.mems.trim(now)
		}
		e := h.epoch.Add(1)
		victims = victims[:0]
		h.mu.Lock()
		for in := range h.live {
			s := in.guestSince.Load()
			if s > 0 && e-s > h.killTicks && in.guestSince.CompareAndSwap(s, guestKilled) {
				victims = append(victims, in)
			}
		}
		h.mu.Unlock()
		for _, in := range victims {
			in.kill(fmt.Errorf("wasm: %s: killed by the CPU guard: ran more than %v without calling into the node (guest_cpu_time)", in.mod.name, h.lim.GuestCPUTime))
		}
	}
}

func (h *Host) track(in *inst) {
	h.mu.Lock()
	h.live[in] = struct{}{}
	h.mu.Unlock()
}

func (h *Host) untrack(in *inst) {
	h.mu.Lock()
	delete(h.live, in)
	h.mu.Unlock()
}
