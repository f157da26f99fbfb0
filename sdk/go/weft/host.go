package weft

// node is the import module "weft" as Go sees it: one method per host
// function of docs/abi.md, with each (pointer, length) pair as a slice.
// Results are the ABI's: a length or id when >= 0, an error code when
// negative (the last error's sentence then comes from lastError). The
// wasip1 build talks to the real imports; tests install a fake.
type node interface {
	await() int32
	messageRead(p []byte) int32
	blobRead(p []byte) int32
	send(req []byte) int64
	sendAndAwait(req []byte) int32
	respond(resp []byte) int32
	stateGet(p []byte) int32
	stateSet(v []byte) int32
	stateClear() int32
	spawn(spec, out []byte) int32
	capsRead(p []byte) int32
	capDrop(cap []byte) int32
	selfRead(p []byte) int32
	log(level int32, msg []byte)
	lastError(p []byte) int32
	store(op, out []byte) int32
	storeResult(p []byte) int32

	// ABI version 2. deferRequest is the host function defer (a Go
	// keyword).
	deferRequest() int64
	respondDeferred(token int64, resp []byte) int32
}
