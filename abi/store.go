package abi

import (
	"strconv"
)

// Store operations (docs/abi.md, "The store"): the Op of a StoreOp.
// Databases and drives belong to a package; Open creates one of the
// caller's own package when missing and gives the package's processes
// read and write capabilities on it.
const (
	StoreKVOpen   uint8 = 1  // create-or-open database Name of the caller's package
	StoreKVGet    uint8 = 2  // Key's value
	StoreKVSet    uint8 = 3  // set Key to Value
	StoreKVDelete uint8 = 4  // remove Key (no error when missing)
	StoreKVScan   uint8 = 5  // pairs with prefix Key after key Value, at most Length pairs (0: the most allowed)
	StoreKVTx     uint8 = 6  // Value is a KVTx encoding: all of its writes or none
	StoreKVDrop   uint8 = 7  // delete database Name of the caller's package
	StoreKVList   uint8 = 8  // names of the caller's package's databases
	StoreDrOpen   uint8 = 16 // create-or-open drive Name of the caller's package
	StoreDrList   uint8 = 17 // names of the caller's package's drives
	StoreDrRemove uint8 = 18 // delete drive Name of the caller's package, with its files
	StoreFsWrite  uint8 = 19 // write Value to file Key: Flags StoreWhole, StoreAppend or StoreAt (at Offset)
	StoreFsRead   uint8 = 20 // read file Key whole, or with StoreRange Length bytes from Offset
	StoreFsList   uint8 = 21 // entries of directory Key ("" is the drive's root)
	StoreFsStat   uint8 = 22 // the entry of Key
	StoreFsMkdir  uint8 = 23 // make directory Key and its parents
	StoreFsRename uint8 = 24 // rename Key to Value (a path)
	StoreFsRemove uint8 = 25 // remove Key; with StoreRecursive a directory and all in it
)

// Flags of a StoreOp.
const (
	StoreWhole     uint8 = 0 // StoreFsWrite: replace the file atomically
	StoreAppend    uint8 = 1 // StoreFsWrite: append
	StoreAt        uint8 = 2 // StoreFsWrite: write at Offset
	StoreRange     uint8 = 1 // StoreFsRead: Length bytes from Offset
	StoreRecursive uint8 = 1 // StoreFsRemove: a directory and everything in it
)

// StoreOpName returns the name docs/abi.md gives an op ("kv_get", …), or
// "op(n)".
func StoreOpName(op uint8) string {
	if int(op) < len(storeOpNames) && storeOpNames[op] != "" {
		return storeOpNames[op]
	}
	return "op(" + strconv.Itoa(int(op)) + ")"
}

var storeOpNames = [...]string{
	StoreKVOpen: "kv_open", StoreKVGet: "kv_get", StoreKVSet: "kv_set",
	StoreKVDelete: "kv_delete", StoreKVScan: "kv_scan", StoreKVTx: "kv_tx",
	StoreKVDrop: "kv_drop", StoreKVList: "kv_list",
	StoreDrOpen: "drive_open", StoreDrList: "drive_list", StoreDrRemove: "drive_remove",
	StoreFsWrite: "file_write", StoreFsRead: "file_read", StoreFsList: "dir_list",
	StoreFsStat: "stat", StoreFsMkdir: "mkdir", StoreFsRename: "rename",
	StoreFsRemove: "remove",
}

// StoreOp is one call of the store host function. Every op has the same
// layout; the fields an op does not use must be empty (zero).
//
//	u8 op, u8 flags, u16 reserved (0)
//	str package   "package:publisher" whose database or drive; "" for the caller's own
//	str name      database or drive name
//	bytes key     kv: key (scan: prefix); drive: path
//	bytes value   kv: value (scan: the key to continue after; tx: a KVTx); drive: data (rename: new path)
//	u64 offset    drive: where a StoreAt write or a StoreRange read starts
//	u64 length    StoreRange read: bytes; scan: most pairs (0: as many as allowed)
type StoreOp struct {
	Op, Flags      uint8
	Package, Name  string
	Key, Value     []byte
	Offset, Length uint64
}

// AppendStoreOp appends the encoding of op to b.
func AppendStoreOp(b []byte, op *StoreOp) []byte {
	b = append(b, op.Op, op.Flags, 0, 0)
	b = appendStr(b, op.Package)
	b = appendStr(b, op.Name)
	b = appendBytes(b, op.Key)
	b = appendBytes(b, op.Value)
	b = appendU64(b, op.Offset)
	return appendU64(b, op.Length)
}

// DecodeStoreOp decodes a store-op encoding. It checks the layout only;
// whether op and flags make sense is the store's to say.
func DecodeStoreOp(b []byte) (StoreOp, error) {
	r := reader{b: b, what: "store op"}
	var op StoreOp
	op.Op = r.u8("op")
	op.Flags = r.u8("flags")
	r.reserved("reserved", 2)
	op.Package = r.str("package")
	op.Name = r.str("name")
	op.Key = r.bytes("key")
	op.Value = r.bytes("value")
	op.Offset = r.u64("offset")
	op.Length = r.u64("length")
	if err := r.end(); err != nil {
		return StoreOp{}, err
	}
	return op, nil
}

// KV transaction operation kinds.
const (
	KVTxSet    uint8 = 1
	KVTxDelete uint8 = 2
)

// KVTxOp is one write of a KVTx: set Key to Value, or delete Key (Value
// then empty).
type KVTxOp struct {
	Kind       uint8
	Key, Value []byte
}

// AppendKVTx appends the KVTx encoding of ops: u32 count, then for each
// u8 kind, u8[3] reserved, bytes key, bytes value.
func AppendKVTx(b []byte, ops []KVTxOp) []byte {
	b = appendU32(b, uint32(len(ops)))
	for i := range ops {
		b = append(b, ops[i].Kind, 0, 0, 0)
		b = appendBytes(b, ops[i].Key)
		b = appendBytes(b, ops[i].Value)
	}
	return b
}

// DecodeKVTx decodes a KVTx encoding.
func DecodeKVTx(b []byte) ([]KVTxOp, error) {
	r := reader{b: b, what: "kv tx"}
	n := r.count("count", 12)
	ops := make([]KVTxOp, n)
	for i := range ops {
		ops[i].Kind = r.u8("kind")
		if r.err == nil && ops[i].Kind != KVTxSet && ops[i].Kind != KVTxDelete {
			r.fail("kind", "unknown kind "+strconv.Itoa(int(ops[i].Kind))+", want 1 (set) or 2 (delete)")
		}
		r.reserved("reserved", 3)
		ops[i].Key = r.bytes("key")
		ops[i].Value = r.bytes("value")
		if r.err == nil && ops[i].Kind == KVTxDelete && len(ops[i].Value) > 0 {
			r.fail("value", "a delete carries no value")
		}
		if r.err != nil {
			break
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return ops, nil
}

// KVPair is one key and its value, in a kv_scan result.
type KVPair struct{ Key, Value []byte }

// AppendKVScan appends a kv_scan result: u32 count, then for each pair
// bytes key, bytes value, and last u8 more (1 when more pairs follow the
// last one; scan again after it).
func AppendKVScan(b []byte, pairs []KVPair, more bool) []byte {
	b = appendU32(b, uint32(len(pairs)))
	for i := range pairs {
		b = appendBytes(b, pairs[i].Key)
		b = appendBytes(b, pairs[i].Value)
	}
	return append(b, boolByte(more))
}

// DecodeKVScan decodes a kv_scan result.
func DecodeKVScan(b []byte) (pairs []KVPair, more bool, err error) {
	r := reader{b: b, what: "kv scan result"}
	n := r.count("count", 8)
	pairs = make([]KVPair, n)
	for i := range pairs {
		pairs[i].Key = r.bytes("key")
		pairs[i].Value = r.bytes("value")
		if r.err != nil {
			break
		}
	}
	more = r.flag("more")
	if err := r.end(); err != nil {
		return nil, false, err
	}
	return pairs, more, nil
}

// DirEntry is a file or directory in a dir_list or stat result.
type DirEntry struct {
	Name    string // base name; "" for a drive's root
	Dir     bool
	Size    uint64 // bytes of a file; 0 for a directory
	ModTime int64  // last modification, nanoseconds since 1970 UTC
}

// AppendDirEntry appends one entry: str name, u8 dir, u8[3] reserved,
// u64 size, u64 modification time (ns since 1970, two's complement): a
// stat result.
func AppendDirEntry(b []byte, e *DirEntry) []byte {
	b = appendStr(b, e.Name)
	b = append(b, boolByte(e.Dir), 0, 0, 0)
	b = appendU64(b, e.Size)
	return appendU64(b, uint64(e.ModTime))
}

// AppendDirEntries appends a dir_list result: u32 count, then each entry.
func AppendDirEntries(b []byte, es []DirEntry) []byte {
	b = appendU32(b, uint32(len(es)))
	for i := range es {
		b = AppendDirEntry(b, &es[i])
	}
	return b
}

// DecodeDirEntry decodes a stat result.
func DecodeDirEntry(b []byte) (DirEntry, error) {
	r := reader{b: b, what: "stat result"}
	e := r.dirEntry()
	if err := r.end(); err != nil {
		return DirEntry{}, err
	}
	return e, nil
}

// DecodeDirEntries decodes a dir_list result.
func DecodeDirEntries(b []byte) ([]DirEntry, error) {
	r := reader{b: b, what: "dir list result"}
	n := r.count("count", 24)
	es := make([]DirEntry, n)
	for i := range es {
		es[i] = r.dirEntry()
		if r.err != nil {
			break
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return es, nil
}

func (r *reader) dirEntry() DirEntry {
	var e DirEntry
	e.Name = r.str("name")
	e.Dir = r.flag("dir")
	r.reserved("reserved", 3)
	e.Size = r.u64("size")
	e.ModTime = int64(r.u64("modified"))
	return e
}

// AppendNames appends a kv_list or drive_list result: u32 count, then
// each name as a str.
func AppendNames(b []byte, names []string) []byte {
	b = appendU32(b, uint32(len(names)))
	for _, s := range names {
		b = appendStr(b, s)
	}
	return b
}

// DecodeNames decodes a kv_list or drive_list result.
func DecodeNames(b []byte) ([]string, error) {
	r := reader{b: b, what: "names"}
	n := r.count("count", 4)
	names := make([]string, n)
	for i := range names {
		names[i] = r.str("name")
		if r.err != nil {
			break
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	return names, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// count reads a u32 count of items that take at least min bytes each,
// refusing one the rest of the input cannot hold.
func (r *reader) count(field string, min int) int {
	n := r.u32(field)
	if r.err == nil && uint64(n) > uint64(len(r.b))/uint64(min) {
		r.fail(field, strconv.FormatUint(uint64(n), 10)+" past the end ("+strconv.Itoa(len(r.b))+" bytes left)")
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// flag reads a u8 that must be 0 or 1.
func (r *reader) flag(field string) bool {
	v := r.u8(field)
	if r.err == nil && v > 1 {
		r.fail(field, "must be 0 or 1, not "+strconv.Itoa(int(v)))
	}
	return v == 1
}
