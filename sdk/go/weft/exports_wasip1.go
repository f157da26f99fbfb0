//go:build wasip1

package weft

// weftABIv1 declares ABI version 1 (docs/abi.md); the node never calls it.
//
//go:wasmexport weft_abi_v1
func weftABIv1() {}

// weftInit is the process: the node calls it once and the process lives
// as long as it runs. It runs the body registered with Run or Serve.
//
//go:wasmexport init
func weftInit() int32 { return sdk.main() }
