package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

// fakeNode implements the five control services with canned answers and
// records what it was asked.
type fakeNode struct {
	weftv1connect.UnimplementedNodeServiceHandler
	weftv1connect.UnimplementedPackageServiceHandler
	weftv1connect.UnimplementedProcessServiceHandler
	weftv1connect.UnimplementedMessageServiceHandler
	weftv1connect.UnimplementedCapabilityServiceHandler

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
	return connect.NewResponse(&weftv1.UninstallPackageResponse{Processes: []string{"chat:chat:alice.os"}}), nil
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

// handler serves f's five services.
func (f *fakeNode) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(weftv1connect.NewNodeServiceHandler(f))
	mux.Handle(weftv1connect.NewPackageServiceHandler(f))
	mux.Handle(weftv1connect.NewProcessServiceHandler(f))
	mux.Handle(weftv1connect.NewMessageServiceHandler(f))
	mux.Handle(weftv1connect.NewCapabilityServiceHandler(f))
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
	env      map[string]string
	stdin    string
	terminal bool
	in       io.Reader     // stdin instead of the string stdin, if set
	stdout   *lockedBuffer // made if nil
	stderr   *lockedBuffer // made if nil
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
		Stdin:      stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		Getenv:     func(k string) string { return inv.env[k] },
		IsTerminal: func() bool { return inv.terminal },
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
