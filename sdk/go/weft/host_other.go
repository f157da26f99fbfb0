//go:build !wasip1

package weft

import "github.com/weftos/weft/abi"

// Outside a Wasm guest there is no node: every call fails with
// EINTERNAL, so host builds of code that uses the SDK compile and fail
// plainly when run.
func init() { sdk.node = absent{} }

// nodeImpl is the type of state.node outside a Wasm guest: the interface,
// which tests fill with fakes.
type nodeImpl = node

type absent struct{}

const absentText = "not running inside a weft node (build with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared)"

func (absent) await() int32              { return abi.EINTERNAL }
func (absent) messageRead([]byte) int32  { return abi.EINTERNAL }
func (absent) blobRead([]byte) int32     { return abi.EINTERNAL }
func (absent) send([]byte) int64         { return int64(abi.EINTERNAL) }
func (absent) sendAndAwait([]byte) int32 { return abi.EINTERNAL }
func (absent) respond([]byte) int32      { return abi.EINTERNAL }
func (absent) stateGet([]byte) int32     { return abi.EINTERNAL }
func (absent) stateSet([]byte) int32     { return abi.EINTERNAL }
func (absent) stateClear() int32         { return abi.EINTERNAL }
func (absent) spawn(_, _ []byte) int32   { return abi.EINTERNAL }
func (absent) capsRead([]byte) int32     { return abi.EINTERNAL }
func (absent) capDrop([]byte) int32      { return abi.EINTERNAL }
func (absent) selfRead([]byte) int32     { return abi.EINTERNAL }
func (absent) log(int32, []byte)         {}
func (absent) store(_, _ []byte) int32   { return abi.EINTERNAL }
func (absent) storeResult([]byte) int32  { return abi.EINTERNAL }
func (absent) deferRequest() int64       { return int64(abi.EINTERNAL) }

func (absent) respondDeferred(int64, []byte) int32 { return abi.EINTERNAL }
func (absent) lastError(p []byte) int32 {
	if len(p) >= len(absentText) {
		copy(p, absentText)
	}
	return int32(len(absentText))
}
