package packages

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/weftos/weft/kernel"
)

// Bounds on a package, besides kernel.Limits.MaxModuleBytes (one module)
// and kernel.Limits.ProcessesPerPackage (processes in the manifest).
const (
	// MaxPackageBytes bounds the total size of a package's files
	// (uncompressed), and the size of a zip archive itself.
	MaxPackageBytes = 256 << 20
	// MaxFiles bounds the entries of a package: files and directories.
	MaxFiles = 4096
	// MaxMetadataFileBytes bounds metadata.json.
	MaxMetadataFileBytes = 64 << 10
	// MaxManifestFileBytes bounds manifest.json.
	MaxManifestFileBytes = 1 << 20
	// MaxCapabilitiesPerProcess bounds each of a process's
	// request_capabilities and grant_capabilities lists.
	MaxCapabilitiesPerProcess = 256
	// MaxVersionLen bounds the version string.
	MaxVersionLen = 64
	// MaxWasmPathLen bounds a module's path.
	MaxWasmPathLen = 1024
)

// The files every package holds at its root.
const (
	MetadataFile = "metadata.json"
	ManifestFile = "manifest.json"
)

// ReservedPublisher is the node's own publisher: its packages are the
// node's (sys:weft, its own processes; drivers:weft, its native drivers
// from the node's configuration), and no installed package may claim
// one.
const ReservedPublisher = "weft"

// Package is a loaded and fully validated package.
type Package struct {
	ID        kernel.PackageId
	Version   string
	Processes []Process
	// Modules holds every module of the package, keyed by its path
	// relative to the package root ("echo.wasm", "bin/child.wasm"): the
	// ones the manifest names and any other a process may spawn. Each
	// one compiled and exports what docs/abi.md requires.
	Modules map[string][]byte
}

// Process is one manifest entry.
type Process struct {
	Name string
	ID   kernel.ProcessId
	// WasmPath is the module's key in Package.Modules: relative, without
	// a leading "/".
	WasmPath          string
	OnExit            kernel.OnExit
	RequestNetworking bool
	// RequestCapabilities are the capabilities the process asks for
	// (besides the network capability, see RequestNetworking): the issuer
	// is an address, "our@..." for a process of this node, and the params
	// are canonical.
	RequestCapabilities []kernel.Capability
	// GrantTo are the processes that get this process's messaging
	// capability on install.
	GrantTo []kernel.ProcessId
	// GrantCapabilities are the other capabilities this process gives on
	// install (the object form of grant_capabilities).
	GrantCapabilities []Grant
	Public            bool
}

// Grant is a capability a process gives another process of this node on
// install. The capability's issuer is the granting process (our@...).
type Grant struct {
	To         kernel.ProcessId
	Capability kernel.Capability
}

// CapabilityRequest is one capability a process of the package asks for.
type CapabilityRequest struct {
	Process    kernel.ProcessId
	Capability kernel.Capability
}

// NetworkCapability is the capability request_networking asks for.
var NetworkCapability = kernel.Capability{
	Issuer: kernel.Address{Node: kernel.OurNode, Process: kernel.KernelProcess},
	Params: kernel.NetworkParams,
}

// Requested lists every capability the package's processes ask for, for
// the owner to approve on install: process by process in manifest order,
// the network capability first when asked for, then request_capabilities
// in order, each once per process.
func (p *Package) Requested() []CapabilityRequest {
	var out []CapabilityRequest
	for _, proc := range p.Processes {
		var caps []kernel.Capability
		if proc.RequestNetworking {
			caps = append(caps, NetworkCapability)
		}
		for _, c := range proc.RequestCapabilities {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range caps {
			out = append(out, CapabilityRequest{Process: proc.ID, Capability: c})
		}
	}
	return out
}

// Error refuses a package for its content. File is the file at fault
// (metadata.json, manifest.json, a module's path), or empty when the
// package as a whole is (a zip archive's structure, its total size).
// Err says which field and why; it wraps a *kernel.NameError when a name
// is wrong.
type Error struct {
	File string
	Err  error
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Err.Error()
	}
	return e.File + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(file, format string, args ...any) error {
	return &Error{File: file, Err: fmt.Errorf(format, args...)}
}

// Load loads the package at path: a directory, or a file whose name ends
// in ".zip". A refusal for the package's content is an *Error; any other
// error is the file system's.
func Load(path string, lim kernel.Limits) (*Package, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load package: %w", err)
	}
	switch {
	case fi.IsDir():
		return LoadDir(path, lim)
	case fi.Mode().IsRegular() && strings.HasSuffix(strings.ToLower(path), ".zip"):
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("load package: %w", err)
		}
		defer f.Close()
		return LoadZip(f, fi.Size(), lim)
	}
	return nil, fmt.Errorf("load package %s: not a directory or a .zip file", path)
}

// entry is one file of a package, as listed by its source.
type entry struct {
	name string // relative, slash-separated
	size int64  // as listed (zip header, directory entry)
}

// source is where a package's files come from: a directory or a zip.
type source interface {
	// read returns the named file's bytes: at most max, or an error.
	read(name string, max int64) ([]byte, error)
}

// load validates a package whose files (directories left out) are listed
// in files, in a stable order.
func load(src source, files []entry, lim kernel.Limits) (*Package, error) {
	lim = lim.WithDefaults()
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("load package: %w", err)
	}
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		sizes[f.name] = f.size
	}

	readJSON := func(name string, max int64) ([]byte, error) {
		size, ok := sizes[name]
		if !ok {
			return nil, errorf(name, "missing from the package root")
		}
		if size > max {
			return nil, errorf(name, "%d bytes, at most %d allowed", size, max)
		}
		b, err := src.read(name, max)
		if err != nil {
			return nil, wrapRead(name, err)
		}
		return b, nil
	}

	b, err := readJSON(MetadataFile, MaxMetadataFileBytes)
	if err != nil {
		return nil, err
	}
	id, version, err := ParseMetadata(b)
	if err != nil {
		return nil, err
	}
	b, err = readJSON(ManifestFile, MaxManifestFileBytes)
	if err != nil {
		return nil, err
	}
	procs, err := ParseManifest(b, id, lim)
	if err != nil {
		return nil, err
	}
	for i, p := range procs {
		if _, ok := sizes[p.WasmPath]; !ok {
			return nil, errorf(ManifestFile, "%s: process_wasm_path: module %q is not in the package", processLabel(i, p.Name), p.WasmPath)
		}
	}

	checker := newModuleChecker(lim)
	defer checker.close()
	mods := make(map[string][]byte)
	for _, f := range files {
		if !strings.HasSuffix(f.name, ".wasm") {
			continue
		}
		if _, err := CleanWasmPath(f.name); err != nil {
			return nil, errorf(f.name, "not a usable module path: %w", err)
		}
		if f.size > lim.MaxModuleBytes {
			return nil, errorf(f.name, "module is %d bytes, at most %d allowed (max_module_bytes)", f.size, lim.MaxModuleBytes)
		}
		bin, err := src.read(f.name, lim.MaxModuleBytes)
		if err != nil {
			return nil, wrapRead(f.name, err)
		}
		if err := checker.check(bin); err != nil {
			return nil, &Error{File: f.name, Err: err}
		}
		mods[f.name] = bin
	}
	return &Package{ID: id, Version: version, Processes: procs, Modules: mods}, nil
}

// errTooLarge is returned by a source's read for a file over its bound.
var errTooLarge = errors.New("file too large")

func wrapRead(name string, err error) error {
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	return &Error{File: name, Err: fmt.Errorf("read: %w", err)}
}

// readAtMost reads r to its end, refusing more than max bytes.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, max)
	}
	return b, nil
}

func processLabel(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("process %d", i+1)
	}
	return fmt.Sprintf("process %d (%q)", i+1, name)
}
