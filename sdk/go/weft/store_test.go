//go:build !wasip1

package weft

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
)

// okStore answers every op with no result.
func okStore(abi.StoreOp) ([]byte, int32, string) { return nil, 0, "" }

func TestStoreOpEncodings(t *testing.T) {
	f := newFake(t)
	f.storeFn = okStore
	install(t, f)

	other := KV("notes:examples", "index")
	d := Drive("notes:examples", "notes")
	calls := []struct {
		name string
		call func() error
		want abi.StoreOp
	}{
		{"OpenKV", func() error { _, err := OpenKV("index"); return err }, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"}},
		{"Set", func() error { return other.Set([]byte("k"), []byte("v")) }, abi.StoreOp{Op: abi.StoreKVSet, Package: "notes:examples", Name: "index", Key: []byte("k"), Value: []byte("v")}},
		{"Delete", func() error { return KV("", "db").Delete([]byte("k")) }, abi.StoreOp{Op: abi.StoreKVDelete, Name: "db", Key: []byte("k")}},
		{"Tx", func() error { return other.Tx().Set([]byte("a"), []byte("1")).Delete([]byte("b")).Commit() },
			abi.StoreOp{Op: abi.StoreKVTx, Package: "notes:examples", Name: "index",
				Value: abi.AppendKVTx(nil, []abi.KVTxOp{{Kind: abi.KVTxSet, Key: []byte("a"), Value: []byte("1")}, {Kind: abi.KVTxDelete, Key: []byte("b")}})}},
		{"Drop", func() error { return KV("", "db").Drop() }, abi.StoreOp{Op: abi.StoreKVDrop, Name: "db"}},
		{"OpenDrive", func() error { _, err := OpenDrive("notes"); return err }, abi.StoreOp{Op: abi.StoreDrOpen, Name: "notes"}},
		{"RemoveDrive", func() error { return RemoveDrive("notes") }, abi.StoreOp{Op: abi.StoreDrRemove, Name: "notes"}},
		{"WriteFile", func() error { return d.WriteFile("a/b.md", []byte("x")) }, abi.StoreOp{Op: abi.StoreFsWrite, Package: "notes:examples", Name: "notes", Key: []byte("a/b.md"), Value: []byte("x")}},
		{"Append", func() error { return d.Append("f", []byte("y")) }, abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAppend, Package: "notes:examples", Name: "notes", Key: []byte("f"), Value: []byte("y")}},
		{"WriteAt", func() error { return d.WriteAt("f", 7, []byte("z")) }, abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAt, Package: "notes:examples", Name: "notes", Key: []byte("f"), Value: []byte("z"), Offset: 7}},
		{"ReadFile", func() error { _, err := d.ReadFile("f"); return err }, abi.StoreOp{Op: abi.StoreFsRead, Package: "notes:examples", Name: "notes", Key: []byte("f")}},
		{"ReadAt", func() error { _, err := d.ReadAt("f", 3, 9); return err }, abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Package: "notes:examples", Name: "notes", Key: []byte("f"), Offset: 3, Length: 9}},
		{"Mkdir", func() error { return d.Mkdir("a/b") }, abi.StoreOp{Op: abi.StoreFsMkdir, Package: "notes:examples", Name: "notes", Key: []byte("a/b")}},
		{"Rename", func() error { return d.Rename("a", "b") }, abi.StoreOp{Op: abi.StoreFsRename, Package: "notes:examples", Name: "notes", Key: []byte("a"), Value: []byte("b")}},
		{"Remove", func() error { return d.Remove("a") }, abi.StoreOp{Op: abi.StoreFsRemove, Package: "notes:examples", Name: "notes", Key: []byte("a")}},
		{"RemoveAll", func() error { return d.RemoveAll("a") }, abi.StoreOp{Op: abi.StoreFsRemove, Flags: abi.StoreRecursive, Package: "notes:examples", Name: "notes", Key: []byte("a")}},
	}
	for _, c := range calls {
		f.storeOps = nil
		if err := c.call(); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(f.storeOps) != 1 || !sameOp(f.storeOps[0], c.want) {
			t.Errorf("%s sent %+v, want %+v", c.name, f.storeOps, c.want)
		}
	}

	// Results the SDK decodes.
	pairs := []abi.KVPair{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("ab"), Value: []byte{}}}
	mt := time.Unix(1700000000, 123)
	entries := []abi.DirEntry{{Name: "d", Dir: true}, {Name: "f.md", Size: 5, ModTime: mt.UnixNano()}}
	f.storeFn = func(op abi.StoreOp) ([]byte, int32, string) {
		switch op.Op {
		case abi.StoreKVGet:
			return []byte("value"), 0, ""
		case abi.StoreKVScan:
			return abi.AppendKVScan(nil, pairs, true), 0, ""
		case abi.StoreKVList, abi.StoreDrList:
			return abi.AppendNames(nil, []string{"one", "two"}), 0, ""
		case abi.StoreFsList:
			return abi.AppendDirEntries(nil, entries), 0, ""
		case abi.StoreFsStat:
			return abi.AppendDirEntry(nil, &entries[1]), 0, ""
		case abi.StoreFsRead:
			return nil, 0, "" // an empty file
		}
		return nil, abi.EINVAL, "unexpected op"
	}
	f.storeOps = nil
	if v, err := other.Get([]byte("k")); err != nil || string(v) != "value" {
		t.Errorf("Get = %q, %v", v, err)
	}
	got, more, err := other.ScanPage([]byte("a"), []byte("0"), 10)
	if err != nil || !more || len(got) != 2 || string(got[0].Key) != "a" || string(got[0].Value) != "1" || string(got[1].Key) != "ab" || len(got[1].Value) != 0 {
		t.Errorf("ScanPage = %q, %v, %v", got, more, err)
	}
	if want := (abi.StoreOp{Op: abi.StoreKVScan, Package: "notes:examples", Name: "index", Key: []byte("a"), Value: []byte("0"), Length: 10}); !sameOp(f.storeOps[1], want) {
		t.Errorf("ScanPage sent %+v, want %+v", f.storeOps[1], want)
	}
	for _, list := range []func() ([]string, error){KVDatabases, Drives} {
		if ns, err := list(); err != nil || !reflect.DeepEqual(ns, []string{"one", "two"}) {
			t.Errorf("list = %q, %v", ns, err)
		}
	}
	if op := f.storeOps[len(f.storeOps)-1]; !sameOp(op, abi.StoreOp{Op: abi.StoreDrList}) {
		t.Errorf("Drives sent %+v", op)
	}
	es, err := d.ReadDir("")
	wantEs := []DirEntry{{Name: "d", IsDir: true}, {Name: "f.md", Size: 5, ModTime: mt}}
	if err != nil || len(es) != 2 || es[0] != wantEs[0] || es[1].Name != "f.md" || es[1].Size != 5 || !es[1].ModTime.Equal(mt) || es[1].IsDir {
		t.Errorf("ReadDir = %+v, %v; want %+v", es, err, wantEs)
	}
	for i := range es {
		if a := es[i].ABI(); a != entries[i] {
			t.Errorf("entry %d back to the ABI = %+v, want %+v", i, a, entries[i])
		}
	}
	if e, err := d.Stat("f.md"); err != nil || e.Name != "f.md" || !e.ModTime.Equal(mt) {
		t.Errorf("Stat = %+v, %v", e, err)
	}
	if b, err := d.ReadFile("empty"); err != nil || b == nil || len(b) != 0 {
		t.Errorf("ReadFile of an empty file = %v (nil %v), %v; want empty, not nil", b, b == nil, err)
	}
}

func sameOp(a, b abi.StoreOp) bool {
	return a.Op == b.Op && a.Flags == b.Flags && a.Package == b.Package && a.Name == b.Name &&
		bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Offset == b.Offset && a.Length == b.Length
}

func TestStoreErrors(t *testing.T) {
	f := newFake(t)
	f.storeFn = func(op abi.StoreOp) ([]byte, int32, string) {
		switch op.Op {
		case abi.StoreKVGet:
			return nil, abi.ENONE, "store: kv_get pkg:pub/db: no such key"
		case abi.StoreKVSet:
			return nil, abi.EPERM, "needs write"
		case abi.StoreFsRead:
			return nil, abi.ESTOPPED, "closed"
		}
		return nil, abi.ELIMIT, "quota"
	}
	install(t, f)
	db := KV("", "db")

	_, err := db.Get([]byte("nope"))
	var e *Error
	if !errors.Is(err, ErrNoKey) || !errors.As(err, &e) || e.Code != abi.ENONE || e.Op != "kv_get" || !strings.Contains(e.Detail, "no such key") {
		t.Fatalf("Get of a missing key = %#v", err)
	}
	if err := db.Set([]byte("k"), nil); !errors.Is(err, ErrPerm) || !strings.Contains(err.Error(), "kv_set") || !strings.Contains(err.Error(), "needs write") {
		t.Fatalf("Set without the capability = %v", err)
	}
	if _, err := Drive("", "d").ReadFile("f"); err != ErrStopped {
		t.Fatalf("ReadFile of a stopping node = %v, want ErrStopped", err)
	}
	if err := Drive("", "d").Append("f", []byte("x")); !errors.Is(err, ErrLimit) || errors.Is(err, ErrNoKey) {
		t.Fatalf("Append over the quota = %v", err)
	}

	// Arguments refused before the node is asked.
	f.storeOps = nil
	if _, _, err := db.ScanPage(nil, nil, -1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "kv_scan") {
		t.Errorf("ScanPage limit -1 = %v", err)
	}
	if err := Drive("", "d").WriteAt("f", -1, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("WriteAt -1 = %v", err)
	}
	if _, err := Drive("", "d").ReadAt("f", 0, -5); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReadAt n -5 = %v", err)
	}
	if len(f.storeOps) != 0 {
		t.Errorf("invalid arguments reached the node: %+v", f.storeOps)
	}

	// A result the SDK cannot decode is the node's failure, named.
	f.storeFn = func(abi.StoreOp) ([]byte, int32, string) { return []byte{9, 9}, 0, "" }
	if _, err := KVDatabases(); !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "kv_list") {
		t.Errorf("KVDatabases of a bad result = %v", err)
	}
	if _, err := Drive("", "d").Stat("f"); !errors.Is(err, ErrInternal) || !strings.Contains(err.Error(), "stat") {
		t.Errorf("Stat of a bad result = %v", err)
	}
}

// A result larger than the kept buffer comes with store_result, read
// straight into a buffer of its size; the kept buffer does not grow.
func TestStoreLargeResult(t *testing.T) {
	f := newFake(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 100_000) // 1.6 MB
	small := []byte("small")
	f.storeFn = func(op abi.StoreOp) ([]byte, int32, string) {
		if string(op.Key) == "big" {
			return big, 0, ""
		}
		return small, 0, ""
	}
	install(t, f)
	d := Drive("", "d")

	got, err := d.ReadFile("big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("ReadFile big = %d bytes, %v", len(got), err)
	}
	if f.reads["store_result"] != 1 || f.storeCap[0] != storeResSize || len(sdk.storeRes) != storeResSize {
		t.Fatalf("store_result calls %d, store buffer %d, kept %d", f.reads["store_result"], f.storeCap[0], len(sdk.storeRes))
	}
	got, err = d.ReadFile("small")
	if err != nil || string(got) != "small" || f.reads["store_result"] != 1 {
		t.Fatalf("ReadFile small = %q, %v (store_result calls %d)", got, err, f.reads["store_result"])
	}
	// The result is the caller's: the next call does not overwrite it.
	if _, err := d.ReadFile("other"); err != nil {
		t.Fatal(err)
	}
	for i := range sdk.storeRes {
		sdk.storeRes[i] = 'X'
	}
	if string(got) != "small" {
		t.Fatalf("result changed with the SDK's buffer: %q", got)
	}

	// store_result failing (the node kept nothing) is an error of the op.
	sdk.node = noKept{f}
	if _, err := d.ReadFile("big"); !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "file_read") {
		t.Fatalf("ReadFile with store_result failing = %v", err)
	}
}

type noKept struct{ *fakeNode }

func (n noKept) storeResult([]byte) int32 { return n.fail(abi.ENONE, "no kept store result") }

// A large write's encoding is not kept; a small one's is.
func TestStoreReleasesLargeEncodings(t *testing.T) {
	f := newFake(t)
	f.storeFn = okStore
	install(t, f)
	d := Drive("", "d")
	if err := d.WriteFile("f", make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if cap(sdk.storeOut) < 1<<20 {
		t.Fatalf("a 1 MiB write's buffer was not kept (cap %d)", cap(sdk.storeOut))
	}
	if err := d.WriteFile("f", make([]byte, keepStoreOut+1)); err != nil {
		t.Fatal(err)
	}
	if sdk.storeOut != nil {
		t.Fatalf("a %d-byte encoding was kept", cap(sdk.storeOut))
	}
}

func TestScan(t *testing.T) {
	f := newFake(t)
	// 25 keys k00..k24 served 10 at a time; key "k13" fails when failAt.
	var keys [][]byte
	for i := range 25 {
		keys = append(keys, fmt.Appendf(nil, "k%02d", i))
	}
	failAfter := ""
	f.storeFn = func(op abi.StoreOp) ([]byte, int32, string) {
		if op.Op != abi.StoreKVScan || string(op.Key) != "k" || op.Length != 0 {
			return nil, abi.EINVAL, "unexpected op"
		}
		if failAfter != "" && string(op.Value) == failAfter {
			return nil, abi.EPERM, "revoked"
		}
		var page []abi.KVPair
		more := false
		for _, k := range keys {
			if bytes.Compare(k, op.Value) <= 0 {
				continue
			}
			if len(page) == 10 {
				more = true
				break
			}
			page = append(page, abi.KVPair{Key: k, Value: append([]byte("v"), k...)})
		}
		return abi.AppendKVScan(nil, page, more), 0, ""
	}
	install(t, f)
	db := KV("", "db")

	sc := db.Scan([]byte("k"))
	var got []string
	for k, v := range sc.All() {
		if string(v) != "v"+string(k) {
			t.Fatalf("value of %s = %s", k, v)
		}
		got = append(got, string(k))
	}
	if sc.Err() != nil || len(got) != 25 || got[0] != "k00" || got[24] != "k24" || len(f.storeOps) != 3 {
		t.Fatalf("Scan = %v, %v (%d calls)", got, sc.Err(), len(f.storeOps))
	}

	// Breaking out stops paging.
	f.storeOps = nil
	for k := range db.Scan([]byte("k")).All() {
		if string(k) == "k03" {
			break
		}
	}
	if len(f.storeOps) != 1 {
		t.Fatalf("a loop broken on the first page made %d calls", len(f.storeOps))
	}

	// An error on a later page ends the loop; Err has it.
	failAfter = "k09"
	sc = db.Scan([]byte("k"))
	n := 0
	for range sc.All() {
		n++
	}
	if n != 10 || !errors.Is(sc.Err(), ErrPerm) {
		t.Fatalf("Scan failing on page 2: %d pairs, err %v", n, sc.Err())
	}
}

func TestOwnPackage(t *testing.T) {
	for addr, want := range map[string]string{
		"node1@me:pkg:pub": "pkg:pub",
		"our@a:b:c.d":      "b:c.d",
		"":                 "",
		"me:pkg:pub":       "",
		"n@nocolon":        "",
	} {
		if got := ownPackage(addr); got != want {
			t.Errorf("ownPackage(%q) = %q, want %q", addr, got, want)
		}
	}
}

// AppendGet reads into dst's spare room when there is some, through the
// kept buffer when there is none, and through store_result when the
// value is larger than the room; dst's contents before len stay.
func TestAppendGet(t *testing.T) {
	f := newFake(t)
	val := map[string][]byte{"small": []byte("value"), "big": bytes.Repeat([]byte("v"), 40<<10)}
	f.storeFn = func(op abi.StoreOp) ([]byte, int32, string) {
		if v, ok := val[string(op.Key)]; ok {
			return v, 0, ""
		}
		return nil, abi.ENONE, "no such key"
	}
	install(t, f)
	db := KV("", "index")

	dst := append(make([]byte, 0, 64), "head:"...)
	got, err := db.AppendGet(dst, []byte("small"))
	if err != nil || string(got) != "head:value" || &got[0] != &dst[0] {
		t.Fatalf("AppendGet with room = %q, %v (same array: %v)", got, err, err == nil && &got[0] == &dst[0])
	}
	if f.storeCap[len(f.storeCap)-1] != 64-5 {
		t.Fatalf("the node was given %d bytes of room, want dst's spare 59", f.storeCap[len(f.storeCap)-1])
	}
	got, err = db.AppendGet(nil, []byte("small"))
	if err != nil || string(got) != "value" {
		t.Fatalf("AppendGet into nil = %q, %v", got, err)
	}
	before := f.reads["store_result"]
	got, err = db.AppendGet(dst, []byte("big"))
	if err != nil || !bytes.Equal(got[5:], val["big"]) || string(got[:5]) != "head:" || f.reads["store_result"] != before+1 {
		t.Fatalf("AppendGet of a value larger than the room: %d bytes, %v, store_result calls %d", len(got), err, f.reads["store_result"]-before)
	}
	got, err = db.AppendGet(dst, []byte("missing"))
	if !errors.Is(err, ErrNoKey) || string(got) != "head:" {
		t.Fatalf("AppendGet of a missing key = %q, %v", got, err)
	}
}
