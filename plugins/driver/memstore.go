package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/api/driverv1"
)

// MemStore is a driver's package's databases and drives kept in memory,
// for a Harness: the store operations a Node makes — kv_open, kv_get,
// kv_set, kv_delete, kv_scan, drive_open, whole-file file_write and
// file_read, dir_list and remove — answered with the results, codes and
// bounds of the node's store (docs/abi.md, "The store"). Every other
// operation is refused with WEFT_EINVAL, saying the harness does not do
// it. The driver holds read and write capabilities on every database and
// drive of its package once opened, and none on another package's. Safe
// for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	dbs    map[string]map[string][]byte
	drives map[string]*memDrive
}

// memDrive is a drive: its files and directories by clean path ("." the
// root, which always exists).
type memDrive struct {
	files map[string]memFile
	dirs  map[string]time.Time // modification times
}

type memFile struct {
	data []byte
	mod  time.Time
}

// Bounds of the node's store (docs/abi.md).
const (
	memMaxKey       = 1024
	memMaxValue     = 1 << 20
	memMaxScanPairs = 1000
	memMaxScanBytes = 16 << 20
	memMaxFile      = 64 << 20
	memMaxPath      = 4096
	memMaxSegment   = 255
	memMaxName      = 64
)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{dbs: map[string]map[string][]byte{}, drives: map[string]*memDrive{}}
}

// Node is a Node over s alone, for a test to arrange or look at what a
// driver stores (s.Node().KV("", "db").All(ctx, nil)). It reaches only
// the package's own databases and drives; it sends nothing (every send
// fails) and logs nowhere.
func (s *MemStore) Node() *Node { return NewNode(memConn{s}) }

type memConn struct{ s *MemStore }

func (c memConn) Send(context.Context, *driverv1.SendRequest) (*driverv1.SendResponse, error) {
	return nil, errors.New("harness: a MemStore's Node sends nothing")
}

func (c memConn) Store(_ context.Context, r *driverv1.StoreRequest) (*driverv1.StoreResponse, error) {
	return c.s.serve(r.GetOp(), ""), nil
}

func (c memConn) Log(context.Context, *driverv1.LogRequest) (*driverv1.LogResponse, error) {
	return &driverv1.LogResponse{}, nil
}

// storeErr is an operation's failure: a WEFT_E* code and a sentence.
type storeErr struct {
	code int32
	msg  string
}

func (e *storeErr) Error() string { return e.msg }

func storeFail(code int32, format string, args ...any) error {
	return &storeErr{code: code, msg: fmt.Sprintf(format, args...)}
}

// serve runs the encoded operation b for a driver of package own ("" when
// only the empty package name is its own).
func (s *MemStore) serve(b []byte, own string) *driverv1.StoreResponse {
	op, err := abi.DecodeStoreOp(b)
	if err != nil {
		return &driverv1.StoreResponse{Code: abi.EINVAL, Error: err.Error()}
	}
	out, err := s.call(&op, own)
	if err != nil {
		var se *storeErr
		if !errors.As(err, &se) {
			se = &storeErr{code: abi.EINTERNAL, msg: err.Error()}
		}
		return &driverv1.StoreResponse{Code: se.code, Error: fmt.Sprintf("store: %s %s: %s", abi.StoreOpName(op.Op), op.Name, se.msg)}
	}
	return &driverv1.StoreResponse{Result: out}
}

func (s *MemStore) call(op *abi.StoreOp, own string) ([]byte, error) {
	if err := memCheckOp(op); err != nil {
		return nil, err
	}
	if op.Package != "" && op.Package != own {
		return nil, storeFail(abi.EPERM, "not permitted: the harness holds no capabilities on package %s's databases and drives", op.Package)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op.Op {
	case abi.StoreKVOpen:
		if err := memCheckName("database", op.Name); err != nil {
			return nil, err
		}
		if s.dbs[op.Name] == nil {
			s.dbs[op.Name] = map[string][]byte{}
		}
		return nil, nil
	case abi.StoreDrOpen:
		if err := memCheckName("drive", op.Name); err != nil {
			return nil, err
		}
		if s.drives[op.Name] == nil {
			s.drives[op.Name] = &memDrive{files: map[string]memFile{}, dirs: map[string]time.Time{".": time.Now()}}
		}
		return nil, nil
	case abi.StoreKVGet, abi.StoreKVSet, abi.StoreKVDelete, abi.StoreKVScan:
		db := s.dbs[op.Name]
		if db == nil {
			return nil, storeFail(abi.EPERM, "not permitted: store capability not held: no database %q was opened", op.Name)
		}
		return kvCall(db, op)
	}
	dr := s.drives[op.Name]
	if dr == nil {
		return nil, storeFail(abi.EPERM, "not permitted: store capability not held: no drive %q was opened", op.Name)
	}
	return dr.call(op)
}

// memCheckOp refuses the operations the harness does not do and, as the
// node does, fields and flags an operation does not use.
func memCheckOp(op *abi.StoreOp) error {
	var key, value, length bool
	switch op.Op {
	case abi.StoreKVOpen, abi.StoreDrOpen:
	case abi.StoreKVGet, abi.StoreKVDelete, abi.StoreFsList:
		key = true
	case abi.StoreKVSet:
		key, value = true, true
	case abi.StoreKVScan:
		key, value, length = true, true, true
	case abi.StoreFsWrite, abi.StoreFsRead, abi.StoreFsRemove:
		if op.Flags != 0 {
			return storeFail(abi.EINVAL, "the harness does not do %s with flags %d (only the whole file, or a file or empty directory)", abi.StoreOpName(op.Op), op.Flags)
		}
		key, value = true, op.Op == abi.StoreFsWrite
	default:
		return storeFail(abi.EINVAL, "the harness does not do %s", abi.StoreOpName(op.Op))
	}
	switch {
	case op.Flags != 0:
		return storeFail(abi.EINVAL, "flags %d not valid here", op.Flags)
	case !key && len(op.Key) > 0:
		return storeFail(abi.EINVAL, "key must be empty")
	case !value && len(op.Value) > 0:
		return storeFail(abi.EINVAL, "value must be empty")
	case op.Offset != 0:
		return storeFail(abi.EINVAL, "offset must be 0")
	case !length && op.Length != 0:
		return storeFail(abi.EINVAL, "length must be 0")
	}
	return nil
}

// memCheckName checks a database or drive name: 1 to 64 bytes of
// [a-z0-9-], not starting or ending with '-'.
func memCheckName(what, name string) error {
	if name == "" || len(name) > memMaxName || name[0] == '-' || name[len(name)-1] == '-' {
		return storeFail(abi.EINVAL, "bad %s name %q: 1 to %d bytes of a-z 0-9 -, not starting or ending with -", what, name, memMaxName)
	}
	for i := range len(name) {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return storeFail(abi.EINVAL, "bad %s name %q: %q at byte %d; allowed are a-z 0-9 -", what, name, c, i)
		}
	}
	return nil
}

func kvCall(db map[string][]byte, op *abi.StoreOp) ([]byte, error) {
	if op.Op == abi.StoreKVScan {
		return kvScan(db, op)
	}
	if len(op.Key) == 0 || len(op.Key) > memMaxKey {
		return nil, storeFail(abi.EINVAL, "bad key: %d bytes, want 1 to %d", len(op.Key), memMaxKey)
	}
	k := string(op.Key)
	switch op.Op {
	case abi.StoreKVGet:
		v, ok := db[k]
		if !ok {
			return nil, storeFail(abi.ENONE, "no such key")
		}
		return bytes.Clone(v), nil
	case abi.StoreKVSet:
		if len(op.Value) > memMaxValue {
			return nil, storeFail(abi.ELIMIT, "value is %d bytes, limit is %d", len(op.Value), memMaxValue)
		}
		db[k] = bytes.Clone(op.Value)
	case abi.StoreKVDelete:
		delete(db, k)
	}
	return nil, nil
}

// kvScan pages through the keys with prefix op.Key after op.Value, as the
// node's store does: at most op.Length pairs (0 or past 1,000: 1,000) and
// 16 MiB, at least one pair, more when a further pair matches.
func kvScan(db map[string][]byte, op *abi.StoreOp) ([]byte, error) {
	prefix, after := string(op.Key), string(op.Value)
	if len(prefix) > memMaxKey || len(after) > memMaxKey {
		return nil, storeFail(abi.EINVAL, "bad key: prefix and after are at most %d bytes", memMaxKey)
	}
	limit := memMaxScanPairs
	if op.Length > 0 && op.Length < uint64(limit) {
		limit = int(op.Length)
	}
	keys := make([]string, 0, len(db))
	for k := range db {
		if strings.HasPrefix(k, prefix) && (after == "" || k > after) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var pairs []abi.KVPair
	more, size := false, 0
	for _, k := range keys {
		size += len(k) + len(db[k])
		if len(pairs) == limit || (len(pairs) > 0 && size > memMaxScanBytes) {
			more = true
			break
		}
		pairs = append(pairs, abi.KVPair{Key: []byte(k), Value: bytes.Clone(db[k])})
	}
	return abi.AppendKVScan(nil, pairs, more), nil
}

func (d *memDrive) call(op *abi.StoreOp) ([]byte, error) {
	p, err := memCleanPath(string(op.Key))
	if err != nil {
		return nil, err
	}
	switch op.Op {
	case abi.StoreFsWrite:
		if p == "." {
			return nil, storeFail(abi.EINVAL, "bad path: the drive's root is a directory")
		}
		if len(op.Value) > memMaxFile {
			return nil, storeFail(abi.ELIMIT, "%d bytes, limit is %d", len(op.Value), memMaxFile)
		}
		if _, ok := d.dirs[p]; ok {
			return nil, storeFail(abi.EINVAL, "bad path: %q is a directory", p)
		}
		now := time.Now()
		var parents []string
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := d.files[dir]; ok {
				return nil, storeFail(abi.EINVAL, "bad path: %q is a file where a directory is needed", dir)
			}
			parents = append(parents, dir)
		}
		for _, dir := range parents {
			if _, ok := d.dirs[dir]; !ok {
				d.dirs[dir] = now
			}
		}
		if _, ok := d.files[p]; !ok {
			d.dirs[path.Dir(p)] = now
		}
		d.files[p] = memFile{data: bytes.Clone(op.Value), mod: now}
		return nil, nil
	case abi.StoreFsRead:
		f, ok := d.files[p]
		if !ok {
			if _, dir := d.dirs[p]; dir {
				return nil, storeFail(abi.EINVAL, "bad path: %q is a directory", p)
			}
			return nil, storeFail(abi.ENOTFOUND, "%q: not found", p)
		}
		return bytes.Clone(f.data), nil
	case abi.StoreFsList:
		if _, ok := d.dirs[p]; !ok {
			if _, file := d.files[p]; file {
				return nil, storeFail(abi.EINVAL, "bad path: %q is a file where a directory is needed", p)
			}
			return nil, storeFail(abi.ENOTFOUND, "%q: not found", p)
		}
		var es []abi.DirEntry
		for q, f := range d.files {
			if path.Dir(q) == p {
				es = append(es, abi.DirEntry{Name: path.Base(q), Size: uint64(len(f.data)), ModTime: f.mod.UnixNano()})
			}
		}
		for q, mod := range d.dirs {
			if q != "." && path.Dir(q) == p {
				es = append(es, abi.DirEntry{Name: path.Base(q), Dir: true, ModTime: mod.UnixNano()})
			}
		}
		slices.SortFunc(es, func(a, b abi.DirEntry) int { return strings.Compare(a.Name, b.Name) })
		return abi.AppendDirEntries(nil, es), nil
	}
	// abi.StoreFsRemove (memCheckOp)
	if p == "." {
		return nil, storeFail(abi.EINVAL, "bad path: cannot remove the drive's root (remove the drive)")
	}
	if _, ok := d.files[p]; ok {
		delete(d.files, p)
		d.dirs[path.Dir(p)] = time.Now()
		return nil, nil
	}
	if _, ok := d.dirs[p]; !ok {
		return nil, storeFail(abi.ENOTFOUND, "%q: not found", p)
	}
	for q := range d.files {
		if path.Dir(q) == p {
			return nil, storeFail(abi.EEXIST, "%q: directory not empty", p)
		}
	}
	for q := range d.dirs {
		if q != "." && path.Dir(q) == p {
			return nil, storeFail(abi.EEXIST, "%q: directory not empty", p)
		}
	}
	delete(d.dirs, p)
	d.dirs[path.Dir(p)] = time.Now()
	return nil, nil
}

// memCleanPath cleans a drive path as the node does: empty and "." segments
// dropped, "." for the root; "..", control characters, invalid UTF-8,
// segments over 255 bytes or starting ".weft-", and paths over 4096 bytes
// refused.
func memCleanPath(p string) (string, error) {
	switch {
	case len(p) > memMaxPath:
		return "", storeFail(abi.EINVAL, "bad path: %d bytes, limit is %d", len(p), memMaxPath)
	case !utf8.ValidString(p):
		return "", storeFail(abi.EINVAL, "bad path: not UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return "", storeFail(abi.EINVAL, "bad path: control character %U", r)
		}
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "" || s == ".":
			continue
		case s == "..":
			return "", storeFail(abi.EINVAL, `bad path: ".." is not allowed`)
		case len(s) > memMaxSegment:
			return "", storeFail(abi.EINVAL, "bad path: name of %d bytes, limit is %d", len(s), memMaxSegment)
		case strings.HasPrefix(s, ".weft-"):
			return "", storeFail(abi.EINVAL, `bad path: names starting with ".weft-" are reserved`)
		}
		segs = append(segs, s)
	}
	if len(segs) == 0 {
		return ".", nil
	}
	return strings.Join(segs, "/"), nil
}
