package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/daemon/metrics"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
)

func newKernel(t *testing.T) *kernel.Kernel {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, err := kernel.New(kernel.Config{Keyring: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("close kernel: %v", err)
		}
	})
	return k
}

func echo(ctx context.Context, h *kernel.Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.WantsResponse() {
			h.Respond(&kernel.Response{Body: m.Body})
		}
	}
}

// gated answers one request (the gate), then never reads its mailbox again.
func gated(ctx context.Context, h *kernel.Handle) error {
	m, err := h.Await()
	if err != nil {
		return nil
	}
	if m.WantsResponse() {
		h.Respond(&kernel.Response{})
	}
	<-ctx.Done()
	return nil
}

func mustID(t *testing.T, s string) kernel.ProcessId {
	t.Helper()
	id, err := kernel.ParseProcessId(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustAddr(t *testing.T, s string) kernel.Address {
	t.Helper()
	a, err := kernel.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// scrape fetches h's exposition and parses it.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: status %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels are
// exactly labels, failing the test when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := lookup(fams, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	return v
}

func lookup(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want, ok := labels[l.GetName()]; !ok || want != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestKernelMetrics(t *testing.T) {
	k := newKernel(t)
	m := metrics.New(k)
	ctx := context.Background()

	echoID := mustID(t, "echo:metrics:test")
	gateID := mustID(t, "gate:metrics:test")
	for _, s := range []kernel.Spec{
		{ID: echoID, Public: true, Process: kernel.ProcessFunc(echo)},
		{ID: gateID, Public: true, Process: kernel.ProcessFunc(gated)},
	} {
		if err := k.Start(s); err != nil {
			t.Fatal(err)
		}
	}

	const echoes = 3
	for range echoes {
		res, err := k.Send(ctx, &kernel.Request{Target: k.Address(echoID), ExpectsResponse: time.Minute, Body: []byte("hi")})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != "hi" {
			t.Fatalf("echo: got %q", res.Body)
		}
	}

	_, err := k.Send(ctx, &kernel.Request{Target: mustAddr(t, "our@missing:metrics:test"), ExpectsResponse: time.Minute})
	if !errors.Is(err, &kernel.SendError{Kind: kernel.ErrNoSuchProcess}) {
		t.Fatalf("send to a missing process: got %v, want no_such_process", err)
	}

	// The gate is answered; every request after it stays in the mailbox.
	if _, err := k.Send(ctx, &kernel.Request{Target: k.Address(gateID), ExpectsResponse: time.Minute}); err != nil {
		t.Fatal(err)
	}
	const queued = 5
	for range queued {
		if _, err := k.Send(ctx, &kernel.Request{Target: k.Address(gateID), Body: []byte("wait")}); err != nil {
			t.Fatal(err)
		}
	}
	// One more that expects a response: the operator has a request pending
	// until the test ends. The tap reports it once it is in the mailbox.
	tap, err := k.Tap(kernel.TapOptions{Processes: []kernel.ProcessId{gateID}})
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	sendCtx, cancelSend := context.WithCancel(ctx)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		k.Send(sendCtx, &kernel.Request{Target: k.Address(gateID), ExpectsResponse: time.Hour, Body: []byte("pending")})
	}()
	t.Cleanup(func() { cancelSend(); <-sent })
	timeout := time.After(10 * time.Second)
	for delivered := false; !delivered; {
		select {
		case e := <-tap.C:
			delivered = e.Kind == kernel.KindRequest && e.ExpectsResponse == time.Hour
		case <-timeout:
			t.Fatal("the pending request never reached the gate's mailbox")
		}
	}

	fams := scrape(t, m.Handler())

	// 3 echo requests and their responses, the gate and its response, and
	// the queued requests.
	if got, want := value(t, fams, "weft_messages_routed_total", nil), float64(2*echoes+2+queued+1); got != want {
		t.Errorf("weft_messages_routed_total = %v, want %v", got, want)
	}
	for _, kind := range kernel.ErrorKinds {
		want := 0.0
		if kind == kernel.ErrNoSuchProcess {
			want = 1
		}
		if got := value(t, fams, "weft_send_errors_total", map[string]string{"kind": kind.String()}); got != want {
			t.Errorf("weft_send_errors_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
	running := 0
	for _, p := range k.Processes() {
		if p.State == kernel.StateRunning {
			running++
		}
	}
	if running < 2 {
		t.Fatalf("kernel reports %d running processes, want at least echo and gate", running)
	}
	wantStates := map[string]float64{"running": float64(running), "restarting": 0, "exited": 0, "killed": 0}
	for state, want := range wantStates {
		if got := value(t, fams, "weft_processes", map[string]string{"state": state}); got != want {
			t.Errorf("weft_processes{state=%q} = %v, want %v", state, got, want)
		}
	}
	if got := value(t, fams, "weft_mailbox_depth", map[string]string{"process": gateID.String()}); got != queued+1 {
		t.Errorf("weft_mailbox_depth{process=%q} = %v, want %v", gateID, got, queued+1)
	}
	if got := value(t, fams, "weft_mailbox_depth", map[string]string{"process": echoID.String()}); got != 0 {
		t.Errorf("weft_mailbox_depth{process=%q} = %v, want 0", echoID, got)
	}
	if got := value(t, fams, "weft_mailbox_messages", nil); got != queued+1 {
		t.Errorf("weft_mailbox_messages = %v, want %v", got, queued+1)
	}
	if got := value(t, fams, "weft_pending_requests", map[string]string{"process": kernel.OperatorProcess.String()}); got != 1 {
		t.Errorf("weft_pending_requests{process=%q} = %v, want 1", kernel.OperatorProcess, got)
	}
	if got := value(t, fams, "weft_pending_requests", map[string]string{"process": echoID.String()}); got != 0 {
		t.Errorf("weft_pending_requests{process=%q} = %v, want 0", echoID, got)
	}
	if got := value(t, fams, "weft_restarts_total", nil); got != 0 {
		t.Errorf("weft_restarts_total = %v, want 0", got)
	}
	if got := value(t, fams, "weft_late_responses_total", nil); got != 0 {
		t.Errorf("weft_late_responses_total = %v, want 0", got)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("standard collector metric %s missing", name)
		}
	}
}

func TestProcessesByState(t *testing.T) {
	k := newKernel(t)
	m := metrics.New(k)
	ctx := context.Background()

	doneID := mustID(t, "done:metrics:test")
	killedID := mustID(t, "killed:metrics:test")
	if err := k.Start(kernel.Spec{ID: doneID, Process: kernel.ProcessFunc(func(context.Context, *kernel.Handle) error { return nil })}); err != nil {
		t.Fatal(err)
	}
	if err := k.Start(kernel.Spec{ID: killedID, Process: kernel.ProcessFunc(echo)}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := k.WaitProcess(waitCtx, doneID, func(p kernel.ProcessInfo) bool { return p.State == kernel.StateExited }); err != nil {
		t.Fatal(err)
	}
	if err := k.Kill(waitCtx, killedID); err != nil {
		t.Fatal(err)
	}

	want := map[kernel.ProcState]float64{}
	for _, p := range k.Processes() {
		want[p.State]++
	}
	if want[kernel.StateExited] != 1 || want[kernel.StateKilled] != 1 {
		t.Fatalf("kernel reports states %v, want one exited and one killed", want)
	}
	fams := scrape(t, m.Handler())
	for _, s := range []kernel.ProcState{kernel.StateRunning, kernel.StateRestarting, kernel.StateExited, kernel.StateKilled} {
		if got := value(t, fams, "weft_processes", map[string]string{"state": s.String()}); got != want[s] {
			t.Errorf("weft_processes{state=%q} = %v, want %v", s, got, want[s])
		}
	}
}

type nodeInfo struct {
	weftv1connect.UnimplementedNodeServiceHandler
	err error
}

func (n nodeInfo) GetInfo(context.Context, *connect.Request[weftv1.GetInfoRequest]) (*connect.Response[weftv1.GetInfoResponse], error) {
	if n.err != nil {
		return nil, n.err
	}
	return connect.NewResponse(&weftv1.GetInfoResponse{NodeId: "n"}), nil
}

type tapper struct {
	weftv1connect.UnimplementedMessageServiceHandler
}

func (tapper) Tap(_ context.Context, _ *connect.Request[weftv1.TapRequest], s *connect.ServerStream[weftv1.TapResponse]) error {
	if err := s.Send(&weftv1.TapResponse{}); err != nil {
		return err
	}
	return connect.NewError(connect.CodePermissionDenied, errors.New("no tap for you"))
}

// serve returns a function that serves a generated handler (path and
// handler, as weftv1connect returns them) on a test HTTP server and returns
// its URL.
func serve(t *testing.T) func(path string, h http.Handler) string {
	return func(path string, h http.Handler) string {
		mux := http.NewServeMux()
		mux.Handle(path, h)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL
	}
}

func TestInterceptor(t *testing.T) {
	m := metrics.New(newKernel(t))
	ctx := context.Background()
	ic := connect.WithInterceptors(m.Interceptor())

	okURL := serve(t)(weftv1connect.NewNodeServiceHandler(nodeInfo{}, ic))
	nfURL := serve(t)(weftv1connect.NewNodeServiceHandler(nodeInfo{err: connect.NewError(connect.CodeNotFound, errors.New("gone"))}, ic))
	tapURL := serve(t)(weftv1connect.NewMessageServiceHandler(tapper{}, ic))

	// The interceptor on the client as well: it must not count client calls.
	okClient := weftv1connect.NewNodeServiceClient(http.DefaultClient, okURL, connect.WithInterceptors(m.Interceptor()))
	for range 2 {
		res, err := okClient.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.GetNodeId() != "n" {
			t.Fatalf("GetInfo: node id %q", res.Msg.GetNodeId())
		}
	}
	nfClient := weftv1connect.NewNodeServiceClient(http.DefaultClient, nfURL)
	if _, err := nfClient.GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{})); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("GetInfo: got %v, want not_found", err)
	}

	tapClient := weftv1connect.NewMessageServiceClient(http.DefaultClient, tapURL)
	stream, err := tapClient.Tap(ctx, connect.NewRequest(&weftv1.TapRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for stream.Receive() {
		n++
	}
	if n != 1 || connect.CodeOf(stream.Err()) != connect.CodePermissionDenied {
		t.Fatalf("Tap: %d messages, err %v; want 1 and permission_denied", n, stream.Err())
	}
	stream.Close()

	fams := scrape(t, m.Handler())
	want := []struct {
		procedure, code string
		n               float64
	}{
		{weftv1connect.NodeServiceGetInfoProcedure, "ok", 2},
		{weftv1connect.NodeServiceGetInfoProcedure, "not_found", 1},
		{weftv1connect.MessageServiceTapProcedure, "permission_denied", 1},
	}
	for _, w := range want {
		labels := map[string]string{"procedure": w.procedure, "code": w.code}
		if got := value(t, fams, "weft_api_calls_total", labels); got != w.n {
			t.Errorf("weft_api_calls_total%v = %v, want %v", labels, got, w.n)
		}
	}
	if got := len(fams["weft_api_calls_total"].GetMetric()); got != len(want) {
		t.Errorf("weft_api_calls_total has %d series, want %d", got, len(want))
	}
}

func TestExpositionLints(t *testing.T) {
	k, drivers := driverKernel(t)
	if err := k.Start(kernel.Spec{ID: mustID(t, "echo:metrics:test"), Process: kernel.ProcessFunc(echo)}); err != nil {
		t.Fatal(err)
	}
	lint(t, metrics.New(k, metrics.WithDrivers(drivers)).Handler(), "weft_")
}

// lint fails the test for every problem promlint finds in the metrics h
// serves whose names start with prefix.
func lint(t *testing.T, h http.Handler, prefix string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	problems, err := promlint.New(res.Body).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, prefix) {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
