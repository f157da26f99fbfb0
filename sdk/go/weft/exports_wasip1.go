//go:build wasip1

package weft

// weftABIv1 and weftABIv2 declare ABI versions 1 and 2 (docs/abi.md);
// the node never calls them. Declaring both costs nothing and keeps a
// module that does not defer requests (and so imports nothing of version
// 2) running on a node that speaks version 1 only; one that does is
// refused there for its import, naming it.
//
//go:wasmexport weft_abi_v1
func weftABIv1() {}

//go:wasmexport weft_abi_v2
func weftABIv2() {}

// weftInit is the process: the node calls it once and the process lives
// as long as it runs. It runs the body registered with Run or Serve.
//
//go:wasmexport init
func weftInit() int32 { return sdk.main() }
