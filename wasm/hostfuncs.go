package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero/api"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

type hostFunctionSpec struct {
	name            string
	params, results []api.ValueType
	fn              func(in *inst, stack []uint64)
	// version is the ABI version that added the function: a module may
	// import it only if it declares that version or a later one
	// (checkImports).
	version int
}

func valueBytes(vs []api.ValueType) []byte {
	if len(vs) == 0 {
		return nil
	}
	return append([]byte(nil), vs...)
}

// hostFunctionSpecs is import module "weft" of docs/abi.md, in the order
// of its tables.
var hostFunctionSpecs = []hostFunctionSpec{
	{"await", nil, []api.ValueType{i32}, hAwait, 1},
	{"message_read", []api.ValueType{i32, i32}, []api.ValueType{i32}, hMessageRead, 1},
	{"blob_read", []api.ValueType{i32, i32}, []api.ValueType{i32}, hBlobRead, 1},
	{"send", []api.ValueType{i32, i32}, []api.ValueType{i64}, hSend, 1},
	{"send_and_await", []api.ValueType{i32, i32}, []api.ValueType{i32}, hSendAndAwait, 1},
	{"respond", []api.ValueType{i32, i32}, []api.ValueType{i32}, hRespond, 1},
	{"state_get", []api.ValueType{i32, i32}, []api.ValueType{i32}, hStateGet, 1},
	{"state_set", []api.ValueType{i32, i32}, []api.ValueType{i32}, hStateSet, 1},
	{"state_clear", nil, []api.ValueType{i32}, hStateClear, 1},
	{"spawn", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hSpawn, 1},
	{"caps_read", []api.ValueType{i32, i32}, []api.ValueType{i32}, hCapsRead, 1},
	{"cap_drop", []api.ValueType{i32, i32}, []api.ValueType{i32}, hCapDrop, 1},
	{"self_read", []api.ValueType{i32, i32}, []api.ValueType{i32}, hSelfRead, 1},
	{"log", []api.ValueType{i32, i32, i32}, nil, hLog, 1},
	{"last_error", []api.ValueType{i32, i32}, []api.ValueType{i32}, hLastError, 1},
	{"store", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, hStore, 1},
	{"store_result", []api.ValueType{i32, i32}, []api.ValueType{i32}, hStoreResult, 1},
	{"defer", nil, []api.ValueType{i64}, hDefer, 2},
	{"respond_deferred", []api.ValueType{i64, i32, i32}, []api.ValueType{i32}, hRespondDeferred, 2},
}

func hostFunctions() []extism.HostFunction {
	fs := make([]extism.HostFunction, 0, len(hostFunctionSpecs))
	for _, s := range hostFunctionSpecs {
		f := extism.NewHostFunctionWithStack(s.name, wrap(s.name, s.fn), s.params, s.results)
		f.SetNamespace("weft")
		fs = append(fs, f)
	}
	return fs
}

// errGuardKilled unwinds a guest the CPU guard killed just as it called
// into the node.
var errGuardKilled = errors.New("wasm: killed by the CPU guard")

// wrap makes a host function of fn: it finds the instance, marks it as in
// host code for the CPU guard, and turns a panic into the death of that
// process alone.
func wrap(name string, fn func(in *inst, stack []uint64)) extism.HostFunctionStackCallback {
	return func(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
		in, _ := ctx.Value(instKey{}).(*inst)
		if in == nil {
			panic("wasm: weft." + name + " called outside a weft instance")
		}
		if in.guestSince.Swap(0) == guestKilled {
			in.guestSince.Store(guestKilled)
			panic(errGuardKilled)
		}
		defer in.leave(name)
		fn(in, stack)
	}
}

// leave marks the instance as back in guest code; after a panic in a host
// function it kills the process and unwinds its guest (wazero reports
// the panic as the error of the init call).
func (in *inst) leave(name string) {
	if v := recover(); v != nil {
		in.kill(fmt.Errorf("wasm: %s: host function weft.%s panicked: %v", in.mod.name, name, v))
		panic(v)
	}
	in.guestSince.Store(in.host.epoch.Load())
}

// ---- results and errors

func ret32(stack []uint64, v int32) { stack[0] = uint64(uint32(v)) }

// fail records err as the last error and returns its code.
func (in *inst) fail(code int32, err error) int32 {
	in.lastErr = err.Error()
	return code
}

func (in *inst) einval(format string, args ...any) int32 {
	in.lastErr = fmt.Sprintf(format, args...)
	return abi.EINVAL
}

// errno maps a kernel error to its code.
func (in *inst) errno(err error) int32 {
	var se *kernel.SendError
	var ne *kernel.NameError
	code := abi.EINTERNAL
	switch {
	case errors.As(err, &se):
		code = abi.SendErrorCode(uint8(se.Kind))
	case errors.Is(err, kernel.ErrStopped), errors.Is(err, kernel.ErrClosed):
		code = abi.ESTOPPED
	case errors.Is(err, kernel.ErrNoRequest):
		code = abi.ENOREQUEST
	case errors.Is(err, kernel.ErrNoState):
		code = abi.ENONE
	case errors.Is(err, kernel.ErrLimit):
		code = abi.ELIMIT
	case errors.Is(err, kernel.ErrNotHeld), errors.Is(err, kernel.ErrNotPermitted):
		code = abi.EPERM
	case errors.Is(err, kernel.ErrNotFound):
		code = abi.ENOTFOUND
	case errors.Is(err, kernel.ErrExists):
		code = abi.EEXIST
	case errors.Is(err, kernel.ErrInvalid), errors.As(err, &ne):
		code = abi.EINVAL
	default:
		in.h.Log(slog.LevelError, "node error: "+err.Error())
	}
	return in.fail(code, err)
}

// ---- guest memory

// view returns the guest's bytes [ptr, ptr+n) without copying; the view
// is valid until the guest runs again.
func (in *inst) view(fn string, ptr, n uint32) ([]byte, bool) {
	b, ok := in.mem.Read(ptr, n)
	if !ok {
		in.lastErr = fmt.Sprintf("weft.%s: pointer %d and length %d lie outside the guest's memory of %d bytes", fn, ptr, n, in.mem.Size())
		return nil, false
	}
	return b, true
}

// copyOut implements the "copy at most cap bytes, return the full length"
// convention.
func (in *inst) copyOut(fn string, ptr, capacity uint32, data []byte) int32 {
	dst, ok := in.view(fn, ptr, capacity)
	if !ok {
		return abi.EINVAL
	}
	if len(data) > math.MaxInt32 {
		return in.einval("weft.%s: %d bytes do not fit an i32 length", fn, len(data))
	}
	if len(data) <= len(dst) {
		copy(dst, data)
	}
	return int32(len(data))
}

// input copies the guest's bytes [ptr, ptr+n) into a fresh buffer: the
// kernel keeps what is decoded from it.
func (in *inst) input(fn string, ptr, n uint32) ([]byte, bool) {
	v, ok := in.view(fn, ptr, n)
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// ---- conversions

func (in *inst) target(s string) (kernel.Address, error) {
	if s == in.tgtText && s != "" {
		return in.tgtAddr, nil
	}
	s = string([]byte(s)) // the cache outlives the request buffer
	a, err := kernel.ParseAddress(s)
	if err != nil {
		return kernel.Address{}, err
	}
	in.tgtText, in.tgtAddr = s, a
	return a, nil
}

func convertCaps(cs []abi.Capability) ([]kernel.Capability, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	out := make([]kernel.Capability, len(cs))
	for i, c := range cs {
		a, err := kernel.ParseAddress(c.Issuer)
		if err != nil {
			return nil, fmt.Errorf("capability %d: issuer: %w", i, err)
		}
		out[i] = kernel.Capability{Issuer: a, Params: c.Params}
	}
	return out, nil
}

func addrText(a kernel.Address, cacheAddr *kernel.Address, cacheText *string) string {
	if a == *cacheAddr && *cacheText != "" {
		return *cacheText
	}
	*cacheAddr, *cacheText = a, a.String()
	return *cacheText
}

// setCurrent makes m the current message and returns its encoded length.
func (in *inst) setCurrent(m *kernel.Message) int32 {
	am := &in.am
	*am = abi.Message{
		Kind:            uint8(m.Kind),
		Inherit:         m.Inherit,
		WantsResponse:   m.WantsResponse(),
		ID:              m.ID,
		ExpectsResponse: uint64(m.ExpectsResponse),
		Source:          addrText(m.Source(), &in.srcAddr, &in.srcText),
		Target:          addrText(m.Target(), &in.dstAddr, &in.dstText),
		Body:            m.Body,
		Metadata:        m.Metadata,
		Context:         m.Context(),
	}
	if m.Blob != nil {
		am.HasBlob, am.BlobMime, am.BlobLen = true, m.Blob.Mime, uint32(len(m.Blob.Bytes))
	}
	if m.Kind == kernel.KindError && m.Error != nil {
		am.ErrorKind = uint8(m.Error.Kind)
		// Strings reach guests as valid UTF-8 (docs/abi.md); a detail
		// may quote what another node or a driver said.
		am.ErrorDetail = strings.ToValidUTF8(m.Error.Error(), "\uFFFD")
		am.Target = m.Error.Target.String()
	}
	if len(m.Capabilities) > 0 {
		am.Capabilities = make([]abi.Capability, len(m.Capabilities))
		for i, c := range m.Capabilities {
			am.Capabilities[i] = abi.Capability{Issuer: c.Issuer.String(), Params: c.Params}
		}
	}
	in.msg = abi.AppendMessage(in.msg[:0], am)
	in.am = abi.Message{}
	in.hasMsg, in.blob = true, m.Blob
	if len(in.msg) > math.MaxInt32 {
		return in.einval("message of %d bytes does not fit an i32 length", len(in.msg))
	}
	return int32(len(in.msg))
}

// readRequest decodes the request at [ptr, ptr+n) into in.req.
func (in *inst) readRequest(fn string, ptr, n uint32) int32 {
	b, ok := in.input(fn, ptr, n)
	if !ok {
		return abi.EINVAL
	}
	q, err := abi.DecodeRequest(b)
	if err != nil {
		return in.einval("weft.%s: %v", fn, err)
	}
	if q.ExpectsResponse > math.MaxInt64 {
		return in.einval("weft.%s: expects response %d ns is out of range", fn, q.ExpectsResponse)
	}
	t, err := in.target(q.Target)
	if err != nil {
		return in.einval("weft.%s: target: %v", fn, err)
	}
	caps, err := convertCaps(q.Capabilities)
	if err != nil {
		return in.einval("weft.%s: %v", fn, err)
	}
	in.req = kernel.Request{
		Target:          t,
		Inherit:         q.Inherit,
		ExpectsResponse: time.Duration(q.ExpectsResponse),
		Body:            q.Body,
		Metadata:        q.Metadata,
		Context:         q.Context,
		Capabilities:    caps,
	}
	if q.Blob != nil {
		in.req.Blob = &kernel.Blob{Mime: q.Blob.Mime, Bytes: q.Blob.Bytes}
	}
	return 0
}

// readResponse decodes the response at [ptr, ptr+n) into in.resp.
func (in *inst) readResponse(fn string, ptr, n uint32) int32 {
	b, ok := in.input(fn, ptr, n)
	if !ok {
		return abi.EINVAL
	}
	p, err := abi.DecodeResponse(b)
	if err != nil {
		return in.einval("weft.%s: %v", fn, err)
	}
	caps, err := convertCaps(p.Capabilities)
	if err != nil {
		return in.einval("weft.%s: %v", fn, err)
	}
	in.resp = kernel.Response{Inherit: p.Inherit, Body: p.Body, Metadata: p.Metadata, Capabilities: caps}
	if p.Blob != nil {
		in.resp.Blob = &kernel.Blob{Mime: p.Blob.Mime, Bytes: p.Blob.Bytes}
	}
	return 0
}

// ---- the host functions

func hAwait(in *inst, stack []uint64) {
	m, err := in.h.Await()
	if err != nil {
		ret32(stack, in.errno(err))
		return
	}
	ret32(stack, in.setCurrent(m))
}

func hMessageRead(in *inst, stack []uint64) {
	if !in.hasMsg {
		// Nothing is current yet: an empty copy, length 0.
		ret32(stack, in.copyOut("message_read", uint32(stack[0]), uint32(stack[1]), nil))
		return
	}
	ret32(stack, in.copyOut("message_read", uint32(stack[0]), uint32(stack[1]), in.msg))
}

func hBlobRead(in *inst, stack []uint64) {
	if _, ok := in.view("blob_read", uint32(stack[0]), uint32(stack[1])); !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	if in.blob == nil {
		ret32(stack, in.fail(abi.ENONE, errors.New("weft.blob_read: the current message has no blob")))
		return
	}
	ret32(stack, in.copyOut("blob_read", uint32(stack[0]), uint32(stack[1]), in.blob.Bytes))
}

func hSend(in *inst, stack []uint64) {
	if code := in.readRequest("send", uint32(stack[0]), uint32(stack[1])); code != 0 {
		stack[0] = uint64(int64(code))
		return
	}
	id, err := in.h.Send(&in.req)
	in.req = kernel.Request{}
	if err != nil {
		stack[0] = uint64(int64(in.errno(err)))
		return
	}
	stack[0] = id
}

func hSendAndAwait(in *inst, stack []uint64) {
	if code := in.readRequest("send_and_await", uint32(stack[0]), uint32(stack[1])); code != 0 {
		ret32(stack, code)
		return
	}
	ans, err := in.h.SendAndAwait(&in.req)
	in.req = kernel.Request{}
	if ans != nil {
		n := in.setCurrent(ans)
		if err == nil {
			ret32(stack, n)
			return
		}
	}
	if err != nil {
		ret32(stack, in.errno(err))
		return
	}
	ret32(stack, in.fail(abi.EINTERNAL, errors.New("weft.send_and_await: no answer and no error")))
}

func hRespond(in *inst, stack []uint64) {
	if code := in.readResponse("respond", uint32(stack[0]), uint32(stack[1])); code != 0 {
		ret32(stack, code)
		return
	}
	err := in.h.Respond(&in.resp)
	in.resp = kernel.Response{}
	if err != nil {
		ret32(stack, in.errno(err))
		return
	}
	ret32(stack, 0)
}

// hDefer takes the request being handled off the guest's hands and
// returns a token for respond_deferred to answer it with, later.
func hDefer(in *inst, stack []uint64) {
	d, err := in.h.Defer()
	if err != nil {
		stack[0] = uint64(int64(in.errno(err)))
		return
	}
	if in.deferred == nil {
		in.deferred = make(map[int64]*kernel.Deferred)
	}
	in.lastToken++
	in.deferred[in.lastToken] = d
	stack[0] = uint64(in.lastToken)
}

// hRespondDeferred answers the request a token of defer stands for. The
// token is spent once the answer is sent; an answer the kernel refuses
// (too large, a capability the process cannot attach) leaves it good, as
// the request is still owed.
func hRespondDeferred(in *inst, stack []uint64) {
	token := int64(stack[0])
	if code := in.readResponse("respond_deferred", uint32(stack[1]), uint32(stack[2])); code != 0 {
		ret32(stack, code)
		return
	}
	d, ok := in.deferred[token]
	if !ok {
		in.resp = kernel.Response{}
		why := "defer never returned it in this instance"
		if token > 0 && token <= in.lastToken {
			why = "its request was answered already"
		}
		ret32(stack, in.fail(abi.ENOREQUEST, fmt.Errorf("weft.respond_deferred: token %d: %s", token, why)))
		return
	}
	err := d.Respond(&in.resp)
	in.resp = kernel.Response{}
	if err == nil || errors.Is(err, kernel.ErrNoRequest) {
		delete(in.deferred, token)
	}
	if err != nil {
		ret32(stack, in.errno(err))
		return
	}
	ret32(stack, 0)
}

func hStateGet(in *inst, stack []uint64) {
	ptr, capacity := uint32(stack[0]), uint32(stack[1])
	if _, ok := in.view("state_get", ptr, capacity); !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	if !in.stateKnown {
		v, err := in.h.GetState()
		switch {
		case errors.Is(err, kernel.ErrNoState):
			in.state, in.stateOK = nil, false
		case err != nil:
			ret32(stack, in.errno(err))
			return
		default:
			in.state, in.stateOK = v, true
		}
		in.stateKnown = true
	}
	if !in.stateOK {
		ret32(stack, in.fail(abi.ENONE, errors.New("weft.state_get: the process has no state")))
		return
	}
	ret32(stack, in.copyOut("state_get", ptr, capacity, in.state))
}

func hStateSet(in *inst, stack []uint64) {
	b, ok := in.input("state_set", uint32(stack[0]), uint32(stack[1]))
	if !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	if err := in.h.SetState(b); err != nil {
		in.stateKnown = false
		ret32(stack, in.errno(err))
		return
	}
	in.state, in.stateOK, in.stateKnown = b, true, true
	ret32(stack, 0)
}

func hStateClear(in *inst, stack []uint64) {
	if err := in.h.ClearState(); err != nil {
		in.stateKnown = false
		ret32(stack, in.errno(err))
		return
	}
	in.state, in.stateOK, in.stateKnown = nil, false, true
	ret32(stack, 0)
}

func hSpawn(in *inst, stack []uint64) {
	out, outcap := uint32(stack[2]), uint32(stack[3])
	if _, ok := in.view("spawn", out, outcap); !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	b, ok := in.input("spawn", uint32(stack[0]), uint32(stack[1]))
	if !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	s, err := abi.DecodeSpawn(b)
	if err != nil {
		ret32(stack, in.einval("weft.spawn: %v", err))
		return
	}
	caps, err := convertCaps(s.Capabilities)
	if err != nil {
		ret32(stack, in.einval("weft.spawn: %v", err))
		return
	}
	if in.opts.Resolve == nil {
		ret32(stack, in.fail(abi.ENOTFOUND, fmt.Errorf("weft.spawn: %s: this process cannot spawn (no module resolver)", s.WasmPath)))
		return
	}
	mod, err := in.opts.Resolve(s.WasmPath)
	if err != nil {
		ret32(stack, in.fail(abi.ENOTFOUND, fmt.Errorf("weft.spawn: %s: %w", s.WasmPath, err)))
		return
	}
	onExit := kernel.OnExit{Kind: kernel.OnExitNone}
	if s.OnExit == abi.OnExitRestart {
		onExit.Kind = kernel.OnExitRestart
	}
	// The child's initial memory is reserved here, so that a spawn past
	// the guest memory budgets fails at the call; the child's first
	// instance takes the reservation over.
	res, err := in.host.budget.reserve(in.h.ID().PackageId(), mod.initial)
	if err != nil {
		ret32(stack, in.fail(abi.ELIMIT, fmt.Errorf("weft.spawn: %s: %w", s.WasmPath, err)))
		return
	}
	id, err := in.h.Spawn(kernel.ChildSpec{
		Name:         s.Name,
		Process:      &process{mod: mod, opts: *in.opts, res: res},
		OnExit:       onExit,
		Public:       s.Public,
		Capabilities: caps,
	})
	if err != nil {
		res.cancel()
		ret32(stack, in.errno(err))
		return
	}
	in.keepSpawned(res)
	ret32(stack, in.copyOut("spawn", out, outcap, []byte(id.String())))
}

func hCapsRead(in *inst, stack []uint64) {
	cs := in.h.Capabilities()
	in.scratch = in.scratch[:0]
	in.scratch = binaryAppendCaps(in.scratch, cs)
	ret32(stack, in.copyOut("caps_read", uint32(stack[0]), uint32(stack[1]), in.scratch))
}

func binaryAppendCaps(b []byte, cs []kernel.Capability) []byte {
	acs := make([]abi.Capability, len(cs))
	for i, c := range cs {
		acs[i] = abi.Capability{Issuer: c.Issuer.String(), Params: c.Params}
	}
	return abi.AppendCaps(b, acs)
}

// hCapDrop drops one capability, encoded as str issuer, str params.
func hCapDrop(in *inst, stack []uint64) {
	b, ok := in.input("cap_drop", uint32(stack[0]), uint32(stack[1]))
	if !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	ac, err := abi.DecodeCap(b)
	if err != nil {
		ret32(stack, in.einval("weft.cap_drop: %v", err))
		return
	}
	cs, err := convertCaps([]abi.Capability{ac})
	if err != nil {
		ret32(stack, in.einval("weft.cap_drop: %v", err))
		return
	}
	if err := in.h.Drop(cs[0]); err != nil {
		if errors.Is(err, kernel.ErrNotHeld) {
			ret32(stack, in.fail(abi.ENOTFOUND, err))
			return
		}
		ret32(stack, in.errno(err))
		return
	}
	ret32(stack, 0)
}

func hSelfRead(in *inst, stack []uint64) {
	if in.self == "" {
		in.self = in.h.Address().String()
	}
	ret32(stack, in.copyOut("self_read", uint32(stack[0]), uint32(stack[1]), []byte(in.self)))
}

func hLog(in *inst, stack []uint64) {
	level := int32(uint32(stack[0]))
	b, ok := in.view("log", uint32(stack[1]), uint32(stack[2]))
	if !ok {
		return
	}
	var l slog.Level
	switch {
	case level <= 0:
		l = slog.LevelDebug
	case level == 1:
		l = slog.LevelInfo
	case level == 2:
		l = slog.LevelWarn
	default:
		l = slog.LevelError
	}
	in.h.Log(l, string(b))
}

func hLastError(in *inst, stack []uint64) {
	ret32(stack, in.copyOut("last_error", uint32(stack[0]), uint32(stack[1]), []byte(in.lastErr)))
}

// hStore performs one store operation. The op is decoded from a view of
// guest memory, not a copy: the guest is blocked in this call, and the
// store copies what it keeps.
func hStore(in *inst, stack []uint64) {
	in.storeRes = nil
	b, ok := in.view("store", uint32(stack[0]), uint32(stack[1]))
	if !ok {
		ret32(stack, abi.EINVAL)
		return
	}
	op, err := abi.DecodeStoreOp(b)
	if err != nil {
		ret32(stack, in.fail(abi.EINVAL, err))
		return
	}
	svc := in.host.store.Load()
	if svc == nil {
		ret32(stack, in.fail(abi.EINTERNAL, errors.New("weft.store: this node has no store")))
		return
	}
	res, err := svc.Call(in.h, &op, in.storeBuf[:0])
	if cap(res) <= maxKeptStoreBuf {
		in.storeBuf = res
	}
	if err != nil {
		code := procstore.Code(err)
		if code == abi.EINTERNAL {
			in.h.Log(slog.LevelError, "node error: "+err.Error())
		}
		ret32(stack, in.fail(code, err))
		return
	}
	n := in.copyOut("store", uint32(stack[2]), uint32(stack[3]), res)
	if n > 0 && uint32(n) > uint32(stack[3]) {
		in.storeRes = res
		in.storeBuf = nil // storeRes owns it now
	}
	ret32(stack, n)
}

// maxKeptStoreBuf bounds the result buffer an instance keeps between
// store calls (a 1 MiB read's is kept; a 64 MiB one's is not).
const maxKeptStoreBuf = 2 << 20

func hStoreResult(in *inst, stack []uint64) {
	if in.storeRes == nil {
		ret32(stack, in.fail(abi.ENONE, errors.New("weft.store_result: the last store call left no result to read")))
		return
	}
	ret32(stack, in.copyOut("store_result", uint32(stack[0]), uint32(stack[1]), in.storeRes))
}
