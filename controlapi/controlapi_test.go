package controlapi_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/kernel"
)

func TestNewNeedsKernel(t *testing.T) {
	if _, err := controlapi.New(controlapi.Config{}); err == nil {
		t.Fatal("New without a kernel succeeded")
	}
}

func TestGetInfo(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	// One failed send, one routed request and response.
	if _, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@nobody:test:weft-test",
		Request: &weftv1.Request{ExpectsResponse: durationpb.New(time.Second)},
	})); err != nil {
		t.Fatal(err)
	}
	ask(t, n, "hi")

	res, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	info := res.Msg
	if info.GetNodeId() != n.k.NodeID() || info.GetVersion() != "1.2.3-test" {
		t.Errorf("node id %q version %q, want %q 1.2.3-test", info.GetNodeId(), info.GetVersion(), n.k.NodeID())
	}
	if info.GetProcesses() != 2 || info.GetProcessesRunning() != 2 {
		t.Errorf("processes %d running %d, want 2 and 2 (system processes not counted)", info.GetProcesses(), info.GetProcessesRunning())
	}
	if info.GetPackages() != 0 {
		t.Errorf("packages %d, want 0", info.GetPackages())
	}
	if info.GetMessagesRouted() < 2 {
		t.Errorf("messages routed %d, want at least 2", info.GetMessagesRouted())
	}
	if got := info.GetSendErrors()["no_such_process"]; got != 1 {
		t.Errorf("send errors %v, want no_such_process: 1", info.GetSendErrors())
	}
	if info.GetStarted() == nil || info.GetUptime().AsDuration() < 0 {
		t.Errorf("started %v uptime %v", info.GetStarted(), info.GetUptime())
	}
}

// ask sends body to the echo process and returns the response.
func ask(t *testing.T, n *node, body string) *weftv1.SendResponse {
	t.Helper()
	res, err := n.msg.Send(ctxT(t), connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@" + echoID.String(),
		Request: &weftv1.Request{Body: []byte(body), ExpectsResponse: durationpb.New(10 * time.Second)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetError() != nil {
		t.Fatalf("send: %v", res.Msg.GetError())
	}
	return res.Msg
}

func TestSend(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	md := "m"
	res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@" + echoID.String(),
		Request: &weftv1.Request{Body: []byte("hi"), Metadata: &md, ExpectsResponse: durationpb.New(10 * time.Second)},
		Blob:    &weftv1.Blob{Mime: "text/plain", Bytes: []byte("blob")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := res.Msg
	if got.GetId() == 0 || string(got.GetResponse().GetBody()) != "echo:hi" || got.GetResponse().GetMetadata() != "m" {
		t.Errorf("response %v, want id set, body echo:hi, metadata m", got)
	}
	if got.GetBlob().GetMime() != "text/plain" || string(got.GetBlob().GetBytes()) != "blob" {
		t.Errorf("blob %v, want the request's", got.GetBlob())
	}

	// Without expects_response the call returns once it is delivered.
	res, err = n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  n.k.NodeID() + "@" + sinkID.String(),
		Request: &weftv1.Request{Body: []byte("fire and forget")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetResult() != nil {
		t.Errorf("result %v, want none", res.Msg.GetResult())
	}
}

func TestSendErrors(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	for _, tc := range []struct {
		target  string
		timeout time.Duration
		kind    weftv1.SendErrorKind
	}{
		{"our@nobody:test:weft-test", time.Second, weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS},
		{"our@nobody:test:weft-test", 0, weftv1.SendErrorKind_SEND_ERROR_KIND_NO_SUCH_PROCESS},
		{"our@" + sinkID.String(), 20 * time.Millisecond, weftv1.SendErrorKind_SEND_ERROR_KIND_TIMEOUT},
	} {
		r := &weftv1.Request{Body: []byte("x")}
		if tc.timeout > 0 {
			r.ExpectsResponse = durationpb.New(tc.timeout)
		}
		res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: tc.target, Request: r}))
		if err != nil {
			t.Fatalf("send to %s: %v, want a SendResponse with an error", tc.target, err)
		}
		e := res.Msg.GetError()
		if e.GetKind() != tc.kind || e.GetTarget() == "" || e.GetDetail() == "" {
			t.Errorf("send to %s (timeout %v): error %v, want kind %v with target and detail", tc.target, tc.timeout, e, tc.kind)
		}
	}
	// A timeout past the kernel's limit is the caller's mistake.
	_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@" + echoID.String(),
		Request: &weftv1.Request{ExpectsResponse: durationpb.New(1000 * time.Hour)},
	}))
	wantCode(t, err, connect.CodeInvalidArgument, "max_timeout")
}

func TestBadArguments(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	calls := []struct {
		name  string
		call  func() error
		field string
	}{
		{"kill", func() error {
			_, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: "Bad:x:y"}))
			return err
		}, "process"},
		{"restart", func() error {
			_, err := n.proc.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: "x:y"}))
			return err
		}, "process"},
		{"list processes", func() error {
			_, err := n.proc.ListProcesses(ctx, connect.NewRequest(&weftv1.ListProcessesRequest{Package: "no-publisher"}))
			return err
		}, "package"},
		{"send target", func() error {
			_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "echo:test:weft-test", Request: &weftv1.Request{}}))
			return err
		}, "target"},
		{"send no request", func() error {
			_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "our@" + echoID.String()}))
			return err
		}, "request"},
		{"send capability", func() error {
			_, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "our@" + echoID.String(),
				Request: &weftv1.Request{Capabilities: []*weftv1.Capability{{Issuer: "our@!:x:y", Params: `"messaging"`}}}}))
			return err
		}, "request.capabilities[0].issuer"},
		{"list capabilities", func() error {
			_, err := n.caps.ListCapabilities(ctx, connect.NewRequest(&weftv1.ListCapabilitiesRequest{Process: ""}))
			return err
		}, "process"},
		{"grant process", func() error {
			_, err := n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{Process: "a:b",
				Capability: &weftv1.Capability{Issuer: "our@" + echoID.String(), Params: `"messaging"`}}))
			return err
		}, "process"},
		{"grant issuer", func() error {
			_, err := n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{Process: sinkID.String(),
				Capability: &weftv1.Capability{Issuer: "echo:test:weft-test", Params: `"messaging"`}}))
			return err
		}, "capability.issuer"},
		{"grant params", func() error {
			_, err := n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{Process: sinkID.String(),
				Capability: &weftv1.Capability{Issuer: "our@" + echoID.String(), Params: `{not json`}}))
			return err
		}, ""},
		{"revoke", func() error {
			_, err := n.caps.RevokeCapability(ctx, connect.NewRequest(&weftv1.RevokeCapabilityRequest{}))
			return err
		}, "capability"},
		{"uninstall", func() error {
			_, err := n.pkgs.UninstallPackage(ctx, connect.NewRequest(&weftv1.UninstallPackageRequest{Package: "Echo:examples"}))
			return err
		}, "package"},
		{"tap process", func() error {
			return tapErr(ctx, n, &weftv1.TapRequest{Processes: []string{echoID.String(), "BAD"}})
		}, "processes[1]"},
		{"tap body bytes", func() error {
			return tapErr(ctx, n, &weftv1.TapRequest{BodyBytes: 4097})
		}, "body_bytes"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			wantCode(t, err, connect.CodeInvalidArgument)
			if c.field != "" && !strings.HasPrefix(errMessage(err), c.field+": ") {
				t.Errorf("message %q does not start with the field %q", errMessage(err), c.field)
			}
		})
	}
}

func errMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// tapErr opens a tap and returns the error that ends it.
func tapErr(ctx context.Context, n *node, req *weftv1.TapRequest) error {
	stream, err := n.msg.Tap(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
	}
	return stream.Err()
}

func TestProcesses(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	res, err := n.proc.ListProcesses(ctx, connect.NewRequest(&weftv1.ListProcessesRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range res.Msg.GetProcesses() {
		ids = append(ids, p.GetId())
	}
	for _, want := range []string{echoID.String(), sinkID.String(), kernel.OperatorProcess.String()} {
		if !slices.Contains(ids, want) {
			t.Errorf("processes %v lack %s", ids, want)
		}
	}

	res, err = n.proc.ListProcesses(ctx, connect.NewRequest(&weftv1.ListProcessesRequest{Package: "test:weft-test"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.GetProcesses()) != 1 {
		t.Fatalf("processes of test:weft-test: %v, want echo alone", res.Msg.GetProcesses())
	}
	p := res.Msg.GetProcesses()[0]
	if p.GetId() != echoID.String() || p.GetState() != weftv1.ProcessState_PROCESS_STATE_RUNNING ||
		!p.GetPublic() || p.GetPersisted() || p.GetOnExit() != "none" || p.GetParent() != "" || p.GetStarted() == nil {
		t.Errorf("echo: %v", p)
	}

	kill, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: echoID.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if s := kill.Msg.GetProcess().GetState(); s != weftv1.ProcessState_PROCESS_STATE_KILLED {
		t.Errorf("after kill: state %v", s)
	}
	restart, err := n.proc.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: echoID.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if s := restart.Msg.GetProcess().GetState(); s != weftv1.ProcessState_PROCESS_STATE_RUNNING {
		t.Errorf("after restart: state %v", s)
	}
	ask(t, n, "again")

	_, err = n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: "nobody:test:weft-test"}))
	wantCode(t, err, connect.CodeNotFound, "nobody:test:weft-test")
	_, err = n.proc.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: "nobody:test:weft-test"}))
	wantCode(t, err, connect.CodeNotFound, "nobody:test:weft-test")
}

func TestCapabilities(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	issuer := "our@" + echoID.String()
	grant, err := n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{
		Process:    sinkID.String(),
		Capability: &weftv1.Capability{Issuer: issuer, Params: `{ "b": 1, "a": 2 }`, Signature: []byte("ignored")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := grant.Msg.GetCapability()
	want := kernel.Capability{Issuer: n.k.Address(echoID), Params: `{"a":2,"b":1}`}
	want.Issuer.Node = n.k.NodeID()
	if c.GetIssuer() != want.Issuer.String() || c.GetParams() != want.Params {
		t.Errorf("granted %v, want issuer %s params %s", c, want.Issuer, want.Params)
	}
	signed, err := n.k.Sign(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.GetSignature(), signed.Signature) {
		t.Errorf("signature %x, want the node's %x", c.GetSignature(), signed.Signature)
	}

	list, err := n.caps.ListCapabilities(ctx, connect.NewRequest(&weftv1.ListCapabilitiesRequest{Process: sinkID.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if !hasCap(list.Msg.GetCapabilities(), want) {
		t.Errorf("sink holds %v, want %v among them", list.Msg.GetCapabilities(), want)
	}
	for _, c := range list.Msg.GetCapabilities() {
		if len(c.GetSignature()) == 0 {
			t.Errorf("capability %v is not signed", c)
		}
	}

	if _, err := n.caps.RevokeCapability(ctx, connect.NewRequest(&weftv1.RevokeCapabilityRequest{
		Capability: &weftv1.Capability{Issuer: issuer, Params: `{"a":2,"b":1}`},
	})); err != nil {
		t.Fatal(err)
	}
	list, err = n.caps.ListCapabilities(ctx, connect.NewRequest(&weftv1.ListCapabilitiesRequest{Process: sinkID.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if hasCap(list.Msg.GetCapabilities(), want) {
		t.Errorf("sink still holds %v after revoke", want)
	}

	_, err = n.caps.GrantCapability(ctx, connect.NewRequest(&weftv1.GrantCapabilityRequest{
		Process:    "nobody:test:weft-test",
		Capability: &weftv1.Capability{Issuer: issuer, Params: `"messaging"`},
	}))
	wantCode(t, err, connect.CodeNotFound, "nobody:test:weft-test")
	_, err = n.caps.ListCapabilities(ctx, connect.NewRequest(&weftv1.ListCapabilitiesRequest{Process: "nobody:test:weft-test"}))
	wantCode(t, err, connect.CodeNotFound)
}

func hasCap(cs []*weftv1.Capability, want kernel.Capability) bool {
	return slices.ContainsFunc(cs, func(c *weftv1.Capability) bool {
		return c.GetIssuer() == want.Issuer.String() && c.GetParams() == want.Params
	})
}

func TestTap(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	stream, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{Processes: []string{echoID.String()}, BodyBytes: 3}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	stream.ResponseHeader() // the tap is open once the headers are here
	if got := n.k.TapCount(); got != 1 {
		t.Fatalf("TapCount %d with a stream open, want 1", got)
	}
	// Not followed: the sink's traffic.
	if _, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "our@" + sinkID.String(), Request: &weftv1.Request{}})); err != nil {
		t.Fatal(err)
	}
	sent := ask(t, n, "hello")

	var got []*weftv1.Envelope
	for len(got) < 2 && stream.Receive() {
		got = append(got, stream.Msg().GetEnvelope())
	}
	if len(got) < 2 {
		t.Fatalf("stream ended after %v: %v", got, stream.Err())
	}
	req, res := got[0], got[1]
	op := n.k.Address(kernel.OperatorProcess).String()
	ec := n.k.Address(echoID).String()
	if req.GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST || req.GetId() != sent.GetId() ||
		req.GetSource() != op || req.GetTarget() != ec || req.GetBodySize() != 5 || string(req.GetBody()) != "hel" ||
		req.GetExpectsResponse().AsDuration() != 10*time.Second || req.GetTime() == nil {
		t.Errorf("request envelope %v (sent id %d, %s -> %s)", req, sent.GetId(), op, ec)
	}
	if res.GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_RESPONSE || res.GetId() != sent.GetId() ||
		res.GetSource() != ec || res.GetTarget() != op || res.GetBodySize() != uint32(len("echo:hello")) || string(res.GetBody()) != "ech" {
		t.Errorf("response envelope %v", res)
	}
}

func TestTapErrorEnvelope(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	stream, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{Processes: []string{sinkID.String()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	stream.ResponseHeader()
	// The sink never answers; killing it fails the request.
	sent := make(chan *weftv1.SendResponse, 1)
	go func() {
		res, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{
			Target:  "our@" + sinkID.String(),
			Request: &weftv1.Request{ExpectsResponse: durationpb.New(time.Minute)},
		}))
		if err != nil {
			t.Errorf("send: %v", err)
			sent <- nil
			return
		}
		sent <- res.Msg
	}()
	if !stream.Receive() || stream.Msg().GetEnvelope().GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST {
		t.Fatalf("want the request first: %v %v", stream.Msg(), stream.Err())
	}
	if _, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: sinkID.String()})); err != nil {
		t.Fatal(err)
	}
	if got := (<-sent).GetError().GetKind(); got != weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED {
		t.Errorf("send error %v, want killed", got)
	}
	if !stream.Receive() {
		t.Fatalf("stream ended without an error envelope: %v", stream.Err())
	}
	e := stream.Msg().GetEnvelope()
	if e.GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_ERROR || e.GetErrorKind() != weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED ||
		e.GetErrorDetail() == "" || e.GetSource() != n.k.Address(sinkID).String() {
		t.Errorf("error envelope %v, want killed, from the sink, with detail", e)
	}
}

func TestTapClientGone(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	stream.ResponseHeader()
	ask(t, n, "one")
	if !stream.Receive() {
		t.Fatalf("no envelope: %v", stream.Err())
	}
	if got := n.k.TapCount(); got != 1 {
		t.Fatalf("TapCount %d, want 1", got)
	}
	cancel()
	waitFor(t, "the kernel's tap is closed", func() bool { return n.k.TapCount() == 0 })
	stream.Close()
}

func TestTapStopping(t *testing.T) {
	n := newNode(t, nodeOptions{})
	stream, err := n.msg.Tap(ctxT(t), connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	stream.ResponseHeader()
	close(n.stopping)
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		t.Errorf("stream ended with %v, want a clean end", err)
	}
	waitFor(t, "the kernel's tap is closed", func() bool { return n.k.TapCount() == 0 })
}

func TestGarbageRequest(t *testing.T) {
	n := newNode(t, nodeOptions{})
	res, err := n.hc.Post(baseURL+weftv1connect.MessageServiceSendProcedure, "application/proto",
		bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x07}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_argument"`) {
		t.Errorf("garbage: %s %s, want 400 invalid_argument", res.Status, body)
	}
	// Still serving.
	ask(t, n, "after garbage")
}

func TestOversizeRequest(t *testing.T) {
	n := newNode(t, nodeOptions{})
	// A gRPC-Web envelope (flags byte, big-endian length) that announces
	// one byte more than the node reads, then that many zeros, made as
	// they are sent.
	size := int64(controlapi.ReadMaxBytes) + 1
	var head [5]byte
	binary.BigEndian.PutUint32(head[1:], uint32(size))
	body := io.MultiReader(bytes.NewReader(head[:]), io.LimitReader(zeros{}, size))
	req, err := http.NewRequest(http.MethodPost, baseURL+weftv1connect.PackageServiceInstallPackageProcedure, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	res, err := n.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if got, want := res.Header.Get("Grpc-Status"), fmt.Sprint(int(connect.CodeResourceExhausted)); got != want {
		t.Errorf("grpc-status %q (%s), want %s (resource exhausted)", got, res.Header.Get("Grpc-Message"), want)
	}
	ask(t, n, "after oversize")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestToken(t *testing.T) {
	n := newNode(t, nodeOptions{token: "s3cret"})
	ctx := ctxT(t)
	call := func(header string) error {
		req := connect.NewRequest(&weftv1.GetInfoRequest{})
		if header != "" {
			req.Header().Set("Authorization", header)
		}
		_, err := n.node.GetInfo(ctx, req)
		return err
	}
	wantCode(t, call(""), connect.CodeUnauthenticated, "Bearer")
	wantCode(t, call("Bearer wrong"), connect.CodeUnauthenticated)
	wantCode(t, call("s3cret"), connect.CodeUnauthenticated)
	if err := call("Bearer s3cret"); err != nil {
		t.Fatalf("with the token: %v", err)
	}

	// A mutating call without the token is refused, and audited.
	_, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: echoID.String()}))
	wantCode(t, err, connect.CodeUnauthenticated)
	if p, _ := n.k.Process(echoID); p.State != kernel.StateRunning {
		t.Errorf("echo is %v after an unauthenticated kill", p.State)
	}
	lines := n.logs.records(t, "audit")
	if len(lines) != 1 || lines[0]["outcome"] != "unauthenticated" {
		t.Errorf("audit lines %v, want one unauthenticated", lines)
	}

	// Streams and gRPC are guarded too.
	wantCode(t, tapErr(ctx, n, &weftv1.TapRequest{}), connect.CodeUnauthenticated)
	grpc := weftv1connect.NewNodeServiceClient(n.httpClient(true), baseURL, connect.WithGRPC())
	_, err = grpc.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
}

func TestAudit(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if _, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{})); err != nil {
		t.Fatal(err)
	}
	if _, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: echoID.String()})); err != nil {
		t.Fatal(err)
	}
	_, err := n.proc.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: "nobody:test:weft-test"}))
	wantCode(t, err, connect.CodeNotFound)
	if _, err := n.msg.Send(ctx, connect.NewRequest(&weftv1.SendRequest{Target: "our@nobody:a:b", Request: &weftv1.Request{}})); err != nil {
		t.Fatal(err)
	}

	lines := n.logs.records(t, "audit")
	if len(lines) != 3 {
		t.Fatalf("audit lines %v, want 3 (kill, restart, send; not GetInfo)", lines)
	}
	kill, restart, send := lines[0], lines[1], lines[2]
	if kill["procedure"] != weftv1connect.ProcessServiceKillProcessProcedure || kill["process"] != echoID.String() ||
		kill["outcome"] != "ok" || kill["level"] != "INFO" {
		t.Errorf("kill: %v", kill)
	}
	peer, _ := kill["peer"].(map[string]any)
	if peer["uid"] != float64(os.Getuid()) || peer["gid"] != float64(os.Getgid()) || peer["pid"] != float64(os.Getpid()) {
		t.Errorf("kill peer %v, want uid %d gid %d pid %d", kill["peer"], os.Getuid(), os.Getgid(), os.Getpid())
	}
	if restart["outcome"] != "not_found" || restart["process"] != "nobody:test:weft-test" {
		t.Errorf("restart: %v", restart)
	}
	if send["outcome"] != "ok" || send["target"] != "our@nobody:a:b" || send["send_error"] != "SEND_ERROR_KIND_NO_SUCH_PROCESS" {
		t.Errorf("send: %v", send)
	}
}

func TestReflection(t *testing.T) {
	n := newNode(t, nodeOptions{})
	for _, tc := range []struct {
		name string
		hc   *http.Client
		opts []connect.ClientOption
	}{
		// Reflection is a bidi stream: HTTP/2 for both protocols.
		{"connect", n.httpClient(true), nil},
		{"grpc", n.httpClient(true), []connect.ClientOption{connect.WithGRPC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := grpcreflect.NewClient(tc.hc, baseURL, tc.opts...).NewStream(ctxT(t))
			defer stream.Close()
			names, err := stream.ListServices()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range names {
				got = append(got, string(s))
			}
			for _, want := range []string{weftv1connect.NodeServiceName, weftv1connect.PackageServiceName,
				weftv1connect.ProcessServiceName, weftv1connect.MessageServiceName, weftv1connect.CapabilityServiceName,
				weftv1connect.DriverServiceName} {
				if !slices.Contains(got, want) {
					t.Errorf("services %v lack %s", got, want)
				}
			}
			files, err := stream.FileContainingSymbol(weftv1connect.MessageServiceName)
			if err != nil || len(files) == 0 {
				t.Errorf("file of %s: %v, %v", weftv1connect.MessageServiceName, files, err)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	n := newNode(t, nodeOptions{})
	post := func(procedure, body string) (int, string) {
		t.Helper()
		res, err := n.hc.Post(baseURL+procedure, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	code, body := post(weftv1connect.NodeServiceGetInfoProcedure, "{}")
	if code != http.StatusOK || !strings.Contains(body, `"nodeId":"`+n.k.NodeID()+`"`) {
		t.Errorf("GetInfo: %d %s", code, body)
	}
	// Bytes travel as base64: "aGk=" is "hi", "ZWNobzpoaQ==" is "echo:hi".
	code, body = post(weftv1connect.MessageServiceSendProcedure,
		`{"target": "our@echo:test:weft-test", "request": {"body": "aGk=", "expectsResponse": "5s"}}`)
	if code != http.StatusOK || !strings.Contains(body, `"body":"ZWNobzpoaQ=="`) {
		t.Errorf("Send: %d %s", code, body)
	}
	code, body = post(weftv1connect.ProcessServiceKillProcessProcedure, `{"process": "Nope"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"invalid_argument"`) || !strings.Contains(body, "process: ") {
		t.Errorf("Kill with a bad name: %d %s", code, body)
	}
}

func TestGRPC(t *testing.T) {
	n := newNode(t, nodeOptions{})
	n.clients(n.httpClient(true), connect.WithGRPC())
	ctx := ctxT(t)
	info, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if info.Msg.GetNodeId() != n.k.NodeID() {
		t.Errorf("node id %q, want %q", info.Msg.GetNodeId(), n.k.NodeID())
	}
	if got := ask(t, n, "grpc"); string(got.GetResponse().GetBody()) != "echo:grpc" {
		t.Errorf("response %v", got)
	}
	_, err = n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: "nobody:x:y"}))
	wantCode(t, err, connect.CodeNotFound)

	stream, err := n.msg.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	stream.ResponseHeader()
	ask(t, n, "tapped")
	if !stream.Receive() || stream.Msg().GetEnvelope().GetKind() != weftv1.EnvelopeKind_ENVELOPE_KIND_REQUEST {
		t.Errorf("tap over gRPC: %v %v", stream.Msg(), stream.Err())
	}
}

func TestKernelClosed(t *testing.T) {
	n := newNode(t, nodeOptions{})
	ctx := ctxT(t)
	if err := n.k.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := n.proc.RestartProcess(ctx, connect.NewRequest(&weftv1.RestartProcessRequest{Process: echoID.String()}))
	wantCode(t, err, connect.CodeUnavailable)
}

func TestNoRegistry(t *testing.T) {
	n := newNode(t, nodeOptions{})
	_, err := n.pkgs.ListPackages(ctxT(t), connect.NewRequest(&weftv1.ListPackagesRequest{}))
	wantCode(t, err, connect.CodeUnavailable)
}

func TestInterceptors(t *testing.T) {
	type call struct {
		procedure string
		code      connect.Code
	}
	var mu sync.Mutex
	var calls []call
	record := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			var code connect.Code // 0: no error
			if err != nil {
				code = connect.CodeOf(err)
			}
			mu.Lock()
			calls = append(calls, call{req.Spec().Procedure, code})
			mu.Unlock()
			return res, err
		}
	})
	n := newNode(t, nodeOptions{interceptors: []connect.Interceptor{record}})
	ctx := ctxT(t)
	if _, err := n.node.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{})); err != nil {
		t.Fatal(err)
	}
	_, err := n.proc.KillProcess(ctx, connect.NewRequest(&weftv1.KillProcessRequest{Process: "nobody:x:y"}))
	wantCode(t, err, connect.CodeNotFound)
	mu.Lock()
	defer mu.Unlock()
	// The daemon's interceptor sees the code the client gets.
	want := []call{
		{weftv1connect.NodeServiceGetInfoProcedure, 0},
		{weftv1connect.ProcessServiceKillProcessProcedure, connect.CodeNotFound},
	}
	if !slices.Equal(calls, want) {
		t.Errorf("interceptor saw %v, want %v", calls, want)
	}
}
