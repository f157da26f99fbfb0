//go:build wasip1

package weft

import "unsafe"

// The host functions of import module "weft" (docs/abi.md). Pointers are
// offsets into this module's memory; Go's collector does not move
// objects, and a slice passed to a call stays alive for the call.

//go:wasmimport weft await
func weftAwait() int32

//go:wasmimport weft message_read
func weftMessageRead(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft blob_read
func weftBlobRead(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft send
func weftSend(ptr unsafe.Pointer, len uint32) int64

//go:wasmimport weft send_and_await
func weftSendAndAwait(ptr unsafe.Pointer, len uint32) int32

//go:wasmimport weft respond
func weftRespond(ptr unsafe.Pointer, len uint32) int32

//go:wasmimport weft state_get
func weftStateGet(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft state_set
func weftStateSet(ptr unsafe.Pointer, len uint32) int32

//go:wasmimport weft state_clear
func weftStateClear() int32

//go:wasmimport weft spawn
func weftSpawn(ptr unsafe.Pointer, len uint32, out unsafe.Pointer, outcap uint32) int32

//go:wasmimport weft caps_read
func weftCapsRead(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft cap_drop
func weftCapDrop(ptr unsafe.Pointer, len uint32) int32

//go:wasmimport weft self_read
func weftSelfRead(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft log
func weftLog(level int32, ptr unsafe.Pointer, len uint32)

//go:wasmimport weft last_error
func weftLastError(ptr unsafe.Pointer, cap uint32) int32

//go:wasmimport weft store
func weftStore(ptr unsafe.Pointer, len uint32, out unsafe.Pointer, outcap uint32) int32

//go:wasmimport weft store_result
func weftStoreResult(ptr unsafe.Pointer, cap uint32) int32

// ABI version 2 (exports_wasip1.go declares it). The linker keeps an
// import only when something calls it, so a module that never defers a
// request imports neither.

//go:wasmimport weft defer
func weftDefer() int64

//go:wasmimport weft respond_deferred
func weftRespondDeferred(token int64, ptr unsafe.Pointer, len uint32) int32

func init() { sdk.node = &wasmNode{} }

// nodeImpl is the type of state.node: in a Wasm guest the real imports,
// called directly, without the node interface's dynamic call (a call more
// per host call, and every call in a guest pays the CPU guard's check).
type nodeImpl = *wasmNode

var _ node = (*wasmNode)(nil)

// wasmNode is the node reached through the real imports; state.node holds
// a pointer to one (nodeImpl), and its methods are small enough to be
// inlined.
type wasmNode struct{}

// ptr returns the address of p's first byte and p's length. For an empty
// slice the address is nil or somewhere in the Go heap, inside this
// module's memory either way, which the node accepts with length 0.
func ptr(p []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(p)), uint32(len(p))
}

func (*wasmNode) await() int32                  { return weftAwait() }
func (*wasmNode) messageRead(p []byte) int32    { return weftMessageRead(ptr(p)) }
func (*wasmNode) blobRead(p []byte) int32       { return weftBlobRead(ptr(p)) }
func (*wasmNode) send(req []byte) int64         { return weftSend(ptr(req)) }
func (*wasmNode) sendAndAwait(req []byte) int32 { return weftSendAndAwait(ptr(req)) }
func (*wasmNode) respond(resp []byte) int32     { return weftRespond(ptr(resp)) }
func (*wasmNode) stateGet(p []byte) int32       { return weftStateGet(ptr(p)) }
func (*wasmNode) stateSet(v []byte) int32       { return weftStateSet(ptr(v)) }
func (*wasmNode) stateClear() int32             { return weftStateClear() }
func (*wasmNode) capsRead(p []byte) int32       { return weftCapsRead(ptr(p)) }
func (*wasmNode) capDrop(c []byte) int32        { return weftCapDrop(ptr(c)) }
func (*wasmNode) selfRead(p []byte) int32       { return weftSelfRead(ptr(p)) }
func (*wasmNode) lastError(p []byte) int32      { return weftLastError(ptr(p)) }

func (*wasmNode) spawn(spec, out []byte) int32 {
	sp, sn := ptr(spec)
	op, on := ptr(out)
	return weftSpawn(sp, sn, op, on)
}

func (*wasmNode) storeResult(p []byte) int32 { return weftStoreResult(ptr(p)) }

func (*wasmNode) deferRequest() int64 { return weftDefer() }

func (*wasmNode) respondDeferred(token int64, resp []byte) int32 {
	p, n := ptr(resp)
	return weftRespondDeferred(token, p, n)
}

func (*wasmNode) store(op, out []byte) int32 {
	sp, sn := ptr(op)
	op2, on := ptr(out)
	return weftStore(sp, sn, op2, on)
}

func (*wasmNode) log(level int32, msg []byte) {
	p, n := ptr(msg)
	weftLog(level, p, n)
}
