package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weftos/weft/internal/echoed"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/wasm"
)

// Errors of Start, besides the kernel's and the host's.
var (
	// ErrNotRequested: the approval names a capability that the package
	// (that process of it) did not request.
	ErrNotRequested = errors.New("capability not requested by the package")
	// ErrGrantTarget: a grant names a process that is neither in the
	// package nor on the node.
	ErrGrantTarget = errors.New("grant target is neither in the package nor on the node")
)

// rollbackTimeout bounds how long Start waits for what it started to stop
// when it undoes a failed install.
const rollbackTimeout = 30 * time.Second

// Approval says which of the capabilities a package requests its user
// approved.
type Approval struct {
	// All approves every capability the package requests.
	All bool
	// Capabilities approves these, a subset of Package.Requested().
	Capabilities []packages.CapabilityRequest
}

// Data is the record a process is persisted with (kernel.Spec.Data), as
// JSON; see the package documentation.
type Data struct {
	Package  string `json:"package"`   // package:publisher
	Version  string `json:"version"`   // the metadata's version
	WasmPath string `json:"wasm_path"` // key in Package.Modules
}

// ParseData decodes a process's Data, refusing unknown fields and a
// missing field.
func ParseData(b []byte) (Data, error) {
	var d Data
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Data{}, fmt.Errorf("install: process data: %w", err)
	}
	if dec.More() {
		return Data{}, errors.New("install: process data: trailing data after the JSON object")
	}
	if _, err := kernel.ParsePackageId(d.Package); err != nil {
		return Data{}, fmt.Errorf("install: process data: package: %w", err)
	}
	if d.Version == "" {
		return Data{}, errors.New("install: process data: no version")
	}
	if _, err := packages.CleanWasmPath(d.WasmPath); err != nil {
		return Data{}, fmt.Errorf("install: process data: wasm_path: %w", err)
	}
	return d, nil
}

// Modules are a package's compiled modules, keyed by their path in
// Package.Modules.
type Modules map[string]*wasm.Module

// checkModules checks every module of pkg, in path order, against what
// the Wasm host accepts (wasm.CheckModule): packages.Load checked their
// exports but cannot know which imports the host provides. A module the
// host would refuse is the package's fault: a *packages.Error naming the
// module.
func checkModules(pkg *packages.Package) error {
	for _, p := range modulePaths(pkg) {
		if err := wasm.CheckModule(pkg.Modules[p]); err != nil {
			return &packages.Error{File: p, Err: err}
		}
	}
	return nil
}

func modulePaths(pkg *packages.Package) []string {
	paths := make([]string, 0, len(pkg.Modules))
	for p := range pkg.Modules {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// Compile compiles every module of pkg on h, each under the name
// "package:publisher/path". It fails, naming the module, if any does not
// compile; a module the host refuses for what it is (an import the node
// does not provide, say) is a *packages.Error, refused before any module
// compiles.
func Compile(h *wasm.Host, pkg *packages.Package) (Modules, error) {
	if err := checkModules(pkg); err != nil {
		return nil, fmt.Errorf("install %s: %w", pkg.ID, err)
	}
	paths := modulePaths(pkg)
	mods := make(Modules, len(paths))
	for _, p := range paths {
		m, err := h.Compile(pkg.ID.String()+"/"+p, pkg.Modules[p])
		if err != nil {
			return nil, fmt.Errorf("install %s: %w", pkg.ID, err)
		}
		mods[p] = m
	}
	return mods, nil
}

// Resolve finds the module a spawn names, by its path relative to the
// package root (normalized as packages.CleanWasmPath does: a leading "/"
// is optional). It is wasm.ProcessOptions.Resolve for the package's
// processes: they may spawn from their own package's modules only.
func (m Modules) Resolve(wasmPath string) (*wasm.Module, error) {
	rel, err := packages.CleanWasmPath(wasmPath)
	if err != nil {
		return nil, err
	}
	mod, ok := m[rel]
	if !ok {
		return nil, fmt.Errorf("no module %q in the package", echoed.Truncate(rel))
	}
	return mod, nil
}

// grant is one capability given on install.
type grant struct {
	c  kernel.Capability
	to kernel.ProcessId
}

// Start starts every process of pkg's manifest on k, made from pkg's
// modules compiled on h, with the capabilities ok approves, and applies
// the package's grants. It returns the processes it started, in manifest
// order. On error nothing it started remains. See the package
// documentation for the rules.
func Start(k *kernel.Kernel, h *wasm.Host, pkg *packages.Package, ok Approval) (started []kernel.ProcessId, err error) {
	approved, err := approvedCaps(k, pkg, ok)
	if err != nil {
		return nil, err
	}
	inPkg := make(map[kernel.ProcessId]bool, len(pkg.Processes))
	for _, p := range pkg.Processes {
		inPkg[p.ID] = true
	}
	// Everything that can be checked is checked before anything starts.
	var grants []grant
	for _, p := range pkg.Processes {
		if _, err := k.Process(p.ID); err == nil {
			return nil, fmt.Errorf("install %s: process %s: %w", pkg.ID, p.ID, kernel.ErrExists)
		}
		issuer := kernel.Address{Node: kernel.OurNode, Process: p.ID}
		for _, to := range p.GrantTo {
			grants = append(grants, grant{kernel.Capability{Issuer: issuer, Params: kernel.MessagingParams}, to})
		}
		for _, g := range p.GrantCapabilities {
			grants = append(grants, grant{g.Capability, g.To})
		}
	}
	for _, g := range grants {
		if inPkg[g.to] {
			continue
		}
		if _, err := k.Process(g.to); err != nil {
			return nil, fmt.Errorf("install %s: grant %s to %s: %w", pkg.ID, g.c, g.to, ErrGrantTarget)
		}
	}
	mods, err := Compile(h, pkg)
	if err != nil {
		return nil, err
	}

	// The processes wait for ready before their first init, so that each
	// finds the whole package and every grant in place.
	ready := make(chan struct{})
	var granted []kernel.Capability
	defer func() {
		if err == nil {
			close(ready)
			return
		}
		err = fmt.Errorf("install %s: %w", pkg.ID, err)
		if rb := rollback(k, started, granted); rb != nil {
			err = errors.Join(err, fmt.Errorf("install %s: undoing the install: %w", pkg.ID, rb))
		}
		started = nil
	}()
	for _, p := range pkg.Processes {
		mod := mods[p.WasmPath]
		if mod == nil {
			return started, fmt.Errorf("process %s: no module %q", p.ID, p.WasmPath)
		}
		data, err := json.Marshal(Data{Package: pkg.ID.String(), Version: pkg.Version, WasmPath: p.WasmPath})
		if err != nil {
			return started, err
		}
		err = k.Start(kernel.Spec{
			ID:           p.ID,
			Process:      &gated{ready: ready, p: mod.Process(wasm.ProcessOptions{Resolve: mods.Resolve})},
			OnExit:       p.OnExit,
			Public:       p.Public,
			Capabilities: approved[p.ID],
			Persist:      true,
			Data:         data,
		})
		if err != nil {
			return started, err
		}
		started = append(started, p.ID)
	}
	for _, g := range grants {
		if err := k.Grant(g.c, g.to); err != nil {
			return started, fmt.Errorf("grant %s to %s: %w", g.c, g.to, err)
		}
		granted = append(granted, g.c)
	}
	return started, nil
}

// rollback revokes the grants made and removes the processes started.
func rollback(k *kernel.Kernel, started []kernel.ProcessId, granted []kernel.Capability) error {
	var errs []error
	for _, c := range granted {
		if err := k.Revoke(c); err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	for _, id := range slices.Backward(started) {
		if err := k.Remove(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// approvedCaps checks ok against what pkg requests and returns, per
// process, the approved capabilities in the order Requested lists them.
func approvedCaps(k *kernel.Kernel, pkg *packages.Package, ok Approval) (map[kernel.ProcessId][]kernel.Capability, error) {
	maxParams := k.Limits().MaxCapabilityParamsBytes
	key := func(r packages.CapabilityRequest) (string, error) {
		c := r.Capability
		if c.Issuer.Node == k.NodeID() {
			c.Issuer.Node = kernel.OurNode
		}
		params, err := kernel.CanonicalParams(c.Params, maxParams)
		if err != nil {
			return "", err
		}
		c.Params = params
		return r.Process.String() + "\x00" + string(kernel.EncodeCapability(c)), nil
	}
	requested := pkg.Requested()
	want := make(map[string]bool, len(requested))
	for _, r := range requested {
		kk, err := key(r)
		if err != nil {
			return nil, fmt.Errorf("install %s: requested %s for %s: %w", pkg.ID, r.Capability, r.Process, err)
		}
		want[kk] = false
	}
	for _, r := range ok.Capabilities {
		kk, err := key(r)
		if err != nil {
			return nil, fmt.Errorf("install %s: approval of %s for %s: %w: %w", pkg.ID, r.Capability, r.Process, ErrNotRequested, err)
		}
		if _, req := want[kk]; !req {
			return nil, fmt.Errorf("install %s: approval of %s for %s: %w", pkg.ID, r.Capability, r.Process, ErrNotRequested)
		}
		want[kk] = true
	}
	out := make(map[kernel.ProcessId][]kernel.Capability)
	for _, r := range requested {
		kk, _ := key(r)
		if ok.All || want[kk] {
			out[r.Process] = append(out[r.Process], r.Capability)
		}
	}
	return out, nil
}

// gated runs p once ready is closed: until then the process waits, its
// messages in its mailbox. A kill meanwhile ends it cleanly.
type gated struct {
	ready <-chan struct{}
	p     kernel.Process
}

func (g *gated) Run(ctx context.Context, h *kernel.Handle) error {
	select {
	case <-g.ready:
	case <-ctx.Done():
		return nil
	}
	return g.p.Run(ctx, h)
}
