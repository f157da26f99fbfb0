package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// driversDir builds drivers (NAME → package directory, relative to this
// one) into a drivers directory with their SHA256SUMS, and returns it.
func driversDir(t *testing.T, drivers map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var sums []byte
	for name, src := range drivers {
		bin := filepath.Join(dir, name)
		if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
			t.Fatalf("build driver %s: %v\n%s", name, err, out)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		sums = fmt.Appendf(sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// probeDriver builds the probe driver of package plugins' tests.
func probeDriver(t *testing.T) string {
	return driversDir(t, map[string]string{"probe": "../../plugins/testdata/probe"})
}

// probeConfig declares the probe driver, public, found in drivers_dir.
const probeConfig = `
[[drivers]]
name = "probe"
path = "probe"
public = true
health_interval = "200ms"
`

// weftd runs a declared driver as NAME:drivers:weft, which weft ps lists
// and weft send reaches; killed with SIGKILL, weftd takes the driver with
// it, and the next weftd starts it again cleanly.
func TestDriversEndToEnd(t *testing.T) {
	drivers := probeDriver(t)
	conf := filepath.Join(t.TempDir(), "weftd.toml")
	if err := os.WriteFile(conf, []byte(probeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	n := startNode(t, data, "--config", conf, "--drivers-dir", drivers)
	out, errOut, code := n.weft(t, "send", "our@probe:drivers:weft", "echo hi", "--await", "10s")
	if out != "echo hi\n" || code != 0 {
		t.Fatalf("weft send to the driver: %q %q %d", out, errOut, code)
	}
	out, _, _ = n.weft(t, "ps")
	if !strings.Contains(out, "probe:drivers:weft") {
		t.Errorf("weft ps does not list the driver:\n%s", out)
	}
	out, errOut, code = n.weft(t, "drivers")
	if code != 0 || !strings.Contains(out, "probe") || !strings.Contains(out, "running") {
		t.Errorf("weft drivers: %q %q %d", out, errOut, code)
	}
	if _, errOut, code := n.weft(t, "drivers", "restart", "probe"); code != 0 {
		t.Errorf("weft drivers restart probe: %q %d", errOut, code)
	}
	if _, errOut, code := n.weft(t, "drivers", "restart", "nobody"); code == 0 || !strings.Contains(errOut, "nobody") {
		t.Errorf("weft drivers restart nobody: %q %d", errOut, code)
	}
	if out, _, code := n.weft(t, "send", "our@probe:drivers:weft", "echo back", "--await", "10s"); out != "echo back\n" || code != 0 {
		t.Errorf("after weft drivers restart: %q %d", out, code)
	}
	// Its output goes to weftd's log, with its name.
	n.weft(t, "send", "our@probe:drivers:weft", "stderr a line from the driver", "--await", "10s")
	n.waitFor(t, "the driver's stderr", func(l string) bool {
		return strings.Contains(l, "a line from the driver") && strings.Contains(l, `"driver":"probe"`)
	})

	out, _, _ = n.weft(t, "send", "our@probe:drivers:weft", "pid", "--await", "10s")
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		t.Fatalf("the driver's pid: %q", out)
	}
	n.signal(t, syscall.SIGKILL)
	n.wait(t)
	deadline := time.Now().Add(failAfter)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("driver %d outlived weftd by %v", pid, failAfter)
		}
		time.Sleep(10 * time.Millisecond)
	}

	n = startNode(t, data, "--config", conf, "--drivers-dir", drivers)
	out, _, code = n.weft(t, "send", "our@probe:drivers:weft", "echo again", "--await", "10s")
	if out != "echo again\n" || code != 0 {
		t.Fatalf("after weftd's restart: %q %d", out, code)
	}
	n.stop(t)
}

// A driver whose binary's checksum is wrong is refused, naming both sums,
// and the node starts without it.
func TestDriverChecksumRefused(t *testing.T) {
	drivers := probeDriver(t)
	conf := filepath.Join(t.TempDir(), "weftd.toml")
	bad := strings.Repeat("0", 64)
	if err := os.WriteFile(conf, []byte(probeConfig+"sha256 = \""+bad+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, t.TempDir(), "--config", conf, "--drivers-dir", drivers)
	// Logged before the node was ready.
	if log := n.stderr(); !strings.Contains(log, "driver refused") || !strings.Contains(log, bad) {
		t.Errorf("no refusal naming the declared sum in the log:\n%s", log)
	}
	if _, _, code := n.weft(t, "status"); code != 0 {
		t.Error("weft status failed")
	}
	if out, _, _ := n.weft(t, "drivers"); !strings.Contains(out, "refused") || !strings.Contains(out, bad) {
		t.Errorf("weft drivers does not say why probe was refused:\n%s", out)
	}
	n.stop(t)
}

// The alarm example sets a timer through the in-tree timer driver and
// logs it when it fires; a timer set just before weftd is SIGKILLed fires
// after weftd starts again, once.
func TestAlarmThroughTimerDriver(t *testing.T) {
	drivers := driversDir(t, map[string]string{"timer": "../../plugins/cmd/timer"})
	data := t.TempDir()
	n := startNode(t, data, "--drivers-dir", drivers, "--install", exampleDir(t, "alarm"))
	set := func(n *node, body string) string {
		t.Helper()
		out, errOut, code := n.weft(t, "send", "our@alarm:alarm:examples", body, "--await", "10s")
		var ans struct{ ID, Error string }
		if code != 0 || json.Unmarshal([]byte(out), &ans) != nil || ans.ID == "" {
			t.Fatalf("weft send %s: %q %q %d", body, out, errOut, code)
		}
		return ans.ID
	}
	// fired waits until the alarm log holds id, and returns its entries.
	fired := func(n *node, id string) []string {
		t.Helper()
		deadline := time.Now().Add(failAfter)
		for {
			out, _, _ := n.weft(t, "kv", "ls", "alarm:examples", "alarms", "--values")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.Contains(line, `"id":"`+id+`"`) {
					got = append(got, line)
				}
			}
			if len(got) > 0 {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("alarm %s not logged within %v; log:\n%s\nweftd:\n%s", id, failAfter, out, n.stderr())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tea := set(n, `{"in":"100ms","note":"tea"}`)
	if got := fired(n, tea); !strings.Contains(got[0], `"note":"tea"`) {
		t.Errorf("the logged alarm: %s", got[0])
	}

	later := set(n, `{"in":"1s","note":"later"}`)
	n.signal(t, syscall.SIGKILL)
	n.wait(t)
	n = startNode(t, data, "--drivers-dir", drivers)
	if got := fired(n, later); len(got) != 1 || !strings.Contains(got[0], `"note":"later"`) {
		t.Errorf("after weftd's restart, alarm %s logged as %q, want once", later, got)
	}
	if got := fired(n, tea); len(got) != 1 {
		t.Errorf("alarm %s, fired before the restart, logged %d times", tea, len(got))
	}
	// Nothing else fires, and it fires once: list the timer driver's
	// pending timers for the alarm, which are none.
	out, _, _ := n.weft(t, "kv", "ls", "drivers:weft", "timers")
	if strings.TrimSpace(out) != "" {
		t.Errorf("timers still pending after they fired: %q", out)
	}
	n.stop(t)
}

// The in-tree http-client driver, declared with an allow list in
// weftd.toml, makes a request the operator sends it: the response's
// status and headers in the body, its body as the blob; a host the list
// does not name is refused with a sentence that names it.
func TestHTTPClientThroughDriver(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}))
	defer srv.Close()
	drivers := driversDir(t, map[string]string{"http-client": "../../plugins/cmd/http-client"})
	conf := filepath.Join(t.TempDir(), "weftd.toml")
	host := strings.TrimPrefix(srv.URL, "http://")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
[[drivers]]
name = "http-client"
path = "http-client"
[drivers.config]
allow = [%q]
timeout = "10s"
`, host)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, t.TempDir(), "--config", conf, "--drivers-dir", drivers)
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	stdout, errOut, code := n.weft(t, "send", "our@http-client:drivers:weft",
		fmt.Sprintf(`{"method":"POST","url":%q}`, srv.URL+"/p"), "--await", "10s", "--blob", in, "--blob-out", out)
	var ans struct {
		Status  int
		Headers map[string][]string
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &ans) != nil || ans.Status != 200 || ans.Headers["Content-Type"][0] != "text/plain" {
		t.Fatalf("weft send: %q %q %d\nweftd:\n%s", stdout, errOut, code, n.stderr())
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "POST /p hello" {
		t.Errorf("the response's blob: %q %v", b, err)
	}

	stdout, _, _ = n.weft(t, "send", "our@http-client:drivers:weft", `{"url":"http://127.0.0.2:9/"}`, "--await", "10s")
	if !strings.Contains(stdout, `"kind":"refused"`) || !strings.Contains(stdout, "127.0.0.2") {
		t.Errorf("a host outside the allow list: %q", stdout)
	}
	n.stop(t)
}
