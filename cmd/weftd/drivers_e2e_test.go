package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeDriver builds the probe driver of package plugins' tests into a
// drivers directory with its SHA256SUMS, and returns the directory.
func probeDriver(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "probe")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/testdata/probe").CombinedOutput(); err != nil {
		t.Fatalf("build the probe driver: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), fmt.Appendf(nil, "%s  probe\n", hex.EncodeToString(sum[:])), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
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
	n.stop(t)
}
