package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
)

// The tests of this file pin what docs/abi.md states where a newcomer
// writing a guest from that page alone was left guessing. They run
// testdata/abidoc/guest.wat, a guest written by hand in WebAssembly text
// from the page (its header says what it does).

// docTables returns the rows of every table of docs/abi.md whose header
// is header, table by table, each row split into its cells (trimmed, with
// the backquotes of code spans dropped).
func docTables(tb testing.TB, header string) [][][]string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "abi.md"))
	if err != nil {
		tb.Fatal(err)
	}
	var tables [][][]string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case line == header:
			tables = append(tables, nil)
			in = true
		case !in || strings.HasPrefix(line, "| ---"):
		case !strings.HasPrefix(line, "|"):
			in = false
		default:
			var row []string
			for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
				row = append(row, strings.ReplaceAll(strings.TrimSpace(c), "`", ""))
			}
			tables[len(tables)-1] = append(tables[len(tables)-1], row)
		}
	}
	return tables
}

// docType parses a function type as docs/abi.md writes it: "(ptr, cap
// i32) -> i32", "(token i64, ptr, len i32) -> i32", "() -> ()". A
// parameter without a type has the type of the next one that has one.
func docType(s string) (funcType, error) {
	names := map[string]byte{"i32": i32, "i64": i64}
	params, result, ok := strings.Cut(s, " -> ")
	if !ok || !strings.HasPrefix(params, "(") || !strings.HasSuffix(params, ")") {
		return funcType{}, fmt.Errorf("type %q is not (params) -> result", s)
	}
	var t funcType
	untyped := 0
	if inner := strings.TrimSuffix(strings.TrimPrefix(params, "("), ")"); inner != "" {
		for _, p := range strings.Split(inner, ",") {
			f := strings.Fields(p)
			switch {
			case len(f) == 1:
				untyped++
			case len(f) == 2 && names[f[1]] != 0:
				for range untyped + 1 {
					t.params = append(t.params, names[f[1]])
				}
				untyped = 0
			default:
				return funcType{}, fmt.Errorf("type %q: parameter %q is not NAME [TYPE]", s, p)
			}
		}
	}
	if untyped > 0 {
		return funcType{}, fmt.Errorf("type %q: the last parameters have no type", s)
	}
	switch {
	case result == "()":
	case names[result] != 0:
		t.results = []byte{names[result]}
	default:
		return funcType{}, fmt.Errorf("type %q: result %q is not (), i32 or i64", s, result)
	}
	return t, nil
}

// TestDocFunctionTables: the function tables of docs/abi.md are module
// weft as the node provides it — the first version 1's functions, the
// second version 2's, each with the node's type and in the node's order —
// and its error codes are abi's, so that a guest written from the page
// imports what the node links and reads codes the node returns.
func TestDocFunctionTables(t *testing.T) {
	tables := docTables(t, "| function | type | meaning |")
	if len(tables) != abi.Version {
		t.Fatalf("docs/abi.md has %d function tables, want one per ABI version (%d)", len(tables), abi.Version)
	}
	type docFunc struct {
		name    string
		typ     funcType
		version int
	}
	var docs []docFunc
	for i, rows := range tables {
		for _, row := range rows {
			if len(row) != 3 {
				t.Fatalf("function table %d: row %q has %d cells, want 3", i+1, row, len(row))
			}
			ft, err := docType(row[1])
			if err != nil {
				t.Fatalf("%s: %v", row[0], err)
			}
			docs = append(docs, docFunc{row[0], ft, i + 1})
		}
	}
	if len(docs) != len(hostFunctionSpecs) {
		t.Errorf("docs/abi.md lists %d functions, the node provides %d", len(docs), len(hostFunctionSpecs))
	}
	for i := range min(len(docs), len(hostFunctionSpecs)) {
		d, n := docs[i], hostFunctionSpecs[i]
		nt := funcType{valueBytes(n.params), valueBytes(n.results)}
		if d.name != n.name || d.version != n.version || !d.typ.equal(nt.params, nt.results) {
			t.Errorf("function %d: docs/abi.md has %s %s of version %d, the node %s %s of version %d",
				i+1, d.name, d.typ, d.version, n.name, nt, n.version)
		}
	}

	codes := docTables(t, "| code | name | meaning |")
	if len(codes) != 1 || len(codes[0]) == 0 {
		t.Fatalf("docs/abi.md has %d error code tables, want 1", len(codes))
	}
	seen := map[int32]bool{}
	for _, row := range codes[0] {
		code, err := strconv.ParseInt(row[0], 10, 32)
		if err != nil {
			t.Fatalf("error code %q: %v", row[0], err)
		}
		if got := abi.ErrorName(int32(code)); got != row[1] || seen[int32(code)] {
			t.Errorf("docs/abi.md names code %d %s; abi names it %s (listed before: %v)", code, row[1], got, seen[int32(code)])
		}
		seen[int32(code)] = true
	}
}

// buildDocWAT assembles testdata/abidoc/NAME.wat.
func buildDocWAT(tb testing.TB, name string) []byte {
	w2w := needTool(tb, "wat2wasm")
	src := filepath.Join("testdata", "abidoc", name+".wat")
	return cached(tb, "wat-abidoc-"+name+"-"+hashFiles(tb, "", src), ".wasm", func(out string) ([]byte, error) {
		return exec.Command(w2w, src, "-o", out).CombinedOutput()
	})
}

// docEnv is env with the store served to guests and the hand-written
// guest compiled.
type docEnv struct {
	*env
	drives *store.Drives
	guest  *Module
}

func newDocEnv(tb testing.TB, lim kernel.Limits) *docEnv {
	tb.Helper()
	e := newEnv(tb, envOpts{limits: lim, store: true})
	drives, err := store.OpenDrives(filepath.Join(tb.TempDir(), "drives"), store.NewUsage(0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { drives.Close() })
	e.host.SetStore(procstore.New(e.k, e.st, drives, nil))
	return &docEnv{env: e, drives: drives, guest: e.compile(tb, "abidoc.wasm", buildDocWAT(tb, "guest"))}
}

// testPkg is the package of pid's processes.
const testPkg = "test:weft.dev"

// answer is the guest's answer: a code, and the message that was current
// when it answered.
type answer struct {
	code          int32
	kind, errKind uint8
	body          []byte
}

func (a answer) String() string {
	return fmt.Sprintf("code %s, current message kind %d error kind %d body %q", abi.ErrorName(a.code), a.kind, a.errKind, a.body)
}

func decodeAnswer(b []byte) (answer, error) {
	if len(b) < 6 {
		return answer{}, fmt.Errorf("the guest answered %q: want at least 6 bytes", b)
	}
	return answer{code: int32(binary.LittleEndian.Uint32(b)), kind: b[4], errKind: b[5], body: b[6:]}, nil
}

// cmd is the body of a request to the guest: cmd, then arg.
func cmd(c byte, arg []byte) []byte { return append([]byte{c}, arg...) }

// askAsync sends the guest body, expecting a response, and returns a
// channel that gets its answer (or error) once.
func (e *docEnv) askAsync(guest kernel.ProcessId, body []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ans, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(guest), ExpectsResponse: 15 * time.Second, Body: body})
		if err != nil {
			ch <- result{err: err}
			return
		}
		a, err := decodeAnswer(ans.Body)
		ch <- result{a, err}
	}()
	return ch
}

type result struct {
	a   answer
	err error
}

// ask is askAsync, waited for.
func (e *docEnv) ask(tb testing.TB, guest kernel.ProcessId, body []byte) answer {
	tb.Helper()
	r := <-e.askAsync(guest, body)
	if r.err != nil {
		tb.Fatalf("ask %s %q: %v", guest, body[:1], r.err)
	}
	return r.a
}

// req encodes a request of the guest's.
func req(target string, timeout time.Duration, body string) []byte {
	return abi.AppendRequest(nil, &abi.Request{Target: target, ExpectsResponse: uint64(timeout), Body: []byte(body)})
}

// holder is a native process that hands each request it takes to the
// test and answers it with the body the test gives, one at a time.
type holder struct {
	id        kernel.ProcessId
	took      chan *kernel.Message
	answer    chan string
	responded chan error
}

func (e *docEnv) holder(tb testing.TB, name string) *holder {
	tb.Helper()
	o := &holder{id: pid(name), took: make(chan *kernel.Message, 1), answer: make(chan string), responded: make(chan error, 1)}
	err := e.k.Start(kernel.Spec{ID: o.id, Public: true, Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			m, err := h.Await()
			if err != nil {
				return nil
			}
			o.took <- m
			select {
			case body := <-o.answer:
				o.responded <- h.Respond(&kernel.Response{Body: []byte(body)})
			case <-ctx.Done():
				return nil
			}
		}
	})})
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

// take waits until the holder took a request, and returns its body.
func (o *holder) take(tb testing.TB) string {
	tb.Helper()
	select {
	case m := <-o.took:
		return string(m.Body)
	case <-time.After(20 * time.Second):
		tb.Fatalf("%s took no request", o.id)
		return ""
	}
}

// respond has the holder answer the request it holds with body, and
// waits until the answer is delivered.
func (o *holder) respond(tb testing.TB, body string) {
	tb.Helper()
	o.answer <- body
	if err := <-o.responded; err != nil {
		tb.Fatalf("%s: respond: %v", o.id, err)
	}
}

func wait(tb testing.TB, ch <-chan result) answer {
	tb.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			tb.Fatal(r.err)
		}
		return r.a
	case <-time.After(20 * time.Second):
		tb.Fatal("no answer from the guest")
		return answer{}
	}
}

// TestDocRespondAfterAwaitedAnswer: when await returns the answer (a
// response or an error) to a request the guest sent with send, respond
// answers the request the guest was handling when it sent that one — not
// the request it took last.
func TestDocRespondAfterAwaitedAnswer(t *testing.T) {
	e := newDocEnv(t, kernel.Limits{})
	doc := e.start(t, "doc", e.guest, false, ProcessOptions{})
	b1, b2 := e.holder(t, "b1"), e.holder(t, "b2")
	addr := func(o *holder) string { return e.k.Address(o.id).String() }

	// R1 makes the guest send Q1 to b1; R2, taken after it, Q2 to b2.
	r1 := e.askAsync(doc, cmd('f', req(addr(b1), 10*time.Second, "q1")))
	if got := b1.take(t); got != "q1" {
		t.Fatalf("b1 took %q", got)
	}
	r2 := e.askAsync(doc, cmd('f', req(addr(b2), 10*time.Second, "q2")))
	if got := b2.take(t); got != "q2" {
		t.Fatalf("b2 took %q", got)
	}
	// The guest took R2 last; the answer to Q1 makes R1 the request
	// being handled again, and respond answers R1.
	b1.respond(t, "one")
	if a := wait(t, r1); a.code != 0 || a.kind != abi.KindResponse || string(a.body) != "one" {
		t.Fatalf("R1 got %v, want the answer to Q1 (kind response, body \"one\")", a)
	}
	b2.respond(t, "two")
	if a := wait(t, r2); a.code != 0 || a.kind != abi.KindResponse || string(a.body) != "two" {
		t.Fatalf("R2 got %v, want the answer to Q2", a)
	}

	// When the request being handled expects no response, respond after
	// the answer has nothing to answer: WEFT_ENOREQUEST.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(doc), Body: cmd('f', req(addr(b1), 10*time.Second, "q3"))}); err != nil {
		t.Fatal(err)
	}
	b1.take(t)
	b1.respond(t, "three") // in the guest's mailbox before 'c' below
	if a := e.ask(t, doc, cmd('c', nil)); a.code != abi.ENOREQUEST {
		t.Fatalf("respond after the answer to a request sent while handling one that expects no response returned %s, want WEFT_ENOREQUEST", abi.ErrorName(a.code))
	}
}

// docFailures are the ways a send or send_and_await fails, with the code
// and whether the failure comes later, as an error message, or at once.
type docFailure struct {
	name    string
	request func(e *docEnv) []byte
	code    int32
	later   bool // an error message of kind -100 - code comes later
	onlySAA bool // a failure of send_and_await only
}

// docFailureEnv starts the guest and the targets docFailures name:
// private (not public), silent (never answers), full (its mailbox holds
// one request of the one it may hold), dies-N (exits when it takes a
// request).
func docFailureEnv(t *testing.T) (*docEnv, kernel.ProcessId) {
	lim := kernel.Limits{MailboxLength: 1, MaxMetadataBytes: 1024, MaxTimeout: time.Hour}
	e := newDocEnv(t, lim)
	doc := e.start(t, "doc", e.guest, false, ProcessOptions{})
	await := kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		for {
			if _, err := h.Await(); err != nil {
				return nil
			}
		}
	})
	never := kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error { <-ctx.Done(); return nil })
	dies := kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
		_, err := h.Await()
		if err != nil {
			return nil
		}
		return errors.New("took a request and died")
	})
	for _, s := range []kernel.Spec{
		{ID: pid("private"), Process: await},
		{ID: pid("silent"), Public: true, Process: await},
		{ID: pid("full"), Public: true, Process: never},
		{ID: pid("dies-1"), Public: true, Process: dies},
		{ID: pid("dies-2"), Public: true, Process: dies},
	} {
		if err := e.k.Start(s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(pid("full")), Body: []byte("fills the mailbox")}); err != nil {
		t.Fatal(err)
	}
	net := kernel.Capability{Issuer: e.k.Address(kernel.KernelProcess), Params: kernel.NetworkParams}
	if err := e.k.Grant(net, doc); err != nil {
		t.Fatal(err)
	}
	return e, doc
}

func docFailures(doc kernel.ProcessId) []docFailure {
	our := func(name string) string { return "our@" + pid(name).String() }
	r := func(target string, timeout time.Duration, mod func(*abi.Request)) func(*docEnv) []byte {
		return func(*docEnv) []byte {
			q := abi.Request{Target: target, ExpectsResponse: uint64(timeout), Body: []byte("q")}
			if mod != nil {
				mod(&q)
			}
			return abi.AppendRequest(nil, &q)
		}
	}
	return []docFailure{
		{name: "garbage", request: func(*docEnv) []byte { return []byte("xyz") }, code: abi.EINVAL},
		{name: "bad target", request: r("our@Bad:x:y", time.Second, nil), code: abi.EINVAL},
		{name: "timeout over max_timeout", request: r(our("silent"), 2*time.Hour, nil), code: abi.EINVAL},
		{name: "metadata not UTF-8", request: r(our("silent"), time.Second, func(q *abi.Request) { q.Metadata = "\xff\xfe" }), code: abi.EINVAL},
		{name: "no timeout", request: r(our("silent"), 0, nil), code: abi.EINVAL, onlySAA: true},
		{name: "itself", request: r("our@"+doc.String(), time.Second, nil), code: abi.EINVAL, onlySAA: true},
		{name: "too large", request: r(our("silent"), time.Second, func(q *abi.Request) { q.Metadata = strings.Repeat("m", 2000) }), code: abi.ETOOLARGE},
		{name: "no such process", request: r(our("nobody"), time.Second, nil), code: abi.ENOSUCHPROCESS},
		{name: "no messaging capability", request: r(our("private"), time.Second, nil), code: abi.ENOCAPABILITY},
		{name: "attaches a capability it neither holds nor issues", request: r(our("silent"), time.Second, func(q *abi.Request) {
			q.Capabilities = []abi.Capability{{Issuer: our("private"), Params: kernel.MessagingParams}}
		}), code: abi.ENOCAPABILITY},
		{name: "offline", request: r("elsewhere@svc:pkg:pub", time.Second, nil), code: abi.EOFFLINE},
		{name: "mailbox full", request: r(our("full"), time.Second, nil), code: abi.EMAILBOXFULL},
		{name: "timeout", request: r(our("silent"), 20*time.Millisecond, nil), code: abi.ETIMEOUT, later: true},
		{name: "killed", request: nil, code: abi.EKILLED, later: true}, // the target is dies-N: see the tests
	}
}

// TestDocSendAndAwaitFailures: a failure known when the request is sent
// returns its code and leaves the current message as it was (the request
// being handled); a failure that comes later (timeout, killed) returns its
// code and makes the error message current. Either way respond still
// answers the request being handled.
func TestDocSendAndAwaitFailures(t *testing.T) {
	e, doc := docFailureEnv(t)
	for _, f := range docFailures(doc) {
		t.Run(f.name, func(t *testing.T) {
			var q []byte
			if f.request == nil {
				q = req("our@"+pid("dies-1").String(), 10*time.Second, "q")
			} else {
				q = f.request(e)
			}
			body := cmd('s', q)
			a := e.ask(t, doc, body)
			if a.code != f.code {
				t.Fatalf("send_and_await returned %s, want %s (%v)", abi.ErrorName(a.code), abi.ErrorName(f.code), a)
			}
			if f.later {
				if a.kind != abi.KindError || int32(a.errKind) != -100-f.code {
					t.Fatalf("current message after %s: %v, want an error message of kind %d", abi.ErrorName(f.code), a, -100-f.code)
				}
				return
			}
			if a.kind != abi.KindRequest || !bytes.Equal(a.body, body) {
				t.Fatalf("current message after %s: %v, want the request being handled", abi.ErrorName(f.code), a)
			}
		})
	}
}

// TestDocSendFailures: send returns at once every failure known when the
// request is sent, and nothing is sent; timeout and killed come later, as
// an error message through await (then respond answers the request being
// handled when the failed one was sent).
func TestDocSendFailures(t *testing.T) {
	e, doc := docFailureEnv(t)
	for _, f := range docFailures(doc) {
		if f.onlySAA {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			var q []byte
			if f.request == nil {
				q = req("our@"+pid("dies-2").String(), 10*time.Second, "q")
			} else {
				q = f.request(e)
			}
			body := cmd('f', q)
			a := e.ask(t, doc, body)
			if f.later {
				// send succeeded; the answer to body is the guest's
				// respond to the error message await returned.
				if a.code != 0 || a.kind != abi.KindError || int32(a.errKind) != -100-f.code {
					t.Fatalf("got %v, want the answer to an error message of kind %d from await", a, -100-f.code)
				}
				return
			}
			if a.code != f.code || a.kind != abi.KindRequest || !bytes.Equal(a.body, body) {
				t.Fatalf("got %v, want send to return %s at once", a, abi.ErrorName(f.code))
			}
		})
	}
}

// TestDocAfterStopped: once await returned WEFT_ESTOPPED nothing the guest
// asks for happens — a store write it makes then does not land (the same
// write made before does) — and what it was handling gets a killed error
// from the node; the guest itself can clean nothing up.
func TestDocAfterStopped(t *testing.T) {
	e := newDocEnv(t, kernel.Limits{})
	doc := e.start(t, "doc", e.guest, false, ProcessOptions{})
	silent := e.holder(t, "silent")
	set := func(key string) []byte {
		return abi.AppendStoreOp(nil, &abi.StoreOp{Op: abi.StoreKVSet, Name: "db", Key: []byte(key), Value: []byte("v")})
	}
	for _, c := range []struct {
		cmd byte
		arg []byte
	}{
		{'o', abi.AppendStoreOp(nil, &abi.StoreOp{Op: abi.StoreKVOpen, Name: "db"})},
		{'o', set("before")},
		{'p', set("after")}, // kept for WEFT_ESTOPPED
	} {
		if a := e.ask(t, doc, cmd(c.cmd, c.arg)); a.code != 0 {
			t.Fatalf("%c: %v", c.cmd, a)
		}
	}
	// The guest handles a request, blocked in send_and_await, when the
	// node stops it.
	handled := e.askAsync(doc, cmd('s', req("our@"+silent.id.String(), time.Hour, "q")))
	silent.take(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.k.Kill(ctx, doc); err != nil {
		t.Fatal(err)
	}
	r := <-handled
	var se *kernel.SendError
	if !errors.As(r.err, &se) || se.Kind != kernel.ErrKilled {
		t.Errorf("the request the guest was handling got %v, %v; want a killed error", r.a, r.err)
	}
	for key, want := range map[string]bool{"before": true, "after": false} {
		_, ok, err := e.st.KVGet(testPkg, "db", []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("key %q written before/after WEFT_ESTOPPED: present %v, want %v", key, ok, want)
		}
	}
}

// TestDocStoreNamesAndPaths: the ops on an opened database or drive use
// its name; drive paths may start with "/", and empty and "." segments
// are dropped ("a//./b" is "a/b"), while ".." is refused.
func TestDocStoreNamesAndPaths(t *testing.T) {
	e := newDocEnv(t, kernel.Limits{})
	doc := e.start(t, "doc", e.guest, false, ProcessOptions{})
	do := func(op abi.StoreOp) int32 {
		t.Helper()
		return e.ask(t, doc, cmd('o', abi.AppendStoreOp(nil, &op))).code
	}
	for _, c := range []struct {
		op   abi.StoreOp
		want int32
	}{
		{abi.StoreOp{Op: abi.StoreKVOpen, Name: "db"}, 0},
		{abi.StoreOp{Op: abi.StoreKVSet, Name: "db", Key: []byte("k"), Value: []byte("v")}, 0},
		{abi.StoreOp{Op: abi.StoreKVGet, Name: "db", Key: []byte("k")}, 1}, // the value's length
		{abi.StoreOp{Op: abi.StoreKVGet, Key: []byte("k")}, abi.EPERM},     // no name: no capability on it
		{abi.StoreOp{Op: abi.StoreDrOpen, Name: "files"}, 0},
		{abi.StoreOp{Op: abi.StoreFsWrite, Name: "files", Key: []byte("a//./b"), Value: []byte("xyz")}, 0},
		{abi.StoreOp{Op: abi.StoreFsRead, Name: "files", Key: []byte("/a/b")}, 3},
		{abi.StoreOp{Op: abi.StoreFsRead, Name: "files", Key: []byte("./a/b/")}, 3},
		{abi.StoreOp{Op: abi.StoreFsRead, Name: "files", Key: []byte("a/../a/b")}, abi.EINVAL},
		{abi.StoreOp{Op: abi.StoreFsRead, Key: []byte("a/b")}, abi.EPERM}, // no name: no capability on it
	} {
		if got := do(c.op); got != c.want {
			t.Errorf("%s name %q key %q: got %d (%s), want %d", abi.StoreOpName(c.op.Op), c.op.Name, c.op.Key, got, abi.ErrorName(got), c.want)
		}
	}
	got, err := e.drives.ReadFile(testPkg, "files", "a/b")
	if err != nil || string(got) != "xyz" {
		t.Errorf("a//./b was not written as a/b: %q, %v", got, err)
	}
}

// TestDocPendingLimit: a process with max_pending_requests requests
// awaiting answers gets WEFT_EMAILBOXFULL at once for one more.
func TestDocPendingLimit(t *testing.T) {
	e := newDocEnv(t, kernel.Limits{MaxPendingRequests: 1})
	doc := e.start(t, "doc", e.guest, false, ProcessOptions{})
	silent := e.holder(t, "silent")
	target := "our@" + silent.id.String()
	// Sent without expecting a response: the operator is held to the
	// limit too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := e.k.Send(ctx, &kernel.Request{Target: e.k.Address(doc), Body: cmd('f', req(target, time.Hour, "first"))}); err != nil {
		t.Fatal(err)
	}
	silent.take(t)
	if a := e.ask(t, doc, cmd('f', req(target, time.Hour, "second"))); a.code != abi.EMAILBOXFULL {
		t.Fatalf("send with one request pending of one allowed: %v, want WEFT_EMAILBOXFULL", a)
	}
	if a := e.ask(t, doc, cmd('s', req(target, time.Hour, "third"))); a.code != abi.EMAILBOXFULL || a.kind != abi.KindRequest {
		t.Fatalf("send_and_await with one request pending of one allowed: %v, want WEFT_EMAILBOXFULL at once", a)
	}
}
