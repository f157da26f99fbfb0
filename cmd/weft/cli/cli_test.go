package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
)

// mustJSON checks that s is one JSON object and returns it.
func mustJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, s)
	}
	return m
}

func TestStatus(t *testing.T) {
	sock := serve(t, &fakeNode{})
	weft(t, sock, "status").want(t, 0, "node-abc", "1.2.3", "1h30m0s", "7 (5 running)", "1234 routed",
		"offline=1 timeout=4", "restarts")
	m := mustJSON(t, weft(t, sock, "--json", "status").stdout)
	if m["nodeId"] != "node-abc" || m["processesRunning"] != float64(5) {
		t.Errorf("status --json = %v", m)
	}
}

func TestVersion(t *testing.T) {
	old := Version
	Version = "9.9.9"
	t.Cleanup(func() { Version = old })
	// version needs no node: the socket does not exist.
	res := invocation{}.run(context.Background(), "--socket", "/nonexistent/s", "version")
	res.want(t, 0)
	if res.stdout != "weft 9.9.9\n" {
		t.Errorf("version printed %q", res.stdout)
	}
	if m := mustJSON(t, invocation{}.run(context.Background(), "--json", "version").stdout); m["version"] != "9.9.9" {
		t.Errorf("--json version = %v", m)
	}
}

func TestPs(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "ps")
	res.want(t, 0, "ID", "STATE", "RESTARTS", "MAILBOX", "PENDING", "PUBLIC", "LAST ERROR")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("ps printed %d lines, want header and one process:\n%s", len(lines), res.stdout)
	}
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "chat:chat:alice.os running 2 3 1 yes trap: unreachable" {
		t.Errorf("ps row = %q", got)
	}
	if p := f.last("ListProcesses").(*weftv1.ListProcessesRequest).GetPackage(); p != "" {
		t.Errorf("ps asked for package %q, want all", p)
	}

	weft(t, sock, "ps", "chat:alice.os").want(t, 0, "chat:chat:alice.os")
	if p := f.last("ListProcesses").(*weftv1.ListProcessesRequest).GetPackage(); p != "chat:alice.os" {
		t.Errorf("ps PKG asked for package %q", p)
	}

	m := mustJSON(t, weft(t, sock, "--json", "ps").stdout)
	procs, _ := m["processes"].([]any)
	if len(procs) != 1 || procs[0].(map[string]any)["id"] != "chat:chat:alice.os" {
		t.Errorf("ps --json = %v", m)
	}
}

func TestKillRestart(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "kill", "chat:chat:alice.os")
	res.want(t, 0)
	if res.stdout != "killed chat:chat:alice.os (killed)\n" {
		t.Errorf("kill printed %q", res.stdout)
	}
	if p := f.last("KillProcess").(*weftv1.KillProcessRequest).GetProcess(); p != "chat:chat:alice.os" {
		t.Errorf("kill asked for %q", p)
	}
	weft(t, sock, "restart", "chat:chat:alice.os").want(t, 0, "restarted chat:chat:alice.os (running)")
	if p := f.last("RestartProcess").(*weftv1.RestartProcessRequest).GetProcess(); p != "chat:chat:alice.os" {
		t.Errorf("restart asked for %q", p)
	}
	m := mustJSON(t, weft(t, sock, "--json", "restart", "a:b:c").stdout)
	if m["process"].(map[string]any)["state"] != "PROCESS_STATE_RUNNING" {
		t.Errorf("restart --json = %v", m)
	}
}

func TestPackagesUninstall(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	weft(t, sock, "packages").want(t, 0, "ID", "VERSION", "chat:alice.os", "0.1.0", "chat:chat:alice.os,store:chat:alice.os")
	weft(t, sock, "uninstall", "chat:alice.os").want(t, 0, "uninstalled chat:alice.os", "stopped chat:chat:alice.os")
	if p := f.last("UninstallPackage").(*weftv1.UninstallPackageRequest).GetPackage(); p != "chat:alice.os" {
		t.Errorf("uninstall asked for %q", p)
	}
	m := mustJSON(t, weft(t, sock, "--json", "uninstall", "chat:alice.os").stdout)
	if len(m["processes"].([]any)) != 1 {
		t.Errorf("uninstall --json = %v", m)
	}
	if f.last("UninstallPackage").(*weftv1.UninstallPackageRequest).GetPurge() {
		t.Error("uninstall without --purge asked to purge")
	}
	weft(t, sock, "uninstall", "--purge", "chat:alice.os").want(t, 0, "purged chat:alice.os", "stopped chat:chat:alice.os", "dropped database history", "removed drive files")
	if !f.last("UninstallPackage").(*weftv1.UninstallPackageRequest).GetPurge() {
		t.Error("uninstall --purge did not ask to purge")
	}
}

func TestSend(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)

	res := weft(t, sock, "send", "our@echo:echo:weft.os", "ping")
	if res.code != 0 || res.stdout != "pong\n" || res.stderr != "" {
		t.Fatalf("send: code %d, stdout %q, stderr %q; want 0, \"pong\\n\", nothing", res.code, res.stdout, res.stderr)
	}
	req := f.last("Send").(*weftv1.SendRequest)
	if req.GetTarget() != "our@echo:echo:weft.os" || string(req.GetRequest().GetBody()) != "ping" {
		t.Errorf("send sent %v", req)
	}
	if d := req.GetRequest().GetExpectsResponse().AsDuration(); d != defaultAwait {
		t.Errorf("send awaited %s, want the default %s", d, defaultAwait)
	}
	if req.GetRequest().Metadata != nil || req.GetBlob() != nil {
		t.Errorf("send without flags attached metadata or a blob: %v", req)
	}

	// Flags after the positionals, and a blob.
	dir := t.TempDir()
	blob := filepath.Join(dir, "blob")
	if err := os.WriteFile(blob, []byte("BLOB"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = weft(t, sock, "send", "our@a:b:c", "{\"k\": 1} x", "--await", "2s", "--metadata=m1", "--blob", blob, "-mime", "text/plain")
	res.want(t, 0)
	if res.stdout != "pong\n" {
		t.Errorf("send printed %q", res.stdout)
	}
	req = f.last("Send").(*weftv1.SendRequest)
	if string(req.GetRequest().GetBody()) != "{\"k\": 1} x" || req.GetRequest().GetExpectsResponse().AsDuration() != 2*time.Second ||
		req.GetRequest().GetMetadata() != "m1" || string(req.GetBlob().GetBytes()) != "BLOB" || req.GetBlob().GetMime() != "text/plain" {
		t.Errorf("send with flags sent %v", req)
	}

	// Flags before the positionals; --await 0 expects nothing and prints nothing.
	res = weft(t, sock, "send", "--await", "0", "our@a:b:c", "fire")
	if res.code != 0 || res.stdout != "" || res.stderr != "" {
		t.Errorf("send --await 0: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if req = f.last("Send").(*weftv1.SendRequest); req.GetRequest().GetExpectsResponse() != nil {
		t.Errorf("send --await 0 expects a response: %v", req)
	}

	// "-" reads the body from stdin; "--" lets a body start with "-".
	res = invocation{stdin: "from\nstdin"}.run(context.Background(), "--socket", sock, "send", "our@a:b:c", "-")
	res.want(t, 0)
	if got := string(f.last("Send").(*weftv1.SendRequest).GetRequest().GetBody()); got != "from\nstdin" {
		t.Errorf("send - sent body %q", got)
	}
	weft(t, sock, "send", "our@a:b:c", "--", "-1").want(t, 0)
	if got := string(f.last("Send").(*weftv1.SendRequest).GetRequest().GetBody()); got != "-1" {
		t.Errorf("send -- -1 sent body %q", got)
	}

	// --json prints the whole SendResponse.
	m := mustJSON(t, weft(t, sock, "--json", "send", "our@a:b:c", "x").stdout)
	if m["id"] != "42" || m["response"].(map[string]any)["body"] != "cG9uZw==" {
		t.Errorf("send --json = %v", m)
	}
}

func TestSendResponseBlob(t *testing.T) {
	f := &fakeNode{sendResp: &weftv1.SendResponse{
		Id:     1,
		Result: &weftv1.SendResponse_Response{Response: &weftv1.Response{Body: []byte("ok")}},
		Blob:   &weftv1.Blob{Mime: "image/png", Bytes: []byte("PNG")},
	}}
	sock := serve(t, f)
	out := filepath.Join(t.TempDir(), "out")
	res := weft(t, sock, "send", "our@a:b:c", "get", "--blob-out", out)
	if res.code != 0 || res.stdout != "ok\n" || res.stderr != "" {
		t.Fatalf("send --blob-out: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "PNG" {
		t.Errorf("--blob-out wrote %q, %v", b, err)
	}
	res = weft(t, sock, "send", "our@a:b:c", "get")
	if res.code != 0 || res.stdout != "ok\n" || !strings.Contains(res.stderr, "--blob-out") {
		t.Errorf("send with a response blob: code %d stdout %q stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestSendError(t *testing.T) {
	f := &fakeNode{sendResp: &weftv1.SendResponse{Id: 7, Result: &weftv1.SendResponse_Error{Error: &weftv1.SendError{
		Kind: weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS, Target: "our@x:y:z", Detail: "no process x:y:z",
	}}}}
	sock := serve(t, f)
	res := weft(t, sock, "send", "our@x:y:z", "hi")
	res.wantErr(t, ExitSendError, "weft: send to our@x:y:z: no_such_process: no process x:y:z")
	if res.stdout != "" {
		t.Errorf("a failed send printed %q on stdout", res.stdout)
	}
	res = weft(t, sock, "--json", "send", "our@x:y:z", "hi")
	res.wantErr(t, ExitSendError, "no_such_process")
	if e := mustJSON(t, res.stdout)["error"].(map[string]any); e["kind"] != "SEND_ERROR_KIND_NO_SUCH_PROCESS" {
		t.Errorf("send --json error = %v", e)
	}
}

func TestNodeErrors(t *testing.T) {
	f := &fakeNode{err: connect.NewError(connect.CodeNotFound, errTest("no process a:b:c"))}
	sock := serve(t, f)
	for _, args := range [][]string{
		{"status"}, {"ps"}, {"kill", "a:b:c"}, {"restart", "a:b:c"}, {"uninstall", "b:c"}, {"packages"},
		{"send", "our@a:b:c", "x"}, {"tap"}, {"caps", "list", "a:b:c"}, {"caps", "grant", "a:b:c", "our@d:e:f"},
		{"caps", "revoke", "our@d:e:f"},
	} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			res := weft(t, sock, args...)
			res.wantErr(t, ExitNode, "weft: ", "not_found: no process a:b:c")
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

func TestTimeout(t *testing.T) {
	sock := serve(t, &fakeNode{block: true})
	weft(t, sock, "--timeout", "50ms", "status").wantErr(t, ExitNode, "deadline_exceeded", "--timeout")
}

func TestUnreachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "wcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	// A socket nobody listens on any more.
	sock := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	weft(t, sock, "ps").wantErr(t, ExitNode, "weft: ps: unavailable", "is weftd running? socket: "+sock+" (from --socket)")

	// A file that is not a socket.
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	weft(t, file, "status").wantErr(t, ExitNode, "not a socket", file)
}

func TestSocketChoice(t *testing.T) {
	f := &fakeNode{}
	good := serve(t, f)
	bad := filepath.Join(t.TempDir(), "missing.sock")
	ctx := context.Background()

	// Missing socket: exit 2, naming it and how it was chosen.
	invocation{}.run(ctx, "--socket", bad, "status").wantErr(t, ExitNode, "no socket at "+bad, "from --socket", "is weftd running?")
	invocation{env: map[string]string{"WEFT_SOCKET": bad}}.run(ctx, "status").wantErr(t, ExitNode, bad, "from WEFT_SOCKET")
	res := invocation{}.run(ctx, "status")
	if _, err := os.Stat(DefaultSocket); err != nil {
		res.wantErr(t, ExitNode, DefaultSocket, "the default")
	}

	// WEFT_SOCKET is used without --socket; --socket wins over it.
	invocation{env: map[string]string{"WEFT_SOCKET": good}}.run(ctx, "status").want(t, 0, "node-abc")
	invocation{env: map[string]string{"WEFT_SOCKET": bad}}.run(ctx, "--socket", good, "status").want(t, 0, "node-abc")
	invocation{env: map[string]string{"WEFT_SOCKET": good}}.run(ctx, "--socket="+bad, "status").wantErr(t, ExitNode, bad, "from --socket")
}

func TestUsageErrors(t *testing.T) {
	sock := serve(t, &fakeNode{})
	for _, tc := range []struct {
		args []string
		errs []string
	}{
		{nil, []string{"Usage: weft"}},
		{[]string{"frob"}, []string{`unknown command "frob"`}},
		{[]string{"--frob", "ps"}, []string{"unknown flag --frob"}},
		{[]string{"ps", "--frob"}, []string{"weft ps: unknown flag --frob", "Usage: weft ps [PACKAGE]"}},
		{[]string{"ps", "--json"}, []string{"unknown flag --json", "global flag", "weft --json ps"}},
		{[]string{"kill"}, []string{"weft kill: missing PROCESS", "Usage: weft kill PROCESS"}},
		{[]string{"send", "our@a:b:c"}, []string{"missing ADDRESS and BODY"}},
		{[]string{"send", "our@a:b:c", "x", "y"}, []string{`unexpected argument "y"`}},
		{[]string{"send", "our@a:b:c", "x", "--await", "5"}, []string{`invalid value "5" for --await`}},
		{[]string{"send", "our@a:b:c", "x", "--await"}, []string{"--await needs a value"}},
		{[]string{"send", "our@a:b:c", "x", "--blob", "/nonexistent/blob"}, []string{"read --blob"}},
		{[]string{"tap", "--body", "5000"}, []string{"--body"}},
		{[]string{"install"}, []string{"missing package directory or zip archive"}},
		{[]string{"install", "/nonexistent/pkg"}, []string{"read package"}},
		{[]string{"install", ".", "--approve-all", "--approve", "a b"}, []string{"exclude each other"}},
		{[]string{"install", ".", "--approve", "onlyone"}, []string{"PROCESS ISSUER"}},
		{[]string{"caps"}, []string{"missing subcommand"}},
		{[]string{"caps", "frob"}, []string{`unknown subcommand "frob"`}},
		{[]string{"caps", "grant", "a:b:c"}, []string{"missing PROCESS and ISSUER"}},
		{[]string{"caps", "revoke", "our@a:b:c", "messaging"}, []string{"not JSON"}},
		{[]string{"help", "frob"}, []string{`unknown command "frob"`}},
		{[]string{"--timeout", "soon", "ps"}, []string{"--timeout"}},
		{[]string{"--addr", "http://h:1", "ps"}, []string{"https://HOST:PORT"}},
		{[]string{"--addr", "https://h:1", "ps"}, []string{"WEFT_TOKEN"}},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			res := weft(t, sock, tc.args...)
			res.wantErr(t, ExitUsage, tc.errs...)
			if res.stdout != "" {
				t.Errorf("stdout %q, want nothing", res.stdout)
			}
		})
	}
}

// writePackage writes a package directory and returns it with its files.
func writePackage(t *testing.T) (string, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"metadata.json":   `{"name":"chat"}`,
		"manifest.json":   `[{"process_name":"chat"}]`,
		"bin/chat.wasm":   "\x00asm\x01\x00\x00\x00",
		"static/app.html": "<html></html>",
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

func TestInstallDir(t *testing.T) {
	f := &fakeNode{requested: []*weftv1.RequestedCapability{
		{Process: "chat:chat:alice.os", Capability: &weftv1.Capability{Issuer: "our@kv:kv:weft.os", Params: `"messaging"`}},
	}}
	sock := serve(t, f)
	dir, files := writePackage(t)
	weft(t, sock, "install", dir, "--approve-all").want(t, 0,
		"installed chat:alice.os 0.1.0", "chat:chat:alice.os", "store:chat:alice.os", "our@kv:kv:weft.os")
	if f.called("InspectPackage") {
		t.Error("install --approve-all inspected the package first")
	}
	req := f.last("InstallPackage").(*weftv1.InstallPackageRequest)
	if !req.GetApproveAll() {
		t.Error("install --approve-all did not set approve_all")
	}
	zb := req.GetArchive().GetZip()
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatalf("install uploaded no zip: %v", err)
	}
	got := map[string]string{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[zf.Name] = string(b)
	}
	for name, body := range files {
		if got[name] != body {
			t.Errorf("zip entry %s = %q, want %q", name, got[name], body)
		}
	}
	if len(got) != len(files) {
		t.Errorf("zip holds %d files, want %d: %v", len(got), len(files), got)
	}

	m := mustJSON(t, weft(t, sock, "--json", "install", "--approve-all", dir).stdout)
	if m["package"].(map[string]any)["id"] != "chat:alice.os" {
		t.Errorf("install --json = %v", m)
	}
}

func TestInstallZipFile(t *testing.T) {
	f := &fakeNode{alreadyInstalled: true}
	sock := serve(t, f)
	zipFile := filepath.Join(t.TempDir(), "chat.zip")
	content := []byte("PK\x03\x04 not really a zip; the node judges")
	if err := os.WriteFile(zipFile, content, 0o644); err != nil {
		t.Fatal(err)
	}
	res := weft(t, sock, "install", zipFile)
	res.want(t, 0)
	if res.stdout != "chat:alice.os 0.1.0 already installed\n" {
		t.Errorf("install printed %q", res.stdout)
	}
	if !f.called("InspectPackage") {
		t.Error("install without approval flags did not inspect the package")
	}
	req := f.last("InstallPackage").(*weftv1.InstallPackageRequest)
	if !bytes.Equal(req.GetArchive().GetZip(), content) {
		t.Error("install ZIP did not upload the file as it is")
	}
	if req.GetApproveAll() || len(req.GetApprove()) > 0 {
		t.Errorf("a package requesting nothing was installed with approvals: %v", req)
	}
}

func TestInstallApproval(t *testing.T) {
	requested := []*weftv1.RequestedCapability{
		{Process: "chat:chat:alice.os", Capability: &weftv1.Capability{Issuer: "our@kv:kv:weft.os", Params: `"messaging"`}},
		{Process: "store:chat:alice.os", Capability: &weftv1.Capability{Issuer: "our@vfs:distro:sys", Params: `{"kind":"read"}`}},
	}
	dir, _ := writePackage(t)
	ctx := context.Background()

	t.Run("not a terminal", func(t *testing.T) {
		f := &fakeNode{requested: requested}
		sock := serve(t, f)
		res := invocation{stdin: "y\n"}.run(ctx, "--socket", sock, "install", dir)
		res.wantErr(t, ExitUsage, "requests these capabilities", "our@kv:kv:weft.os", `{"kind":"read"}`,
			"store:chat:alice.os", "--approve-all", "--approve", "nothing installed")
		if f.called("InstallPackage") {
			t.Error("installed without approval")
		}
	})
	t.Run("terminal yes", func(t *testing.T) {
		f := &fakeNode{requested: requested}
		sock := serve(t, f)
		res := invocation{stdin: "y\n", terminal: true}.run(ctx, "--socket", sock, "install", dir)
		res.want(t, 0, "installed chat:alice.os", "our@vfs:distro:sys")
		if !strings.Contains(res.stderr, "Approve all of these? [y/N]") || !strings.Contains(res.stderr, "our@kv:kv:weft.os") {
			t.Errorf("no prompt listing the capabilities on stderr: %q", res.stderr)
		}
		if req := f.last("InstallPackage").(*weftv1.InstallPackageRequest); !req.GetApproveAll() {
			t.Errorf("answering y did not approve all: %v", req)
		}
	})
	t.Run("terminal no", func(t *testing.T) {
		f := &fakeNode{requested: requested}
		sock := serve(t, f)
		res := invocation{stdin: "\n", terminal: true}.run(ctx, "--socket", sock, "install", dir)
		res.wantErr(t, ExitUsage, "not approved")
		if f.called("InstallPackage") {
			t.Error("installed after the user declined")
		}
	})
	t.Run("terminal interrupted", func(t *testing.T) {
		f := &fakeNode{requested: requested}
		sock := serve(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		in, w := io.Pipe() // nobody answers
		defer w.Close()
		stderr := &lockedBuffer{wrote: make(chan struct{}, 1)}
		done := make(chan result, 1)
		go func() {
			done <- invocation{in: in, terminal: true, stderr: stderr}.run(ctx, "--socket", sock, "install", dir)
		}()
		deadline := time.After(20 * time.Second)
		for !strings.Contains(stderr.String(), "[y/N]") {
			select {
			case <-stderr.wrote:
			case res := <-done:
				t.Fatalf("install ended before prompting: %+v", res)
			case <-deadline:
				t.Fatalf("no prompt in time: %q", stderr.String())
			}
		}
		cancel()
		select {
		case res := <-done:
			res.wantErr(t, ExitUsage, "nothing installed")
		case <-deadline:
			t.Fatal("install kept waiting for an answer after its context was cancelled")
		}
		if f.called("InstallPackage") {
			t.Error("installed after an interrupted prompt")
		}
	})
	t.Run("approve some", func(t *testing.T) {
		f := &fakeNode{requested: requested}
		sock := serve(t, f)
		res := weft(t, sock, "install", "--approve", "chat:chat:alice.os our@kv:kv:weft.os", dir,
			"--approve=store:chat:alice.os  our@vfs:distro:sys  {\"kind\": \"read\"}")
		res.want(t, 0, "approved capabilities:", "our@kv:kv:weft.os")
		if f.called("InspectPackage") {
			t.Error("install --approve inspected the package first")
		}
		req := f.last("InstallPackage").(*weftv1.InstallPackageRequest)
		got := req.GetApprove()
		if req.GetApproveAll() || len(got) != 2 ||
			got[0].GetProcess() != "chat:chat:alice.os" || got[0].GetCapability().GetIssuer() != "our@kv:kv:weft.os" ||
			got[0].GetCapability().GetParams() != `"messaging"` ||
			got[1].GetProcess() != "store:chat:alice.os" || got[1].GetCapability().GetIssuer() != "our@vfs:distro:sys" ||
			got[1].GetCapability().GetParams() != `{"kind": "read"}` {
			t.Errorf("install --approve sent %v", req)
		}
	})
}

func TestTap(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.Local)
	f := &fakeNode{tap: []*weftv1.TapResponse{
		{Envelope: &weftv1.Envelope{
			Time: timestamppb.New(at), Id: 11, Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST,
			Source: "our@operator:sys:weft", Target: "our@echo:echo:weft.os", BodySize: 4, Body: []byte("ping"),
			ExpectsResponse: durationpb.New(5 * time.Second),
		}},
		{Dropped: 3, Envelope: &weftv1.Envelope{
			Time: timestamppb.New(at), Id: 12, Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR,
			Source: "our@x:y:z", Target: "our@operator:sys:weft",
			ErrorKind: weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT, ErrorDetail: "no answer in 5s",
		}},
	}}
	sock := serve(t, f)

	// tap runs until ctx is cancelled, then exits 0.
	tapUntil := func(t *testing.T, lines int, args ...string) result {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &lockedBuffer{wrote: make(chan struct{}, 1)}
		done := make(chan result, 1)
		go func() { done <- invocation{stdout: out}.run(ctx, append([]string{"--socket", sock}, args...)...) }()
		deadline := time.After(20 * time.Second)
		for strings.Count(out.String(), "\n") < lines {
			select {
			case <-out.wrote:
			case res := <-done:
				t.Fatalf("tap ended before printing %d lines: %+v", lines, res)
			case <-deadline:
				t.Fatalf("tap printed no %d lines in time: %q", lines, out.String())
			}
		}
		cancel()
		select {
		case res := <-done:
			return res
		case <-deadline:
			t.Fatal("tap did not stop when its context was cancelled")
		}
		return result{}
	}

	res := tapUntil(t, 3, "tap", "our@echo:echo:weft.os", "--body", "16")
	res.want(t, 0,
		"07:08:09.000 request  our@operator:sys:weft → our@echo:echo:weft.os id=11 body=4B await=5s \"ping\"",
		"3 envelopes dropped",
		"error    our@x:y:z → our@operator:sys:weft id=12 body=0B error=timeout (no answer in 5s)")
	if res.stderr != "" {
		t.Errorf("tap wrote to stderr: %q", res.stderr)
	}
	req := f.last("Tap").(*weftv1.TapRequest)
	if len(req.GetProcesses()) != 1 || req.GetProcesses()[0] != "our@echo:echo:weft.os" || req.GetBodyBytes() != 16 {
		t.Errorf("tap asked for %v", req)
	}

	res = tapUntil(t, 2, "--json", "tap")
	res.want(t, 0)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("tap --json printed %d lines, want 2:\n%s", len(lines), res.stdout)
	}
	if m := mustJSON(t, lines[1]); m["dropped"] != "3" {
		t.Errorf("tap --json line = %v", m)
	}
}

func TestTapNodeEnds(t *testing.T) {
	f := &fakeNode{tapEnds: true, tap: []*weftv1.TapResponse{{Envelope: &weftv1.Envelope{
		Id: 5, Kind: weftv1.EnvelopeKind_ENVELOPE_KIND_RESPONSE, Source: "our@a:b:c", Target: "our@d:e:f", BodySize: 2,
	}}}}
	sock := serve(t, f)
	res := weft(t, sock, "tap")
	res.wantErr(t, ExitNode, "the node ended the stream")
	if !strings.Contains(res.stdout, "response our@a:b:c → our@d:e:f id=5 body=2B") {
		t.Errorf("tap printed %q", res.stdout)
	}
}

func TestCaps(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	weft(t, sock, "caps", "list", "chat:chat:alice.os").want(t, 0, "ISSUER", "PARAMS", "our@kv:kv:weft.os", `"messaging"`)
	if p := f.last("ListCapabilities").(*weftv1.ListCapabilitiesRequest).GetProcess(); p != "chat:chat:alice.os" {
		t.Errorf("caps list asked for %q", p)
	}
	m := mustJSON(t, weft(t, sock, "--json", "caps", "list", "chat:chat:alice.os").stdout)
	if len(m["capabilities"].([]any)) != 1 {
		t.Errorf("caps list --json = %v", m)
	}

	weft(t, sock, "caps", "grant", "chat:chat:alice.os", "our@kv:kv:weft.os").want(t, 0,
		`granted our@kv:kv:weft.os "messaging" to chat:chat:alice.os`)
	req := f.last("GrantCapability").(*weftv1.GrantCapabilityRequest)
	if req.GetProcess() != "chat:chat:alice.os" || req.GetCapability().GetIssuer() != "our@kv:kv:weft.os" ||
		req.GetCapability().GetParams() != `"messaging"` {
		t.Errorf("caps grant sent %v", req)
	}
	weft(t, sock, "caps", "grant", "a:b:c", "our@vfs:distro:sys", `{"kind":"read"}`).want(t, 0, `{"kind":"read"}`)
	if p := f.last("GrantCapability").(*weftv1.GrantCapabilityRequest).GetCapability().GetParams(); p != `{"kind":"read"}` {
		t.Errorf("caps grant PARAMS sent %q", p)
	}

	weft(t, sock, "caps", "revoke", "our@kv:kv:weft.os").want(t, 0, `revoked our@kv:kv:weft.os "messaging"`)
	if c := f.last("RevokeCapability").(*weftv1.RevokeCapabilityRequest).GetCapability(); c.GetIssuer() != "our@kv:kv:weft.os" || c.GetParams() != `"messaging"` {
		t.Errorf("caps revoke sent %v", c)
	}
}

func TestHelp(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		res := invocation{}.run(ctx, args...)
		res.want(t, 0, "Example", "Exit codes", "--socket", "WEFT_SOCKET", DefaultSocket)
		for _, c := range commands {
			if !strings.Contains(res.stdout, "  "+c.name+" ") {
				t.Errorf("weft %s does not list %s", args[0], c.name)
			}
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h"}} {
			res := invocation{}.run(ctx, args...)
			res.want(t, 0, "Usage: "+c.usage, "Example")
			if res.stderr != "" {
				t.Errorf("weft %v wrote to stderr: %q", args, res.stderr)
			}
		}
	}
}

// TestTCP reaches a node over HTTPS with a bearer token and --ca.
func TestTCP(t *testing.T) {
	f := &fakeNode{}
	srv := httptest.NewUnstartedServer(f.handler())
	srv.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	invocation{env: map[string]string{"WEFT_TOKEN": "s3cret"}}.run(ctx, "--addr", srv.URL, "--ca", ca, "status").want(t, 0, "node-abc")
	if got := f.lastAuth(); got != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	invocation{env: map[string]string{"WEFT_TOKEN": "s3cret"}}.run(ctx, "--addr", srv.URL, "--ca", ca, "--token-file", tokenFile, "ps").want(t, 0, "chat:chat:alice.os")
	if got := f.lastAuth(); got != "Bearer fromfile" {
		t.Errorf("Authorization with --token-file = %q", got)
	}
	// Without --ca the test server's certificate is not trusted.
	invocation{env: map[string]string{"WEFT_TOKEN": "s3cret"}}.run(ctx, "--addr", srv.URL, "status").wantErr(t, ExitNode, "weft: status: unavailable", "--ca FILE")
}

func TestFlagParse(t *testing.T) {
	fs := newFlagSet()
	var s, v string
	var b bool
	var list []string
	var d time.Duration
	fs.stringVar(&s, "s")
	fs.stringVar(&v, "value")
	fs.boolVar(&b, "b")
	fs.stringsVar(&list, "l")
	fs.durationVar(&d, "d")
	pos, err := fs.parse([]string{"p1", "-s", "x", "--value=a=b", "p2", "-b", "-l", "1", "--l=2", "-d=3s", "-", "--", "-b", "--s"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, ",") != "p1,p2,-,-b,--s" || s != "x" || v != "a=b" || !b || strings.Join(list, ",") != "1,2" || d != 3*time.Second {
		t.Errorf("parse: pos %q s %q v %q b %v l %q d %s", pos, s, v, b, list, d)
	}

	fs = newFlagSet()
	fs.boolVar(&b, "b")
	pos, err = fs.parse([]string{"-b=false", "cmd", "-b", "--x"}, false)
	if err != nil || b || strings.Join(pos, ",") != "cmd,-b,--x" {
		t.Errorf("parse, not interspersed: pos %q b %v err %v", pos, b, err)
	}
	for _, args := range [][]string{{"--nope"}, {"---b"}, {"--=x"}, {"-b=maybe"}} {
		if _, err := newFlagSet().parse(args, true); err == nil {
			t.Errorf("parse %q: no error", args)
		}
	}
}

func FuzzParseApprove(f *testing.F) {
	f.Add(`chat:chat:alice.os our@kv:kv:weft.os`)
	f.Add("p i {\"a\": [1, 2]}")
	f.Add("  p\ti  \"x\"  ")
	f.Fuzz(func(t *testing.T, s string) {
		rc, err := parseApprove(s)
		if err != nil {
			return
		}
		c := rc.GetCapability()
		if rc.GetProcess() == "" || c.GetIssuer() == "" || !json.Valid([]byte(c.GetParams())) ||
			strings.ContainsAny(rc.GetProcess()+c.GetIssuer(), " \t\r\n") {
			t.Errorf("parseApprove(%q) = %v", s, rc)
		}
	})
}

func TestOurAddr(t *testing.T) {
	for _, tc := range [][3]string{
		{"node-abc@echo:echo:examples", "node-abc", "our@echo:echo:examples"},
		{"other@echo:echo:examples", "node-abc", "other@echo:echo:examples"},
		{"node-abcd@x:y:z", "node-abc", "node-abcd@x:y:z"},
		{"node-abc@x:y:z", "", "node-abc@x:y:z"},
	} {
		if got := ourAddr(tc[0], tc[1]); got != tc[2] {
			t.Errorf("ourAddr(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
