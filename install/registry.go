package install

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/wasm"
)

// Errors of Registry, besides Start's and packages.Load's.
var (
	// ErrNotInstalled: no package of that id is installed.
	ErrNotInstalled = errors.New("package not installed")
	// ErrOtherVersion: another version of the package is installed;
	// uninstall it first.
	ErrOtherVersion = errors.New("another version of the package is installed")
)

// Installed describes a package in the registry.
type Installed struct {
	ID        kernel.PackageId
	Version   string
	Processes []kernel.ProcessId // the manifest's, in manifest order
	Requested []packages.CapabilityRequest
	// Approved is what the user approved at install (for an inspected
	// package, nil). Installed is when; zero for an inspected package.
	Approved  []packages.CapabilityRequest
	Installed time.Time
}

// Registry keeps a node's installed packages: each one's archive and
// install record on disk under its directory, written crash-safely, and
// its processes on the kernel. It makes those processes again after a
// restart (Restore) and resolves their spawns within their own package.
// Safe for concurrent use; installs and uninstalls are serialised.
type Registry struct {
	dir  string
	k    *kernel.Kernel
	h    *wasm.Host
	log  *slog.Logger
	impl registryImpl
}

// OpenRegistry opens (creating it, mode 0700, if missing) the registry in
// dir, for packages whose processes run on k through h. It reads every
// install record; an archive without a record (an install that never
// finished) is removed. logger may be nil.
func OpenRegistry(dir string, k *kernel.Kernel, h *wasm.Host, logger *slog.Logger) (*Registry, error) {
	panic("unimplemented")
}

// Inspect loads and validates a package archive (a zip, as LoadZip reads
// it) completely, installing nothing. A refusal for the package's content
// is a *packages.Error.
func (r *Registry) Inspect(zip []byte) (Installed, error) {
	panic("unimplemented")
}

// Install installs the package in archive zip: it validates it
// completely, keeps the archive, starts its processes (Start) with the
// approved capabilities, and writes its install record. If the same
// version is installed, it does nothing and reports already. If another
// version is, it fails with ErrOtherVersion. On any error nothing of the
// install remains, on disk or on the kernel.
func (r *Registry) Install(zip []byte, ok Approval) (pkg Installed, already bool, err error) {
	panic("unimplemented")
}

// Uninstall removes an installed package: its processes first
// (kernel.Kernel.Remove, so their state and capabilities go too), then its
// archive and record. It returns the processes removed. ErrNotInstalled
// when there is no such package.
func (r *Registry) Uninstall(ctx context.Context, id kernel.PackageId) ([]kernel.ProcessId, error) {
	panic("unimplemented")
}

// List returns the installed packages, sorted by id.
func (r *Registry) List() []Installed {
	panic("unimplemented")
}

// Get returns one installed package.
func (r *Registry) Get(id kernel.PackageId) (Installed, bool) {
	panic("unimplemented")
}

// Restore makes the persisted processes of installed packages again
// (kernel.Kernel.Restore with a resolver that loads each process's
// package from the registry, checks its version against the process's
// Data, and compiles its modules once per package).
func (r *Registry) Restore() (kernel.RestoreReport, error) {
	panic("unimplemented")
}

// registryImpl is a placeholder for the registry's state.
type registryImpl struct{}
