package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftos/weft/internal/dirsync"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages"
	"github.com/weftos/weft/store"
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
	// barrier, when set, is held shared by every change of the files
	// (change), once around each group that must appear together.
	barrier *store.Barrier
	// changes, when set, is noted after every change of the files.
	changes *store.Changes
	// afterChange, when set (by tests), runs after every change of the
	// files, outside the barrier.
	afterChange func()
}

// registryImpl is the registry's state.
type registryImpl struct {
	// mu serialises what changes the registry: Install, Uninstall,
	// Restore.
	mu sync.Mutex
	// view guards the maps, so that List and Get never wait for an
	// install.
	view sync.RWMutex
	// pkgs are the installed packages (records in stateInstalled).
	pkgs map[kernel.PackageId]*record
	// undo are records of installs a crash cut short (stateInstalling)
	// and of uninstalls that did not finish (stateRemoving): their
	// archives are gone, their processes are still to be forgotten.
	undo map[kernel.PackageId]*record
}

// The states of an install record.
const (
	stateInstalling = "installing" // the install has not finished
	stateInstalled  = "installed"
	stateRemoving   = "removing" // the uninstall has begun
)

// File names under the registry's directory.
const (
	archiveExt = ".zip"
	recordExt  = ".json"
	tempPrefix = ".tmp-"
)

// record is an install record, kept as JSON in PACKAGE@PUBLISHER.json.
type record struct {
	ID        string    `json:"id"`      // package:publisher
	Version   string    `json:"version"` // the metadata's
	State     string    `json:"state"`
	Processes []string  `json:"processes"` // the manifest's, in order
	Requested []capJSON `json:"requested"`
	Approved  []capJSON `json:"approved"`
	// Grants are the capabilities the install gave (to is the holder),
	// revoked again when the package goes.
	Grants    []capJSON `json:"grants"`
	Installed time.Time `json:"installed"`
	// ArchiveSHA256 is the hex SHA-256 of the archive as uploaded.
	ArchiveSHA256 string `json:"archive_sha256"`

	info Installed // decoded
}

// capJSON is a capability for a process (holder or requester).
type capJSON struct {
	Process string `json:"process"`
	Issuer  string `json:"issuer"`
	Params  string `json:"params"`
}

// OpenRegistry opens (creating it, mode 0700, if missing) the registry in
// dir, for packages whose processes run on k through h. It reads every
// install record; an archive without a record (an install that never
// finished) is removed, and so is the archive of an install a crash cut
// short (record marked installing) or of an uninstall that did not finish
// (marked removing): Restore forgets their processes and then drops the
// record. logger may be nil.
//
// The layout of dir: for package p:pub, its archive p@pub.zip (the zip as
// uploaded) and its install record p@pub.json; files being written are
// named .tmp-*. Files are 0600.
func OpenRegistry(dir string, k *kernel.Kernel, h *wasm.Host, logger *slog.Logger) (*Registry, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	r := &Registry{dir: dir, k: k, h: h, log: logger}
	r.impl.pkgs = make(map[kernel.PackageId]*record)
	r.impl.undo = make(map[kernel.PackageId]*record)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	archives := make(map[string]bool)
	changed := false
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("registry: %w", err)
			}
			changed = true
		case strings.HasSuffix(name, archiveExt):
			archives[strings.TrimSuffix(name, archiveExt)] = true
		case strings.HasSuffix(name, recordExt):
			rec, err := r.readRecord(name)
			if err != nil {
				return nil, err
			}
			if rec.State == stateInstalled {
				r.impl.pkgs[rec.info.ID] = rec
				continue
			}
			r.log.Warn("rolling back an unfinished package operation", "package", rec.ID, "version", rec.Version, "state", rec.State)
			r.impl.undo[rec.info.ID] = rec
		default:
			r.log.Warn("registry: ignoring an unknown file", "file", filepath.Join(dir, name))
		}
	}
	for base := range archives {
		id, ok := parseBase(base)
		if ok && r.impl.pkgs[id] != nil {
			continue
		}
		if r.impl.undo[id] == nil {
			r.log.Warn("removing a package archive without an install record", "file", base+archiveExt)
		}
		if err := os.Remove(filepath.Join(dir, base+archiveExt)); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		changed = true
	}
	for id, rec := range r.impl.pkgs {
		if !archives[baseName(id)] {
			r.log.Error("installed package has no archive; its processes cannot be restored", "package", rec.ID)
		}
	}
	if changed {
		if err := dirsync.Sync(dir); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	return r, nil
}

// baseName is the file name, without extension, of package id's files.
// Names are [a-z0-9-] and publishers add '.', so '@' separates them
// unambiguously.
func baseName(id kernel.PackageId) string { return id.Package + "@" + id.Publisher }

func parseBase(base string) (kernel.PackageId, bool) {
	pkg, pub, ok := strings.Cut(base, "@")
	if !ok {
		return kernel.PackageId{}, false
	}
	id := kernel.PackageId{Package: pkg, Publisher: pub}
	return id, id.Validate() == nil
}

// readRecord reads and decodes the record in file name.
func (r *Registry) readRecord(name string) (*record, error) {
	path := filepath.Join(r.dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var rec record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("registry: install record %s: %w", path, err)
	}
	if err := rec.decode(); err != nil {
		return nil, fmt.Errorf("registry: install record %s: %w", path, err)
	}
	if baseName(rec.info.ID)+recordExt != name {
		return nil, fmt.Errorf("registry: install record %s is of package %s", path, rec.ID)
	}
	return &rec, nil
}

// decode fills rec.info from the JSON fields.
func (rec *record) decode() error {
	id, err := kernel.ParsePackageId(rec.ID)
	if err != nil {
		return err
	}
	switch rec.State {
	case stateInstalling, stateInstalled, stateRemoving:
	default:
		return fmt.Errorf("unknown state %q", rec.State)
	}
	info := Installed{ID: id, Version: rec.Version, Installed: rec.Installed}
	for _, s := range rec.Processes {
		p, err := kernel.ParseProcessId(s)
		if err != nil {
			return err
		}
		if p.PackageId() != id {
			return fmt.Errorf("process %s is not of package %s", p, id)
		}
		info.Processes = append(info.Processes, p)
	}
	if info.Requested, err = decodeCaps(rec.Requested); err != nil {
		return err
	}
	if info.Approved, err = decodeCaps(rec.Approved); err != nil {
		return err
	}
	if _, err := decodeCaps(rec.Grants); err != nil {
		return err
	}
	rec.info = info
	return nil
}

func encodeCaps(cs []packages.CapabilityRequest) []capJSON {
	out := make([]capJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, capJSON{Process: c.Process.String(), Issuer: c.Capability.Issuer.String(), Params: c.Capability.Params})
	}
	return out
}

func decodeCaps(cs []capJSON) ([]packages.CapabilityRequest, error) {
	out := make([]packages.CapabilityRequest, 0, len(cs))
	for _, c := range cs {
		p, err := kernel.ParseProcessId(c.Process)
		if err != nil {
			return nil, err
		}
		issuer, err := kernel.ParseAddress(c.Issuer)
		if err != nil {
			return nil, err
		}
		out = append(out, packages.CapabilityRequest{Process: p, Capability: kernel.Capability{Issuer: issuer, Params: c.Params}})
	}
	return out, nil
}

// grants lists the capabilities Start gives on installing pkg, by holder.
func grants(pkg *packages.Package) []packages.CapabilityRequest {
	var out []packages.CapabilityRequest
	for _, p := range pkg.Processes {
		issuer := kernel.Address{Node: kernel.OurNode, Process: p.ID}
		for _, to := range p.GrantTo {
			out = append(out, packages.CapabilityRequest{Process: to, Capability: kernel.Capability{Issuer: issuer, Params: kernel.MessagingParams}})
		}
		for _, g := range p.GrantCapabilities {
			out = append(out, packages.CapabilityRequest{Process: g.To, Capability: g.Capability})
		}
	}
	return out
}

// describe is what Inspect reports of pkg.
func describe(pkg *packages.Package) Installed {
	info := Installed{ID: pkg.ID, Version: pkg.Version, Requested: pkg.Requested()}
	for _, p := range pkg.Processes {
		info.Processes = append(info.Processes, p.ID)
	}
	return info
}

// clone copies info's slices, so that callers cannot change the
// registry's.
func (info Installed) clone() Installed {
	info.Processes = slices.Clone(info.Processes)
	info.Requested = slices.Clone(info.Requested)
	info.Approved = slices.Clone(info.Approved)
	return info
}

// load loads a package archive (packages.LoadZip) and checks its modules
// against what the Wasm host accepts (checkModules): a refusal for the
// package's content is a *packages.Error.
func load(zip []byte, lim kernel.Limits) (*packages.Package, error) {
	pkg, err := packages.LoadZip(bytes.NewReader(zip), int64(len(zip)), lim)
	if err != nil {
		return nil, err
	}
	if err := checkModules(pkg); err != nil {
		return nil, err
	}
	return pkg, nil
}

// Inspect loads and validates a package archive (a zip, as LoadZip reads
// it) completely, installing nothing. A refusal for the package's content
// is a *packages.Error.
func (r *Registry) Inspect(zip []byte) (Installed, error) {
	pkg, err := load(zip, r.k.Limits())
	if err != nil {
		return Installed{}, err
	}
	return describe(pkg), nil
}

// Install installs the package in archive zip: it validates it
// completely, keeps the archive, starts its processes (Start) with the
// approved capabilities, and writes its install record. If the same
// version is installed, it does nothing and reports already. If another
// version is, it fails with ErrOtherVersion. On any error nothing of the
// install remains, on disk or on the kernel.
//
// The archive and a record marked installing are durable before any
// process starts, and the record is marked installed only once Start
// succeeded: a crash at any point leaves, after the next OpenRegistry and
// Restore, either the whole install or nothing of it.
func (r *Registry) Install(zip []byte, ok Approval) (pkg Installed, already bool, err error) {
	loaded, err := load(zip, r.k.Limits())
	if err != nil {
		return Installed{}, false, err
	}
	r.impl.mu.Lock()
	defer r.impl.mu.Unlock()
	id := loaded.ID
	r.impl.view.RLock()
	cur, undo := r.impl.pkgs[id], r.impl.undo[id]
	r.impl.view.RUnlock()
	if cur != nil {
		if cur.Version == loaded.Version {
			return cur.info.clone(), true, nil
		}
		return Installed{}, false, fmt.Errorf("install %s %s: %w: version %s is installed; uninstall it first", id, loaded.Version, ErrOtherVersion, cur.Version)
	}
	if undo != nil {
		if err := r.finishUndo(context.Background(), undo); err != nil {
			return Installed{}, false, fmt.Errorf("install %s: %w", id, err)
		}
	}

	approved, err := approvedCaps(r.k, loaded, ok)
	if err != nil {
		return Installed{}, false, err
	}
	info := describe(loaded)
	for _, c := range info.Requested {
		if slices.Contains(approved[c.Process], c.Capability) {
			info.Approved = append(info.Approved, c)
		}
	}
	if info.Approved == nil {
		info.Approved = []packages.CapabilityRequest{}
	}
	info.Installed = time.Now().UTC().Truncate(time.Second)
	sum := sha256.Sum256(zip)
	rec := &record{
		ID:            id.String(),
		Version:       loaded.Version,
		State:         stateInstalling,
		Requested:     encodeCaps(info.Requested),
		Approved:      encodeCaps(info.Approved),
		Grants:        encodeCaps(grants(loaded)),
		Installed:     info.Installed,
		ArchiveSHA256: hex.EncodeToString(sum[:]),
		info:          info,
	}
	for _, p := range info.Processes {
		rec.Processes = append(rec.Processes, p.String())
	}

	// Each group of file changes below is one change: a snapshot sees
	// the archive and the record together or neither. Start's writes to
	// the store come between the groups, never inside one (the barrier
	// is not reentrant); a snapshot taken while they run holds the record
	// marked installing, which OpenRegistry and Restore roll back.
	base := baseName(id)
	removeFiles := func() error { // inside change
		return errors.Join(removeFile(r.dir, base+recordExt), removeFile(r.dir, base+archiveExt), dirsync.Sync(r.dir))
	}
	err = r.change(func() error {
		if err := writeFile(r.dir, base+archiveExt, zip); err != nil {
			return errors.Join(fmt.Errorf("install %s: keep the archive: %w", id, err), removeFiles())
		}
		if err := r.putRecord(rec); err != nil {
			return errors.Join(fmt.Errorf("install %s: %w", id, err), removeFiles())
		}
		return nil
	})
	if err != nil {
		return Installed{}, false, err
	}
	started, err := Start(r.k, r.h, loaded, ok)
	if err != nil {
		// Start removed what it started.
		if rm := r.change(removeFiles); rm != nil {
			err = errors.Join(err, fmt.Errorf("install %s: remove its files: %w", id, rm))
		}
		return Installed{}, false, err
	}
	rec.State = stateInstalled
	if err := r.writeRecord(rec); err != nil {
		err = fmt.Errorf("install %s: %w", id, err)
		var granted []kernel.Capability
		for _, g := range grants(loaded) {
			granted = append(granted, g.Capability)
		}
		if rb := rollback(r.k, started, granted); rb != nil {
			err = errors.Join(err, fmt.Errorf("install %s: undoing the install: %w", id, rb))
		}
		return Installed{}, false, errors.Join(err, r.change(removeFiles))
	}
	r.impl.view.Lock()
	r.impl.pkgs[id] = rec
	r.impl.view.Unlock()
	r.log.Info("installed package", "package", id.String(), "version", rec.Version, "processes", len(started))
	return info.clone(), false, nil
}

// writeRecord writes rec crash-safely, as one change.
func (r *Registry) writeRecord(rec *record) error {
	return r.change(func() error { return r.putRecord(rec) })
}

// putRecord writes rec crash-safely. The caller is inside change.
func (r *Registry) putRecord(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install record: %w", err)
	}
	if err := writeFile(r.dir, baseName(rec.info.ID)+recordExt, append(b, '\n')); err != nil {
		return fmt.Errorf("write install record: %w", err)
	}
	return nil
}

// Uninstall removes an installed package: its processes first
// (kernel.Kernel.Remove, so their state and capabilities go too; a
// process of the package persisted but not in the table is forgotten,
// kernel.Kernel.Forget), then the capabilities its install granted, then
// its archive and record. It returns the processes removed from the
// table. ErrNotInstalled when there is no such package.
//
// The record is marked removing before anything goes, so that an
// uninstall a crash cut short is finished by the next OpenRegistry and
// Restore. An uninstall that fails half way may be retried.
func (r *Registry) Uninstall(ctx context.Context, id kernel.PackageId) ([]kernel.ProcessId, error) {
	r.impl.mu.Lock()
	defer r.impl.mu.Unlock()
	r.impl.view.RLock()
	rec := r.impl.pkgs[id]
	if rec == nil {
		if u := r.impl.undo[id]; u != nil && u.State == stateRemoving {
			rec = u
		}
	}
	r.impl.view.RUnlock()
	if rec == nil {
		return nil, fmt.Errorf("uninstall %s: %w", id, ErrNotInstalled)
	}
	if rec.State != stateRemoving {
		next := *rec
		next.State = stateRemoving
		if err := r.writeRecord(&next); err != nil {
			return nil, fmt.Errorf("uninstall %s: %w", id, err)
		}
		rec = &next
		r.impl.view.Lock()
		delete(r.impl.pkgs, id)
		r.impl.undo[id] = rec
		r.impl.view.Unlock()
	}
	removed, err := r.removeProcesses(ctx, rec)
	if err != nil {
		return removed, fmt.Errorf("uninstall %s: %w", id, err)
	}
	if err := r.dropRecord(rec); err != nil {
		return removed, fmt.Errorf("uninstall %s: %w", id, err)
	}
	r.log.Info("uninstalled package", "package", id.String(), "version", rec.Version, "removed", len(removed))
	return removed, nil
}

// removeProcesses takes rec's processes off the node: Remove for those in
// the table, Forget for the others; then revokes the install's grants. It
// returns the processes removed from the table.
func (r *Registry) removeProcesses(ctx context.Context, rec *record) ([]kernel.ProcessId, error) {
	var removed []kernel.ProcessId
	var errs []error
	for _, p := range rec.info.Processes {
		if _, err := r.k.Process(p); err == nil {
			if err := r.k.Remove(ctx, p); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
			continue
		}
		if err := r.k.Forget(p); err != nil {
			errs = append(errs, err)
		}
	}
	gs, _ := decodeCaps(rec.Grants) // checked when read
	for _, g := range gs {
		if err := r.k.Revoke(g.Capability); err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// dropRecord deletes rec's archive and then its record, as one change
// (a snapshot has both or neither), and forgets it.
func (r *Registry) dropRecord(rec *record) error {
	base := baseName(rec.info.ID)
	err := r.change(func() error {
		if err := removeFile(r.dir, base+archiveExt); err != nil {
			return err
		}
		if err := removeFile(r.dir, base+recordExt); err != nil {
			return err
		}
		return dirsync.Sync(r.dir)
	})
	if err != nil {
		return err
	}
	r.impl.view.Lock()
	delete(r.impl.pkgs, rec.info.ID)
	delete(r.impl.undo, rec.info.ID)
	r.impl.view.Unlock()
	return nil
}

// finishUndo rolls back an unfinished install or finishes an unfinished
// uninstall.
func (r *Registry) finishUndo(ctx context.Context, rec *record) error {
	if _, err := r.removeProcesses(ctx, rec); err != nil {
		return fmt.Errorf("roll back %s %s (%s): %w", rec.ID, rec.Version, rec.State, err)
	}
	if err := r.dropRecord(rec); err != nil {
		return fmt.Errorf("roll back %s %s (%s): %w", rec.ID, rec.Version, rec.State, err)
	}
	r.log.Info("rolled back an unfinished package operation", "package", rec.ID, "version", rec.Version, "state", rec.State)
	return nil
}

// List returns the installed packages, sorted by id.
func (r *Registry) List() []Installed {
	r.impl.view.RLock()
	out := make([]Installed, 0, len(r.impl.pkgs))
	for _, rec := range r.impl.pkgs {
		out = append(out, rec.info.clone())
	}
	r.impl.view.RUnlock()
	slices.SortFunc(out, func(a, b Installed) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

// Get returns one installed package.
func (r *Registry) Get(id kernel.PackageId) (Installed, bool) {
	r.impl.view.RLock()
	defer r.impl.view.RUnlock()
	rec := r.impl.pkgs[id]
	if rec == nil {
		return Installed{}, false
	}
	return rec.info.clone(), true
}

// Restore makes the persisted processes of installed packages again
// (kernel.Kernel.Restore with a resolver that loads each process's
// package from the registry, checks its version against the process's
// Data, and compiles its modules once per package).
//
// A process of a package the registry does not have, or has in another
// version, fails to resolve and stays in the persisted table (it is in
// the report's Failed and logged). The processes of installs a crash cut
// short, and of uninstalls it interrupted, are not started but forgotten
// (kernel.Kernel.Forget), and their records dropped; they are not in the
// report.
//
// Call it once, after OpenRegistry, on a kernel that has none of the
// packages' processes yet.
func (r *Registry) Restore() (kernel.RestoreReport, error) {
	r.impl.mu.Lock()
	defer r.impl.mu.Unlock()
	r.impl.view.RLock()
	pkgs, undo := maps.Clone(r.impl.pkgs), maps.Clone(r.impl.undo)
	r.impl.view.RUnlock()

	type compiled struct {
		mods Modules
		err  error
	}
	cache := make(map[kernel.PackageId]*compiled)
	dropped := make(map[string]bool)
	resolve := func(id kernel.ProcessId, data []byte) (kernel.Process, error) {
		d, err := ParseData(data)
		if err != nil {
			return nil, err
		}
		pid, _ := kernel.ParsePackageId(d.Package) // ParseData checked it
		if pid != id.PackageId() {
			return nil, fmt.Errorf("process %s has the data of package %s", id, pid)
		}
		if undo[pid] != nil {
			dropped[id.String()] = true
			return nil, fmt.Errorf("process %s: its package's install or uninstall did not finish", id)
		}
		rec := pkgs[pid]
		if rec == nil {
			return nil, fmt.Errorf("process %s: %w: %s", id, ErrNotInstalled, pid)
		}
		if rec.Version != d.Version {
			return nil, fmt.Errorf("process %s is of %s version %s, but version %s is installed", id, pid, d.Version, rec.Version)
		}
		c := cache[pid]
		if c == nil {
			c = &compiled{}
			c.mods, c.err = r.compile(rec)
			cache[pid] = c
		}
		if c.err != nil {
			return nil, c.err
		}
		mod, err := c.mods.Resolve(d.WasmPath)
		if err != nil {
			return nil, fmt.Errorf("process %s: %w", id, err)
		}
		return mod.Process(wasm.ProcessOptions{Resolve: c.mods.Resolve}), nil
	}
	rep, err := r.k.Restore(resolve)
	if err != nil {
		return rep, fmt.Errorf("registry: restore: %w", err)
	}
	for key := range dropped {
		delete(rep.Failed, key)
	}
	// The node's own processes (its drivers, in drivers:weft) are not in
	// the persisted table: the daemon starts them again from its
	// configuration before Restore, and what installed packages granted
	// them is given again here.
	for pid, rec := range pkgs {
		if undo[pid] != nil {
			continue
		}
		gs, _ := decodeCaps(rec.Grants) // checked when read
		for _, g := range gs {
			if g.Process.Publisher != packages.ReservedPublisher {
				continue
			}
			if err := r.k.Grant(g.Capability, g.Process); err != nil {
				r.log.Warn("could not give a node process what a package granted it", "package", pid.String(), "process", g.Process.String(), "err", err)
			}
		}
	}
	for key, err := range rep.Failed {
		r.log.Error("could not restore a process; it stays in the table", "process", key, "err", err)
	}
	var errs []error
	ids := make([]kernel.PackageId, 0, len(undo))
	for id := range undo {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b kernel.PackageId) int { return strings.Compare(a.String(), b.String()) })
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	for _, id := range ids {
		if err := r.finishUndo(ctx, undo[id]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("registry: restore: %w", errors.Join(errs...))
	}
	return rep, nil
}

// compile loads rec's package from its archive, checks it is the one
// installed, and compiles its modules.
func (r *Registry) compile(rec *record) (Modules, error) {
	path := filepath.Join(r.dir, baseName(rec.info.ID)+archiveExt)
	zip, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", rec.ID, err)
	}
	if sum := sha256.Sum256(zip); hex.EncodeToString(sum[:]) != rec.ArchiveSHA256 {
		return nil, fmt.Errorf("package %s: archive %s does not match its install record (sha256)", rec.ID, path)
	}
	pkg, err := packages.LoadZip(bytes.NewReader(zip), int64(len(zip)), r.k.Limits())
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", rec.ID, err)
	}
	if pkg.ID != rec.info.ID || pkg.Version != rec.Version {
		return nil, fmt.Errorf("package %s: archive holds %s version %s, the record says version %s", rec.ID, pkg.ID, pkg.Version, rec.Version)
	}
	return Compile(r.h, pkg)
}

// UseBarrier makes every change to the registry's files hold b shared
// (store.Barrier.Enter), so that a snapshot which links the registry's
// directory while holding b sees them at the same instant as the store's
// database and drives. Files that belong together are changed inside one
// Enter: a snapshot holds an installed package's archive and its record
// both or neither, and a record marked installed only with its processes
// already in the store's table. Call it before the registry is used.
func (r *Registry) UseBarrier(b *store.Barrier) { r.barrier = b }

// UseChanges makes every change to the registry's files (installs,
// uninstalls and their rollbacks) that succeeded note c
// (store.Changes.Note) once it is durable. Call it before the registry
// is used.
func (r *Registry) UseChanges(c *store.Changes) { r.changes = c }

// change runs fn, which changes the registry's files and nothing else, as
// one change: it holds the barrier shared around the whole of fn, so a
// snapshot sees all of fn's changes or none, and notes the change when fn
// returns nil. fn must not write to the store nor call change (the
// barrier is not reentrant: behind a waiting Hold a second Enter never
// returns); it uses writeFile and removeFile of the directory.
func (r *Registry) change(fn func() error) error {
	err := func() error {
		if r.barrier != nil {
			defer r.barrier.Enter()()
		}
		return fn()
	}()
	if err == nil && r.changes != nil {
		r.changes.Note()
	}
	if r.afterChange != nil {
		r.afterChange()
	}
	return err
}

// writeFile writes data to dir/name crash-safely: a temporary file,
// synced, renamed over name, and the directory synced. The file is 0600.
func writeFile(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return dirsync.Sync(dir)
}

// removeFile removes dir/name; a missing file is not an error.
func removeFile(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
