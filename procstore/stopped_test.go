package procstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
)

// TestStoppedHandleDoesNothing: once a process's incarnation has stopped,
// a store call made with its handle (a guest still running for a moment
// after await returned WEFT_ESTOPPED) fails with WEFT_ESTOPPED and
// changes nothing — not even kv_open or drive_open, which need no
// capability.
func TestStoppedHandleDoesNothing(t *testing.T) {
	e := newEnv(t, 0)
	a := e.agent(t, "a:notes:examples")
	e.mustCall(t, a, abi.StoreOp{Op: abi.StoreKVOpen, Name: "index"})
	var h *kernel.Handle
	a.do(func(hh *kernel.Handle) { h = hh })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.k.Kill(ctx, a.id); err != nil {
		t.Fatal(err)
	}
	for _, op := range []abi.StoreOp{
		{Op: abi.StoreKVSet, Name: "index", Key: []byte("k"), Value: []byte("v")},
		{Op: abi.StoreKVOpen, Name: "late"},
		{Op: abi.StoreDrOpen, Name: "late"},
		{Op: abi.StoreKVGet, Name: "index", Key: []byte("k")},
	} {
		_, err := e.svc.Call(h, &op, nil)
		wantCode(t, err, abi.ESTOPPED, abi.StoreOpName(op.Op))
	}
	if _, ok, err := e.st.KVGet("notes:examples", "index", []byte("k")); ok || err != nil {
		t.Errorf("kv_set after the stop landed (%v, %v)", ok, err)
	}
	dbs, err := e.st.DBs("notes:examples")
	if err != nil || len(dbs) != 1 {
		t.Errorf("databases after a kv_open made when stopped: %q, %v; want only index", dbs, err)
	}
	drives, err := e.drives.List("notes:examples")
	if err != nil || len(drives) != 0 {
		t.Errorf("drives after a drive_open made when stopped: %q, %v; want none", drives, err)
	}
}
