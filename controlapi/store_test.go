package controlapi_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
)

// storePkg is the package whose storage the tests look into.
const storePkg = "test:weft-test"

// wantField fails unless err is CodeInvalidArgument with a message that
// starts with the field's name.
func wantField(t *testing.T, err error, name string) {
	t.Helper()
	wantCode(t, err, connect.CodeInvalidArgument)
	var ce *connect.Error
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Message(), name+": ") {
		t.Errorf("error %q does not name the field %q", err, name)
	}
}

func TestStoreKV(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)

	set, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "cfg", Key: []byte("a"), Value: []byte("1")}))
	if err != nil {
		t.Fatal(err)
	}
	if !set.Msg.GetCreated() {
		t.Error("first KVSet: created false, want true")
	}
	set, err = n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "cfg", Key: []byte("b"), Value: []byte("2")}))
	if err != nil {
		t.Fatal(err)
	}
	if set.Msg.GetCreated() {
		t.Error("second KVSet: created true, want false")
	}
	// The write went to the store the kernel has.
	if v, ok, err := n.st.KVGet(storePkg, "cfg", []byte("b")); err != nil || !ok || string(v) != "2" {
		t.Errorf("store has b = %q, %v, %v; want \"2\"", v, ok, err)
	}

	get, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "cfg", Key: []byte("a")}))
	if err != nil {
		t.Fatal(err)
	}
	if !get.Msg.GetFound() || string(get.Msg.GetValue()) != "1" {
		t.Errorf("KVGet a: found %v value %q, want \"1\"", get.Msg.GetFound(), get.Msg.GetValue())
	}

	dbs, err := n.stor.ListDatabases(ctx, connect.NewRequest(&weftv1.ListDatabasesRequest{Package: storePkg}))
	if err != nil {
		t.Fatal(err)
	}
	if got := dbs.Msg.GetDatabases(); !slices.Equal(got, []string{"cfg"}) {
		t.Errorf("databases %q, want [cfg]", got)
	}
	dbs, err = n.stor.ListDatabases(ctx, connect.NewRequest(&weftv1.ListDatabasesRequest{Package: "nobody:weft-test"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := dbs.Msg.GetDatabases(); len(got) != 0 {
		t.Errorf("databases of an unknown package %q, want none", got)
	}

	if _, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "cfg", Key: []byte("a")})); err != nil {
		t.Fatal(err)
	}
	// A missing key is not an error.
	if _, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "cfg", Key: []byte("a")})); err != nil {
		t.Fatal(err)
	}
	get, err = n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "cfg", Key: []byte("a")}))
	if err != nil {
		t.Fatal(err)
	}
	if get.Msg.GetFound() || len(get.Msg.GetValue()) != 0 {
		t.Errorf("KVGet of a deleted key: found %v value %q", get.Msg.GetFound(), get.Msg.GetValue())
	}
}

func TestStoreKVScan(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	var ops []store.KVOp
	for i := range 150 {
		ops = append(ops, store.KVOp{Key: fmt.Appendf(nil, "k%03d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	ops = append(ops, store.KVOp{Key: []byte("other"), Value: []byte("x")})
	if err := n.st.CreateDB(storePkg, "big"); err != nil {
		t.Fatal(err)
	}
	if err := n.st.KVTx(storePkg, "big", ops); err != nil {
		t.Fatal(err)
	}

	// Pages of 40 over the 150 keys that start with "k".
	var got []string
	var after []byte
	pages := 0
	for {
		res, err := n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{
			Package: storePkg, Database: "big", Prefix: []byte("k"), After: after, Limit: 40}))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		pairs := res.Msg.GetPairs()
		if len(pairs) == 0 || len(pairs) > 40 {
			t.Fatalf("page %d has %d pairs", pages, len(pairs))
		}
		for _, p := range pairs {
			i := len(got)
			if want := fmt.Sprintf("v%d", i); string(p.GetValue()) != want {
				t.Errorf("pair %q = %q, want %q", p.GetKey(), p.GetValue(), want)
			}
			got = append(got, string(p.GetKey()))
		}
		after = pairs[len(pairs)-1].GetKey()
		if !res.Msg.GetMore() {
			break
		}
		if pages > 10 {
			t.Fatal("scan does not end")
		}
	}
	if pages != 4 || len(got) != 150 || !slices.IsSorted(got) || got[0] != "k000" || got[149] != "k149" {
		t.Errorf("%d pages, %d keys (%q ... ), want 4 pages of the 150 k keys in order", pages, len(got), got[:min(len(got), 3)])
	}

	// Limit 0 is a page of 100.
	res, err := n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{Package: storePkg, Database: "big"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.GetPairs()) != 100 || !res.Msg.GetMore() {
		t.Errorf("limit 0: %d pairs, more %v; want 100, true", len(res.Msg.GetPairs()), res.Msg.GetMore())
	}
	_, err = n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{Package: storePkg, Database: "big", Limit: 1001}))
	wantField(t, err, "limit")
}

func TestStoreNotFound(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if err := n.drives.Create(storePkg, "docs"); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"KVGet": func() error {
			_, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "nodb", Key: []byte("k")}))
			return err
		},
		"KVDelete": func() error {
			_, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "nodb", Key: []byte("k")}))
			return err
		},
		"KVScan": func() error {
			_, err := n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{Package: storePkg, Database: "nodb"}))
			return err
		},
		"ReadDir drive": func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "nodrive"}))
			return err
		},
		"ReadDir path": func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "docs", Path: "nodir"}))
			return err
		},
		"ReadFile": func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "docs", Path: "nofile"}))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantCode(t, err, connect.CodeNotFound)
			if strings.Contains(err.Error(), os.TempDir()) {
				t.Errorf("error %q shows a path of the host", err)
			}
		})
	}
}

func TestStoreDrives(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	for _, d := range []string{"docs", "cache"} {
		if err := n.drives.Create(storePkg, d); err != nil {
			t.Fatal(err)
		}
	}
	content := []byte("hello, drive")
	if err := n.drives.WriteFile(storePkg, "docs", "notes/today.txt", content); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.WriteFile(storePkg, "docs", "readme", []byte("r")); err != nil {
		t.Fatal(err)
	}

	drives, err := n.stor.ListDrives(ctx, connect.NewRequest(&weftv1.ListDrivesRequest{Package: storePkg}))
	if err != nil {
		t.Fatal(err)
	}
	if got := drives.Msg.GetDrives(); !slices.Equal(got, []string{"cache", "docs"}) {
		t.Errorf("drives %q, want [cache docs]", got)
	}
	drives, err = n.stor.ListDrives(ctx, connect.NewRequest(&weftv1.ListDrivesRequest{Package: "nobody:weft-test"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := drives.Msg.GetDrives(); len(got) != 0 {
		t.Errorf("drives of an unknown package %q, want none", got)
	}

	root, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "docs", Path: "/"}))
	if err != nil {
		t.Fatal(err)
	}
	entries := root.Msg.GetEntries()
	if len(entries) != 2 || entries[0].GetName() != "notes" || !entries[0].GetDir() ||
		entries[1].GetName() != "readme" || entries[1].GetDir() || entries[1].GetSize() != 1 {
		t.Errorf("root entries %v, want dir notes and the 1-byte file readme", entries)
	}
	sub, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "docs", Path: "notes"}))
	if err != nil {
		t.Fatal(err)
	}
	entries = sub.Msg.GetEntries()
	if len(entries) != 1 || entries[0].GetName() != "today.txt" || entries[0].GetDir() || entries[0].GetSize() != uint64(len(content)) {
		t.Fatalf("notes entries %v, want today.txt of %d bytes", entries, len(content))
	}
	if m := entries[0].GetModified().AsTime(); time.Since(m) > time.Hour || time.Until(m) > time.Hour {
		t.Errorf("today.txt modified %v, want about now", m)
	}

	for _, tc := range []struct {
		off, length uint64
		want        string
	}{
		{0, 0, "hello, drive"},
		{7, 0, "drive"},
		{7, 3, "dri"},
		{7, 100, "drive"},
		{100, 0, ""},
		{100, 5, ""},
	} {
		res, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{
			Package: storePkg, Drive: "docs", Path: "notes/today.txt", Offset: tc.off, Length: tc.length}))
		if err != nil {
			t.Fatalf("offset %d length %d: %v", tc.off, tc.length, err)
		}
		if got := string(res.Msg.GetData()); got != tc.want {
			t.Errorf("offset %d length %d: %q, want %q", tc.off, tc.length, got, tc.want)
		}
	}
}

// A file longer than one call may read is read by ranges.
func TestStoreReadFileTooLarge(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if err := n.drives.Create(storePkg, "big"); err != nil {
		t.Fatal(err)
	}
	// A sparse file one byte longer than the limit.
	if err := n.drives.WriteAt(storePkg, "big", "f", store.MaxDriveWriteBytes, []byte("z")); err != nil {
		t.Fatal(err)
	}
	_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "big", Path: "f"}))
	wantField(t, err, "length")
	wantCode(t, err, connect.CodeInvalidArgument, "offset and length")

	res, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "big", Path: "f", Offset: store.MaxDriveWriteBytes}))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Msg.GetData()); got != "z" {
		t.Errorf("the last byte: %q, want \"z\"", got)
	}
	_, err = n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "big", Path: "f", Length: store.MaxDriveWriteBytes + 1}))
	wantField(t, err, "length")
}

func TestStoreBadInput(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if err := n.drives.Create(storePkg, "docs"); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.WriteFile(storePkg, "docs", "f", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		field string
		call  func() error
	}{
		{"ListDatabases package", "package", func() error {
			_, err := n.stor.ListDatabases(ctx, connect.NewRequest(&weftv1.ListDatabasesRequest{Package: "no-publisher"}))
			return err
		}},
		{"KVGet package", "package", func() error {
			_, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: "", Database: "db", Key: []byte("k")}))
			return err
		}},
		{"KVSet package", "package", func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: "../etc:x", Database: "db", Key: []byte("k")}))
			return err
		}},
		{"KVSet database", "database", func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "Bad_DB", Key: []byte("k")}))
			return err
		}},
		{"KVSet key", "key", func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db"}))
			return err
		}},
		{"KVSet value", "value", func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db", Key: []byte("k"),
				Value: make([]byte, store.MaxKVValueBytes+1)}))
			return err
		}},
		{"KVGet database", "database", func() error {
			_, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "-db", Key: []byte("k")}))
			return err
		}},
		{"KVDelete database", "database", func() error {
			_, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "../db", Key: []byte("k")}))
			return err
		}},
		{"KVScan prefix", "prefix", func() error {
			_, err := n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{Package: storePkg, Database: "db",
				Prefix: bytes.Repeat([]byte("p"), store.MaxKeyBytes+1)}))
			return err
		}},
		{"ListDrives package", "package", func() error {
			_, err := n.stor.ListDrives(ctx, connect.NewRequest(&weftv1.ListDrivesRequest{Package: "UPPER:case"}))
			return err
		}},
		{"ReadDir drive", "drive", func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "../docs"}))
			return err
		}},
		{"ReadDir path", "path", func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "docs", Path: "../x"}))
			return err
		}},
		{"ReadFile path", "path", func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "docs", Path: "../x"}))
			return err
		}},
		{"ReadFile root", "path", func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "docs", Path: "/"}))
			return err
		}},
		{"ReadFile drive", "drive", func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "Docs", Path: "f"}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantField(t, tc.call(), tc.field) })
	}
	// None of it created a database.
	if dbs, err := n.st.DBs(storePkg); err != nil || len(dbs) != 0 {
		t.Errorf("databases after bad writes: %q, %v; want none", dbs, err)
	}
}

func TestStoreQuota(t *testing.T) {
	n := newNode(t, nodeOptions{quota: 1000})
	ctx := ctxT(t)
	// The drives count against the same quota as the databases.
	if err := n.drives.Create(storePkg, "docs"); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.WriteFile(storePkg, "docs", "f", make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	if _, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db", Key: []byte("k"), Value: make([]byte, 300)})); err != nil {
		t.Fatal(err)
	}
	_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db", Key: []byte("k2"), Value: make([]byte, 300)}))
	wantCode(t, err, connect.CodeResourceExhausted, "quota", storePkg)
	if _, ok, err := n.st.KVGet(storePkg, "db", []byte("k2")); err != nil || ok {
		t.Errorf("the refused write is in the store: %v, %v", ok, err)
	}
}

func TestStoreAudit(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if _, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db", Key: []byte("key"), Value: []byte("value")})); err != nil {
		t.Fatal(err)
	}
	if _, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "db", Key: []byte("key")})); err != nil {
		t.Fatal(err)
	}
	_, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "nodb", Key: []byte("k")}))
	wantCode(t, err, connect.CodeNotFound)

	lines := n.logs.records(t, "audit")
	if len(lines) != 2 {
		t.Fatalf("audit lines %v, want 2 (set, delete; not get)", lines)
	}
	set, del := lines[0], lines[1]
	if set["procedure"] != weftv1connect.StoreServiceKVSetProcedure || set["package"] != storePkg || set["database"] != "db" ||
		set["key_bytes"] != float64(3) || set["value_bytes"] != float64(5) || set["created"] != true || set["outcome"] != "ok" {
		t.Errorf("set: %v", set)
	}
	if _, ok := set["key"]; ok {
		t.Errorf("set logs the key: %v", set)
	}
	peer, _ := set["peer"].(map[string]any)
	if peer["uid"] != float64(os.Getuid()) {
		t.Errorf("set peer %v, want uid %d", set["peer"], os.Getuid())
	}
	if del["procedure"] != weftv1connect.StoreServiceKVDeleteProcedure || del["database"] != "nodb" ||
		del["key_bytes"] != float64(1) || del["outcome"] != "not_found" {
		t.Errorf("delete: %v", del)
	}
}

func TestStoreReflection(t *testing.T) {
	n := newNode(t, nodeOptions{})
	stream := grpcreflect.NewClient(n.httpClient(true), baseURL).NewStream(ctxT(t))
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, weftv1connect.StoreServiceName) {
		t.Errorf("services %v lack %s", names, weftv1connect.StoreServiceName)
	}
}

func TestStoreNotConfigured(t *testing.T) {
	n := newNode(t, nodeOptions{noStorage: true})
	ctx := ctxT(t)
	calls := map[string]func() error{
		"ListDatabases": func() error {
			_, err := n.stor.ListDatabases(ctx, connect.NewRequest(&weftv1.ListDatabasesRequest{Package: storePkg}))
			return err
		},
		"KVGet": func() error {
			_, err := n.stor.KVGet(ctx, connect.NewRequest(&weftv1.KVGetRequest{Package: storePkg, Database: "db", Key: []byte("k")}))
			return err
		},
		"KVSet": func() error {
			_, err := n.stor.KVSet(ctx, connect.NewRequest(&weftv1.KVSetRequest{Package: storePkg, Database: "db", Key: []byte("k")}))
			return err
		},
		"KVDelete": func() error {
			_, err := n.stor.KVDelete(ctx, connect.NewRequest(&weftv1.KVDeleteRequest{Package: storePkg, Database: "db", Key: []byte("k")}))
			return err
		},
		"KVScan": func() error {
			_, err := n.stor.KVScan(ctx, connect.NewRequest(&weftv1.KVScanRequest{Package: storePkg, Database: "db"}))
			return err
		},
		"ListDrives": func() error {
			_, err := n.stor.ListDrives(ctx, connect.NewRequest(&weftv1.ListDrivesRequest{Package: storePkg}))
			return err
		},
		"ReadDir": func() error {
			_, err := n.stor.ReadDir(ctx, connect.NewRequest(&weftv1.ReadDirRequest{Package: storePkg, Drive: "d"}))
			return err
		},
		"ReadFile": func() error {
			_, err := n.stor.ReadFile(ctx, connect.NewRequest(&weftv1.ReadFileRequest{Package: storePkg, Drive: "d", Path: "f"}))
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), connect.CodeUnavailable, "storage is not configured") })
	}
}

// TestStoreDropAndRemove: the operator deletes a database and a drive,
// and every copy of the capabilities on them goes too; deleting what is
// not there is not_found, and a bad name names its field.
func TestStoreDropAndRemove(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if err := n.st.CreateDB(storePkg, "cfg"); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.Create(storePkg, "media"); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.WriteFile(storePkg, "media", "a.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	node := n.k.NodeID()
	for _, c := range []kernel.Capability{
		procstore.KVCapability(node, storePkg, "cfg", procstore.Read),
		procstore.KVCapability(node, storePkg, "cfg", procstore.Write),
		procstore.DriveCapability(node, storePkg, "media", procstore.Read),
	} {
		if err := n.k.Grant(c, echoID); err != nil {
			t.Fatal(err)
		}
	}

	drop, err := n.stor.DropDatabase(ctx, connect.NewRequest(&weftv1.DropDatabaseRequest{Package: storePkg, Database: "cfg"}))
	if err != nil {
		t.Fatal(err)
	}
	if drop.Msg.GetRevoked() != 2 {
		t.Errorf("DropDatabase revoked %d copies, want 2", drop.Msg.GetRevoked())
	}
	rm, err := n.stor.RemoveDrive(ctx, connect.NewRequest(&weftv1.RemoveDriveRequest{Package: storePkg, Drive: "media"}))
	if err != nil {
		t.Fatal(err)
	}
	if rm.Msg.GetRevoked() != 1 {
		t.Errorf("RemoveDrive revoked %d copies, want 1", rm.Msg.GetRevoked())
	}
	wantNoStorage(t, n)

	_, err = n.stor.DropDatabase(ctx, connect.NewRequest(&weftv1.DropDatabaseRequest{Package: storePkg, Database: "cfg"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("dropping a missing database: %v, want not_found", err)
	}
	_, err = n.stor.RemoveDrive(ctx, connect.NewRequest(&weftv1.RemoveDriveRequest{Package: storePkg, Drive: "media"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("removing a missing drive: %v, want not_found", err)
	}
	_, err = n.stor.RemoveDrive(ctx, connect.NewRequest(&weftv1.RemoveDriveRequest{Package: storePkg, Drive: "../x"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "drive") {
		t.Errorf("removing a badly named drive: %v, want invalid_argument naming drive", err)
	}
	_, err = n.stor.DropDatabase(ctx, connect.NewRequest(&weftv1.DropDatabaseRequest{Package: "Bad", Database: "cfg"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "package") {
		t.Errorf("dropping with a bad package: %v, want invalid_argument naming package", err)
	}
	var drops, removes int
	for _, r := range n.logs.records(t, "audit") {
		switch r["procedure"] {
		case weftv1connect.StoreServiceDropDatabaseProcedure:
			if drops++; drops == 1 && (r["database"] != "cfg" || r["revoked"] != float64(2) || r["outcome"] != "ok") {
				t.Errorf("drop audit line %v", r)
			}
		case weftv1connect.StoreServiceRemoveDriveProcedure:
			if removes++; removes == 1 && (r["drive"] != "media" || r["revoked"] != float64(1) || r["outcome"] != "ok") {
				t.Errorf("remove audit line %v", r)
			}
		}
	}
	if drops != 3 || removes != 3 {
		t.Errorf("%d drop and %d remove audit lines, want 3 and 3 (refusals too)", drops, removes)
	}
}

// wantNoStorage fails unless storePkg has no database and no drive left,
// and echoID holds no capability on any.
func wantNoStorage(t *testing.T, n *node) {
	t.Helper()
	if dbs, _ := n.st.DBs(storePkg); len(dbs) != 0 {
		t.Errorf("databases left: %v", dbs)
	}
	if drives, _ := n.drives.List(storePkg); len(drives) != 0 {
		t.Errorf("drives left: %v", drives)
	}
	caps, err := n.k.CapabilitiesOf(echoID)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range caps {
		if sc.Issuer.Process == procstore.KVIssuer || sc.Issuer.Process == procstore.VFSIssuer {
			t.Errorf("%s still holds %s", echoID, sc.Capability)
		}
	}
}

// TestUninstallPurge: uninstall with purge deletes the package's
// databases and drives and the capabilities on them, also for a package
// uninstalled before whose data stayed; without purge, or with nothing
// left to purge, it is not_found.
func TestUninstallPurge(t *testing.T) {
	n, _ := packageNode(t)
	ctx := ctxT(t)
	if err := n.st.CreateDB(storePkg, "cfg"); err != nil {
		t.Fatal(err)
	}
	if err := n.drives.Create(storePkg, "media"); err != nil {
		t.Fatal(err)
	}
	if err := n.k.Grant(procstore.KVCapability(n.k.NodeID(), storePkg, "cfg", procstore.Read), echoID); err != nil {
		t.Fatal(err)
	}

	_, err := n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: storePkg}))
	wantCode(t, err, connect.CodeNotFound)
	res, err := n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: storePkg, Purge: true}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Msg.GetDatabases(), []string{"cfg"}) || !slices.Equal(res.Msg.GetDrives(), []string{"media"}) || len(res.Msg.GetProcesses()) != 0 {
		t.Errorf("purge answered %v", res.Msg)
	}
	wantNoStorage(t, n)
	_, err = n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: storePkg, Purge: true}))
	wantCode(t, err, connect.CodeNotFound)

	var lines []map[string]any
	for _, r := range n.logs.records(t, "audit") {
		if r["procedure"] == weftv1connect.PackageServiceUninstallPackageProcedure && r["purge"] == true {
			lines = append(lines, r)
		}
	}
	if len(lines) != 2 || lines[0]["outcome"] != "ok" || fmt.Sprint(lines[0]["databases"]) != "[cfg]" || fmt.Sprint(lines[0]["drives"]) != "[media]" {
		t.Errorf("purge audit lines %v", lines)
	}
}
