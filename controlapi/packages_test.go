package controlapi_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/internal/wasmtest"
	"github.com/weftos/weft/packages/pkgzip"
	"github.com/weftos/weft/wasm"
)

// The examples are built once per test binary, on first use, and every
// test shares one wasm.Host.
var shared wasmtest.Examples

func setupWasm(t *testing.T) (dir string, host *wasm.Host) {
	t.Helper()
	return shared.Get(t, "..")
}

func TestMain(m *testing.M) {
	os.Exit(shared.Teardown(m.Run()))
}

// packageNode is a node with a registry, and the built examples.
func packageNode(t *testing.T) (*node, string) {
	dir, host := setupWasm(t)
	return newNode(t, nodeOptions{host: host}), dir
}

// zipOf archives a package directory.
func zipOf(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := pkgzip.Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// variant copies the package directory src and rewrites file name in it.
func variant(t *testing.T, src, name, content string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestPackages(t *testing.T) {
	n, dir := packageNode(t)
	ctx := ctxT(t)
	echoZip := zipOf(t, filepath.Join(dir, "echo"))

	inspect, err := n.pkgs.InspectPackage(ctx, connect.NewRequest(&weftv1.InspectPackageRequest{Archive: &weftv1.PackageArchive{Zip: echoZip}}))
	if err != nil {
		t.Fatal(err)
	}
	p := inspect.Msg.GetPackage()
	if p.GetId() != "echo:examples" || p.GetVersion() != "0.1.0" || !slices.Equal(p.GetProcesses(), []string{"echo:echo:examples"}) ||
		p.GetInstalled() != nil || inspect.Msg.GetInstalledVersion() != "" {
		t.Errorf("inspect: %v", inspect.Msg)
	}
	if len(n.reg.List()) != 0 {
		t.Fatalf("inspect installed something: %v", n.reg.List())
	}

	install, err := n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: echoZip}, ApproveAll: true}))
	if err != nil {
		t.Fatal(err)
	}
	if p := install.Msg.GetPackage(); p.GetId() != "echo:examples" || p.GetInstalled() == nil || install.Msg.GetAlreadyInstalled() {
		t.Errorf("install: %v", install.Msg)
	}
	res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@echo:echo:examples",
		Request: &weftv1.Request{Body: []byte("hi wasm"), ExpectsResponse: durationpb.New(30 * time.Second)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Msg.GetResponse().GetBody()); got != "hi wasm" {
		t.Errorf("echo answered %q (%v)", got, res.Msg.GetError())
	}

	again, err := n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: echoZip}}))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Msg.GetAlreadyInstalled() {
		t.Errorf("second install: %v, want already_installed", again.Msg)
	}
	inspect, err = n.pkgs.InspectPackage(ctx, connect.NewRequest(&weftv1.InspectPackageRequest{Archive: &weftv1.PackageArchive{Zip: echoZip}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := inspect.Msg.GetInstalledVersion(); got != "0.1.0" {
		t.Errorf("installed_version %q, want 0.1.0", got)
	}
	newer := zipOf(t, variant(t, filepath.Join(dir, "echo"), "metadata.json", `{"package_name": "echo", "publisher": "examples", "version": "0.2.0"}`))
	_, err = n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: newer}}))
	wantCode(t, err, connect.CodeFailedPrecondition, "another version")

	// chain requests echo's messaging capability: approve it by name.
	chainZip := zipOf(t, filepath.Join(dir, "chain"))
	approve := &weftv1.RequestedCapability{Process: "chain:chain:examples", Capability: &weftv1.Capability{Issuer: "our@echo:echo:examples", Params: `"messaging"`}}
	notRequested := &weftv1.RequestedCapability{Process: "chain:chain:examples", Capability: &weftv1.Capability{Issuer: "our@counter:counter:examples", Params: `"messaging"`}}
	_, err = n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: chainZip},
		Approve: []*weftv1.RequestedCapability{notRequested}}))
	wantCode(t, err, connect.CodeInvalidArgument, "not requested")
	_, err = n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: chainZip},
		Approve: []*weftv1.RequestedCapability{{Process: "chain:chain:examples", Capability: &weftv1.Capability{Issuer: "echo:echo:examples"}}}}))
	wantCode(t, err, connect.CodeInvalidArgument, "approve[0].capability.issuer: ")
	chain, err := n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: chainZip},
		Approve: []*weftv1.RequestedCapability{approve}}))
	if err != nil {
		t.Fatal(err)
	}
	cp := chain.Msg.GetPackage()
	if len(cp.GetRequested()) != 1 || len(cp.GetApproved()) != 1 || cp.GetApproved()[0].GetProcess() != "chain:chain:examples" ||
		!strings.HasSuffix(cp.GetApproved()[0].GetCapability().GetIssuer(), "@echo:echo:examples") {
		t.Errorf("chain: requested %v approved %v", cp.GetRequested(), cp.GetApproved())
	}

	list, err := n.pkgs.ListPackages(ctx, connect.NewRequest(&weftv1.ListPackagesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list.Msg.GetPackages() {
		ids = append(ids, p.GetId())
	}
	if !slices.Equal(ids, []string{"chain:examples", "echo:examples"}) {
		t.Errorf("packages %v", ids)
	}
	info, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if info.Msg.GetPackages() != 2 {
		t.Errorf("GetInfo packages %d, want 2", info.Msg.GetPackages())
	}

	un, err := n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: "echo:examples"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(un.Msg.GetProcesses(), []string{"echo:echo:examples"}) {
		t.Errorf("uninstalled %v", un.Msg.GetProcesses())
	}
	res, err = n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "our@echo:echo:examples", Request: &weftv1.Request{}}))
	if err != nil || res.Msg.GetError().GetKind() != weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS {
		t.Errorf("send after uninstall: %v %v", res, err)
	}
	_, err = n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: "echo:examples"}))
	wantCode(t, err, connect.CodeNotFound)

	var installs []map[string]any
	for _, r := range n.logs.records(t, "audit") {
		if r["procedure"] == "/weft.v1.PackageService/InstallPackage" && r["outcome"] == "ok" {
			installs = append(installs, r)
		}
	}
	if len(installs) != 3 || installs[0]["package"] != "echo:examples" || installs[0]["version"] != "0.1.0" {
		t.Errorf("install audit lines %v", installs)
	}
}

func TestBrokenPackages(t *testing.T) {
	n, dir := packageNode(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		zip  []byte
		want string
	}{
		{"no archive", nil, "archive.zip: "},
		{"not a zip", []byte("PK\x03\x04 certainly not a zip archive"), "bad package"},
		{"bad metadata", zipOf(t, variant(t, filepath.Join(dir, "echo"), "metadata.json", `{"package_name": "Echo", "publisher": "examples", "version": "0.1.0"}`)), "metadata.json"},
		{"bad manifest", zipOf(t, variant(t, filepath.Join(dir, "echo"), "manifest.json", `[{"process_name": "echo"}]`)), "manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.pkgs.InspectPackage(ctx, connect.NewRequest(&weftv1.InspectPackageRequest{Archive: &weftv1.PackageArchive{Zip: tc.zip}}))
			wantCode(t, err, connect.CodeInvalidArgument, tc.want)
			_, err = n.pkgs.InstallPackage(ctx, connect.NewRequest(&weftv1.InstallPackageRequest{Archive: &weftv1.PackageArchive{Zip: tc.zip}, ApproveAll: true}))
			wantCode(t, err, connect.CodeInvalidArgument, tc.want)
		})
	}
	list, err := n.pkgs.ListPackages(ctx, connect.NewRequest(&weftv1.ListPackagesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Msg.GetPackages()) != 0 {
		t.Errorf("packages after broken installs: %v", list.Msg.GetPackages())
	}
	procs, err := n.proc.ListProcesses(ctx, connect.NewRequest(&weftv1.ListProcessesRequest{Package: "echo:examples"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(procs.Msg.GetProcesses()) != 0 {
		t.Errorf("processes after broken installs: %v", procs.Msg.GetProcesses())
	}
}
