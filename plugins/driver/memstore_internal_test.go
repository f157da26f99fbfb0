package driver

import (
	"strings"
	"testing"

	"github.com/weftos/weft/abi"
)

// Operations a Node never makes are refused, saying the harness does not
// do them; fields an operation does not use are refused as the node
// refuses them.
func TestMemStoreRefuses(t *testing.T) {
	s := NewMemStore()
	for _, op := range []abi.StoreOp{{Op: abi.StoreKVOpen, Name: "db"}, {Op: abi.StoreDrOpen, Name: "dr"}} {
		if r := s.serve(abi.AppendStoreOp(nil, &op), ""); r.GetCode() != 0 {
			t.Fatal(r.GetError())
		}
	}
	for _, c := range []struct {
		op   abi.StoreOp
		want string
	}{
		{abi.StoreOp{Op: abi.StoreKVTx, Name: "db", Value: abi.AppendKVTx(nil, nil)}, "the harness does not do kv_tx"},
		{abi.StoreOp{Op: abi.StoreKVDrop, Name: "db"}, "the harness does not do kv_drop"},
		{abi.StoreOp{Op: abi.StoreKVList}, "the harness does not do kv_list"},
		{abi.StoreOp{Op: abi.StoreDrList}, "the harness does not do drive_list"},
		{abi.StoreOp{Op: abi.StoreDrRemove, Name: "dr"}, "the harness does not do drive_remove"},
		{abi.StoreOp{Op: abi.StoreFsStat, Name: "dr", Key: []byte("f")}, "the harness does not do stat"},
		{abi.StoreOp{Op: abi.StoreFsMkdir, Name: "dr", Key: []byte("d")}, "the harness does not do mkdir"},
		{abi.StoreOp{Op: abi.StoreFsRename, Name: "dr", Key: []byte("a"), Value: []byte("b")}, "the harness does not do rename"},
		{abi.StoreOp{Op: 99}, "the harness does not do op(99)"},
		{abi.StoreOp{Op: abi.StoreFsWrite, Flags: abi.StoreAppend, Name: "dr", Key: []byte("f")}, "the harness does not do file_write with flags 1"},
		{abi.StoreOp{Op: abi.StoreFsRead, Flags: abi.StoreRange, Name: "dr", Key: []byte("f"), Length: 1}, "the harness does not do file_read with flags 1"},
		{abi.StoreOp{Op: abi.StoreFsRemove, Flags: abi.StoreRecursive, Name: "dr", Key: []byte("f")}, "the harness does not do remove with flags 1"},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "db", Key: []byte("k"), Value: []byte("v")}, "value must be empty"},
		{abi.StoreOp{Op: abi.StoreKVOpen, Name: "db", Key: []byte("k")}, "key must be empty"},
		{abi.StoreOp{Op: abi.StoreKVSet, Name: "db", Key: []byte("k"), Offset: 1}, "offset must be 0"},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "db", Key: []byte("k"), Length: 1}, "length must be 0"},
		{abi.StoreOp{Op: abi.StoreKVGet, Flags: 1, Name: "db", Key: []byte("k")}, "flags 1 not valid here"},
	} {
		r := s.serve(abi.AppendStoreOp(nil, &c.op), "")
		if r.GetCode() != abi.EINVAL || !strings.Contains(r.GetError(), c.want) {
			t.Errorf("%s: %s %q, want WEFT_EINVAL saying %q", abi.StoreOpName(c.op.Op), abi.ErrorName(r.GetCode()), r.GetError(), c.want)
		}
	}
	if r := s.serve([]byte{1, 2}, ""); r.GetCode() != abi.EINVAL {
		t.Errorf("a bad encoding: %s %q", abi.ErrorName(r.GetCode()), r.GetError())
	}
}
