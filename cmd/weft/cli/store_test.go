package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
)

func TestStoreLs(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)

	res := weft(t, sock, "store", "ls", "chat:alice.os")
	res.want(t, 0)
	if res.stdout != "media\nnotes\n" {
		t.Errorf("store ls PKG printed %q", res.stdout)
	}
	if p := f.last("ListDrives").(*weftv1.ListDrivesRequest).GetPackage(); p != "chat:alice.os" {
		t.Errorf("store ls asked for package %q", p)
	}

	res = weft(t, sock, "store", "ls", "chat:alice.os", "media")
	res.want(t, 0)
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	mod := testModified.Local().Format("2006-01-02 15:04:05")
	want := []string{"NAME SIZE MODIFIED", "2026/ - " + mod, "cat.jpg 11 " + mod}
	if len(lines) != len(want) {
		t.Fatalf("store ls PKG DRIVE printed %d lines, want %d:\n%s", len(lines), len(want), res.stdout)
	}
	for i, l := range lines {
		if got := strings.Join(strings.Fields(l), " "); got != want[i] {
			t.Errorf("line %d = %q, want %q", i, got, want[i])
		}
	}
	if req := f.last("ReadDir").(*weftv1.ReadDirRequest); req.GetPackage() != "chat:alice.os" || req.GetDrive() != "media" || req.GetPath() != "" {
		t.Errorf("store ls PKG DRIVE sent %v", req)
	}

	weft(t, sock, "store", "ls", "chat:alice.os", "/media/2026/03").want(t, 0, "cat.jpg")
	if req := f.last("ReadDir").(*weftv1.ReadDirRequest); req.GetDrive() != "media" || req.GetPath() != "2026/03" {
		t.Errorf("store ls PKG DRIVE/DIR sent %v", req)
	}

	m := mustJSON(t, weft(t, sock, "--json", "store", "ls", "chat:alice.os").stdout)
	if d, _ := m["drives"].([]any); len(d) != 2 || d[0] != "media" {
		t.Errorf("store ls --json = %v", m)
	}
	m = mustJSON(t, weft(t, sock, "--json", "store", "ls", "chat:alice.os", "media").stdout)
	ents, _ := m["entries"].([]any)
	if len(ents) != 2 || ents[0].(map[string]any)["dir"] != true || ents[1].(map[string]any)["size"] != "11" {
		t.Errorf("store ls DRIVE --json = %v", m)
	}

	res = weft(t, sock, "store", "ls", "chat:alice.os", "nodrive")
	res.wantErr(t, ExitNode, "weft: store ls chat:alice.os nodrive: not_found: no drive nodrive")
	if res.stdout != "" {
		t.Errorf("a failed store ls printed %q", res.stdout)
	}
}

func TestStoreCat(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)

	res := weft(t, sock, "store", "cat", "/chat:alice.os/media/cat.jpg")
	res.want(t, 0)
	if res.stdout != string(catJPG) || res.stderr != "" {
		t.Errorf("store cat printed %q (stderr %q), want the file's bytes %q", res.stdout, res.stderr, catJPG)
	}
	req := f.last("ReadFile").(*weftv1.ReadFileRequest)
	if req.GetPackage() != "chat:alice.os" || req.GetDrive() != "media" || req.GetPath() != "cat.jpg" || req.GetOffset() != 0 || req.GetLength() != catChunk {
		t.Errorf("store cat sent %v", req)
	}

	res = weft(t, sock, "store", "cat", "--offset", "2", "/chat:alice.os/media/cat.jpg", "--length=4")
	res.want(t, 0)
	if res.stdout != "JPEG" {
		t.Errorf("store cat --offset 2 --length 4 printed %q", res.stdout)
	}
	if req := f.last("ReadFile").(*weftv1.ReadFileRequest); req.GetOffset() != 2 || req.GetLength() != 4 {
		t.Errorf("store cat --offset --length sent %v", req)
	}

	// --json changes nothing: the bytes are the answer.
	if res := weft(t, sock, "--json", "store", "cat", "/chat:alice.os/media/cat.jpg"); res.code != 0 || res.stdout != string(catJPG) {
		t.Errorf("--json store cat: code %d, stdout %q", res.code, res.stdout)
	}

	weft(t, sock, "store", "cat", "/chat:alice.os/media/a/b.txt").wantErr(t, ExitNode,
		"weft: store cat /chat:alice.os/media/a/b.txt: not_found: no file a/b.txt")
	if req := f.last("ReadFile").(*weftv1.ReadFileRequest); req.GetPath() != "a/b.txt" {
		t.Errorf("store cat of a nested file sent path %q", req.GetPath())
	}
}

// TestStoreCatChunks reads a file a few bytes a call.
func TestStoreCatChunks(t *testing.T) {
	old := catChunk
	catChunk = 4
	t.Cleanup(func() { catChunk = old })
	f := &fakeNode{}
	sock := serve(t, f)
	readCalls := func() (got [][2]uint64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, c := range f.calls {
			if c == "ReadFile" {
				req := f.reqs[i].(*weftv1.ReadFileRequest)
				got = append(got, [2]uint64{req.GetOffset(), req.GetLength()})
			}
		}
		f.calls, f.reqs, f.auth = nil, nil, nil
		return got
	}

	for _, tc := range []struct {
		args  []string
		out   string
		calls [][2]uint64 // offset and length of each call
	}{
		{nil, string(catJPG), [][2]uint64{{0, 4}, {4, 4}, {8, 4}}},
		{[]string{"--offset", "2", "--length", "5"}, "JPEG\x00", [][2]uint64{{2, 4}, {6, 1}}},
		{[]string{"--length", "8"}, string(catJPG[:8]), [][2]uint64{{0, 4}, {4, 4}}},
		{[]string{"--offset", "3", "--length", "100"}, string(catJPG[3:]), [][2]uint64{{3, 4}, {7, 4}, {11, 4}}},
		{[]string{"--offset", "50"}, "", [][2]uint64{{50, 4}}},
	} {
		res := weft(t, sock, append([]string{"store", "cat", "/chat:alice.os/media/cat.jpg"}, tc.args...)...)
		res.want(t, 0)
		if res.stdout != tc.out {
			t.Errorf("store cat %v printed %q, want %q", tc.args, res.stdout, tc.out)
		}
		if got := readCalls(); !slices.Equal(got, tc.calls) {
			t.Errorf("store cat %v read %v, want %v", tc.args, got, tc.calls)
		}
	}
}

func TestStoreCatBadPath(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	for _, tc := range []struct{ path, why string }{
		{"chat:alice.os/media/cat.jpg", "must start with /"},
		{"/chat/media/cat.jpg", "no package:publisher"},
		{"/:alice.os/media/cat.jpg", "no package:publisher"},
		{"/chat:/media/cat.jpg", "no package:publisher"},
		{"/chat:alice.os", "no drive"},
		{"/chat:alice.os//cat.jpg", "no drive"},
		{"/chat:alice.os/media", "no file"},
		{"/chat:alice.os/media/", "no file"},
		{"/chat:alice.os/media/2026/", "no file"},
		{"/chat:alice.os/media/a//b", "empty name"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res := weft(t, sock, "store", "cat", tc.path)
			res.wantErr(t, ExitUsage, "weft store: bad PATH", tc.why, "want "+catPathForm, "Usage: "+cmdStore.usage)
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
	if f.called("ReadFile") {
		t.Error("a bad PATH reached the node")
	}
}

// kvNode is a fake node whose package chat:alice.os has the databases
// "settings" and "messages".
func kvNode() *fakeNode {
	return &fakeNode{kv: map[string]map[string]map[string][]byte{
		"chat:alice.os": {
			"settings": {"theme": []byte("dark"), "motd": []byte("hello\nworld")},
			"messages": {
				"2026-01": []byte("a"), "2026-02": []byte("b"), "2026-03": []byte("c"),
				"2025-12": []byte("z"), "\x00bin": []byte{1}, `"quoted`: []byte("q"),
			},
		},
	}}
}

func TestKvLs(t *testing.T) {
	f := kvNode()
	f.scanPage = 2
	sock := serve(t, f)

	res := weft(t, sock, "kv", "ls", "chat:alice.os")
	res.want(t, 0)
	if res.stdout != "messages\nsettings\n" {
		t.Errorf("kv ls PKG printed %q", res.stdout)
	}

	// Six keys in pages of two: three calls, each after the last key.
	res = weft(t, sock, "kv", "ls", "chat:alice.os", "messages")
	res.want(t, 0)
	if want := "\"\\x00bin\"\n\"\\\"quoted\"\n2025-12\n2026-01\n2026-02\n2026-03\n"; res.stdout != want {
		t.Errorf("kv ls PKG DB printed %q, want %q", res.stdout, want)
	}
	f.mu.Lock()
	var scans []*weftv1.KVScanRequest
	for i, c := range f.calls {
		if c == "KVScan" {
			scans = append(scans, f.reqs[i].(*weftv1.KVScanRequest))
		}
	}
	f.mu.Unlock()
	if len(scans) != 3 {
		t.Fatalf("kv ls made %d KVScan calls, want 3", len(scans))
	}
	for i, after := range []string{"", `"quoted`, "2026-01"} {
		if s := scans[i]; string(s.GetAfter()) != after || s.GetLimit() != kvPage || s.GetDatabase() != "messages" {
			t.Errorf("KVScan %d = %v, want after %q", i, s, after)
		}
	}

	res = weft(t, sock, "kv", "ls", "chat:alice.os", "messages", "2026-", "--values")
	res.want(t, 0)
	if want := "2026-01\ta\n2026-02\tb\n2026-03\tc\n"; res.stdout != want {
		t.Errorf("kv ls --values printed %q, want %q", res.stdout, want)
	}
	if p := f.last("KVScan").(*weftv1.KVScanRequest).GetPrefix(); string(p) != "2026-" {
		t.Errorf("kv ls PREFIX sent prefix %q", p)
	}

	// A quoted PREFIX is read back as ls prints it; a value with a newline is quoted.
	weft(t, sock, "kv", "ls", "chat:alice.os", "messages", `"\x00"`).want(t, 0, `"\x00bin"`)
	if p := f.last("KVScan").(*weftv1.KVScanRequest).GetPrefix(); string(p) != "\x00" {
		t.Errorf("kv ls with a quoted PREFIX sent prefix %q", p)
	}
	res = weft(t, sock, "kv", "ls", "chat:alice.os", "settings", "--values")
	if want := "motd\t\"hello\\nworld\"\ntheme\tdark\n"; res.stdout != want {
		t.Errorf("kv ls --values of settings printed %q, want %q", res.stdout, want)
	}

	// --json: every page in one KVScanResponse.
	m := mustJSON(t, weft(t, sock, "--json", "kv", "ls", "chat:alice.os", "messages").stdout)
	if pairs, _ := m["pairs"].([]any); len(pairs) != 6 || m["more"] != false {
		t.Errorf("kv ls --json = %v", m)
	}
	m = mustJSON(t, weft(t, sock, "--json", "kv", "ls", "chat:alice.os").stdout)
	if dbs, _ := m["databases"].([]any); len(dbs) != 2 {
		t.Errorf("kv ls PKG --json = %v", m)
	}

	weft(t, sock, "kv", "ls", "chat:alice.os", "nodb").wantErr(t, ExitNode, "weft: kv ls chat:alice.os nodb: not_found: no database nodb")
}

func TestKvLsEndlessPages(t *testing.T) {
	sock := serve(t, &fakeNode{scanLies: true})
	weft(t, sock, "kv", "ls", "chat:alice.os", "messages").wantErr(t, ExitNode, "said there were more keys but sent none")
}

func TestKvGetSetDelete(t *testing.T) {
	f := kvNode()
	sock := serve(t, f)

	res := weft(t, sock, "kv", "get", "chat:alice.os", "settings", "motd")
	if res.code != 0 || res.stdout != "hello\nworld\n" || res.stderr != "" {
		t.Errorf("kv get: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if req := f.last("KVGet").(*weftv1.KVGetRequest); req.GetPackage() != "chat:alice.os" || req.GetDatabase() != "settings" || string(req.GetKey()) != "motd" {
		t.Errorf("kv get sent %v", req)
	}
	res = weft(t, sock, "kv", "get", "chat:alice.os", "messages", `"\x00bin"`)
	if res.code != 0 || res.stdout != "\x01\n" {
		t.Errorf("kv get of a quoted key: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}

	res = weft(t, sock, "kv", "get", "chat:alice.os", "settings", "nokey")
	res.wantErr(t, ExitNode, "weft: kv get: nokey not found")
	if res.stdout != "" {
		t.Errorf("a missing key printed %q", res.stdout)
	}
	res = weft(t, sock, "--json", "kv", "get", "chat:alice.os", "settings", "nokey")
	res.wantErr(t, ExitNode, "not found")
	if m := mustJSON(t, res.stdout); m["found"] != false {
		t.Errorf("kv get --json of a missing key = %v", m)
	}
	if m := mustJSON(t, weft(t, sock, "--json", "kv", "get", "chat:alice.os", "settings", "theme").stdout); m["found"] != true || m["value"] != "ZGFyaw==" {
		t.Errorf("kv get --json = %v", m)
	}

	// set creates the database when it is missing, and says so.
	res = weft(t, sock, "kv", "set", "chat:alice.os", "newdb", "k", "v1")
	res.want(t, 0)
	if res.stdout != "created database newdb of chat:alice.os\nset k\n" {
		t.Errorf("kv set in a new database printed %q", res.stdout)
	}
	if req := f.last("KVSet").(*weftv1.KVSetRequest); req.GetDatabase() != "newdb" || string(req.GetKey()) != "k" || string(req.GetValue()) != "v1" {
		t.Errorf("kv set sent %v", req)
	}
	res = weft(t, sock, "kv", "set", "chat:alice.os", "newdb", "k", "--", "-v2")
	if res.code != 0 || res.stdout != "set k\n" {
		t.Errorf("kv set -- -v2: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if v := f.last("KVSet").(*weftv1.KVSetRequest).GetValue(); string(v) != "-v2" {
		t.Errorf("kv set -- -v2 sent %q", v)
	}
	res = invocation{stdin: "line 1\nline 2\n"}.run(context.Background(), "--socket", sock, "kv", "set", "chat:alice.os", "newdb", "k", "-")
	res.want(t, 0, "set k")
	if v := f.last("KVSet").(*weftv1.KVSetRequest).GetValue(); string(v) != "line 1\nline 2\n" {
		t.Errorf("kv set - sent %q", v)
	}
	if m := mustJSON(t, weft(t, sock, "--json", "kv", "set", "chat:alice.os", "db2", "k", "v").stdout); m["created"] != true {
		t.Errorf("kv set --json = %v", m)
	}

	res = weft(t, sock, "kv", "delete", "chat:alice.os", "settings", "theme")
	if res.code != 0 || res.stdout != "deleted theme\n" {
		t.Errorf("kv delete: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if req := f.last("KVDelete").(*weftv1.KVDeleteRequest); req.GetDatabase() != "settings" || string(req.GetKey()) != "theme" {
		t.Errorf("kv delete sent %v", req)
	}
	weft(t, sock, "kv", "get", "chat:alice.os", "settings", "theme").wantErr(t, ExitNode, "theme not found")
	if m := mustJSON(t, weft(t, sock, "--json", "kv", "delete", "chat:alice.os", "settings", "x").stdout); len(m) != 0 {
		t.Errorf("kv delete --json = %v", m)
	}

	weft(t, sock, "kv", "drop", "chat:alice.os", "settings").want(t, 0, "dropped database settings of chat:alice.os (2 capabilities revoked)\n")
	if req := f.last("DropDatabase").(*weftv1.DropDatabaseRequest); req.GetPackage() != "chat:alice.os" || req.GetDatabase() != "settings" {
		t.Errorf("kv drop sent %v", req)
	}
	weft(t, sock, "kv", "drop", "chat:alice.os", "settings").wantErr(t, ExitNode, "weft: kv drop chat:alice.os settings", "not_found")
	if m := mustJSON(t, weft(t, sock, "--json", "kv", "drop", "chat:alice.os", "db2").stdout); m["revoked"] != float64(2) {
		t.Errorf("kv drop --json = %v", m)
	}
}

func TestStoreRm(t *testing.T) {
	f := kvNode()
	sock := serve(t, f)
	weft(t, sock, "store", "rm", "chat:alice.os", "media").want(t, 0, "removed drive media of chat:alice.os (1 capability revoked)\n")
	if req := f.last("RemoveDrive").(*weftv1.RemoveDriveRequest); req.GetPackage() != "chat:alice.os" || req.GetDrive() != "media" {
		t.Errorf("store rm sent %v", req)
	}
	if m := mustJSON(t, weft(t, sock, "--json", "store", "rm", "chat:alice.os", "media").stdout); m["revoked"] != float64(1) {
		t.Errorf("store rm --json = %v", m)
	}
}

func TestStoreNodeErrors(t *testing.T) {
	f := &fakeNode{err: connect.NewError(connect.CodePermissionDenied, errTest("not yours"))}
	sock := serve(t, f)
	for _, args := range [][]string{
		{"store", "ls", "a:b"}, {"store", "ls", "a:b", "d"}, {"store", "cat", "/a:b/d/f"},
		{"kv", "ls", "a:b"}, {"kv", "ls", "a:b", "db"}, {"kv", "get", "a:b", "db", "k"},
		{"kv", "set", "a:b", "db", "k", "v"}, {"kv", "delete", "a:b", "db", "k"},
		{"kv", "drop", "a:b", "db"}, {"store", "rm", "a:b", "d"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			res := weft(t, sock, args...)
			res.wantErr(t, ExitNode, "weft: "+strings.Join(args[:2], " "), "permission_denied: not yours")
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

func TestStoreUsageErrors(t *testing.T) {
	f := kvNode()
	sock := serve(t, f)
	for _, tc := range []struct {
		args []string
		errs []string
	}{
		{[]string{"store"}, []string{"weft store: missing subcommand: ls, cat or rm", "Usage: " + cmdStore.usage}},
		{[]string{"store", "rm", "a:b"}, []string{"missing PKG and DRIVE"}},
		{[]string{"store", "rm", "a:b", "d", "e"}, []string{`unexpected argument "e"`}},
		{[]string{"store", "--frob"}, []string{"unknown flag --frob"}},
		{[]string{"store", "frob"}, []string{`unknown subcommand "frob"`}},
		{[]string{"store", "ls"}, []string{"missing PKG"}},
		{[]string{"store", "ls", "a:b", "d", "e"}, []string{`unexpected argument "e"`}},
		{[]string{"store", "ls", "a:b", "/"}, []string{`bad directory "/"`}},
		{[]string{"store", "ls", "a:b", "--offset", "1"}, []string{"unknown flag --offset"}},
		{[]string{"store", "cat"}, []string{"missing PATH (" + catPathForm + ")"}},
		{[]string{"store", "cat", "/a:b/d/f", "/a:b/d/g"}, []string{`unexpected argument "/a:b/d/g"`}},
		{[]string{"store", "cat", "/a:b/d/f", "--offset", "-1"}, []string{`invalid value "-1" for --offset`}},
		{[]string{"store", "cat", "/a:b/d/f", "--length"}, []string{"--length needs a value"}},
		{[]string{"kv"}, []string{"weft kv: missing subcommand: ls, get, set, delete or drop", "Usage: " + cmdKv.usage}},
		{[]string{"kv", "drop", "a:b"}, []string{"kv drop: missing PKG and DB"}},
		{[]string{"kv", "drop", "a:b", "db", "x"}, []string{`kv drop: unexpected argument "x"`}},
		{[]string{"kv", "frob"}, []string{`unknown subcommand "frob"`}},
		{[]string{"kv", "ls"}, []string{"kv ls: missing PKG"}},
		{[]string{"kv", "ls", "a:b", "db", "p", "x"}, []string{`kv ls: unexpected argument "x"`}},
		{[]string{"kv", "get", "a:b", "db"}, []string{"kv get: missing PKG, DB and KEY"}},
		{[]string{"kv", "get", "a:b", "db", "k", "--values"}, []string{"unknown flag --values"}},
		{[]string{"kv", "set", "a:b", "db", "k"}, []string{"kv set: missing PKG, DB, KEY and VALUE"}},
		{[]string{"kv", "delete", "a:b", "db", "k", "x"}, []string{`kv delete: unexpected argument "x"`}},
		{[]string{"kv", "get", "a:b", "db", `"\x0`}, []string{"bad quoted key", "Go quoted string"}},
		{[]string{"kv", "ls", "a:b", "db", `"unterminated`}, []string{"bad quoted key"}},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			res := weft(t, sock, tc.args...)
			res.wantErr(t, ExitUsage, tc.errs...)
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) != 0 {
		t.Errorf("usage errors reached the node: %v", f.calls)
	}
}

func TestStoreHelp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		outs []string
	}{
		{[]string{"help", "store"}, []string{"Usage: " + cmdStore.usage, "Examples:", "weft store cat /chat:alice.os/", "--offset N", "--length N"}},
		{[]string{"store", "--help"}, []string{"Usage: " + cmdStore.usage, "Examples:"}},
		{[]string{"store", "cat", "-h"}, []string{"Usage: " + cmdStore.usage}},
		{[]string{"help", "kv"}, []string{"Usage: " + cmdKv.usage, "Examples:", "KEY not found", "exits with 2", "--values", `"-" reads it from stdin`}},
		{[]string{"kv", "set", "--help"}, []string{"Usage: " + cmdKv.usage, "Examples:"}},
		{[]string{"help"}, []string{"  store ", "  kv ", "weft kv get"}},
	} {
		res := invocation{}.run(ctx, tc.args...)
		res.want(t, 0, tc.outs...)
		if res.stderr != "" {
			t.Errorf("weft %v wrote to stderr: %q", tc.args, res.stderr)
		}
	}
}

func TestQuoteUnprintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"theme", "theme"},
		{"with space", "with space"},
		{"héllo", "héllo"},
		{"", `""`},
		{"a\tb", `"a\tb"`},
		{"a\nb", `"a\nb"`},
		{"\x00id", `"\x00id"`},
		{"\xff", `"\xff"`},
		{`"q"`, `"\"q\""`},
	} {
		got := quoteUnprintable(tc.in)
		if got != tc.want {
			t.Errorf("quoteUnprintable(%q) = %s, want %s", tc.in, got, tc.want)
		}
		// What is printed reads back as the key it came from.
		back, err := parseKey(got)
		if err != nil || string(back) != tc.in {
			t.Errorf("parseKey(%s) = %q, %v; want %q", got, back, err, tc.in)
		}
	}
}

func FuzzQuoteUnprintable(f *testing.F) {
	for _, s := range []string{"theme", "", "\x00", `"x`, "a\tb", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := quoteUnprintable(s)
		if strings.ContainsAny(got, "\n\t\r") {
			t.Errorf("quoteUnprintable(%q) = %q spans more than one cell", s, got)
		}
		back, err := parseKey(got)
		if err != nil || string(back) != s {
			t.Errorf("parseKey(quoteUnprintable(%q)) = %q, %v", s, back, err)
		}
	})
}

func FuzzParseFilePath(f *testing.F) {
	for _, s := range []string{"/chat:alice.os/media/cat.jpg", "/a:b/d/x/y/z", "/a:b/d/", "a:b/d/f", "//", "/:/x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pkg, drive, path, err := parseFilePath(p)
		if err != nil {
			if !strings.Contains(err.Error(), catPathForm) {
				t.Errorf("parseFilePath(%q) error %q does not show the form wanted", p, err)
			}
			return
		}
		if got := "/" + pkg + "/" + drive + "/" + path; got != p {
			t.Errorf("parseFilePath(%q) = %q %q %q, which join to %q", p, pkg, drive, path, got)
		}
		if drive == "" || path == "" || !strings.Contains(pkg, ":") || strings.Contains(path, "//") || strings.HasSuffix(path, "/") {
			t.Errorf("parseFilePath(%q) accepted %q %q %q", p, pkg, drive, path)
		}
	})
}
