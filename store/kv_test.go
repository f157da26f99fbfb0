package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weftos/weft/store"
)

const (
	kvPkg = "chat:alice.os"
	kvDB  = "messages"
)

// openKV opens a fresh store at a new path with a quota of quota bytes
// (0: the default) and closes it when the test ends; it returns the path
// too, for reopening.
func openKV(t testing.TB, quota int64) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), store.FileName)
	return reopenKV(t, path, quota), path
}

func reopenKV(t testing.TB, path string, quota int64) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{Usage: store.NewUsage(quota)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func mustCreateDB(t testing.TB, s *store.Store, pkg, db string) {
	t.Helper()
	if err := s.CreateDB(pkg, db); err != nil {
		t.Fatalf("CreateDB(%q, %q): %v", pkg, db, err)
	}
}

func mustKVSet(t testing.TB, s *store.Store, pkg, db, key, value string) {
	t.Helper()
	if err := s.KVSet(pkg, db, []byte(key), []byte(value)); err != nil {
		t.Fatalf("KVSet(%q, %q, %q): %v", pkg, db, key, err)
	}
}

// wantKV checks that key holds value (ok true) or is absent (ok false).
func wantKV(t testing.TB, s *store.Store, pkg, db, key string, want string, wantOK bool) {
	t.Helper()
	got, ok, err := s.KVGet(pkg, db, []byte(key))
	if err != nil {
		t.Fatalf("KVGet(%q): %v", key, err)
	}
	if ok != wantOK || string(got) != want {
		t.Fatalf("KVGet(%q) = %q, %v; want %q, %v", key, got, ok, want, wantOK)
	}
	if ok && got == nil {
		t.Fatalf("KVGet(%q) returned a nil slice for a present key", key)
	}
}

// dump reads a whole database through KVScan, paging limit pairs at a
// time, and checks the pages are in order and do not overlap.
func dump(t testing.TB, s *store.Store, pkg, db string, limit int) map[string]string {
	t.Helper()
	out := map[string]string{}
	var after, last []byte
	for page := 0; ; page++ {
		pairs, more, err := s.KVScan(pkg, db, nil, after, limit)
		if err != nil {
			t.Fatalf("KVScan page %d: %v", page, err)
		}
		if len(pairs) > limit || (more && len(pairs) == 0) {
			t.Fatalf("KVScan page %d: %d pairs, more %v, limit %d", page, len(pairs), more, limit)
		}
		for _, p := range pairs {
			if last != nil && bytes.Compare(p.Key, last) <= 0 {
				t.Fatalf("KVScan: key %q after %q, out of order", p.Key, last)
			}
			last = p.Key
			out[string(p.Key)] = string(p.Value)
		}
		if !more {
			return out
		}
		after = last
	}
}

func TestKVDatabases(t *testing.T) {
	s, _ := openKV(t, 0)

	dbs, err := s.DBs(kvPkg)
	if err != nil || len(dbs) != 0 {
		t.Fatalf("DBs of a new package = %q, %v; want none", dbs, err)
	}
	for _, db := range []string{"zeta", "alpha", "m-1", "0"} {
		mustCreateDB(t, s, kvPkg, db)
	}
	mustCreateDB(t, s, "other:bob.os", "alpha")
	wantErr(t, s.CreateDB(kvPkg, "alpha"), store.ErrDBExists, `"chat:alice.os"/"alpha"`, "already exists")

	dbs, err = s.DBs(kvPkg)
	if want := []string{"0", "alpha", "m-1", "zeta"}; err != nil || !slices.Equal(dbs, want) {
		t.Fatalf("DBs = %q, %v; want %q", dbs, err, want)
	}

	// Databases of one name in two packages, and two databases of one
	// package, are separate.
	mustKVSet(t, s, kvPkg, "alpha", "k", "mine")
	mustKVSet(t, s, "other:bob.os", "alpha", "k", "theirs")
	mustKVSet(t, s, kvPkg, "zeta", "k", "z")
	wantKV(t, s, kvPkg, "alpha", "k", "mine", true)
	wantKV(t, s, "other:bob.os", "alpha", "k", "theirs", true)
	wantKV(t, s, kvPkg, "zeta", "k", "z", true)
	wantKV(t, s, kvPkg, "m-1", "k", "", false)

	used := s.Usage().Used(kvPkg)
	if used != 1+4+1+1 {
		t.Fatalf("Used = %d, want 7", used)
	}
	if err := s.DropDB(kvPkg, "alpha"); err != nil {
		t.Fatalf("DropDB: %v", err)
	}
	if got := s.Usage().Used(kvPkg); got != 2 {
		t.Fatalf("after DropDB Used = %d, want 2 (zeta's pair)", got)
	}
	wantErr(t, s.DropDB(kvPkg, "alpha"), store.ErrNoDB, "no such database")
	_, _, err = s.KVGet(kvPkg, "alpha", []byte("k"))
	wantErr(t, err, store.ErrNoDB)
	wantErr(t, s.KVSet(kvPkg, "alpha", []byte("k"), nil), store.ErrNoDB)
	wantKV(t, s, "other:bob.os", "alpha", "k", "theirs", true)

	// A dropped database comes back empty.
	mustCreateDB(t, s, kvPkg, "alpha")
	wantKV(t, s, kvPkg, "alpha", "k", "", false)

	// Dropping every database empties the package.
	for _, db := range []string{"0", "alpha", "m-1", "zeta"} {
		if err := s.DropDB(kvPkg, db); err != nil {
			t.Fatalf("DropDB(%q): %v", db, err)
		}
	}
	if dbs, err := s.DBs(kvPkg); err != nil || len(dbs) != 0 {
		t.Fatalf("DBs after dropping all = %q, %v", dbs, err)
	}
	if got := s.Usage().Used(kvPkg); got != 0 {
		t.Fatalf("Used after dropping all = %d", got)
	}
	mustCreateDB(t, s, kvPkg, "again")
	wantKV(t, s, kvPkg, "again", "k", "", false)
}

func TestKVGetSetDelete(t *testing.T) {
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)

	wantKV(t, s, kvPkg, kvDB, "a", "", false)
	mustKVSet(t, s, kvPkg, kvDB, "a", "one")
	wantKV(t, s, kvPkg, kvDB, "a", "one", true)
	mustKVSet(t, s, kvPkg, kvDB, "a", "two")
	wantKV(t, s, kvPkg, kvDB, "a", "two", true)

	// Empty and nil values are stored as empty values, not as absence.
	if err := s.KVSet(kvPkg, kvDB, []byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	wantKV(t, s, kvPkg, kvDB, "empty", "", true)

	// Keys are bytes: binary keys, and the longest allowed.
	bin := []byte{0, 0xff, '/', '.', '.', 0}
	long := bytes.Repeat([]byte{'k'}, store.MaxKeyBytes)
	for _, k := range [][]byte{bin, long} {
		if err := s.KVSet(kvPkg, kvDB, k, k); err != nil {
			t.Fatalf("KVSet(%d-byte key): %v", len(k), err)
		}
		wantKV(t, s, kvPkg, kvDB, string(k), string(k), true)
	}

	// The value returned is a copy, and the store keeps no reference to
	// the caller's slice.
	in := []byte("original")
	if err := s.KVSet(kvPkg, kvDB, []byte("c"), in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	got, _, _ := s.KVGet(kvPkg, kvDB, []byte("c"))
	got[0] = 'Y'
	wantKV(t, s, kvPkg, kvDB, "c", "original", true)

	if err := s.KVDelete(kvPkg, kvDB, []byte("a")); err != nil {
		t.Fatalf("KVDelete: %v", err)
	}
	wantKV(t, s, kvPkg, kvDB, "a", "", false)
	if err := s.KVDelete(kvPkg, kvDB, []byte("a")); err != nil {
		t.Fatalf("KVDelete of a missing key: %v", err)
	}
	wantKV(t, s, kvPkg, kvDB, "empty", "", true)

	// The usage is the sum of what is left: "empty"+"", bin+bin,
	// long+long, "c"+"original".
	want := int64(5 + 2*len(bin) + 2*len(long) + 1 + 8)
	if got := s.Usage().Used(kvPkg); got != want {
		t.Fatalf("Used = %d, want %d", got, want)
	}
}

func TestKVBadInput(t *testing.T) {
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	mustKVSet(t, s, kvPkg, kvDB, "keep", "safe")

	badPkgs := map[string]string{
		"empty":     "",
		"traversal": "../chat:alice.os",
		"slash":     "chat/x:alice.os",
		"upper":     "Chat:alice.os",
		"space":     "chat :alice.os",
		"nul":       "chat\x00:alice.os",
		"unicode":   "chät:alice.os",
		"too long":  strings.Repeat("a", 253+1+64+1),
	}
	badDBs := map[string]string{
		"empty":      "",
		"traversal":  "..",
		"slash":      "a/b",
		"dot":        "a.b",
		"colon":      "a:b",
		"upper":      "Messages",
		"leading -":  "-a",
		"trailing -": "a-",
		"only -":     "-",
		"nul":        "a\x00",
		"too long":   strings.Repeat("a", 65),
	}
	for name, pkg := range badPkgs {
		t.Run("package "+name, func(t *testing.T) {
			wantErr(t, s.CreateDB(pkg, kvDB), store.ErrBadName, "package name")
			_, err := s.DBs(pkg)
			wantErr(t, err, store.ErrBadName)
			wantErr(t, s.KVSet(pkg, kvDB, []byte("k"), nil), store.ErrBadName)
			_, _, err = s.KVGet(pkg, kvDB, []byte("k"))
			wantErr(t, err, store.ErrBadName)
			wantErr(t, s.DropDB(pkg, kvDB), store.ErrBadName)
		})
	}
	for name, db := range badDBs {
		t.Run("database "+name, func(t *testing.T) {
			wantErr(t, s.CreateDB(kvPkg, db), store.ErrBadName, "database name")
			wantErr(t, s.KVSet(kvPkg, db, []byte("k"), nil), store.ErrBadName)
			wantErr(t, s.KVDelete(kvPkg, db, []byte("k")), store.ErrBadName)
			_, _, err := s.KVScan(kvPkg, db, nil, nil, 10)
			wantErr(t, err, store.ErrBadName)
			wantErr(t, s.KVTx(kvPkg, db, nil), store.ErrBadName)
			wantErr(t, s.DropDB(kvPkg, db), store.ErrBadName)
		})
	}
	// The longest names are accepted.
	longPkg := strings.Repeat("p", 253) + ":" + strings.Repeat("q", 64)
	longDB := strings.Repeat("d", 64)
	mustCreateDB(t, s, longPkg, longDB)
	mustKVSet(t, s, longPkg, longDB, "k", "v")
	wantKV(t, s, longPkg, longDB, "k", "v", true)

	// Bad keys and values.
	tooLong := bytes.Repeat([]byte{'k'}, store.MaxKeyBytes+1)
	wantErr(t, s.KVSet(kvPkg, kvDB, nil, []byte("v")), store.ErrBadKey, "empty")
	wantErr(t, s.KVSet(kvPkg, kvDB, tooLong, []byte("v")), store.ErrBadKey, "1025 bytes, limit is 1024")
	wantErr(t, s.KVDelete(kvPkg, kvDB, []byte{}), store.ErrBadKey)
	_, _, err := s.KVGet(kvPkg, kvDB, tooLong)
	wantErr(t, err, store.ErrBadKey)
	_, _, err = s.KVScan(kvPkg, kvDB, tooLong, nil, 1)
	wantErr(t, err, store.ErrBadKey, "prefix")
	_, _, err = s.KVScan(kvPkg, kvDB, nil, tooLong, 1)
	wantErr(t, err, store.ErrBadKey, "after")
	_, _, err = s.KVScan(kvPkg, kvDB, nil, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "limit is 0") {
		t.Fatalf("KVScan with limit 0: err = %v", err)
	}

	big := make([]byte, store.MaxKVValueBytes+1)
	wantErr(t, s.KVSet(kvPkg, kvDB, []byte("keep"), big), store.ErrValueTooLarge,
		`key "keep"`, "1048577 bytes, limit is 1048576 (MaxKVValueBytes)")
	if err := s.KVSet(kvPkg, kvDB, []byte("max"), big[:store.MaxKVValueBytes]); err != nil {
		t.Fatalf("KVSet of exactly MaxKVValueBytes: %v", err)
	}

	// Missing databases.
	wantErr(t, s.KVSet(kvPkg, "nope", []byte("k"), nil), store.ErrNoDB, `"chat:alice.os"/"nope"`)
	wantErr(t, s.KVTx(kvPkg, "nope", nil), store.ErrNoDB)
	_, _, err = s.KVScan("unknown:pkg", kvDB, nil, nil, 1)
	wantErr(t, err, store.ErrNoDB)

	// Nothing was lost along the way.
	wantKV(t, s, kvPkg, kvDB, "keep", "safe", true)
}

func TestKVTx(t *testing.T) {
	s, path := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	mustKVSet(t, s, kvPkg, kvDB, "gone", "soon")
	mustKVSet(t, s, kvPkg, kvDB, "kept", "old")

	err := s.KVTx(kvPkg, kvDB, []store.KVOp{
		{Key: []byte("a"), Value: []byte("1")},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("gone"), Delete: true},
		{Key: []byte("a"), Value: []byte("overwritten")}, // later ops see earlier ones
		{Key: []byte("b"), Delete: true},
		{Key: []byte("never"), Delete: true},
	})
	if err != nil {
		t.Fatalf("KVTx: %v", err)
	}
	want := map[string]string{"a": "overwritten", "kept": "old"}
	if got := dump(t, s, kvPkg, kvDB, 10); !maps.Equal(got, want) {
		t.Fatalf("after KVTx: %q, want %q", got, want)
	}
	if got, want := s.Usage().Used(kvPkg), int64(1+11+4+3); got != want {
		t.Fatalf("Used = %d, want %d", got, want)
	}

	// A transaction with one bad operation applies none, whichever
	// operation is bad.
	big := make([]byte, store.MaxKVValueBytes+1)
	bad := []struct {
		name string
		op   store.KVOp
		want error
	}{
		{"oversized value", store.KVOp{Key: []byte("x"), Value: big}, store.ErrValueTooLarge},
		{"empty key", store.KVOp{Value: []byte("v")}, store.ErrBadKey},
		{"long key delete", store.KVOp{Key: make([]byte, store.MaxKeyBytes+1), Delete: true}, store.ErrBadKey},
	}
	for _, tc := range bad {
		for pos := range 3 {
			ops := []store.KVOp{
				{Key: []byte("a"), Value: []byte("changed")},
				{Key: []byte("kept"), Delete: true},
				{Key: []byte("new"), Value: []byte("v")},
			}
			ops = slices.Insert(ops, pos, tc.op)
			wantErr(t, s.KVTx(kvPkg, kvDB, ops), tc.want, fmt.Sprintf("operation %d", pos))
			if got := dump(t, s, kvPkg, kvDB, 10); !maps.Equal(got, want) {
				t.Fatalf("%s at %d: store holds %q, want %q unchanged", tc.name, pos, got, want)
			}
		}
	}

	// Size limits of a transaction.
	many := make([]store.KVOp, store.MaxKVTxOps+1)
	for i := range many {
		many[i] = store.KVOp{Key: fmt.Appendf(nil, "k%d", i)}
	}
	wantErr(t, s.KVTx(kvPkg, kvDB, many), store.ErrTxTooLarge, "10001 operations, limit is 10000")
	if err := s.KVTx(kvPkg, kvDB, many[:store.MaxKVTxOps]); err != nil {
		t.Fatalf("KVTx of MaxKVTxOps operations: %v", err)
	}
	heavy := make([]store.KVOp, store.MaxKVTxBytes/store.MaxKVValueBytes)
	for i := range heavy {
		heavy[i] = store.KVOp{Key: fmt.Appendf(nil, "h%d", i), Value: big[:store.MaxKVValueBytes]}
	}
	wantErr(t, s.KVTx(kvPkg, kvDB, heavy), store.ErrTxTooLarge, "MaxKVTxBytes")
	if _, ok, _ := s.KVGet(kvPkg, kvDB, []byte("h0")); ok {
		t.Fatal("a refused transaction left h0 behind")
	}

	// An empty transaction is a no-op on an existing database.
	if err := s.KVTx(kvPkg, kvDB, nil); err != nil {
		t.Fatalf("empty KVTx: %v", err)
	}

	// Committed transactions survive a reopen, with their usage.
	used := s.Usage().Used(kvPkg)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopenKV(t, path, 0)
	wantKV(t, s, kvPkg, kvDB, "a", "overwritten", true)
	wantKV(t, s, kvPkg, kvDB, "k9999", "", true)
	if got := s.Usage().Used(kvPkg); got != used {
		t.Fatalf("Used after reopen = %d, want %d as before", got, used)
	}
}

func TestKVScan(t *testing.T) {
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	keys := []string{"a", "user/", "user/alice", "user/bob", "user/carol", "user0", "users/x", "userz", "v"}
	for _, k := range keys {
		mustKVSet(t, s, kvPkg, kvDB, k, "v:"+k)
	}
	mustCreateDB(t, s, kvPkg, "empty")

	scan := func(prefix, after string, limit int) ([]string, bool) {
		t.Helper()
		var a []byte
		if after != "" {
			a = []byte(after)
		}
		pairs, more, err := s.KVScan(kvPkg, kvDB, []byte(prefix), a, limit)
		if err != nil {
			t.Fatalf("KVScan(%q, %q, %d): %v", prefix, after, limit, err)
		}
		var got []string
		for _, p := range pairs {
			if string(p.Value) != "v:"+string(p.Key) {
				t.Fatalf("KVScan: %q holds %q", p.Key, p.Value)
			}
			got = append(got, string(p.Key))
		}
		return got, more
	}
	cases := []struct {
		prefix, after string
		limit         int
		want          []string
		more          bool
	}{
		{"", "", 100, keys, false},
		{"", "", 3, keys[:3], true},
		{"", "user/bob", 3, []string{"user/carol", "user0", "users/x"}, true},
		{"user/", "", 100, []string{"user/", "user/alice", "user/bob", "user/carol"}, false},
		{"user/", "", 2, []string{"user/", "user/alice"}, true},
		{"user/", "user/alice", 2, []string{"user/bob", "user/carol"}, false},
		{"user/", "user/carol", 2, nil, false},
		{"user/", "user/b", 1, []string{"user/bob"}, true}, // after need not be a key
		{"user/", "a", 1, []string{"user/"}, true},         // after before the prefix
		{"user/", "user/", 10, []string{"user/alice", "user/bob", "user/carol"}, false},
		{"user/", "z", 10, nil, false}, // after past the prefix
		{"user", "", 100, []string{"user/", "user/alice", "user/bob", "user/carol", "user0", "users/x", "userz"}, false},
		{"nothing", "", 10, nil, false},
		{"", "v", 10, nil, false},
		{"", "", store.MaxKVScanPairs + 5, keys, false}, // a large limit is capped, not refused
	}
	for _, c := range cases {
		got, more := scan(c.prefix, c.after, c.limit)
		if !slices.Equal(got, c.want) || more != c.more {
			t.Errorf("KVScan(prefix %q, after %q, limit %d) = %q, more %v; want %q, more %v",
				c.prefix, c.after, c.limit, got, more, c.want, c.more)
		}
	}
	pairs, more, err := s.KVScan(kvPkg, "empty", nil, nil, 10)
	if err != nil || len(pairs) != 0 || more {
		t.Fatalf("scan of an empty database = %v, %v, %v", pairs, more, err)
	}

	// Paging through a prefix with every page size finds every key once.
	for limit := 1; limit <= 5; limit++ {
		var all []string
		after := ""
		for {
			got, more := scan("user", after, limit)
			all = append(all, got...)
			if !more {
				break
			}
			after = got[len(got)-1]
		}
		if want := keys[1:8]; !slices.Equal(all, want) {
			t.Fatalf("paging by %d: %q, want %q", limit, all, want)
		}
	}
}

// TestKVScanCaps checks the caps on one page: MaxKVScanPairs pairs and
// MaxKVScanBytes bytes, with more reported and the rest reachable.
func TestKVScanCaps(t *testing.T) {
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	var ops []store.KVOp
	for i := range store.MaxKVScanPairs + 1 {
		ops = append(ops, store.KVOp{Key: fmt.Appendf(nil, "n%05d", i), Value: []byte("x")})
	}
	if err := s.KVTx(kvPkg, kvDB, ops); err != nil {
		t.Fatal(err)
	}
	pairs, more, err := s.KVScan(kvPkg, kvDB, []byte("n"), nil, store.MaxKVScanPairs*2)
	if err != nil || len(pairs) != store.MaxKVScanPairs || !more {
		t.Fatalf("scan past MaxKVScanPairs: %d pairs, more %v, %v", len(pairs), more, err)
	}

	// 20 values of 1 MiB: a page holds 15 of them (16 MiB with keys is
	// one byte too many for the 16th).
	big := bytes.Repeat([]byte{'b'}, store.MaxKVValueBytes)
	for i := range 20 {
		if err := s.KVSet(kvPkg, kvDB, fmt.Appendf(nil, "big%02d", i), big); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var after []byte
	for page := 0; ; page++ {
		pairs, more, err := s.KVScan(kvPkg, kvDB, []byte("big"), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, p := range pairs {
			size += len(p.Key) + len(p.Value)
		}
		if size > store.MaxKVScanBytes || len(pairs) == 0 {
			t.Fatalf("page %d: %d pairs, %d bytes", page, len(pairs), size)
		}
		if page == 0 && len(pairs) != 15 {
			t.Fatalf("first page: %d pairs, want 15", len(pairs))
		}
		n += len(pairs)
		if !more {
			break
		}
		after = pairs[len(pairs)-1].Key
	}
	if n != 20 {
		t.Fatalf("paged %d big pairs, want 20", n)
	}
}

func TestKVQuota(t *testing.T) {
	const quota = 100
	s, path := openKV(t, quota)
	mustCreateDB(t, s, kvPkg, kvDB)
	mustCreateDB(t, s, kvPkg, "second")
	v40 := strings.Repeat("v", 39) // 40 bytes with a one-byte key

	mustKVSet(t, s, kvPkg, kvDB, "a", v40)
	mustKVSet(t, s, kvPkg, "second", "b", v40) // databases share the quota
	if got := s.Usage().Used(kvPkg); got != 80 {
		t.Fatalf("Used = %d, want 80", got)
	}
	wantErr(t, s.KVSet(kvPkg, kvDB, []byte("c"), []byte(v40)), store.ErrQuota,
		"keeps 80 bytes, the write adds 40, the quota is 100")
	err := s.KVTx(kvPkg, kvDB, []store.KVOp{
		{Key: []byte("c"), Value: []byte("small")},
		{Key: []byte("d"), Value: []byte(v40)},
	})
	wantErr(t, err, store.ErrQuota)
	wantKV(t, s, kvPkg, kvDB, "c", "", false) // nothing of the transaction
	wantKV(t, s, kvPkg, kvDB, "a", v40, true)
	if got := s.Usage().Used(kvPkg); got != 80 {
		t.Fatalf("Used after refused writes = %d, want 80", got)
	}

	// Other packages have quotas of their own.
	mustCreateDB(t, s, "other:bob.os", kvDB)
	mustKVSet(t, s, "other:bob.os", kvDB, "a", v40)
	mustKVSet(t, s, "other:bob.os", kvDB, "b", v40)

	// Exactly up to the quota is allowed; replacing a value counts only
	// the difference.
	mustKVSet(t, s, kvPkg, kvDB, "c", strings.Repeat("c", 19))
	if got := s.Usage().Used(kvPkg); got != quota {
		t.Fatalf("Used = %d, want %d", got, quota)
	}
	mustKVSet(t, s, kvPkg, kvDB, "a", strings.Repeat("a", 39)) // same size
	wantErr(t, s.KVSet(kvPkg, kvDB, []byte("a"), []byte(v40+"x")), store.ErrQuota)

	// Reopened with a lower quota, the package is over it: writes that
	// grow it fail, deletes and shrinking writes work.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopenKV(t, path, 50)
	if got := s.Usage().Used(kvPkg); got != quota {
		t.Fatalf("Used after reopen = %d, want %d", got, quota)
	}
	wantErr(t, s.KVSet(kvPkg, kvDB, []byte("n"), nil), store.ErrQuota)
	mustKVSet(t, s, kvPkg, kvDB, "a", "short") // 40 → 6 bytes: 66, still over
	if err := s.KVTx(kvPkg, kvDB, []store.KVOp{
		{Key: []byte("c"), Delete: true},
		{Key: []byte("z"), Value: []byte("tiny")}, // net growth is negative
	}); err != nil {
		t.Fatalf("shrinking KVTx over quota: %v", err)
	}
	if err := s.KVDelete(kvPkg, "second", []byte("b")); err != nil {
		t.Fatalf("KVDelete over quota: %v", err)
	}
	if got := s.Usage().Used(kvPkg); got != 6+5 {
		t.Fatalf("Used = %d, want 11", got)
	}
	mustKVSet(t, s, kvPkg, kvDB, "n", strings.Repeat("n", 29)) // 41 bytes: under the quota again
	wantKV(t, s, kvPkg, kvDB, "a", "short", true)
	wantKV(t, s, kvPkg, kvDB, "z", "tiny", true)
	if err := s.DropDB(kvPkg, kvDB); err != nil {
		t.Fatal(err)
	}
	if got := s.Usage().Used(kvPkg); got != 0 {
		t.Fatalf("Used after dropping every database with data = %d", got)
	}
}

func TestKVClosedStore(t *testing.T) {
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.CreateDB(kvPkg, "x"), store.ErrClosed)
	wantErr(t, s.KVSet(kvPkg, kvDB, []byte("k"), nil), store.ErrClosed)
	wantErr(t, s.KVTx(kvPkg, kvDB, []store.KVOp{{Key: []byte("k"), Delete: true}}), store.ErrClosed)
	_, _, err := s.KVGet(kvPkg, kvDB, []byte("k"))
	wantErr(t, err, store.ErrClosed)
	_, _, err = s.KVScan(kvPkg, kvDB, nil, nil, 1)
	wantErr(t, err, store.ErrClosed)
	_, err = s.DBs(kvPkg)
	wantErr(t, err, store.ErrClosed)
	wantErr(t, s.DropDB(kvPkg, kvDB), store.ErrClosed)
}

// TestKVConcurrentWriters has 16 goroutines write to one database at once,
// each its own keys (by KVSet and by KVTx) and shared keys, reading their
// own writes back and scanning meanwhile; at the end every key holds its
// writer's last value, every shared key a whole value, and the usage
// matches what is stored.
func TestKVConcurrentWriters(t *testing.T) {
	const writers, iterations = 16, 12
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	own := func(g, k int) []byte { return fmt.Appendf(nil, "own/%02d/%d", g, k) }
	shared := func(i int) []byte { return fmt.Appendf(nil, "shared/%d", i%3) }

	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			fail := func(err error) { errs <- fmt.Errorf("writer %d: %w", g, err) }
			for i := range iterations {
				v := hammerValue(g, i)
				if err := s.KVSet(kvPkg, kvDB, own(g, 0), v); err != nil {
					fail(err)
					return
				}
				got, ok, err := s.KVGet(kvPkg, kvDB, own(g, 0))
				if err != nil || !ok || !bytes.Equal(got, v) {
					fail(fmt.Errorf("iteration %d: read own write %.20q, %v, %v", i, got, ok, err))
					return
				}
				ops := []store.KVOp{
					{Key: own(g, 1), Value: v},
					{Key: own(g, 2), Value: v},
					{Key: shared(i), Value: v},
					{Key: own(g, 3), Delete: i%2 == 1, Value: v},
				}
				if err := s.KVTx(kvPkg, kvDB, ops); err != nil {
					fail(err)
					return
				}
				pairs, _, err := s.KVScan(kvPkg, kvDB, fmt.Appendf(nil, "own/%02d/", g), nil, 10)
				if err != nil {
					fail(err)
					return
				}
				// Own keys 1 and 2 were written together: a scan sees
				// them equal.
				var v1, v2 []byte
				for _, p := range pairs {
					switch string(p.Key) {
					case string(own(g, 1)):
						v1 = p.Value
					case string(own(g, 2)):
						v2 = p.Value
					}
				}
				if !bytes.Equal(v1, v) || !bytes.Equal(v2, v) {
					fail(fmt.Errorf("iteration %d: scan saw keys 1 and 2 as %.12q and %.12q", i, v1, v2))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	all := dump(t, s, kvPkg, kvDB, 7)
	var size int64
	for k, v := range all {
		size += int64(len(k) + len(v))
	}
	last := iterations - 1
	for g := range writers {
		for k := range 4 {
			v, ok := all[string(own(g, k))]
			delete(all, string(own(g, k)))
			if k == 3 && last%2 == 1 {
				if ok {
					t.Errorf("writer %d: key 3 should be deleted", g)
				}
				continue
			}
			if !ok || v != string(hammerValue(g, last)) {
				t.Errorf("writer %d key %d: holds %.20q, %v; want its last write", g, k, v, ok)
			}
		}
	}
	for i := range 3 {
		v, ok := all[string(shared(i))]
		delete(all, string(shared(i)))
		if !ok {
			t.Errorf("shared key %d missing", i)
		} else if _, _, err := decodeHammer([]byte(v)); err != nil {
			t.Errorf("shared key %d: %v", i, err)
		}
	}
	for k := range all {
		t.Errorf("unexpected key %q", k)
	}
	if got := s.Usage().Used(kvPkg); got != size {
		t.Errorf("Used = %d, but the database holds %d bytes", got, size)
	}
}

// TestKVConcurrentQuota has many goroutines race for the last bytes of a
// quota: the writes that succeed fit, the others fail with ErrQuota, and
// the usage equals what is stored.
func TestKVConcurrentQuota(t *testing.T) {
	const writers, quota, pair = 16, 1000, 100
	s, _ := openKV(t, quota)
	mustCreateDB(t, s, kvPkg, kvDB)
	mustCreateDB(t, s, kvPkg, "other")
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for g := range writers {
		wg.Go(func() {
			db := kvDB
			if g%2 == 1 {
				db = "other"
			}
			key := fmt.Appendf(nil, "key-%02d", g) // 6 bytes
			err := s.KVSet(kvPkg, db, key, make([]byte, pair-len(key)))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrQuota):
				lost++
			default:
				t.Errorf("writer %d: %v", g, err)
			}
		})
	}
	wg.Wait()
	if won != quota/pair || lost != writers-won {
		t.Fatalf("%d writes fit and %d failed; want %d and %d", won, lost, quota/pair, writers-quota/pair)
	}
	size := 0
	for _, db := range []string{kvDB, "other"} {
		for k, v := range dump(t, s, kvPkg, db, 100) {
			size += len(k) + len(v)
		}
	}
	if got := s.Usage().Used(kvPkg); got != int64(size) || size != quota {
		t.Fatalf("Used = %d, stored %d, quota %d", got, size, quota)
	}
}

// fuzzQuota is small enough that fuzzed transactions run into it.
const fuzzQuota = 4096

// fuzzKeys are the keys fuzzed operations pick from: few, so that
// operations collide, and prefixes of each other, so that scans by prefix
// have something to tell apart. Index 254 and 255 pick bad keys.
var fuzzKeys = []string{"a", "ab", "abc", "b", "ba", "b\x00", "\xff", "c/1", "c/2", "c"}

// decodeKVTxs turns fuzz input into a list of transactions. Each starts
// with a byte whose value mod 6 is its number of operations (0: an empty
// transaction); each operation is three bytes: flags (bit 0: delete; the
// rest: value length in units of 7 bytes, 127 meaning one byte past
// MaxKVValueBytes), key (an index into fuzzKeys; 254: empty; 255: one
// byte past MaxKeyBytes) and a byte the value's contents derive from.
func decodeKVTxs(data []byte) [][]store.KVOp {
	var txs [][]store.KVOp
	for len(data) > 0 {
		n := int(data[0] % 6)
		data = data[1:]
		ops := []store.KVOp{}
		for ; n > 0 && len(data) >= 3; n-- {
			flags, kb, vb := data[0], data[1], data[2]
			data = data[3:]
			var key []byte
			switch kb {
			case 254:
				key = []byte{}
			case 255:
				key = bytes.Repeat([]byte{'k'}, store.MaxKeyBytes+1)
			default:
				key = []byte(fuzzKeys[int(kb)%len(fuzzKeys)])
			}
			op := store.KVOp{Key: key, Delete: flags&1 == 1}
			if size := int(flags >> 1); size == 127 {
				op.Value = make([]byte, store.MaxKVValueBytes+1)
			} else {
				op.Value = make([]byte, size*7)
				for i := range op.Value {
					op.Value[i] = vb + byte(i)
				}
			}
			ops = append(ops, op)
		}
		txs = append(txs, ops)
	}
	return txs
}

func modelBytes(model map[string]string) int64 {
	var n int64
	for k, v := range model {
		n += int64(len(k) + len(v))
	}
	return n
}

// FuzzKVTx applies fuzzed transactions to a database and to an in-memory
// model: each must succeed, or fail with the error the model predicts
// (ErrBadKey, ErrValueTooLarge, or ErrQuota past a 4 KiB quota) and change
// nothing. After every transaction the database is read back whole by
// paged scans and by prefix; at the end it is closed, reopened (which
// recounts the usage from disk) and compared again, then dropped.
//
//weft:fuzzslow 20
func FuzzKVTx(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 10, 0, 'x', 11, 1, 'y'})
	f.Add([]byte{5, 20, 0, 1, 1, 0, 0, 30, 0, 2, 0, 3, 0, 255, 3, 0})
	f.Add([]byte{3, 100, 3, 9, 100, 4, 9, 100, 5, 9, 1, 1, 3, 0})
	f.Add([]byte{2, 2, 0, 0, 2, 254, 0}) // an empty key
	f.Add([]byte{2, 2, 0, 0, 2, 255, 0}) // a key one byte too long
	f.Add([]byte{2, 2, 0, 0, 254, 1, 0}) // a value one byte too large
	path := filepath.Join(f.TempDir(), store.FileName)
	s, err := store.Open(path, store.Options{Usage: store.NewUsage(fuzzQuota)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		if s != nil {
			_ = s.Close()
		}
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		// Start empty even after an input that failed half-way.
		if err := s.DropDB(kvPkg, kvDB); err != nil && !errors.Is(err, store.ErrNoDB) {
			t.Fatalf("DropDB: %v", err)
		}
		if err := s.CreateDB(kvPkg, kvDB); err != nil {
			t.Fatalf("CreateDB: %v", err)
		}
		model := map[string]string{}
		for i, ops := range decodeKVTxs(data) {
			next := maps.Clone(model)
			var want error
			for _, op := range ops {
				switch {
				case len(op.Key) == 0 || len(op.Key) > store.MaxKeyBytes:
					want = store.ErrBadKey
				case !op.Delete && len(op.Value) > store.MaxKVValueBytes:
					want = store.ErrValueTooLarge
				case op.Delete:
					delete(next, string(op.Key))
				default:
					next[string(op.Key)] = string(op.Value)
				}
				if want != nil {
					break
				}
			}
			if grow := modelBytes(next) - modelBytes(model); want == nil && grow > 0 && modelBytes(next) > fuzzQuota {
				want = store.ErrQuota
			}
			err := s.KVTx(kvPkg, kvDB, ops)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Fatalf("transaction %d (%d operations): err = %v, want %v", i, len(ops), err, want)
			}
			if want == nil {
				model = next
			}
			checkKVModel(t, s, model)
		}

		// Reopen: the data and the usage recounted from disk match.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = store.Open(path, store.Options{Usage: store.NewUsage(fuzzQuota)}); err != nil {
			t.Fatal(err)
		}
		checkKVModel(t, s, model)
		if err := s.DropDB(kvPkg, kvDB); err != nil {
			t.Fatalf("DropDB: %v", err)
		}
		if used := s.Usage().Used(kvPkg); used != 0 {
			t.Fatalf("Used after DropDB = %d", used)
		}
	})
}

// checkKVModel compares the database with model: the whole of it through
// paged scans, each key by KVGet, each fuzz key as a prefix, and the usage.
func checkKVModel(t *testing.T, s *store.Store, model map[string]string) {
	t.Helper()
	if got := dump(t, s, kvPkg, kvDB, 3); !maps.Equal(got, model) {
		t.Fatalf("database differs from the model:\n%s", diffKV(got, model))
	}
	for _, k := range fuzzKeys {
		v, ok, err := s.KVGet(kvPkg, kvDB, []byte(k))
		if w, has := model[k]; err != nil || ok != has || string(v) != w {
			t.Fatalf("KVGet(%q) = %.20q, %v, %v; want %.20q, %v", k, v, ok, err, w, has)
		}
		pairs, more, err := s.KVScan(kvPkg, kvDB, []byte(k), nil, store.MaxKVScanPairs)
		if err != nil || more {
			t.Fatalf("KVScan(prefix %q) = more %v, %v", k, more, err)
		}
		want := 0
		for mk := range model {
			if len(mk) >= len(k) && mk[:len(k)] == k {
				want++
			}
		}
		if len(pairs) != want {
			t.Fatalf("KVScan(prefix %q): %d pairs, model has %d", k, len(pairs), want)
		}
		for _, p := range pairs {
			if w, has := model[string(p.Key)]; !has || w != string(p.Value) || !bytes.HasPrefix(p.Key, []byte(k)) {
				t.Fatalf("KVScan(prefix %q) returned %q = %.20q", k, p.Key, p.Value)
			}
		}
	}
	if used, want := s.Usage().Used(kvPkg), modelBytes(model); used != want {
		t.Fatalf("Used = %d, model holds %d bytes", used, want)
	}
}

// TestKVDropWhileWriting drops and re-creates a database while writers
// keep writing to it: every write succeeds or fails with ErrNoDB, and the
// usage always ends equal to what is stored.
func TestKVDropWhileWriting(t *testing.T) {
	const writers, iterations, rounds = 8, 30, 10
	s, _ := openKV(t, 0)
	mustCreateDB(t, s, kvPkg, kvDB)
	mustCreateDB(t, s, kvPkg, "steady")
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	var mu sync.Mutex
	ok, missing := 0, 0
	// The drops start once every writer has made its first write, which
	// therefore lands: whether any would otherwise was up to the scheduler.
	var first sync.WaitGroup
	first.Add(writers)
	for g := range writers {
		wg.Go(func() {
			signalled := false
			signal := func() {
				if !signalled {
					signalled = true
					first.Done()
				}
			}
			defer signal()
			for i := range iterations {
				key := fmt.Appendf(nil, "w%d/%d", g, i%4)
				err := s.KVTx(kvPkg, kvDB, []store.KVOp{
					{Key: key, Value: hammerValue(g, i)},
					{Key: fmt.Appendf(nil, "w%d/%d", g, (i+1)%4), Delete: true},
				})
				if err == nil {
					err = s.KVSet(kvPkg, "steady", key, hammerValue(g, i))
				}
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrNoDB):
					missing++
				default:
					errs <- fmt.Errorf("writer %d: %w", g, err)
				}
				mu.Unlock()
				signal()
				if err != nil && !errors.Is(err, store.ErrNoDB) {
					return
				}
			}
		})
	}
	wg.Go(func() {
		first.Wait()
		for range rounds {
			if err := s.DropDB(kvPkg, kvDB); err != nil {
				errs <- err
				return
			}
			if err := s.CreateDB(kvPkg, kvDB); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d writes applied, %d met a dropped database", ok, missing)
	if ok == 0 {
		t.Fatal("no write was applied")
	}
	var size int64
	for _, db := range []string{kvDB, "steady"} {
		for k, v := range dump(t, s, kvPkg, db, 100) {
			if _, _, err := decodeHammer([]byte(v)); err != nil {
				t.Errorf("%s %q: %v", db, k, err)
			}
			size += int64(len(k) + len(v))
		}
	}
	if got := s.Usage().Used(kvPkg); got != size {
		t.Fatalf("Used = %d, but the databases hold %d bytes", got, size)
	}
}
