// Package weft is the Go SDK for weft processes: standard Go compiled with
// GOOS=wasip1 GOARCH=wasm -buildmode=c-shared. It owns the guest side of
// the ABI in docs/abi.md: the weft_abi_v1, weft_abi_v2 and init exports,
// the imports of module "weft", and the Go shapes app authors use on top
// of them (Await, Message.Respond, Message.Defer, the Request builder,
// state, Spawn, capabilities, logging).
//
// A process registers its body from an init func; the SDK's init export
// runs it when the node starts the process (Go does not run main in a
// c-shared module, and no Go function may be named init, so the SDK
// exports init itself):
//
//	func init() {
//		weft.Serve(func(msg *weft.Message) error {
//			return msg.Respond(weft.Response{Body: msg.Body})
//		})
//	}
//
//	func main() {}
//
// Serve runs the usual loop (await, handle, repeat; a handler's error is
// logged and the loop goes on). Run takes the whole process body instead,
// for processes that drive the loop themselves:
//
//	func init() { weft.Run(run) }
//
//	func run() error {
//		for {
//			msg, err := weft.Await()
//			if err != nil {
//				return err // ErrStopped: the node stops us; a clean exit
//			}
//			...
//		}
//	}
//
// Responses are values (msg.Respond(weft.Response{Body: b})): a struct
// literal names every field a response has and needs no option types.
// Requests, which have more optional parts, are built:
//
//	id, err := weft.Request("our@echo:echo:examples").Body(b).Expects(5 * time.Second).Send()
//
// A request can be answered later: Defer takes it off the process's
// hands, and the Deferred's Respond answers it once, when its answer is
// ready, while the process handles other messages. A process that asks
// another on a requester's behalf keeps the Deferred by the id of its
// own request:
//
//	d, err := msg.Defer()
//	id, err := weft.Request(backend).Body(msg.Body).Expects(5 * time.Second).Send()
//	pending[id] = d
//	...
//	// when Await returns the answer ans:
//	if d, ok := pending[ans.ID]; ok {
//		delete(pending, ans.ID)
//		err = d.Respond(weft.Response{Body: ans.Body})
//	}
//
// Errors: a failing host function returns an *Error carrying its ABI code
// and the node's last_error sentence; compare with errors.Is against
// ErrStopped, ErrNoState, ErrPerm and the other sentinels. A failed
// send is a *SendError with its Kind (errors.Is(err, ErrTimeout) works
// too), whether it failed at once or came back later as an error message.
//
// # Store
//
// A package keeps data in key-value databases and file drives
// (docs/abi.md, "The store"). OpenKV and OpenDrive open one of the
// process's own package, creating it when missing and giving the process
// read and write capabilities on it; KV and Drive name any package's
// ("" for the process's own) without calling the node. Every operation
// checks a capability:
//
//	db, err := weft.OpenKV("index")
//	err = db.Set(key, value)
//	v, err := db.Get(key) // errors.Is(err, weft.ErrNoKey) when absent
//	err = db.Tx().Set(k1, v1).Delete(k2).Commit()
//	sc := db.Scan(prefix)
//	for k, v := range sc.All() { ... }
//	err = sc.Err()
//
//	d, err := weft.OpenDrive("notes")
//	err = d.WriteFile("a.md", text)
//	text, err := d.ReadFile("a.md") // errors.Is(err, weft.ErrNotFound) when missing
//
// Access is shared by attaching capabilities to a message:
// weft.Request(to).Attach(db.ReadCapability(), d.ReadCapability()). A
// write capability does not let its holder read. StoreCall performs an
// encoded abi.StoreOp for anything the typed API does not offer.
//
// Everything here is meant for the process's own goroutine. Calls from
// other goroutines are serialised, but a Wasm module has one thread, so a
// goroutine blocked in Await blocks them all.
//
// The Extism Go PDK is not used: weft's ABI has its own import module and
// moves bytes with one call per message (a pointer and a length into the
// guest's memory), while the PDK speaks Extism's kernel (input, output,
// variables, one call per 8 bytes), none of which a weft guest needs.
//
// Files that use //go:wasmimport or //go:wasmexport build only for
// wasip1; the rest (encodings, builders, error mapping, buffers) builds
// everywhere and is tested on the host against a fake node.
package weft
