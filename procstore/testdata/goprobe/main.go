//go:build wasip1

// Command goprobe performs store operations through the Go SDK's typed
// API (weft.KV, weft.Drive, …) for procstore's tests and benchmarks.
//
//	body empty        → answer an empty body, metadata "ok" (capabilities
//	                    attached to the request are the probe's now)
//	body an abi.StoreOp → do it once, or N times when the metadata is a
//	                    decimal N ≥ 1, and answer the last result:
//	                    body = the result (abi's encoding; empty when
//	                    the op has none), metadata "ok"; or an empty
//	                    body and metadata "error CODE DETAIL" (CODE the
//	                    ABI code, DETAIL the node's last_error)
//
// An op the typed API cannot say (an unknown op or flags, a field the op
// does not use, a list of another package's names, a transaction that
// does not decode) goes to the node as it is, through weft.StoreCall,
// so that the node refuses it as it would any guest's.
package main

import (
	"errors"
	"math"
	"strconv"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/sdk/go/weft"
)

func init() { weft.Run(run) }

func main() {}

func run() error {
	var p probe
	for {
		msg, err := weft.Await()
		if err != nil {
			return err // ErrStopped: a clean exit
		}
		if !msg.IsRequest() || !msg.WantsResponse {
			continue
		}
		resp := p.handle(msg)
		if err := msg.Respond(resp); err != nil {
			weft.Logf(weft.LevelWarn, "goprobe: answer %s: %v", msg.Source, err)
		}
	}
}

// probe keeps buffers across requests: results are re-encoded into out,
// directory entries converted through entries.
type probe struct {
	val     []byte // kv_get results
	out     []byte
	entries []abi.DirEntry
}

func (p *probe) handle(msg *weft.Message) weft.Response {
	if len(msg.Body) == 0 {
		return weft.Response{Metadata: "ok"}
	}
	op, err := abi.DecodeStoreOp(msg.Body)
	if err != nil {
		return failure(abi.EINVAL, "probe: "+err.Error())
	}
	n := 1
	if msg.Metadata != "" {
		if n, err = strconv.Atoi(msg.Metadata); err != nil || n < 1 {
			return failure(abi.EINVAL, "probe: metadata "+strconv.Quote(msg.Metadata)+" is not a count ≥ 1")
		}
	}
	var res []byte
	for range n {
		if res, err = p.do(&op); err != nil {
			var e *weft.Error
			if errors.As(err, &e) {
				return failure(e.Code, e.Detail)
			}
			return failure(abi.EINTERNAL, err.Error())
		}
	}
	return weft.Response{Body: res, Metadata: "ok"}
}

func failure(code int32, detail string) weft.Response {
	return weft.Response{Metadata: "error " + strconv.Itoa(int(code)) + " " + detail}
}

// fields says which fields of a StoreOp each op uses (docs/abi.md) and
// its largest flags value; an op using others is sent raw.
var fields = map[uint8]struct {
	key, value, length bool
	flags              uint8
}{
	abi.StoreKVOpen: {}, abi.StoreKVDrop: {}, abi.StoreDrOpen: {}, abi.StoreDrRemove: {},
	abi.StoreKVList: {}, abi.StoreDrList: {},
	abi.StoreKVGet: {key: true}, abi.StoreKVDelete: {key: true}, abi.StoreFsList: {key: true},
	abi.StoreFsStat: {key: true}, abi.StoreFsMkdir: {key: true},
	abi.StoreKVSet: {key: true, value: true}, abi.StoreFsRename: {key: true, value: true},
	abi.StoreKVScan:   {key: true, value: true, length: true},
	abi.StoreKVTx:     {value: true},
	abi.StoreFsWrite:  {key: true, value: true, flags: abi.StoreAt},
	abi.StoreFsRead:   {key: true, length: true, flags: abi.StoreRange},
	abi.StoreFsRemove: {key: true, flags: abi.StoreRecursive},
}

// typed reports whether the typed API can say op exactly.
func typed(op *abi.StoreOp) bool {
	f, ok := fields[op.Op]
	switch {
	case !ok || op.Flags > f.flags:
		return false
	case !f.key && len(op.Key) > 0, !f.value && len(op.Value) > 0:
		return false
	case op.Offset > math.MaxInt64 || op.Length > math.MaxInt32:
		return false
	case (op.Op == abi.StoreKVList || op.Op == abi.StoreDrList) && (op.Package != "" || op.Name != ""):
		return false
	}
	offset := op.Op == abi.StoreFsWrite && op.Flags == abi.StoreAt || op.Op == abi.StoreFsRead && op.Flags == abi.StoreRange
	length := op.Op == abi.StoreKVScan || op.Op == abi.StoreFsRead && op.Flags == abi.StoreRange
	return (offset || op.Offset == 0) && (length || op.Length == 0)
}

// do performs op once through the typed API and returns its result in
// abi's encoding.
func (p *probe) do(op *abi.StoreOp) ([]byte, error) {
	if !typed(op) {
		return weft.StoreCall(op)
	}
	db := weft.KV(op.Package, op.Name)
	d := weft.Drive(op.Package, op.Name)
	path := string(op.Key)
	switch op.Op {
	case abi.StoreKVOpen:
		return nil, db.Open()
	case abi.StoreKVGet:
		// AppendGet into a kept buffer: what a loop that reads many
		// values does.
		v, err := db.AppendGet(p.val[:0], op.Key)
		p.val = v
		return v, err
	case abi.StoreKVSet:
		return nil, db.Set(op.Key, op.Value)
	case abi.StoreKVDelete:
		return nil, db.Delete(op.Key)
	case abi.StoreKVScan:
		pairs, more, err := db.ScanPage(op.Key, op.Value, int(op.Length))
		if err != nil {
			return nil, err
		}
		p.out = abi.AppendKVScan(p.out[:0], pairs, more)
		return p.out, nil
	case abi.StoreKVTx:
		writes, err := abi.DecodeKVTx(op.Value)
		if err != nil {
			return weft.StoreCall(op) // the node refuses it
		}
		tx := db.Tx()
		for _, w := range writes {
			if w.Kind == abi.KVTxDelete {
				tx.Delete(w.Key)
			} else {
				tx.Set(w.Key, w.Value)
			}
		}
		return nil, tx.Commit()
	case abi.StoreKVDrop:
		return nil, db.Drop()
	case abi.StoreKVList, abi.StoreDrList:
		list := weft.KVDatabases
		if op.Op == abi.StoreDrList {
			list = weft.Drives
		}
		names, err := list()
		if err != nil {
			return nil, err
		}
		p.out = abi.AppendNames(p.out[:0], names)
		return p.out, nil
	case abi.StoreDrOpen:
		return nil, d.Open()
	case abi.StoreDrRemove:
		return nil, d.Drop()
	case abi.StoreFsWrite:
		switch op.Flags {
		case abi.StoreWhole:
			return nil, d.WriteFile(path, op.Value)
		case abi.StoreAppend:
			return nil, d.Append(path, op.Value)
		case abi.StoreAt:
			return nil, d.WriteAt(path, int64(op.Offset), op.Value)
		}
	case abi.StoreFsRead:
		switch op.Flags {
		case abi.StoreWhole:
			return d.ReadFile(path)
		case abi.StoreRange:
			return d.ReadAt(path, int64(op.Offset), int(op.Length))
		}
	case abi.StoreFsList:
		es, err := d.ReadDir(path)
		if err != nil {
			return nil, err
		}
		p.entries = p.entries[:0]
		for _, e := range es {
			p.entries = append(p.entries, e.ABI())
		}
		p.out = abi.AppendDirEntries(p.out[:0], p.entries)
		return p.out, nil
	case abi.StoreFsStat:
		e, err := d.Stat(path)
		if err != nil {
			return nil, err
		}
		ae := e.ABI()
		p.out = abi.AppendDirEntry(p.out[:0], &ae)
		return p.out, nil
	case abi.StoreFsMkdir:
		return nil, d.Mkdir(path)
	case abi.StoreFsRename:
		return nil, d.Rename(path, string(op.Value))
	case abi.StoreFsRemove:
		switch op.Flags {
		case 0:
			return nil, d.Remove(path)
		case abi.StoreRecursive:
			return nil, d.RemoveAll(path)
		}
	}
	return weft.StoreCall(op) // typed said no; not reached
}
