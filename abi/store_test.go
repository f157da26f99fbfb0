package abi

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestStoreOpRoundTrip(t *testing.T) {
	op := StoreOp{Op: StoreFsRead, Flags: StoreRange, Package: "notes:examples", Name: "notes", Key: []byte("a.md"), Offset: 3, Length: 9}
	b := AppendStoreOp(nil, &op)
	got, err := DecodeStoreOp(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, op) {
		t.Fatalf("got %+v, want %+v", got, op)
	}
}

func TestStoreDecodersRefuseBadInput(t *testing.T) {
	good := AppendStoreOp(nil, &StoreOp{Op: StoreKVGet, Name: "index", Key: []byte("k")})
	tx := AppendKVTx(nil, []KVTxOp{{Kind: KVTxSet, Key: []byte("k"), Value: []byte("v")}})
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"short", second(DecodeStoreOp(good[:len(good)-1])), "store op: length: needs 8 bytes"},
		{"trailing", second(DecodeStoreOp(append(good, 0))), "1 trailing bytes"},
		{"reserved", second(DecodeStoreOp(append([]byte{2, 0, 1, 0}, good[4:]...))), "store op: reserved: must be zero"},
		{"utf8", second(DecodeStoreOp(append(append([]byte{2, 0, 0, 0}, 1, 0, 0, 0, 0xff), good[8:]...))), "package: not valid UTF-8"},
		{"tx kind", second(DecodeKVTx(append([]byte{1, 0, 0, 0, 3}, tx[5:]...))), "kv tx: kind: unknown kind 3"},
		{"tx count", second(DecodeKVTx([]byte{0xff, 0xff, 0xff, 0xff})), "kv tx: count: 4294967295 past the end"},
		{"tx delete value", second(DecodeKVTx(AppendKVTx(nil, []KVTxOp{{Kind: KVTxDelete, Key: []byte("k"), Value: []byte("v")}}))), "a delete carries no value"},
		{"scan more", third(DecodeKVScan([]byte{0, 0, 0, 0, 2})), "more: must be 0 or 1"},
		{"entries count", second(DecodeDirEntries([]byte{9, 0, 0, 0})), "dir list result: count: 9 past the end"},
	} {
		var de *DecodeError
		if !errors.As(c.err, &de) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: got %v, want a *DecodeError containing %q", c.name, c.err, c.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

func TestStoreOpNames(t *testing.T) {
	if StoreOpName(StoreKVGet) != "kv_get" || StoreOpName(StoreFsRemove) != "remove" || StoreOpName(99) != "op(99)" || StoreOpName(9) != "op(9)" {
		t.Fatal("StoreOpName")
	}
}
