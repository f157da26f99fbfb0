package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// fakeNode implements the seven control services with canned answers and
// records what it was asked.
type fakeNode struct {
	weftv1connect.UnimplementedNodeServiceHandler
	weftv1connect.UnimplementedPackageServiceHandler
	weftv1connect.UnimplementedProcessServiceHandler
	weftv1connect.UnimplementedMessageServiceHandler
	weftv1connect.UnimplementedCapabilityServiceHandler
	weftv1connect.UnimplementedStoreServiceHandler
	weftv1connect.UnimplementedDriverServiceHandler
	weftv1connect.UnimplementedBackupServiceHandler

	mu sync.Mutex
	// err, if set, is what every unary call returns.
	err error
	// requested is what InspectPackage says the package requests.
	requested []*weftv1.RequestedCapability
	// alreadyInstalled is what InstallPackage says.
	alreadyInstalled bool
	// sendResp is what Send answers; nil echoes "pong".
	sendResp *weftv1.SendResponse
	// tap is what Tap streams before it waits for the client to go.
	tap []*weftv1.TapResponse
	// tapEnds makes Tap return after streaming tap, as a stopping node does.
	tapEnds bool
	// block makes GetInfo wait until its call is cancelled.
	block bool
	// kv is the StoreService's databases: package, database, key, value.
	kv map[string]map[string]map[string][]byte
	// scanPage bounds the pairs a KVScan returns, below the client's limit,
	// so that paging is exercised; 0 means no bound.
	scanPage int
	// scanLies makes KVScan say there are more pairs yet send none.
	scanLies bool

	calls []string        // procedure names, in order
	reqs  []proto.Message // their requests
	auth  []string        // their Authorization headers
}

func (f *fakeNode) record(name string, h http.Header, req proto.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.reqs = append(f.reqs, req)
	f.auth = append(f.auth, h.Get("Authorization"))
	return f.err
}

// last returns the request of the last call named name, or nil.
func (f *fakeNode) last(name string) proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i] == name {
			return f.reqs[i]
		}
	}
	return nil
}

func (f *fakeNode) called(name string) bool { return f.last(name) != nil }

// lastAuth returns the Authorization header of the last call.
func (f *fakeNode) lastAuth() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auth) == 0 {
		return ""
	}
	return f.auth[len(f.auth)-1]
}

var testProcess = &weftv1.ProcessInfo{
	Id: "chat:chat:alice.os", State: weftv1.ProcessState_PROCESS_STATE_RUNNING,
	Public: true, Restarts: 2, MailboxDepth: 3, Pending: 1, LastError: "trap:\nunreachable",
}

func (f *fakeNode) GetInfo(ctx context.Context, req *connect.Request[weftv1.GetInfoRequest]) (*connect.Response[weftv1.GetInfoResponse], error) {
	if err := f.record("GetInfo", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if f.block {
		<-ctx.Done()
		return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
	}
	return connect.NewResponse(&weftv1.GetInfoResponse{
		NodeId: "node-abc", Version: "1.2.3",
		Started:   timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)),
		Uptime:    durationpb.New(90 * time.Minute),
		Processes: 7, ProcessesRunning: 5, Packages: 2, MessagesRouted: 1234,
		SendErrors: map[string]uint64{"timeout": 4, "offline": 1},
		Restarts:   3,
	}), nil
}

func (f *fakeNode) packageInfo(approved []*weftv1.RequestedCapability) *weftv1.PackageInfo {
	return &weftv1.PackageInfo{
		Id: "chat:alice.os", Version: "0.1.0",
		Processes: []string{"chat:chat:alice.os", "store:chat:alice.os"},
		Requested: f.requested, Approved: approved,
	}
}

func (f *fakeNode) InspectPackage(_ context.Context, req *connect.Request[weftv1.InspectPackageRequest]) (*connect.Response[weftv1.InspectPackageResponse], error) {
	if err := f.record("InspectPackage", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.InspectPackageResponse{Package: f.packageInfo(nil)}), nil
}

func (f *fakeNode) InstallPackage(_ context.Context, req *connect.Request[weftv1.InstallPackageRequest]) (*connect.Response[weftv1.InstallPackageResponse], error) {
	if err := f.record("InstallPackage", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	approved := req.Msg.GetApprove()
	if req.Msg.GetApproveAll() {
		approved = f.requested
	}
	return connect.NewResponse(&weftv1.InstallPackageResponse{
		Package: f.packageInfo(approved), AlreadyInstalled: f.alreadyInstalled,
	}), nil
}

func (f *fakeNode) ListPackages(_ context.Context, req *connect.Request[weftv1.ListPackagesRequest]) (*connect.Response[weftv1.ListPackagesResponse], error) {
	if err := f.record("ListPackages", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	p := f.packageInfo(nil)
	p.Installed = timestamppb.Now()
	return connect.NewResponse(&weftv1.ListPackagesResponse{Packages: []*weftv1.PackageInfo{p}}), nil
}

func (f *fakeNode) UninstallPackage(_ context.Context, req *connect.Request[weftv1.UninstallPackageRequest]) (*connect.Response[weftv1.UninstallPackageResponse], error) {
	if err := f.record("UninstallPackage", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	out := &weftv1.UninstallPackageResponse{Processes: []string{"chat:chat:alice.os"}}
	if req.Msg.GetPurge() {
		out.Databases, out.Drives = []string{"history"}, []string{"files"}
	}
	return connect.NewResponse(out), nil
}

func (f *fakeNode) ListProcesses(_ context.Context, req *connect.Request[weftv1.ListProcessesRequest]) (*connect.Response[weftv1.ListProcessesResponse], error) {
	if err := f.record("ListProcesses", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ListProcessesResponse{Processes: []*weftv1.ProcessInfo{testProcess}}), nil
}

func (f *fakeNode) KillProcess(_ context.Context, req *connect.Request[weftv1.KillProcessRequest]) (*connect.Response[weftv1.KillProcessResponse], error) {
	if err := f.record("KillProcess", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.KillProcessResponse{Process: &weftv1.ProcessInfo{
		Id: req.Msg.GetProcess(), State: weftv1.ProcessState_PROCESS_STATE_KILLED,
	}}), nil
}

func (f *fakeNode) RestartProcess(_ context.Context, req *connect.Request[weftv1.RestartProcessRequest]) (*connect.Response[weftv1.RestartProcessResponse], error) {
	if err := f.record("RestartProcess", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RestartProcessResponse{Process: &weftv1.ProcessInfo{
		Id: req.Msg.GetProcess(), State: weftv1.ProcessState_PROCESS_STATE_RUNNING,
	}}), nil
}

func (f *fakeNode) Send(_ context.Context, req *connect.Request[weftv1.SendRequest]) (*connect.Response[weftv1.SendResponse], error) {
	if err := f.record("Send", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if f.sendResp != nil {
		return connect.NewResponse(f.sendResp), nil
	}
	resp := &weftv1.SendResponse{Id: 42}
	if req.Msg.GetRequest().GetExpectsResponse() != nil {
		resp.Result = &weftv1.SendResponse_Response{Response: &weftv1.Response{Body: []byte("pong")}}
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeNode) Tap(ctx context.Context, req *connect.Request[weftv1.TapRequest], stream *connect.ServerStream[weftv1.TapResponse]) error {
	if err := f.record("Tap", req.Header(), req.Msg); err != nil {
		return err
	}
	for _, m := range f.tap {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	if !f.tapEnds {
		<-ctx.Done()
	}
	return nil
}

func (f *fakeNode) ListCapabilities(_ context.Context, req *connect.Request[weftv1.ListCapabilitiesRequest]) (*connect.Response[weftv1.ListCapabilitiesResponse], error) {
	if err := f.record("ListCapabilities", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ListCapabilitiesResponse{Capabilities: []*weftv1.Capability{
		{Issuer: "our@kv:kv:weft.os", Params: `"messaging"`, Signature: []byte{1, 2}},
	}}), nil
}

func (f *fakeNode) GrantCapability(_ context.Context, req *connect.Request[weftv1.GrantCapabilityRequest]) (*connect.Response[weftv1.GrantCapabilityResponse], error) {
	if err := f.record("GrantCapability", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	c := proto.Clone(req.Msg.GetCapability()).(*weftv1.Capability)
	c.Signature = []byte{9}
	return connect.NewResponse(&weftv1.GrantCapabilityResponse{Capability: c}), nil
}

func (f *fakeNode) RevokeCapability(_ context.Context, req *connect.Request[weftv1.RevokeCapabilityRequest]) (*connect.Response[weftv1.RevokeCapabilityResponse], error) {
	if err := f.record("RevokeCapability", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RevokeCapabilityResponse{}), nil
}

// The StoreService has the databases in kv, the drives "media" and
// "notes", and in media the directory "2026" and the file "cat.jpg" (the
// bytes of catJPG), both listed by ReadDir.

var catJPG = []byte("\xff\xd8JPEG\x00data")

var testModified = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func (f *fakeNode) ListDatabases(_ context.Context, req *connect.Request[weftv1.ListDatabasesRequest]) (*connect.Response[weftv1.ListDatabasesResponse], error) {
	if err := f.record("ListDatabases", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var dbs []string
	for db := range f.kv[req.Msg.GetPackage()] {
		dbs = append(dbs, db)
	}
	slices.Sort(dbs)
	return connect.NewResponse(&weftv1.ListDatabasesResponse{Databases: dbs}), nil
}

// database returns the database of the request, or a not_found error.
func (f *fakeNode) database(pkg, db string) (map[string][]byte, error) {
	d, ok := f.kv[pkg][db]
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no database %s of %s", db, pkg))
	}
	return d, nil
}

func (f *fakeNode) KVGet(_ context.Context, req *connect.Request[weftv1.KVGetRequest]) (*connect.Response[weftv1.KVGetResponse], error) {
	if err := f.record("KVGet", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.database(req.Msg.GetPackage(), req.Msg.GetDatabase())
	if err != nil {
		return nil, err
	}
	v, ok := d[string(req.Msg.GetKey())]
	return connect.NewResponse(&weftv1.KVGetResponse{Found: ok, Value: v}), nil
}

func (f *fakeNode) KVSet(_ context.Context, req *connect.Request[weftv1.KVSetRequest]) (*connect.Response[weftv1.KVSetResponse], error) {
	if err := f.record("KVSet", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pkg, db := req.Msg.GetPackage(), req.Msg.GetDatabase()
	if f.kv == nil {
		f.kv = make(map[string]map[string]map[string][]byte)
	}
	if f.kv[pkg] == nil {
		f.kv[pkg] = make(map[string]map[string][]byte)
	}
	d, ok := f.kv[pkg][db]
	if !ok {
		d = make(map[string][]byte)
		f.kv[pkg][db] = d
	}
	d[string(req.Msg.GetKey())] = req.Msg.GetValue()
	return connect.NewResponse(&weftv1.KVSetResponse{Created: !ok}), nil
}

func (f *fakeNode) KVDelete(_ context.Context, req *connect.Request[weftv1.KVDeleteRequest]) (*connect.Response[weftv1.KVDeleteResponse], error) {
	if err := f.record("KVDelete", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.database(req.Msg.GetPackage(), req.Msg.GetDatabase())
	if err != nil {
		return nil, err
	}
	delete(d, string(req.Msg.GetKey()))
	return connect.NewResponse(&weftv1.KVDeleteResponse{}), nil
}

func (f *fakeNode) DropDatabase(_ context.Context, req *connect.Request[weftv1.DropDatabaseRequest]) (*connect.Response[weftv1.DropDatabaseResponse], error) {
	if err := f.record("DropDatabase", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.database(req.Msg.GetPackage(), req.Msg.GetDatabase()); err != nil {
		return nil, err
	}
	delete(f.kv[req.Msg.GetPackage()], req.Msg.GetDatabase())
	return connect.NewResponse(&weftv1.DropDatabaseResponse{Revoked: 2}), nil
}

func (f *fakeNode) RemoveDrive(_ context.Context, req *connect.Request[weftv1.RemoveDriveRequest]) (*connect.Response[weftv1.RemoveDriveResponse], error) {
	if err := f.record("RemoveDrive", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.RemoveDriveResponse{Revoked: 1}), nil
}

func (f *fakeNode) KVScan(_ context.Context, req *connect.Request[weftv1.KVScanRequest]) (*connect.Response[weftv1.KVScanResponse], error) {
	if err := f.record("KVScan", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.scanLies {
		return connect.NewResponse(&weftv1.KVScanResponse{More: true}), nil
	}
	d, err := f.database(req.Msg.GetPackage(), req.Msg.GetDatabase())
	if err != nil {
		return nil, err
	}
	limit := int(req.Msg.GetLimit())
	if limit == 0 {
		limit = 100
	}
	if f.scanPage > 0 {
		limit = min(limit, f.scanPage)
	}
	var keys []string
	for k := range d {
		if strings.HasPrefix(k, string(req.Msg.GetPrefix())) && k > string(req.Msg.GetAfter()) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	resp := &weftv1.KVScanResponse{}
	if len(keys) > limit {
		keys, resp.More = keys[:limit], true
	}
	for _, k := range keys {
		resp.Pairs = append(resp.Pairs, &weftv1.KVPair{Key: []byte(k), Value: d[k]})
	}
	return connect.NewResponse(resp), nil
}

func (f *fakeNode) ListDrives(_ context.Context, req *connect.Request[weftv1.ListDrivesRequest]) (*connect.Response[weftv1.ListDrivesResponse], error) {
	if err := f.record("ListDrives", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ListDrivesResponse{Drives: []string{"media", "notes"}}), nil
}

func (f *fakeNode) ReadDir(_ context.Context, req *connect.Request[weftv1.ReadDirRequest]) (*connect.Response[weftv1.ReadDirResponse], error) {
	if err := f.record("ReadDir", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if req.Msg.GetDrive() != "media" {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no drive %s", req.Msg.GetDrive()))
	}
	return connect.NewResponse(&weftv1.ReadDirResponse{Entries: []*weftv1.DirEntry{
		{Name: "2026", Dir: true, Modified: timestamppb.New(testModified)},
		{Name: "cat.jpg", Size: uint64(len(catJPG)), Modified: timestamppb.New(testModified)},
	}}), nil
}

func (f *fakeNode) ReadFile(_ context.Context, req *connect.Request[weftv1.ReadFileRequest]) (*connect.Response[weftv1.ReadFileResponse], error) {
	if err := f.record("ReadFile", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	if req.Msg.GetDrive() != "media" || strings.TrimPrefix(req.Msg.GetPath(), "/") != "cat.jpg" {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("no file %s", req.Msg.GetPath()))
	}
	data := catJPG[min(req.Msg.GetOffset(), uint64(len(catJPG))):]
	if n := req.Msg.GetLength(); n > 0 && n < uint64(len(data)) {
		data = data[:n]
	}
	return connect.NewResponse(&weftv1.ReadFileResponse{Data: data}), nil
}

// The DriverService has two drivers: timer, a subprocess that failed
// once, and alarm, refused.
var testDrivers = []*weftv1.DriverInfo{
	{
		Name: "timer", Process: "timer:drivers:weft", State: weftv1.ProcessState_PROCESS_STATE_RUNNING,
		Pid: 4242, Restarts: 1, LastError: "driver timer: the driver's process\nexited", Calls: 17,
		Path: "/usr/lib/weft/drivers/timer", Sha256: strings.Repeat("ab", 32), Failures: 1,
	},
	{
		Name: "alarm", Process: "alarm:drivers:weft", Path: "/opt/alarm", Sha256: strings.Repeat("cd", 32),
		Refused: "driver alarm: checksum mismatch: /opt/alarm has SHA-256 " + strings.Repeat("ef", 32) + ", its declaration says " + strings.Repeat("cd", 32) + "; refused",
	},
}

func (f *fakeNode) ListDrivers(_ context.Context, req *connect.Request[weftv1.ListDriversRequest]) (*connect.Response[weftv1.ListDriversResponse], error) {
	if err := f.record("ListDrivers", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	return connect.NewResponse(&weftv1.ListDriversResponse{Drivers: testDrivers}), nil
}

func (f *fakeNode) RestartDriver(_ context.Context, req *connect.Request[weftv1.RestartDriverRequest]) (*connect.Response[weftv1.RestartDriverResponse], error) {
	if err := f.record("RestartDriver", req.Header(), req.Msg); err != nil {
		return nil, err
	}
	for _, d := range testDrivers {
		if d.GetName() != req.Msg.GetName() {
			continue
		}
		if d.GetRefused() != "" {
			return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New(d.GetRefused()))
		}
		return connect.NewResponse(&weftv1.RestartDriverResponse{Driver: &weftv1.DriverInfo{
			Name: d.GetName(), Process: d.GetProcess(), State: weftv1.ProcessState_PROCESS_STATE_RUNNING,
		}}), nil
	}
	return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("driver %q: no such driver", req.Msg.GetName()))
}

// handler serves f's seven services.
func (f *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(weftv1connect.NewNodeServiceHandler(f))
	mux.Handle(weftv1connect.NewPackageServiceHandler(f))
	mux.Handle(weftv1connect.NewProcessServiceHandler(f))
	mux.Handle(weftv1connect.NewMessageServiceHandler(f))
	mux.Handle(weftv1connect.NewCapabilityServiceHandler(f))
	mux.Handle(weftv1connect.NewStoreServiceHandler(f))
	mux.Handle(weftv1connect.NewDriverServiceHandler(f))
	mux.Handle(weftv1connect.NewBackupServiceHandler(f))
	return mux
}

// serve serves f on a Unix socket in a fresh short temp dir and returns
// the socket's path.
func serve(t *testing.T, f *fakeNode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "wcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.handler()}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader in
// different goroutines; each Write is announced on wrote, if set.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.b.Write(p)
	b.mu.Unlock()
	if b.wrote != nil {
		select {
		case b.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// invocation is one run of Main.
type invocation struct {
	env            map[string]string
	stdin          string
	terminal       bool          // stdin is a terminal
	stderrTerminal bool          // stderr is a terminal
	in             io.Reader     // stdin instead of the string stdin, if set
	stdout         *lockedBuffer // made if nil
	stderr         *lockedBuffer // made if nil
}

type result struct {
	code           int
	stdout, stderr string
}

func (inv invocation) run(ctx context.Context, args ...string) result {
	stdout := inv.stdout
	if stdout == nil {
		stdout = &lockedBuffer{}
	}
	stderr := inv.stderr
	if stderr == nil {
		stderr = &lockedBuffer{}
	}
	var stdin io.Reader = strings.NewReader(inv.stdin)
	if inv.in != nil {
		stdin = inv.in
	}
	code := Main(ctx, args, Env{
		Stdin:            stdin,
		Stdout:           stdout,
		Stderr:           stderr,
		Getenv:           func(k string) string { return inv.env[k] },
		IsTerminal:       func() bool { return inv.terminal },
		StderrIsTerminal: func() bool { return inv.stderrTerminal },
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// weft runs Main against the node on sock, with no environment.
func weft(t *testing.T, sock string, args ...string) result {
	t.Helper()
	return invocation{}.run(context.Background(), append([]string{"--socket", sock}, args...)...)
}

// want checks res's exit code and that stdout holds every one of outs.
func (res result) want(t *testing.T, code int, outs ...string) {
	t.Helper()
	if res.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, code, res.stdout, res.stderr)
	}
	for _, o := range outs {
		if !strings.Contains(res.stdout, o) {
			t.Errorf("stdout lacks %q:\n%s", o, res.stdout)
		}
	}
}

// wantErr checks res's exit code and that stderr holds every one of errs.
func (res result) wantErr(t *testing.T, code int, errs ...string) {
	t.Helper()
	if res.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", res.code, code, res.stdout, res.stderr)
	}
	for _, e := range errs {
		if !strings.Contains(res.stderr, e) {
			t.Errorf("stderr lacks %q:\n%s", e, res.stderr)
		}
	}
}
