//go:build !wasip1

// The SDK's tests run on the host, against a fake node (in a Wasm guest
// state.node is the real imports, not an interface).

package weft

import (
	"bytes"
	"testing"

	"github.com/weftos/weft/abi"
)

// fakeNode plays the node for host-side tests: a scripted mailbox, a
// recorded outbox, state, capabilities. It decodes everything the SDK
// sends with the abi decoders, so a bad encoding fails the test.
type fakeNode struct {
	t *testing.T

	inbox   []fakeMsg // what await hands out, in order; then ESTOPPED
	cur     []byte    // the current message's encoding
	curBlob []byte
	curHas  bool
	lastErr string

	sent     []abi.Request
	nextID   int64
	sendRC   int64 // when negative, send fails with it
	syncAns  *fakeMsg
	syncRC   int32    // when negative, send_and_await fails with it...
	syncMsg  *fakeMsg // ...having made this error message current, if set
	answers  []abi.Response
	respRC   int32
	state    []byte
	hasState bool
	spawned  []abi.SpawnSpec
	child    string
	caps     []abi.Capability
	dropped  []abi.Capability
	self     string
	selfN    int
	logs     []fakeLog
	reads    map[string]int // calls per read function

	// The store: storeFn answers each op (a result, or a negative code
	// with last_error's text); ops records them. A result larger than
	// the caller's buffer is kept for store_result, as the node does.
	storeFn  func(op abi.StoreOp) ([]byte, int32, string)
	storeOps []abi.StoreOp
	storeCap []int // the out capacity of each store call
	kept     []byte
	keptOK   bool

	// Deferred requests: tokens defer gave and respond_deferred has not
	// spent, and the answers it sent. deferRC, when negative, makes
	// defer fail with it.
	tokens    map[int64]bool
	lastToken int64
	deferRC   int64
	later     []fakeLater
}

type fakeLater struct {
	token int64
	resp  abi.Response
}

type fakeMsg struct {
	m    abi.Message
	blob []byte
}

type fakeLog struct {
	level int32
	msg   string
}

func newFake(t *testing.T) *fakeNode {
	return &fakeNode{t: t, nextID: 100, self: "node1@me:pkg:pub", child: "kid:pkg:pub", reads: map[string]int{}}
}

// install makes f the node for the rest of the test, with a fresh SDK
// state.
func install(t *testing.T, f *fakeNode) {
	old := sdk.node
	sdk = state{node: f, stash: make(map[uint64]*Message)}
	t.Cleanup(func() { sdk = state{node: old, stash: make(map[uint64]*Message)} })
}

// copyOut copies v to p when it fits and returns v's length: the ABI's
// read convention.
func copyOut(p, v []byte) int32 {
	if len(v) <= len(p) {
		copy(p, v)
	}
	return int32(len(v))
}

func (f *fakeNode) fail(code int32, text string) int32 {
	f.lastErr = text
	return code
}

func (f *fakeNode) makeCurrent(fm *fakeMsg) int32 {
	f.cur = abi.AppendMessage(nil, &fm.m)
	f.curBlob, f.curHas = fm.blob, fm.m.HasBlob
	return int32(len(f.cur))
}

func (f *fakeNode) await() int32 {
	if len(f.inbox) == 0 {
		return f.fail(abi.ESTOPPED, "stopping")
	}
	fm := f.inbox[0]
	f.inbox = f.inbox[1:]
	return f.makeCurrent(&fm)
}

func (f *fakeNode) messageRead(p []byte) int32 {
	f.reads["message_read"]++
	if f.cur == nil {
		return f.fail(abi.ENONE, "no current message")
	}
	return copyOut(p, f.cur)
}

func (f *fakeNode) blobRead(p []byte) int32 {
	f.reads["blob_read"]++
	if !f.curHas {
		return f.fail(abi.ENONE, "no blob")
	}
	return copyOut(p, f.curBlob)
}

func (f *fakeNode) send(req []byte) int64 {
	r, err := abi.DecodeRequest(req)
	if err != nil {
		f.t.Errorf("send: %v", err)
		return int64(f.fail(abi.EINVAL, err.Error()))
	}
	f.sent = append(f.sent, cloneRequest(r))
	if f.sendRC < 0 {
		return int64(f.fail(int32(f.sendRC), "refused by the fake"))
	}
	f.nextID++
	return f.nextID
}

func (f *fakeNode) sendAndAwait(req []byte) int32 {
	r, err := abi.DecodeRequest(req)
	if err != nil {
		f.t.Errorf("send_and_await: %v", err)
		return f.fail(abi.EINVAL, err.Error())
	}
	f.sent = append(f.sent, cloneRequest(r))
	if f.syncRC < 0 {
		if f.syncMsg != nil {
			f.makeCurrent(f.syncMsg)
		}
		return f.fail(f.syncRC, "failed in the fake")
	}
	if f.syncAns == nil {
		f.t.Fatal("send_and_await: no answer scripted")
	}
	return f.makeCurrent(f.syncAns)
}

func (f *fakeNode) respond(resp []byte) int32 {
	r, err := abi.DecodeResponse(resp)
	if err != nil {
		f.t.Errorf("respond: %v", err)
		return f.fail(abi.EINVAL, err.Error())
	}
	f.answers = append(f.answers, cloneResponse(r))
	if f.respRC < 0 {
		return f.fail(f.respRC, "refused by the fake")
	}
	return 0
}

func (f *fakeNode) stateGet(p []byte) int32 {
	f.reads["state_get"]++
	if !f.hasState {
		return f.fail(abi.ENONE, "no state")
	}
	return copyOut(p, f.state)
}

func (f *fakeNode) stateSet(v []byte) int32 {
	if len(v) > 1<<20 {
		return f.fail(abi.ELIMIT, "state larger than 1 MiB")
	}
	f.state, f.hasState = append([]byte{}, v...), true
	return 0
}

func (f *fakeNode) stateClear() int32 {
	f.state, f.hasState = nil, false
	return 0
}

func (f *fakeNode) spawn(spec, out []byte) int32 {
	s, err := abi.DecodeSpawn(spec)
	if err != nil {
		f.t.Errorf("spawn: %v", err)
		return f.fail(abi.EINVAL, err.Error())
	}
	s.Capabilities = append([]abi.Capability(nil), s.Capabilities...)
	s.Name, s.WasmPath = clone(s.Name), clone(s.WasmPath)
	f.spawned = append(f.spawned, s)
	if s.Name == "taken" {
		return f.fail(abi.EEXIST, "a process named taken exists")
	}
	return copyOut(out, []byte(f.child))
}

func (f *fakeNode) capsRead(p []byte) int32 {
	f.reads["caps_read"]++
	return copyOut(p, abi.AppendCaps(nil, f.caps))
}

func (f *fakeNode) capDrop(c []byte) int32 {
	dc, err := abi.DecodeCap(c)
	if err != nil {
		f.t.Errorf("cap_drop: %v", err)
		return f.fail(abi.EINVAL, "bad capability")
	}
	f.dropped = append(f.dropped, abi.Capability{Issuer: clone(dc.Issuer), Params: clone(dc.Params)})
	return 0
}

func (f *fakeNode) selfRead(p []byte) int32 {
	f.selfN++
	return copyOut(p, []byte(f.self))
}

func (f *fakeNode) log(level int32, msg []byte) {
	f.logs = append(f.logs, fakeLog{level, string(msg)})
}

func (f *fakeNode) lastError(p []byte) int32 {
	return copyOut(p, []byte(f.lastErr))
}

func (f *fakeNode) store(enc, out []byte) int32 {
	f.kept, f.keptOK = nil, false
	op, err := abi.DecodeStoreOp(enc)
	if err != nil {
		f.t.Errorf("store: %v", err)
		return f.fail(abi.EINVAL, err.Error())
	}
	op.Package, op.Name = clone(op.Package), clone(op.Name)
	op.Key, op.Value = bytes.Clone(op.Key), bytes.Clone(op.Value)
	f.storeOps = append(f.storeOps, op)
	f.storeCap = append(f.storeCap, len(out))
	if f.storeFn == nil {
		return f.fail(abi.EINTERNAL, "this node has no store")
	}
	res, code, detail := f.storeFn(op)
	if code < 0 {
		return f.fail(code, detail)
	}
	n := copyOut(out, res)
	if int(n) > len(out) {
		f.kept, f.keptOK = res, true
	}
	return n
}

func (f *fakeNode) storeResult(p []byte) int32 {
	f.reads["store_result"]++
	if !f.keptOK {
		return f.fail(abi.ENONE, "no kept store result")
	}
	return copyOut(p, f.kept)
}

func (f *fakeNode) deferRequest() int64 {
	if f.deferRC < 0 {
		return int64(f.fail(int32(f.deferRC), "refused by the fake"))
	}
	f.lastToken++
	if f.tokens == nil {
		f.tokens = map[int64]bool{}
	}
	f.tokens[f.lastToken] = true
	return f.lastToken
}

func (f *fakeNode) respondDeferred(token int64, resp []byte) int32 {
	r, err := abi.DecodeResponse(resp)
	if err != nil {
		f.t.Errorf("respond_deferred: %v", err)
		return f.fail(abi.EINVAL, err.Error())
	}
	if !f.tokens[token] {
		return f.fail(abi.ENOREQUEST, "no such token")
	}
	delete(f.tokens, token)
	f.later = append(f.later, fakeLater{token, cloneResponse(r)})
	return 0
}

func clone(s string) string { return string(append([]byte(nil), s...)) }

// cloneRequest copies a decoded request out of the SDK's buffer, which
// the SDK reuses.
func cloneRequest(r abi.Request) abi.Request {
	r.Target, r.Metadata = clone(r.Target), clone(r.Metadata)
	r.Body = append([]byte(nil), r.Body...)
	r.Context = append([]byte(nil), r.Context...)
	r.Capabilities = cloneCaps(r.Capabilities)
	if r.Blob != nil {
		r.Blob = &abi.Blob{Mime: clone(r.Blob.Mime), Bytes: append([]byte(nil), r.Blob.Bytes...)}
	}
	return r
}

func cloneResponse(r abi.Response) abi.Response {
	r.Metadata = clone(r.Metadata)
	r.Body = append([]byte(nil), r.Body...)
	r.Capabilities = cloneCaps(r.Capabilities)
	if r.Blob != nil {
		r.Blob = &abi.Blob{Mime: clone(r.Blob.Mime), Bytes: append([]byte(nil), r.Blob.Bytes...)}
	}
	return r
}

func cloneCaps(cs []abi.Capability) []abi.Capability {
	var out []abi.Capability
	for _, c := range cs {
		out = append(out, abi.Capability{Issuer: clone(c.Issuer), Params: clone(c.Params)})
	}
	return out
}

// request and response script messages for the inbox.
func request(id uint64, from string, body string, wants bool) fakeMsg {
	m := abi.Message{Kind: abi.KindRequest, ID: id, Source: from, Target: "node1@me:pkg:pub", Body: []byte(body), WantsResponse: wants}
	if wants {
		m.ExpectsResponse = 5e9
	}
	return fakeMsg{m: m}
}

func response(id uint64, from string, body string) fakeMsg {
	return fakeMsg{m: abi.Message{Kind: abi.KindResponse, ID: id, Source: from, Target: "node1@me:pkg:pub", Body: []byte(body)}}
}

func sendError(id uint64, target string, kind uint8, context string) fakeMsg {
	return fakeMsg{m: abi.Message{Kind: abi.KindError, ErrorKind: kind, ID: id, Source: "node1@me:pkg:pub", Target: target,
		Context: []byte(context), ErrorDetail: "it failed"}}
}
