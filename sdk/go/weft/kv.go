package weft

import (
	"iter"
	"strconv"

	"github.com/weftos/weft/abi"
)

// ErrNoKey is the sentinel for a key a database does not have
// (WEFT_ENONE from Get). Like every sentinel it matches by code, so it
// also matches ErrNoState and ErrNoBlob.
var ErrNoKey = &Error{Code: abi.ENONE, Detail: "no such key"}

// KVPair is a key and its value, as ScanPage returns them.
type KVPair = abi.KVPair

// Database is a key-value database of a package: keys of 1 to 1024
// bytes, values up to 1 MiB, kept in key order. Every operation needs a
// capability the process holds (read for Get and scans, write for the
// rest); OpenKV gives its caller both on its own package's databases.
// A Database is a name, not a connection: making one costs nothing.
type Database struct {
	pkg, name string
}

// OpenKV opens database name of this process's package, creating it
// when missing, and gives the process read and write capabilities on it
// (a new database's go to every process of the package).
func OpenKV(name string) (*Database, error) {
	db := KV("", name)
	if err := db.Open(); err != nil {
		return nil, err
	}
	return db, nil
}

// KV names database name of package pkg ("package:publisher"; "" for
// this process's own) without calling the node. Using it needs
// capabilities on it: OpenKV's, or ones attached to a message or granted
// by the node's operator.
func KV(pkg, name string) *Database { return &Database{pkg: pkg, name: name} }

// KVDatabases returns the names of this process's package's databases.
func KVDatabases() ([]string, error) { return names(abi.StoreKVList) }

// Package returns the database's package ("" for this process's own, as
// given to KV or OpenKV).
func (db *Database) Package() string { return db.pkg }

// Name returns the database's name.
func (db *Database) Name() string { return db.name }

func (db *Database) op(op uint8) abi.StoreOp {
	return abi.StoreOp{Op: op, Package: db.pkg, Name: db.name}
}

// Get returns key's value, or an error matching ErrNoKey when the
// database does not have key.
func (db *Database) Get(key []byte) ([]byte, error) {
	op := db.op(abi.StoreKVGet)
	op.Key = key
	v, err := sdk.store(&op)
	if err == nil && v == nil {
		v = []byte{}
	}
	return v, err
}

// AppendGet appends key's value to dst and returns the extended slice
// (dst itself on an error; one matching ErrNoKey when the database does
// not have key). When dst has room, the node writes the value straight
// into it, so a loop that reuses dst (dst[:0]) allocates nothing — which
// in a Go guest, with the CPU guard on, halves the cost of a 4 KiB get.
func (db *Database) AppendGet(dst, key []byte) ([]byte, error) {
	op := db.op(abi.StoreKVGet)
	op.Key = key
	return sdk.storeAppend(&op, dst, true)
}

// Set sets key to value.
func (db *Database) Set(key, value []byte) error {
	op := db.op(abi.StoreKVSet)
	op.Key, op.Value = key, value
	_, err := sdk.store(&op)
	return err
}

// Delete removes key; a missing key is not an error.
func (db *Database) Delete(key []byte) error {
	op := db.op(abi.StoreKVDelete)
	op.Key = key
	_, err := sdk.store(&op)
	return err
}

// ScanPage returns, in key order, pairs whose key starts with prefix and
// comes after after (nil: from the first), at most limit of them (0: as
// many as the node returns at once, up to 1,000). more says further pairs
// match: ask again with after set to the last key returned.
func (db *Database) ScanPage(prefix, after []byte, limit int) (pairs []KVPair, more bool, err error) {
	if limit < 0 {
		return nil, false, invalid(abi.StoreKVScan, "limit "+strconv.Itoa(limit)+" is negative")
	}
	op := db.op(abi.StoreKVScan)
	op.Key, op.Value, op.Length = prefix, after, uint64(limit)
	b, err := sdk.store(&op)
	if err != nil {
		return nil, false, err
	}
	pairs, more, err = abi.DecodeKVScan(b)
	if err != nil {
		return nil, false, decodeFail(abi.StoreKVScan, err)
	}
	return pairs, more, nil
}

// Scan returns a Scanner over the pairs whose key starts with prefix (nil
// for all), which it reads a page at a time:
//
//	sc := db.Scan(prefix)
//	for k, v := range sc.All() {
//		...
//	}
//	if err := sc.Err(); err != nil {
//		...
//	}
func (db *Database) Scan(prefix []byte) *Scanner {
	return &Scanner{db: db, prefix: prefix}
}

// Scanner reads the pairs of a scan page by page (Database.Scan).
type Scanner struct {
	db     *Database
	prefix []byte
	err    error
}

// All yields the pairs in key order, fetching pages as the loop goes on;
// it stops at the first error, which Err then returns. Each key and value
// is the caller's to keep.
func (sc *Scanner) All() iter.Seq2[[]byte, []byte] {
	return func(yield func(k, v []byte) bool) {
		var after []byte
		for {
			pairs, more, err := sc.db.ScanPage(sc.prefix, after, 0)
			if err != nil {
				sc.err = err
				return
			}
			for _, p := range pairs {
				if !yield(p.Key, p.Value) {
					return
				}
			}
			if !more || len(pairs) == 0 {
				return
			}
			after = pairs[len(pairs)-1].Key
		}
	}
}

// Err returns the error that ended All early, or nil.
func (sc *Scanner) Err() error { return sc.err }

// Tx starts a transaction: writes committed together, all or none.
//
//	err := db.Tx().Set(k1, v1).Delete(k2).Commit()
//
// The transaction holds the slices it is given until Commit.
func (db *Database) Tx() *Tx { return &Tx{db: db} }

// Tx is a set of writes to one database, committed at once (at most
// 10,000 writes and 64 MiB).
type Tx struct {
	db  *Database
	ops []abi.KVTxOp
}

// Set adds setting key to value.
func (tx *Tx) Set(key, value []byte) *Tx {
	tx.ops = append(tx.ops, abi.KVTxOp{Kind: abi.KVTxSet, Key: key, Value: value})
	return tx
}

// Delete adds removing key.
func (tx *Tx) Delete(key []byte) *Tx {
	tx.ops = append(tx.ops, abi.KVTxOp{Kind: abi.KVTxDelete, Key: key})
	return tx
}

// Len returns how many writes the transaction holds.
func (tx *Tx) Len() int { return len(tx.ops) }

// Commit performs every write of the transaction, or none of them.
func (tx *Tx) Commit() error {
	op := tx.db.op(abi.StoreKVTx)
	op.Value = abi.AppendKVTx(nil, tx.ops)
	_, err := sdk.store(&op)
	return err
}

// Open creates the database when missing and gives the process read and
// write capabilities on it, as OpenKV does. The node opens only the
// process's own package's databases (ErrPerm for another's).
func (db *Database) Open() error {
	_, err := sdk.store(&abi.StoreOp{Op: abi.StoreKVOpen, Package: db.pkg, Name: db.name})
	return err
}

// Drop deletes the database with everything in it and revokes every copy
// of its capabilities. Only this process's package's own, with the write
// capability.
func (db *Database) Drop() error {
	_, err := sdk.store(&abi.StoreOp{Op: abi.StoreKVDrop, Package: db.pkg, Name: db.name})
	return err
}

// ReadCapability returns the capability to read the database, to attach
// to a message (RequestBuilder.Attach, Response.Capabilities): the
// process must hold it itself.
func (db *Database) ReadCapability() Capability { return kvCapability(db.pkg, db.name, kindRead) }

// WriteCapability returns the capability to write the database (it does
// not let its holder read).
func (db *Database) WriteCapability() Capability { return kvCapability(db.pkg, db.name, kindWrite) }
