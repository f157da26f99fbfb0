package controlapi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/plugins/driver"
)

// shouter is an in-process driver: it answers a request with its body in
// capitals, panics on "panic" and, on "stray", sends to a process that
// does not exist (an operation the node refuses) and answers how that
// went.
type shouter struct{ node *driver.Node }

func (s *shouter) Start(_ context.Context, st driver.Start) error {
	s.node = st.Node
	return nil
}

func (s *shouter) Handle(ctx context.Context, r *driver.Request) *driver.Response {
	switch string(r.Body()) {
	case "panic":
		panic("told to")
	case "stray":
		_, err := s.node.Send(ctx, driver.Message{Target: "our@nobody:x:y", Timeout: time.Second})
		return driver.Reply([]byte(err.Error()))
	}
	return driver.Reply([]byte(strings.ToUpper(string(r.Body()))))
}

// A declared SHA-256 no file here has.
const wrongSum = "abababababababababababababababababababababababababababababababab"

// driverNode serves a node with three drivers: "shout" in-process,
// "bad" whose binary's checksum is not the declared one, and "gone"
// whose binary is missing. It returns the bad binary's path and sum.
func driverNode(t *testing.T) (n *node, badPath, badSum string) {
	t.Helper()
	dir := t.TempDir()
	badPath = filepath.Join(dir, "bad-driver")
	if err := os.WriteFile(badPath, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	badSum, err := plugins.Checksum(badPath)
	if err != nil {
		t.Fatal(err)
	}
	n = newNode(t, nodeOptions{drivers: []plugins.Decl{
		{Name: "shout", Public: true, Factory: func() driver.Driver { return &shouter{} }},
		{Name: "bad", Path: badPath, SHA256: wrongSum},
		{Name: "gone", Path: filepath.Join(dir, "missing"), SHA256: wrongSum},
	}})
	return n, badPath, badSum
}

// ask sends body to driver name as the operator and returns the answer's
// body, or the SendError's kind.
func (n *node) ask(t *testing.T, name, body string) string {
	t.Helper()
	resp, err := n.msg.Send(ctxT(t), connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@" + plugins.ID(name).String(),
		Request: &weftv1.Request{Body: []byte(body), ExpectsResponse: durationpb.New(20 * time.Second)},
	}))
	if err != nil {
		t.Fatalf("send %q to %s: %v", body, name, err)
	}
	if e := resp.Msg.GetError(); e != nil {
		return e.GetKind().String()
	}
	return string(resp.Msg.GetResponse().GetBody())
}

// listDrivers returns the node's drivers by name.
func (n *node) listDrivers(t *testing.T) map[string]*weftv1.DriverInfo {
	t.Helper()
	resp, err := n.drv.ListDrivers(ctxT(t), connect.NewRequest(&weftv1.ListDriversRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*weftv1.DriverInfo{}
	var order []string
	for _, d := range resp.Msg.GetDrivers() {
		out[d.GetName()] = d
		order = append(order, d.GetName())
	}
	if got := strings.Join(order, " "); got != "shout bad gone" {
		t.Fatalf("drivers listed %q, want them in declaration order", got)
	}
	return out
}

func TestListDrivers(t *testing.T) {
	n, badPath, badSum := driverNode(t)
	if got := n.ask(t, "shout", "hi"); got != "HI" {
		t.Fatalf("shout answered %q", got)
	}
	if got := n.ask(t, "shout", "stray"); !strings.Contains(got, "no_such_process") {
		t.Fatalf("stray answered %q", got)
	}

	ds := n.listDrivers(t)
	shout := ds["shout"]
	if shout.GetProcess() != "shout:drivers:weft" || shout.GetState() != weftv1.ProcessState_PROCESS_STATE_RUNNING ||
		shout.GetPid() != 0 || !shout.GetInProcess() || shout.GetPath() != "" || !shout.GetPublic() ||
		shout.GetRefused() != "" || shout.GetStarted() == nil {
		t.Errorf("shout: %v", shout)
	}
	if shout.GetCalls() != 2 || shout.GetFailures() != 0 || shout.GetRefusedOperations() != 1 {
		t.Errorf("shout: calls %d, failures %d, refused operations %d; want 2, 0, 1 (the stray send)",
			shout.GetCalls(), shout.GetFailures(), shout.GetRefusedOperations())
	}

	bad := ds["bad"]
	if bad.GetState() != weftv1.ProcessState_PROCESS_STATE_UNSPECIFIED || bad.GetInProcess() ||
		bad.GetPath() != badPath || bad.GetSha256() != wrongSum || bad.GetStarted() != nil {
		t.Errorf("bad: %v", bad)
	}
	for _, want := range []string{"checksum mismatch", badPath, badSum, wrongSum} {
		if !strings.Contains(bad.GetRefused(), want) {
			t.Errorf("bad: refused %q does not say %q", bad.GetRefused(), want)
		}
	}
	if gone := ds["gone"]; !strings.Contains(gone.GetRefused(), "no such file") {
		t.Errorf("gone: refused %q, want the missing binary", gone.GetRefused())
	}

	// A driver is a process like any other: ProcessService lists it; a
	// refused one is not in the table.
	procs, err := n.proc.ListProcesses(ctxT(t), connect.NewRequest(&weftv1.ListProcessesRequest{Package: plugins.Package.String()}))
	if err != nil {
		t.Fatal(err)
	}
	if ps := procs.Msg.GetProcesses(); len(ps) != 1 || ps[0].GetId() != "shout:drivers:weft" {
		t.Errorf("processes of drivers:weft: %v, want shout alone", ps)
	}
}

func TestRestartDriver(t *testing.T) {
	n, _, _ := driverNode(t)
	ctx := ctxT(t)

	// A panic ends the run; on_exit restarts it, counted.
	if got := n.ask(t, "shout", "panic"); got != weftv1.SendErrorKind_SEND_ERROR_KIND_KILLED.String() {
		t.Fatalf("panic answered %q, want killed", got)
	}
	var before *weftv1.DriverInfo
	waitFor(t, "shout restarted by on_exit", func() bool {
		before = n.listDrivers(t)["shout"]
		return before.GetRestarts() == 1 && before.GetState() == weftv1.ProcessState_PROCESS_STATE_RUNNING
	})
	if before.GetFailures() != 1 || !strings.Contains(before.GetLastError(), "told to") {
		t.Errorf("after the panic: failures %d, last error %q", before.GetFailures(), before.GetLastError())
	}

	resp, err := n.drv.RestartDriver(ctx, connect.NewRequest(&weftv1.RestartDriverRequest{Name: "shout"}))
	if err != nil {
		t.Fatal(err)
	}
	after := resp.Msg.GetDriver()
	if after.GetName() != "shout" || after.GetState() != weftv1.ProcessState_PROCESS_STATE_RUNNING || after.GetPid() != 0 {
		t.Errorf("restarted: %v", after)
	}
	// The owner's restart is not on_exit's: the count stays; the run is
	// a new one (the response may come before it starts).
	if after.GetRestarts() != 1 {
		t.Errorf("restarted: restarts %d, want 1", after.GetRestarts())
	}
	waitFor(t, "shout's new run started", func() bool {
		return n.listDrivers(t)["shout"].GetStarted().AsTime().After(before.GetStarted().AsTime())
	})
}

func TestRestartDriverErrors(t *testing.T) {
	n, badPath, badSum := driverNode(t)
	ctx := ctxT(t)
	restart := func(name string) error {
		_, err := n.drv.RestartDriver(ctx, connect.NewRequest(&weftv1.RestartDriverRequest{Name: name}))
		return err
	}

	wantCode(t, restart("nobody"), connect.CodeNotFound, `driver "nobody"`, "no such driver")
	wantCode(t, restart(""), connect.CodeInvalidArgument, "name")
	wantCode(t, restart("Shout"), connect.CodeInvalidArgument, "name", "Shout")
	wantCode(t, restart("shout:drivers:weft"), connect.CodeInvalidArgument, "name")

	// A refused binary is checked again, and refused again: the message
	// names the binary and both sums, and the driver stays refused.
	wantCode(t, restart("bad"), connect.CodeFailedPrecondition, "driver bad", badPath, badSum, wrongSum)
	if ds := n.listDrivers(t); ds["bad"].GetRefused() == "" || ds["bad"].GetState() != weftv1.ProcessState_PROCESS_STATE_UNSPECIFIED {
		t.Errorf("bad after a refused restart: %v", ds["bad"])
	}
	// A missing binary too, though no sentinel of the plugins says so.
	wantCode(t, restart("gone"), connect.CodeFailedPrecondition, "driver gone", "no such file")
	if lines := n.logs.records(t, "control API: internal error"); len(lines) != 0 {
		t.Errorf("internal errors logged: %v", lines)
	}

	// Every restart is audited, with its outcome; listing is not.
	var got []string
	for _, l := range n.logs.records(t, "audit") {
		if l["procedure"] != weftv1connect.DriverServiceRestartDriverProcedure {
			t.Errorf("audit line of %v", l["procedure"])
			continue
		}
		got = append(got, l["driver"].(string)+"="+l["outcome"].(string))
	}
	want := "nobody=not_found =invalid_argument Shout=invalid_argument shout:drivers:weft=invalid_argument bad=failed_precondition gone=failed_precondition"
	if strings.Join(got, " ") != want {
		t.Errorf("audit lines %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := n.drv.RestartDriver(ctx, connect.NewRequest(&weftv1.RestartDriverRequest{Name: "shout"})); err != nil {
		t.Fatal(err)
	}
	if lines := n.logs.records(t, "audit"); lines[len(lines)-1]["driver"] != "shout" || lines[len(lines)-1]["outcome"] != "ok" {
		t.Errorf("last audit line %v, want shout ok", lines[len(lines)-1])
	}
}

// Served without Drivers, the service says so.
func TestNoDrivers(t *testing.T) {
	n := newNode(t, nodeOptions{})
	_, err := n.drv.ListDrivers(ctxT(t), connect.NewRequest(&weftv1.ListDriversRequest{}))
	wantCode(t, err, connect.CodeFailedPrecondition, "no driver manager")
	_, err = n.drv.RestartDriver(ctxT(t), connect.NewRequest(&weftv1.RestartDriverRequest{Name: "timer"}))
	wantCode(t, err, connect.CodeFailedPrecondition, "no driver manager")
}
