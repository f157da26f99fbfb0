// Package procstore owns the store as processes reach it: the operations
// of the guest ABI's store call (docs/abi.md, "The store") on the
// per-package key-value databases and drives, each checked against the
// calling process's capabilities, and those capabilities themselves —
// their issuers and params, granting them when a package opens a
// database or drive, revoking every copy when it deletes one.
//
// The Wasm host calls it from a process's own goroutine, so operations of
// different processes run in parallel (the engines serialise what they
// must); native drivers reach the same operations through the same
// encoding.
package procstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// The issuers of store capabilities. No process runs at these addresses:
// the store is reached through the store host call, not by message.
var (
	KVIssuer  = kernel.ProcessId{Name: "kv", Package: "sys", Publisher: "weft"}
	VFSIssuer = kernel.ProcessId{Name: "vfs", Package: "sys", Publisher: "weft"}
)

// Kinds of store capability.
const (
	Read  = "read"
	Write = "write"
)

// KVCapability is the capability of the given kind ("read" or "write") on
// database db of package pkg ("package:publisher"), issued on node:
//
//	issuer node@kv:sys:weft, params {"db":DB,"kind":KIND,"package":PKG}
func KVCapability(node, pkg, db, kind string) kernel.Capability {
	return kernel.Capability{
		Issuer: kernel.Address{Node: node, Process: KVIssuer},
		Params: `{"db":` + quote(db) + `,"kind":` + quote(kind) + `,"package":` + quote(pkg) + `}`,
	}
}

// DriveCapability is the capability of the given kind on drive drive of
// package pkg, issued on node:
//
//	issuer node@vfs:sys:weft, params {"drive":"/PKG/DRIVE","kind":KIND}
func DriveCapability(node, pkg, drive, kind string) kernel.Capability {
	return kernel.Capability{
		Issuer: kernel.Address{Node: node, Process: VFSIssuer},
		Params: `{"drive":` + quote("/"+pkg+"/"+drive) + `,"kind":` + quote(kind) + `}`,
	}
}

// quote returns s as a JSON string in canonical form. Package, database
// and drive names that reach it have passed the store's name checks
// ([a-z0-9.:-]) or abi's UTF-8 check, so kernel.QuoteJSON's form is the
// canonical one whatever the input.
func quote(s string) string { return kernel.QuoteJSON(s) }

// Service performs store operations for processes.
type Service struct {
	k      *kernel.Kernel
	st     *store.Store
	drives *store.Drives
	log    *slog.Logger
}

// New returns the service over the node's store and drives.
func New(k *kernel.Kernel, st *store.Store, drives *store.Drives, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{k: k, st: st, drives: drives, log: log}
}

// Errors of Call beyond the store's and the kernel's, for errors.Is.
var (
	// ErrNoCapability: the caller lacks the read or write capability the
	// operation needs (it also wraps kernel.ErrNotPermitted).
	ErrNoCapability = fmt.Errorf("%w: store capability not held", kernel.ErrNotPermitted)
	// ErrNoKey: kv_get of a key the database does not have.
	ErrNoKey = errors.New("no such key")
)

// Call performs op for the process behind h and appends its result
// (docs/abi.md gives each op's) to out; when out is empty, the result may
// instead be a new slice, which the caller owns. Once h's incarnation has
// stopped it does nothing and fails with kernel.ErrStopped.
func (s *Service) Call(h *kernel.Handle, op *abi.StoreOp, out []byte) ([]byte, error) {
	// A process the node has stopped (await returned WEFT_ESTOPPED) may
	// still be running guest code for a moment: nothing it asks for
	// happens.
	if err := h.Err(); err != nil {
		return out, fmt.Errorf("store: %s: %w", abi.StoreOpName(op.Op), err)
	}
	own := h.ID().PackageId().String()
	pkg := op.Package
	if pkg == "" {
		pkg = own
	}
	if err := checkOp(op); err != nil {
		return out, fmt.Errorf("store: %s: %w", abi.StoreOpName(op.Op), err)
	}
	out, err := s.call(h, op, pkg, own, out)
	if err != nil {
		return out, fmt.Errorf("store: %s %s/%s: %w", abi.StoreOpName(op.Op), pkg, op.Name, err)
	}
	return out, nil
}

func (s *Service) call(h *kernel.Handle, op *abi.StoreOp, pkg, own string, out []byte) ([]byte, error) {
	switch op.Op {
	case abi.StoreKVOpen, abi.StoreKVDrop, abi.StoreKVList, abi.StoreDrOpen, abi.StoreDrList, abi.StoreDrRemove:
		if pkg != own {
			return out, fmt.Errorf("%w: a process opens, lists and deletes only its own package's (%s) databases and drives", kernel.ErrNotPermitted, own)
		}
	}
	switch op.Op {
	case abi.StoreKVOpen:
		return out, s.open(h, pkg, op.Name, s.st.CreateDB, store.ErrDBExists, KVCapability)
	case abi.StoreDrOpen:
		return out, s.open(h, pkg, op.Name, s.drives.Create, store.ErrDriveExists, DriveCapability)
	case abi.StoreKVList:
		names, err := s.st.DBs(pkg)
		return abi.AppendNames(out, names), err
	case abi.StoreDrList:
		names, err := s.drives.List(pkg)
		return abi.AppendNames(out, names), err
	case abi.StoreKVDrop:
		return out, s.remove(h, pkg, op.Name, s.st.DropDB, KVCapability)
	case abi.StoreDrRemove:
		return out, s.remove(h, pkg, op.Name, s.drives.Remove, DriveCapability)
	}

	kv := op.Op < abi.StoreDrOpen
	kind := Read
	switch op.Op {
	case abi.StoreKVSet, abi.StoreKVDelete, abi.StoreKVTx, abi.StoreFsWrite, abi.StoreFsMkdir, abi.StoreFsRename, abi.StoreFsRemove:
		kind = Write
	}
	var c kernel.Capability
	if kv {
		c = KVCapability(h.NodeID(), pkg, op.Name, kind)
	} else {
		c = DriveCapability(h.NodeID(), pkg, op.Name, kind)
	}
	if !h.HasExact(c) {
		return out, fmt.Errorf("%w: %s needs %s", ErrNoCapability, h.ID(), c)
	}

	switch op.Op {
	case abi.StoreKVGet:
		v, ok, err := s.st.KVGet(pkg, op.Name, op.Key)
		if err == nil && !ok {
			err = ErrNoKey
		}
		return appendOwned(out, v), err
	case abi.StoreKVSet:
		return out, s.st.KVSet(pkg, op.Name, op.Key, op.Value)
	case abi.StoreKVDelete:
		return out, s.st.KVDelete(pkg, op.Name, op.Key)
	case abi.StoreKVScan:
		limit := store.MaxKVScanPairs
		if op.Length > 0 && op.Length < uint64(limit) {
			limit = int(op.Length)
		}
		pairs, more, err := s.st.KVScan(pkg, op.Name, op.Key, op.Value, limit)
		if err != nil {
			return out, err
		}
		ap := make([]abi.KVPair, len(pairs))
		for i, p := range pairs {
			ap[i] = abi.KVPair{Key: p.Key, Value: p.Value}
		}
		return abi.AppendKVScan(out, ap, more), nil
	case abi.StoreKVTx:
		txops, err := abi.DecodeKVTx(op.Value)
		if err != nil {
			return out, fmt.Errorf("%w: %w", kernel.ErrInvalid, err)
		}
		ops := make([]store.KVOp, len(txops))
		for i, t := range txops {
			ops[i] = store.KVOp{Key: t.Key, Value: t.Value, Delete: t.Kind == abi.KVTxDelete}
		}
		return out, s.st.KVTx(pkg, op.Name, ops)
	case abi.StoreFsWrite:
		p := string(op.Key)
		switch op.Flags {
		case abi.StoreWhole:
			return out, s.drives.WriteFile(pkg, op.Name, p, op.Value)
		case abi.StoreAppend:
			return out, s.drives.Append(pkg, op.Name, p, op.Value)
		default: // abi.StoreAt (checkOp)
			return out, s.drives.WriteAt(pkg, op.Name, p, int64(op.Offset), op.Value)
		}
	case abi.StoreFsRead:
		var data []byte
		var err error
		if op.Flags == abi.StoreRange {
			data, err = s.drives.ReadAt(pkg, op.Name, string(op.Key), int64(op.Offset), int(op.Length))
		} else {
			data, err = s.drives.ReadFile(pkg, op.Name, string(op.Key))
		}
		return appendOwned(out, data), err
	case abi.StoreFsList:
		es, err := s.drives.ReadDir(pkg, op.Name, string(op.Key))
		if err != nil {
			return out, err
		}
		ae := make([]abi.DirEntry, len(es))
		for i := range es {
			ae[i] = dirEntry(es[i])
		}
		return abi.AppendDirEntries(out, ae), nil
	case abi.StoreFsStat:
		e, err := s.drives.Stat(pkg, op.Name, string(op.Key))
		if err != nil {
			return out, err
		}
		ae := dirEntry(e)
		return abi.AppendDirEntry(out, &ae), nil
	case abi.StoreFsMkdir:
		return out, s.drives.Mkdir(pkg, op.Name, string(op.Key))
	case abi.StoreFsRename:
		return out, s.drives.Rename(pkg, op.Name, string(op.Key), string(op.Value))
	case abi.StoreFsRemove:
		return out, s.drives.RemovePath(pkg, op.Name, string(op.Key), op.Flags == abi.StoreRecursive)
	}
	return out, fmt.Errorf("%w: unknown op %d", kernel.ErrInvalid, op.Op) // checkOp let it through
}

// open creates database or drive name of pkg when missing and gives the
// caller read and write capabilities on it; a new one's capabilities go
// to every process of the package.
func (s *Service) open(h *kernel.Handle, pkg, name string, create func(pkg, name string) error, exists error, capOf capFunc) error {
	err := create(pkg, name)
	fresh := err == nil
	if err != nil && !errors.Is(err, exists) {
		return err
	}
	for _, kind := range []string{Read, Write} {
		c := capOf(h.NodeID(), pkg, name, kind)
		if fresh {
			if _, err := s.k.GrantPackage(c, h.ID().PackageId()); err != nil {
				return err
			}
		} else if !h.HasExact(c) {
			if err := s.k.Grant(c, h.ID()); err != nil {
				return err
			}
		}
	}
	return nil
}

// remove deletes database or drive name of pkg for a process, which
// needs the write capability on it (see deleteStore).
func (s *Service) remove(h *kernel.Handle, pkg, name string, del func(pkg, name string) error, capOf capFunc) error {
	if c := capOf(h.NodeID(), pkg, name, Write); !h.HasExact(c) {
		return fmt.Errorf("%w: %s needs %s", ErrNoCapability, h.ID(), c)
	}
	_, err := s.deleteStore(pkg, name, del, capOf)
	return err
}

// capFunc makes the capability of a kind on a database or drive.
type capFunc func(node, pkg, name, kind string) kernel.Capability

// DropDB deletes database db of package pkg with all its keys, as the
// node's owner, and revokes every copy of both capabilities on it. It
// returns how many copies went.
func (s *Service) DropDB(pkg, db string) (revoked int, err error) {
	return s.deleteStore(pkg, db, s.st.DropDB, KVCapability)
}

// RemoveDrive deletes drive of package pkg with all its files, as the
// node's owner, and revokes every copy of both capabilities on it. It
// returns how many copies went.
func (s *Service) RemoveDrive(pkg, drive string) (revoked int, err error) {
	return s.deleteStore(pkg, drive, s.drives.Remove, DriveCapability)
}

// deleteStore deletes database or drive name of pkg and then revokes
// every copy of both capabilities on it: a later one of the same name
// starts with no holders.
func (s *Service) deleteStore(pkg, name string, del func(pkg, name string) error, capOf capFunc) (int, error) {
	if err := del(pkg, name); err != nil {
		return 0, err
	}
	var n int
	var errs []error
	for _, kind := range []string{Read, Write} {
		c, err := s.k.RevokeCopies(capOf(s.k.NodeID(), pkg, name, kind))
		n += c
		errs = append(errs, err)
	}
	return n, errors.Join(errs...)
}

// checkOp refuses flags and fields an op does not use.
func checkOp(op *abi.StoreOp) error {
	var key, value, offset, length bool // fields the op uses
	flags := uint8(0)                   // the largest flag value it takes
	switch op.Op {
	case abi.StoreKVOpen, abi.StoreKVDrop, abi.StoreDrOpen, abi.StoreDrRemove:
	case abi.StoreKVList, abi.StoreDrList:
		if op.Name != "" {
			return fmt.Errorf("%w: name must be empty", kernel.ErrInvalid)
		}
	case abi.StoreKVGet, abi.StoreKVDelete, abi.StoreFsList, abi.StoreFsStat, abi.StoreFsMkdir:
		key = true
	case abi.StoreKVSet, abi.StoreFsRename:
		key, value = true, true
	case abi.StoreKVScan:
		key, value, length = true, true, true
	case abi.StoreKVTx:
		value = true
	case abi.StoreFsWrite:
		key, value, offset, flags = true, true, op.Flags == abi.StoreAt, abi.StoreAt
	case abi.StoreFsRead:
		key, offset, length, flags = true, op.Flags == abi.StoreRange, op.Flags == abi.StoreRange, abi.StoreRange
	case abi.StoreFsRemove:
		key, flags = true, abi.StoreRecursive
	default:
		return fmt.Errorf("%w: unknown op %d", kernel.ErrInvalid, op.Op)
	}
	switch {
	case op.Flags > flags:
		return fmt.Errorf("%w: flags %d not valid here", kernel.ErrInvalid, op.Flags)
	case !key && len(op.Key) > 0:
		return fmt.Errorf("%w: key must be empty", kernel.ErrInvalid)
	case !value && len(op.Value) > 0:
		return fmt.Errorf("%w: value must be empty", kernel.ErrInvalid)
	case !offset && op.Offset != 0:
		return fmt.Errorf("%w: offset must be 0", kernel.ErrInvalid)
	case !length && op.Length != 0:
		return fmt.Errorf("%w: length must be 0", kernel.ErrInvalid)
	case op.Offset > 1<<62 || (op.Op == abi.StoreFsRead && op.Length > 1<<31):
		return fmt.Errorf("%w: offset %d or length %d out of range", kernel.ErrInvalid, op.Offset, op.Length)
	}
	return nil
}

// appendOwned appends b, a slice the caller owns, to out; an empty out is
// replaced by b instead of copied into (a 1 MiB read is copied once, not
// twice).
func appendOwned(out, b []byte) []byte {
	if len(out) == 0 && b != nil {
		return b
	}
	return append(out, b...)
}

func dirEntry(e store.DirEntry) abi.DirEntry {
	var mt int64
	if !e.ModTime.IsZero() {
		mt = e.ModTime.UnixNano()
	}
	return abi.DirEntry{Name: e.Name, Dir: e.Dir, Size: uint64(e.Size), ModTime: mt}
}

// Code is the ABI error code of an error of Call.
func Code(err error) int32 {
	var ne *kernel.NameError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNoKey):
		return abi.ENONE
	case errors.Is(err, kernel.ErrNotPermitted), errors.Is(err, kernel.ErrNotHeld):
		return abi.EPERM
	case errors.Is(err, store.ErrNoDB), errors.Is(err, fs.ErrNotExist), errors.Is(err, kernel.ErrNotFound):
		return abi.ENOTFOUND
	case errors.Is(err, fs.ErrExist), errors.Is(err, store.ErrDBExists), errors.Is(err, store.ErrDriveExists):
		return abi.EEXIST
	case errors.Is(err, store.ErrQuota), errors.Is(err, store.ErrValueTooLarge), errors.Is(err, store.ErrTxTooLarge):
		return abi.ELIMIT
	case errors.Is(err, store.ErrBadName), errors.Is(err, store.ErrBadPath), errors.Is(err, store.ErrBadKey),
		errors.Is(err, fs.ErrInvalid), errors.Is(err, kernel.ErrInvalid), errors.As(err, &ne):
		return abi.EINVAL
	case errors.Is(err, store.ErrClosed), errors.Is(err, kernel.ErrStopped), errors.Is(err, kernel.ErrClosed):
		return abi.ESTOPPED
	}
	return abi.EINTERNAL
}
