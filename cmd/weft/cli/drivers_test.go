package cli

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
)

func TestDrivers(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "drivers")
	res.want(t, 0, "NAME", "STATE", "PID", "RESTARTS", "CALLS", "LAST ERROR/REFUSED")
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("drivers printed %d lines, want a header and two drivers:\n%s", len(lines), res.stdout)
	}
	if got := strings.Join(strings.Fields(lines[1]), " "); got != "timer running 4242 1 17 driver timer: the driver's process exited" {
		t.Errorf("timer row = %q", got)
	}
	alarm := strings.Join(strings.Fields(lines[2]), " ")
	if !strings.HasPrefix(alarm, "alarm refused - 0 0 driver alarm: checksum mismatch:") ||
		!strings.Contains(alarm, strings.Repeat("ef", 32)) || !strings.Contains(alarm, strings.Repeat("cd", 32)) {
		t.Errorf("alarm row = %q, want refused with both sums", alarm)
	}

	m := mustJSON(t, weft(t, sock, "--json", "drivers").stdout)
	ds, _ := m["drivers"].([]any)
	if len(ds) != 2 {
		t.Fatalf("drivers --json = %v", m)
	}
	timer := ds[0].(map[string]any)
	if timer["name"] != "timer" || timer["pid"] != float64(4242) || timer["sha256"] != strings.Repeat("ab", 32) ||
		timer["failures"] != "1" || timer["inProcess"] != false {
		t.Errorf("drivers --json timer = %v", timer)
	}
}

func TestDriversRestart(t *testing.T) {
	f := &fakeNode{}
	sock := serve(t, f)
	res := weft(t, sock, "drivers", "restart", "timer")
	res.want(t, 0)
	if res.stdout != "restarted timer (running)\n" {
		t.Errorf("drivers restart printed %q", res.stdout)
	}
	if n := f.last("RestartDriver").(*weftv1.RestartDriverRequest).GetName(); n != "timer" {
		t.Errorf("drivers restart asked for %q", n)
	}
	m := mustJSON(t, weft(t, sock, "--json", "drivers", "restart", "timer").stdout)
	if d := m["driver"].(map[string]any); d["name"] != "timer" || d["state"] != "PROCESS_STATE_RUNNING" {
		t.Errorf("drivers restart --json = %v", m)
	}

	// Refused again: exit 2 with the node's reason, both sums in it.
	res = weft(t, sock, "drivers", "restart", "alarm")
	res.wantErr(t, ExitNode, "weft: drivers restart alarm: failed_precondition: driver alarm: checksum mismatch",
		strings.Repeat("ef", 32), strings.Repeat("cd", 32))
	if res.stdout != "" {
		t.Errorf("stdout %q, want nothing", res.stdout)
	}
	weft(t, sock, "drivers", "restart", "nobody").wantErr(t, ExitNode, `not_found: driver "nobody": no such driver`)
}

func TestDriversErrors(t *testing.T) {
	f := &fakeNode{err: connect.NewError(connect.CodeFailedPrecondition, errTest("this node serves no driver manager"))}
	sock := serve(t, f)
	for _, tc := range []struct {
		args []string
		errs []string
	}{
		{[]string{"drivers", "frob"}, []string{`unknown subcommand "frob"`, "Usage: weft drivers [restart NAME]"}},
		{[]string{"drivers", "restart"}, []string{"missing NAME"}},
		{[]string{"drivers", "restart", "a", "b"}, []string{`unexpected argument "b"`}},
		{[]string{"drivers", "--frob"}, []string{"unknown flag --frob"}},
	} {
		res := weft(t, sock, tc.args...)
		res.wantErr(t, ExitUsage, tc.errs...)
		if res.stdout != "" {
			t.Errorf("weft %v: stdout %q, want nothing", tc.args, res.stdout)
		}
	}
	if f.called("ListDrivers") || f.called("RestartDriver") {
		t.Error("a usage error called the node")
	}
	for _, args := range [][]string{{"drivers"}, {"drivers", "restart", "timer"}} {
		res := weft(t, sock, args...)
		res.wantErr(t, ExitNode, "failed_precondition: this node serves no driver manager")
		if res.stdout != "" {
			t.Errorf("weft %v: stdout %q, want nothing", args, res.stdout)
		}
	}
}
