//go:build !wasip1

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftos/weft/abi"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// storeMu serialises the tests that give the shared Host a store: the
// Host serves one store at a time (SetStore), and each test's is its own.
var storeMu sync.Mutex

// storeNode is a node with a real store and drives in a temporary
// directory, served to the shared Host's processes for the test.
type storeNode struct {
	*node
	st     *store.Store
	drives *store.Drives
}

// newStoreNode starts a node whose processes reach a store with the
// given per-package quota (0: the default), wired as weftd wires it.
func newStoreNode(t *testing.T, quota int64) *storeNode {
	dir := t.TempDir()
	usage := store.NewUsage(quota)
	barrier := &store.Barrier{}
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: usage, Barrier: barrier})
	if err != nil {
		t.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dir, "drives"), usage)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	drives.UseBarrier(barrier)
	storeMu.Lock()
	// Registered before newNode's: runs after the kernel has stopped the
	// processes.
	t.Cleanup(func() {
		if built.host != nil {
			built.host.SetStore(nil)
		}
		storeMu.Unlock()
		if err := errors.Join(drives.Close(), st.Close()); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	n := newNode(t)
	n.host.SetStore(procstore.New(n.k, st, drives, slog.New(slog.NewTextHandler(n.logs, nil))))
	return &storeNode{node: n, st: st, drives: drives}
}

// startGoprobe starts procstore's Go store probe as name:probe:tests.
// It is public: notes messages it when sharing.
func (n *storeNode) startGoprobe(name string) kernel.ProcessId {
	t := n.t
	b, err := os.ReadFile(filepath.Join(buildAll(t), "goprobe.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := n.host.Compile("goprobe", b)
	if err != nil {
		t.Fatal(err)
	}
	id := kernel.ProcessId{Name: name, Package: "probe", Publisher: "tests"}
	if err := n.k.Start(kernel.Spec{ID: id, Process: mod.Process(wasm.ProcessOptions{}), Public: true}); err != nil {
		t.Fatal(err)
	}
	return id
}

// probe asks the Go store probe to perform op and returns its result,
// or the code and detail of its "error CODE DETAIL" answer.
func (n *storeNode) probe(p kernel.ProcessId, op abi.StoreOp) (res []byte, code int32, detail string) {
	t := n.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ans, err := n.k.Send(ctx, &kernel.Request{
		Target:          kernel.Address{Node: kernel.OurNode, Process: p},
		Body:            abi.AppendStoreOp(nil, &op),
		ExpectsResponse: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("probe %s: %v", abi.StoreOpName(op.Op), err)
	}
	if ans.Metadata == "ok" {
		return ans.Body, 0, ""
	}
	rest, ok := strings.CutPrefix(ans.Metadata, "error ")
	c, d, _ := strings.Cut(rest, " ")
	v, err := strconv.ParseInt(c, 10, 32)
	if !ok || err != nil || v >= 0 {
		t.Fatalf("probe %s answered metadata %q", abi.StoreOpName(op.Op), ans.Metadata)
	}
	return nil, int32(v), d
}

// wantRefused checks that the probe's op failed with code, its detail
// containing text.
func (n *storeNode) wantRefused(p kernel.ProcessId, op abi.StoreOp, code int32, text string) {
	n.t.Helper()
	res, c, d := n.probe(p, op)
	if c != code || !strings.Contains(d, text) {
		n.t.Fatalf("%s by %s = %q, code %d (%s); want %s containing %q", abi.StoreOpName(op.Op), p, res, c, d, abi.ErrorName(code), text)
	}
}

var notesPid = pid("notes:notes:examples")

// notes sends a JSON request to notes and returns the answer's body.
func (n *storeNode) notes(req string) string {
	n.t.Helper()
	return string(n.ask(notesPid, req).Body)
}

// notesOK sends a request notes must answer {"ok":true}.
func (n *storeNode) notesOK(req string) {
	n.t.Helper()
	if got := n.notes(req); got != `{"ok":true}` {
		n.t.Fatalf("%s: answered %s", req, got)
	}
}

// notesErr sends a request notes must refuse, naming text.
func (n *storeNode) notesErr(req, text string) {
	n.t.Helper()
	var ans struct{ Error string }
	got := n.notes(req)
	if err := json.Unmarshal([]byte(got), &ans); err != nil || !strings.Contains(ans.Error, text) {
		n.t.Fatalf("%.80s: answered %.200s, want an error containing %q", req, got, text)
	}
}

type noteEntry struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Bytes   int    `json:"bytes"`
	Updated int64  `json:"updated"`
}

func (n *storeNode) list() []noteEntry {
	n.t.Helper()
	var es []noteEntry
	got := n.notes(`{"op":"list"}`)
	if err := json.Unmarshal([]byte(got), &es); err != nil || es == nil {
		n.t.Fatalf("list answered %.200s: %v", got, err)
	}
	return es
}

func putReq(id, text string) string {
	b, _ := json.Marshal(map[string]string{"op": "put", "id": id, "text": text})
	return string(b)
}

const notesPkg = "notes:examples"

func TestNotesRoundTrip(t *testing.T) {
	n := newStoreNode(t, 0)
	n.install("notes")
	if es := n.list(); len(es) != 0 {
		t.Fatalf("a new notes lists %v", es)
	}

	before := time.Now().UnixNano()
	n.notesOK(putReq("b-2", "Second\nsome text"))
	n.notesOK(putReq("a1", "First note\r\nbody ünïcode"))
	n.notesOK(putReq("c", ""))
	n.notesOK(putReq("b-2", "Second, edited\n")) // replaces
	if got := n.notes(`{"op":"get","id":"a1"}`); got != "First note\r\nbody ünïcode" {
		t.Fatalf("get a1 = %q", got)
	}
	if got := n.notes(`{"op":"get","id":"c"}`); got != "" {
		t.Fatalf("get of an empty note = %q", got)
	}
	es := n.list()
	want := []noteEntry{{ID: "a1", Title: "First note", Bytes: len("First note\r\nbody ünïcode")}, {ID: "b-2", Title: "Second, edited", Bytes: 15}, {ID: "c"}}
	if len(es) != len(want) {
		t.Fatalf("list = %+v, want %+v", es, want)
	}
	for i := range es {
		if es[i].ID != want[i].ID || es[i].Title != want[i].Title || es[i].Bytes != want[i].Bytes || es[i].Updated < before || es[i].Updated > time.Now().UnixNano() {
			t.Fatalf("list[%d] = %+v, want %+v (updated after %d)", i, es[i], want[i], before)
		}
	}

	// On disk, through the store itself.
	b, err := n.drives.ReadFile(notesPkg, "notes", "b-2.md")
	if err != nil || string(b) != "Second, edited\n" {
		t.Fatalf("drive file b-2.md = %q, %v", b, err)
	}
	v, ok, err := n.st.KVGet(notesPkg, "index", []byte("b-2"))
	var e noteEntry
	if err != nil || !ok || json.Unmarshal(v, &e) != nil || e.Title != "Second, edited" || e.Bytes != 15 || e.ID != "" {
		t.Fatalf("index entry b-2 = %s, %v, %v", v, ok, err)
	}

	n.notesOK(`{"op":"delete","id":"a1"}`)
	n.notesErr(`{"op":"get","id":"a1"}`, "no such note")
	n.notesErr(`{"op":"delete","id":"a1"}`, "no such note")
	if _, err := n.drives.ReadFile(notesPkg, "notes", "a1.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a1.md after delete: %v", err)
	}
	if _, ok, err := n.st.KVGet(notesPkg, "index", []byte("a1")); ok || err != nil {
		t.Fatalf("index entry a1 after delete: %v, %v", ok, err)
	}
	if es := n.list(); len(es) != 2 || es[0].ID != "b-2" || es[1].ID != "c" {
		t.Fatalf("list after delete = %+v", es)
	}

	// Bad requests are answered, never a crash.
	for _, c := range []struct{ req, text string }{
		{`not json`, "bad request"},
		{``, "bad request"},
		{`{"op":"put","id":"A"}`, "bad id"},
		{`{"op":"get","id":""}`, "bad id"},
		{`{"op":"delete","id":"../x"}`, "bad id"},
		{putReq(strings.Repeat("x", 65), "t"), "bad id"},
		{`{"op":"get","id":"nope"}`, "no such note"},
		{`{"op":"frobnicate"}`, "unknown op"},
		{`{"op":"share"}`, "names no process"},
		{`{"op":"share","to":"not an address"}`, "share with"},
		{`{"op":"share","to":"missing:probe:tests"}`, "no_such_process"},
	} {
		n.notesErr(c.req, c.text)
	}
	// An id of the longest length is fine; a one-line note's title is cut
	// short, on a rune boundary.
	long := strings.Repeat("é", 300)
	n.notesOK(putReq(strings.Repeat("x", 64), long))
	if es := n.list(); len(es) != 3 || es[2].Title != strings.Repeat("é", 128) || es[2].Bytes != len(long) {
		t.Fatalf("long note's entry: %+v", es[2])
	}
	if info, _ := n.k.Process(notesPid); info.State != kernel.StateRunning || info.LastError != "" {
		t.Fatalf("notes is %v (%s)", info.State, info.LastError)
	}
}

// A note past the package's quota is refused cleanly and changes nothing.
func TestNotesOverQuota(t *testing.T) {
	n := newStoreNode(t, 512<<10)
	n.install("notes")
	n.notesOK(putReq("small", "fits"))
	n.notesErr(putReq("big", strings.Repeat("x", 600<<10)), "limit")
	if es := n.list(); len(es) != 1 || es[0].ID != "small" {
		t.Fatalf("list after a refused put = %+v", es)
	}
	if _, err := n.drives.ReadFile(notesPkg, "notes", "big.md"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("big.md after a refused put: %v", err)
	}
	if got := n.notes(`{"op":"get","id":"small"}`); got != "fits" {
		t.Fatalf("get small = %q", got)
	}
}

func TestNotesSurviveRestart(t *testing.T) {
	n := newStoreNode(t, 0)
	n.install("notes")
	n.notesOK(putReq("kept", "Kept\nacross restarts"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.k.Kill(ctx, notesPid); err != nil {
		t.Fatal(err)
	}
	if info, _ := n.k.Process(notesPid); info.State == kernel.StateRunning {
		t.Fatalf("notes still running after Kill")
	}
	if err := n.k.Restart(ctx, notesPid); err != nil {
		t.Fatal(err)
	}
	if _, err := n.k.WaitProcess(ctx, notesPid, func(p kernel.ProcessInfo) bool { return p.State == kernel.StateRunning }); err != nil {
		t.Fatal(err)
	}
	if got := n.notes(`{"op":"get","id":"kept"}`); got != "Kept\nacross restarts" {
		t.Fatalf("get after a restart = %q", got)
	}
	if es := n.list(); len(es) != 1 || es[0].Title != "Kept" {
		t.Fatalf("list after a restart = %+v", es)
	}
	// It still writes: its capabilities survived too.
	n.notesOK(putReq("more", "after"))
}

// notes shares read access with a process of another package by
// attaching its capabilities to a request: the probe can then read, but
// still not write.
func TestNotesShareGrantsReadOnly(t *testing.T) {
	n := newStoreNode(t, 0)
	n.install("notes")
	n.notesOK(putReq("shared", "Shared\ntext"))
	reader := n.startGoprobe("reader")

	get := abi.StoreOp{Op: abi.StoreKVGet, Package: notesPkg, Name: "index", Key: []byte("shared")}
	read := abi.StoreOp{Op: abi.StoreFsRead, Package: notesPkg, Name: "notes", Key: []byte("shared.md")}
	set := abi.StoreOp{Op: abi.StoreKVSet, Package: notesPkg, Name: "index", Key: []byte("shared"), Value: []byte("{}")}
	write := abi.StoreOp{Op: abi.StoreFsWrite, Package: notesPkg, Name: "notes", Key: []byte("shared.md"), Value: []byte("mine")}
	n.wantRefused(reader, get, abi.EPERM, "kv:sys:weft")
	n.wantRefused(reader, read, abi.EPERM, "vfs:sys:weft")
	n.wantRefused(reader, abi.StoreOp{Op: abi.StoreKVScan, Package: notesPkg, Name: "index"}, abi.EPERM, `"kind":"read"`)

	n.notesOK(`{"op":"share","to":"` + reader.String() + `"}`)

	v, code, detail := n.probe(reader, get)
	var e noteEntry
	if code != 0 || json.Unmarshal(v, &e) != nil || e.Title != "Shared" {
		t.Fatalf("get after share = %s, %d %s", v, code, detail)
	}
	if b, code, detail := n.probe(reader, read); code != 0 || string(b) != "Shared\ntext" {
		t.Fatalf("read after share = %q, %d %s", b, code, detail)
	}
	pairs, more, err := abi.DecodeKVScan(must(n.probe(reader, abi.StoreOp{Op: abi.StoreKVScan, Package: notesPkg, Name: "index"})))
	if err != nil || more || len(pairs) != 1 || string(pairs[0].Key) != "shared" {
		t.Fatalf("scan after share = %q, %v, %v", pairs, more, err)
	}
	n.wantRefused(reader, set, abi.EPERM, `"kind":"write"`)
	n.wantRefused(reader, write, abi.EPERM, `"kind":"write"`)
	n.wantRefused(reader, abi.StoreOp{Op: abi.StoreKVDrop, Package: notesPkg, Name: "index"}, abi.EPERM, "own package")

	// Nothing the reader tried changed the notes.
	if b, err := n.drives.ReadFile(notesPkg, "notes", "shared.md"); err != nil || !bytes.Equal(b, []byte("Shared\ntext")) {
		t.Fatalf("shared.md = %q, %v", b, err)
	}
	if got := n.notes(`{"op":"get","id":"shared"}`); got != "Shared\ntext" {
		t.Fatalf("get = %q", got)
	}
}

func must(res []byte, code int32, detail string) []byte {
	if code != 0 {
		panic("probe failed: " + abi.ErrorName(code) + " " + detail)
	}
	return res
}
