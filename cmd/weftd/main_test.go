package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftos/weft/daemon"
)

// testVersion is linked into the binary the tests run, the way a release
// build sets version.
const testVersion = "v0.0.0-test"

// failAfter bounds every wait, so that a broken weftd fails the test
// rather than hanging it; nothing waits on it for synchronisation.
const failAfter = 30 * time.Second

// weftdBin and weftBin are the weftd and weft binaries built by TestMain.
var weftdBin, weftBin string

// loopbackP2P are the flags that put a test's node on a free TCP port of
// 127.0.0.1 for other nodes.
var loopbackP2P = []string{"--p2p-listen", "/ip4/127.0.0.1/tcp/0"}

// listenAsConfigured, among startWeftd's (or startNode's) args, adds no
// --p2p-listen: the node listens where its --config says, which may be
// nowhere (listen = [], a node that only dials out). It is not passed to
// weftd.
const listenAsConfigured = "(listen as configured)"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weftd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weftdBin = filepath.Join(dir, "weftd")
	build := exec.Command("go", "build", "-o", weftdBin, "-ldflags", "-X main.version="+testVersion, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build weftd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	weftBin = filepath.Join(dir, "weft")
	build = exec.Command("go", "build", "-o", weftBin, "../weft")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build weft: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if examples.dir != "" {
		os.RemoveAll(examples.dir)
	}
	os.Exit(code)
}

// weftd is a weftd process whose stderr the test reads line by line.
type weftd struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	lines  chan string // stderr; closed at EOF
	seen   []string    // stderr lines the test has read

	waitOnce sync.Once
	code     int
}

// startWeftd starts weftd with args. It is killed, if still running, and
// waited for when the test ends.
func startWeftd(t testing.TB, args ...string) *weftd {
	t.Helper()
	if slices.Contains(args, "--data-dir") && !slices.Contains(args, "--socket") {
		// Never the installed default, /run/weft/weftd.sock.
		args = append(args, "--socket", filepath.Join(shortDir(t), "weftd.sock"))
	}
	if i := slices.Index(args, listenAsConfigured); i >= 0 {
		args = slices.Delete(slices.Clone(args), i, i+1)
	} else if len(args) > 0 && strings.HasPrefix(args[0], "-") && !slices.Contains(args, "--p2p-listen") {
		// Never the default port on every interface (9047, which nodes
		// started at once would fight for): a free port of 127.0.0.1.
		args = append(args, loopbackP2P...)
	}
	w := &weftd{cmd: exec.Command(weftdBin, args...), lines: make(chan string, 1024)}
	startCmd(t, w)
	return w
}

// readStderr hands stderr to w.lines line by line, and closes it at EOF.
// It keeps reading however far behind the test is (the lines queue here),
// so that weftd never blocks writing its log.
func (w *weftd) readStderr(r io.Reader) {
	in := make(chan string)
	go func() {
		defer close(in)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			in <- sc.Text()
		}
		io.Copy(io.Discard, r) // a line too long for the scanner: drain the rest
	}()
	defer close(w.lines)
	var q []string
	for in != nil || len(q) > 0 {
		var out chan string
		var head string
		if len(q) > 0 {
			out, head = w.lines, q[0]
		}
		select {
		case line, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			q = append(q, line)
		case out <- head:
			q = q[1:]
		}
	}
}

// waitFor reads stderr until a line satisfies match, and returns it. It
// fails the test if weftd closes stderr (exits) first.
func (w *weftd) waitFor(t testing.TB, what string, match func(string) bool) string {
	t.Helper()
	timeout := time.After(failAfter)
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				t.Fatalf("weftd exited before logging %s; stderr:\n%s", what, strings.Join(w.seen, "\n"))
			}
			w.seen = append(w.seen, line)
			if match(line) {
				return line
			}
		case <-timeout:
			t.Fatalf("weftd did not log %s within %v; stderr so far:\n%s", what, failAfter, strings.Join(w.seen, "\n"))
		}
	}
}

// wait reads the rest of stderr, waits for weftd to exit and returns its
// exit code (-1 if a signal ended it).
func (w *weftd) wait(t testing.TB) int {
	t.Helper()
	w.waitOnce.Do(func() {
		timeout := time.After(failAfter)
	read:
		for {
			select {
			case line, ok := <-w.lines:
				if !ok {
					break read
				}
				w.seen = append(w.seen, line)
			case <-timeout:
				t.Errorf("weftd did not exit within %v; killing it", failAfter)
				_ = w.cmd.Process.Kill()
				timeout = nil
			}
		}
		_ = w.cmd.Wait() // the exit code says what we need
		w.code = w.cmd.ProcessState.ExitCode()
	})
	return w.code
}

// shortDir is a new directory for Unix sockets, whose paths may hold no
// more than 107 bytes (t.TempDir's are often longer). It is removed when
// the test ends.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "wd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (w *weftd) stderr() string { return strings.Join(w.seen, "\n") }

func (w *weftd) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal weftd: %v", err)
	}
}

// jsonRecord matches a JSON log line whose msg is msg, and decodes it.
func jsonRecord(msg string, into *map[string]any) func(string) bool {
	return func(line string) bool {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil || r["msg"] != msg {
			return false
		}
		*into = r
		return true
	}
}

// textRecord matches a text log line whose msg is msg.
func textRecord(msg string) func(string) bool {
	return func(line string) bool { return strings.Contains(line, fmt.Sprintf(" msg=%q", msg)) }
}

func TestStartAndStop(t *testing.T) {
	dir := t.TempDir()
	w := startWeftd(t, "--data-dir", dir, "--log-format", "json")

	var starting, ready, stopped map[string]any
	w.waitFor(t, `"weftd starting"`, jsonRecord("weftd starting", &starting))
	if starting["version"] != testVersion || starting["data_dir"] != dir {
		t.Errorf("weftd starting logged %v, want version %s and data_dir %s", starting, testVersion, dir)
	}
	w.waitFor(t, `"node ready"`, jsonRecord("node ready", &ready))
	if id, _ := ready["node_id"].(string); id == "" || ready["data_dir"] != dir {
		t.Errorf("node ready logged %v, want a node_id and data_dir %s", ready, dir)
	}

	w.signal(t, syscall.SIGTERM)
	if code := w.wait(t); code != 0 {
		t.Fatalf("weftd exited %d after SIGTERM, want 0; stderr:\n%s", code, w.stderr())
	}
	for _, line := range w.seen {
		jsonRecord("weftd stopped", &stopped)(line)
	}
	if stopped == nil || stopped["node_id"] != ready["node_id"] {
		t.Errorf("weftd stopped logged %v, want it with node_id %v; stderr:\n%s", stopped, ready["node_id"], w.stderr())
	}
	if out := w.stdout.String(); !strings.HasPrefix(out, "weftd ready: node "+ready["node_id"].(string)) || !strings.Contains(out, "export WEFT_SOCKET=") {
		t.Errorf("weftd wrote %q to stdout, want the ready line with the node id and WEFT_SOCKET", out)
	}
}

func TestInterruptStops(t *testing.T) {
	w := startWeftd(t, "--data-dir", t.TempDir(), "--log-level", "debug")
	w.waitFor(t, "node ready", textRecord("node ready"))
	w.signal(t, syscall.SIGINT)
	if code := w.wait(t); code != 0 {
		t.Fatalf("weftd exited %d after SIGINT, want 0; stderr:\n%s", code, w.stderr())
	}
	if !strings.Contains(w.stderr(), `msg="weftd stopped"`) {
		t.Errorf("no weftd stopped line; stderr:\n%s", w.stderr())
	}
}

func TestSecondInstanceOnOneDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startWeftd(t, "--data-dir", dir)
	first.waitFor(t, "node ready", textRecord("node ready"))

	second := startWeftd(t, "--data-dir", dir)
	code := second.wait(t)
	want := fmt.Sprintf("data dir %s is in use by weftd pid %d (lock %s)", dir, first.cmd.Process.Pid, filepath.Join(dir, daemon.LockFile))
	if code == 0 || !strings.Contains(second.stderr(), want) {
		t.Errorf("second weftd exited %d with stderr:\n%s\nwant non-zero and %q", code, second.stderr(), want)
	}

	// The first one was running all along: it stops cleanly now.
	first.signal(t, syscall.SIGTERM)
	if code := first.wait(t); code != 0 {
		t.Fatalf("first weftd exited %d, want 0; stderr:\n%s", code, first.stderr())
	}
	if !strings.Contains(first.stderr(), `msg="weftd stopped"`) {
		t.Errorf("first weftd did not log that it stopped; stderr:\n%s", first.stderr())
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		code       int
		wantStdout string
		wantStderr []string
	}{
		{[]string{"--version"}, 0, "weftd " + testVersion + "\n", nil},
		{[]string{"--bogus"}, 2, "", []string{"-bogus", "Usage: weftd", "weftd --data-dir ./.weft"}},
		{[]string{"--log-format", "xml"}, 2, "", []string{`log_format "xml": want text or json`}},
		{[]string{"--log-level", "loud"}, 2, "", []string{`--log-level "loud": want debug, info, warn or error`}},
		{[]string{"--limit", "mailbox_length"}, 2, "", []string{`want KEY=VALUE`}},
		{[]string{"--limit", "mailbox_lenght=3"}, 2, "", []string{`unknown key limits.mailbox_lenght`}},
		{[]string{"--listen", "127.0.0.1:0"}, 2, "", []string{`needs tls_cert and tls_key`}},
		{[]string{"--metrics-listen", "0.0.0.0:9464"}, 2, "", []string{`not a loopback address`}},
		{[]string{"stray"}, 2, "", []string{`unexpected argument "stray"`, "Usage: weftd"}},
		{[]string{"restore"}, 2, "", []string{"--data-dir is required"}},
		{[]string{"restore", "--data-dir=/nonexistent/x"}, 2, "", []string{"--target NAME"}},
		{[]string{"restore", "--data-dir=/nonexistent/x", "--target", "a", "--bucket", "b"}, 2, "", []string{"not both"}},
		{[]string{"restore", "--data-dir=/nonexistent/x", "--target", "a", "--config", "/nonexistent/weftd.toml"}, 2, "", []string{"no such file"}},
		{[]string{"restore", "--bogus"}, 2, "", []string{"Usage: weftd restore"}},
		{[]string{"backup-key"}, 2, "", []string{"Usage: weftd backup-key FILE"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			w := startWeftd(t, tc.args...)
			code := w.wait(t)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if got := w.stdout.String(); got != tc.wantStdout {
				t.Errorf("stdout %q, want %q", got, tc.wantStdout)
			}
			for _, s := range tc.wantStderr {
				if !strings.Contains(w.stderr(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, w.stderr())
				}
			}
			if tc.wantStderr == nil && w.stderr() != "" {
				t.Errorf("stderr %q, want nothing", w.stderr())
			}
		})
	}
}

// TestHelp runs doMain itself: help goes to stdout, with status 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := doMain([]string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: exit code %d, want 0", arg, code)
		}
		for _, s := range []string{"Usage: weftd", "--data-dir DIR", "/var/lib/weft", "weftd --data-dir ./.weft"} {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%s: stdout lacks %q:\n%s", arg, s, stdout.String())
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("%s: stderr %q, want nothing", arg, stderr.String())
		}
	}
}
