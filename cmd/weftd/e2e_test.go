package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/internal/wasmtest"
)

// The end-to-end tests run the real weftd binary with the real examples,
// and talk to it the ways its users do: the weft CLI, a Connect client,
// grpcurl and curl, systemd's notify protocol and socket activation.

// examples builds the examples once for the whole test binary.
var examples struct {
	once sync.Once
	dir  string
	err  error
}

func exampleDir(t testing.TB, name string) string {
	t.Helper()
	examples.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err != nil {
			examples.err = err
			return
		}
		examples.dir, examples.err = wasmtest.BuildExamples(root)
	})
	if examples.err != nil {
		t.Fatal(examples.err)
	}
	return filepath.Join(examples.dir, name)
}

// node is a running weftd with its socket.
type node struct {
	*weftd
	dir   string // data dir
	sock  string
	ready map[string]any // the "node ready" record
}

// startNode starts weftd on data dir dir (with JSON logs) and waits until
// it is ready.
func startNode(t testing.TB, dir string, extra ...string) *node {
	t.Helper()
	sock := filepath.Join(shortDir(t), "weftd.sock")
	args := append([]string{"--data-dir", dir, "--socket", sock, "--log-format", "json"}, extra...)
	n := &node{weftd: startWeftd(t, args...), dir: dir, sock: sock}
	n.waitFor(t, `"node ready"`, jsonRecord("node ready", &n.ready))
	return n
}

// stop sends SIGTERM and checks weftd exits 0.
func (n *node) stop(t testing.TB) {
	t.Helper()
	n.signal(t, syscall.SIGTERM)
	if code := n.wait(t); code != 0 {
		t.Fatalf("weftd exited %d after SIGTERM; stderr:\n%s", code, n.stderr())
	}
}

// weft runs the CLI against n's socket and returns its stdout, stderr and
// exit code.
func (n *node) weft(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return runTool(t, nil, weftBin, append([]string{"--socket", n.sock}, args...)...)
}

// runTool runs a command with a bounded wait.
func runTool(t testing.TB, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", filepath.Base(bin), args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// client returns Connect clients over n's socket.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func TestEndToEnd(t *testing.T) {
	n := startNode(t, t.TempDir(),
		"--install", exampleDir(t, "echo"), "--install", exampleDir(t, "counter"), "--install", exampleDir(t, "cecho"))

	if fi, err := os.Stat(n.sock); err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket %s: %v, %v; want a socket with mode 0660", n.sock, fi.Mode(), err)
	}
	// The "done when": weft send prints the body and a newline.
	out, errOut, code := n.weft(t, "send", "our@echo:echo:examples", "hello", "--await", "5s")
	if out != "hello\n" || errOut != "" || code != 0 {
		t.Errorf("weft send to echo: stdout %q stderr %q code %d; want \"hello\\n\", nothing, 0", out, errOut, code)
	}
	// WEFT_SOCKET instead of --socket.
	out, errOut, code = runTool(t, []string{"WEFT_SOCKET=" + n.sock}, weftBin, "send", "our@cecho:cecho:examples", "from C", "--await", "5s")
	if out != "from C\n" || code != 0 {
		t.Errorf("weft send to cecho with WEFT_SOCKET: stdout %q stderr %q code %d", out, errOut, code)
	}
	for _, want := range []string{"1\n", "2\n"} {
		if out, errOut, code := n.weft(t, "send", "our@counter:counter:examples", "", "--await", "5s"); out != want || code != 0 {
			t.Errorf("weft send to counter: stdout %q stderr %q code %d, want %q", out, errOut, code, want)
		}
	}
	// A SendError exits 3, with stdout empty.
	out, errOut, code = n.weft(t, "send", "our@nobody:nope:examples", "x", "--await", "1s")
	if code != 3 || out != "" || !strings.Contains(errOut, "no_such_process") {
		t.Errorf("weft send to a missing process: stdout %q stderr %q code %d; want code 3 and no_such_process", out, errOut, code)
	}
	// Every mutating call is audited with the caller's uid.
	var audit map[string]any
	n.waitFor(t, "an audit line for Send", func(line string) bool {
		return jsonRecord("audit", &audit)(line) && audit["procedure"] == "/weft.v1.MessageService/Send"
	})
	if peer, _ := audit["peer"].(map[string]any); peer == nil || peer["uid"] != float64(os.Getuid()) {
		t.Errorf("audit line %v, want the peer's uid %d", audit, os.Getuid())
	}
	out, _, code = n.weft(t, "status")
	if code != 0 || !strings.Contains(out, n.ready["node_id"].(string)) {
		t.Errorf("weft status: code %d, stdout %q; want the node id", code, out)
	}
	out, _, code = n.weft(t, "ps")
	if code != 0 || !strings.Contains(out, "echo:echo:examples") || !strings.Contains(out, "counter:counter:examples") {
		t.Errorf("weft ps: code %d, stdout %q", code, out)
	}
	out, _, code = n.weft(t, "--json", "ps")
	var ps any
	if code != 0 || json.Unmarshal([]byte(out), &ps) != nil {
		t.Errorf("weft --json ps: code %d, stdout %q is not JSON", code, out)
	}

	// A Connect client, the generated one, over the socket.
	c := weftv1connect.NewMessageServiceClient(unixClient(n.sock), "http://weftd")
	resp, err := c.Send(context.Background(), connect.NewRequest(&weftv1.SendRequest{
		Target:  "our@echo:echo:examples",
		Request: &weftv1.Request{Body: []byte("connect")},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Msg.GetError() != nil {
		t.Fatalf("send without expects_response: %v", resp.Msg.GetError())
	}

	// An unknown address is a clear error, and the node keeps serving.
	_, err = c.Send(context.Background(), connect.NewRequest(&weftv1.SendRequest{Target: "not an address"}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("send to a malformed address: %v, want invalid_argument", err)
	}
	if out, _, code := n.weft(t, "send", "our@echo:echo:examples", "still here", "--await", "5s"); out != "still here\n" || code != 0 {
		t.Errorf("after bad input: %q, %d", out, code)
	}
	n.stop(t)
}

// TestGrpcurlAndCurl is what the README shows: grpcurl and curl against
// the socket.
func TestGrpcurlAndCurl(t *testing.T) {
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Fatal("grpcurl is not on PATH: run `make tools` (it builds bin/grpcurl), and run the tests through make")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not on PATH: run `make tools` (it installs curl)")
	}
	n := startNode(t, t.TempDir(), "--install", exampleDir(t, "echo"))

	out, errOut, code := runTool(t, nil, grpcurl, "-plaintext", "-unix", n.sock, "list")
	for _, svc := range []string{"weft.v1.NodeService", "weft.v1.PackageService", "weft.v1.ProcessService", "weft.v1.MessageService", "weft.v1.CapabilityService", "weft.v1.StoreService"} {
		if code != 0 || !strings.Contains(out, svc) {
			t.Errorf("grpcurl list: code %d, stdout %q, stderr %q; want %s", code, out, errOut, svc)
		}
	}
	out, errOut, code = runTool(t, nil, grpcurl, "-plaintext", "-unix", "-d", "{}", n.sock, "weft.v1.NodeService/GetInfo")
	if code != 0 || !strings.Contains(out, n.ready["node_id"].(string)) {
		t.Errorf("grpcurl GetInfo: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	// "hello" is aGVsbG8= in base64, as protobuf's JSON writes bytes.
	body := `{"target": "our@echo:echo:examples", "request": {"body": "aGVsbG8=", "expectsResponse": "5s"}}`
	out, errOut, code = runTool(t, nil, grpcurl, "-plaintext", "-unix", "-d", body, n.sock, "weft.v1.MessageService/Send")
	if code != 0 || !strings.Contains(out, `"aGVsbG8="`) {
		t.Errorf("grpcurl Send to echo: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	out, errOut, code = runTool(t, nil, curl, "-sS", "--fail-with-body", "--unix-socket", n.sock,
		"-H", "Content-Type: application/json", "-d", "{}", "http://weftd/weft.v1.NodeService/GetInfo")
	if code != 0 || !strings.Contains(out, n.ready["node_id"].(string)) {
		t.Errorf("curl GetInfo: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runTool(t, nil, curl, "-sS", "--fail-with-body", "--unix-socket", n.sock,
		"-H", "Content-Type: application/json", "-d", body, "http://weftd/weft.v1.MessageService/Send")
	if code != 0 || !strings.Contains(out, `"aGVsbG8="`) {
		t.Errorf("curl Send to echo: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Garbage gets a clear error.
	out, _, code = runTool(t, nil, curl, "-sS", "--unix-socket", n.sock,
		"-H", "Content-Type: application/json", "-d", "{not json", "http://weftd/weft.v1.MessageService/Send")
	if code != 0 || !strings.Contains(out, `"code":"invalid_argument"`) {
		t.Errorf("curl with garbage: code %d, stdout %q; want a Connect invalid_argument error", code, out)
	}
	n.stop(t)
}

// TestKill9BringsBackPackages: after kill -9 and a restart (without
// --install), every installed package's processes are back with their
// state and grants.
func TestKill9BringsBackPackages(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--install", exampleDir(t, "echo"), "--install", exampleDir(t, "counter"))
	for _, want := range []string{"1\n", "2\n"} {
		if out, errOut, code := n.weft(t, "send", "our@counter:counter:examples", "", "--await", "5s"); out != want || code != 0 {
			t.Fatalf("counter: %q %q %d, want %q", out, errOut, code, want)
		}
	}
	if _, errOut, code := n.weft(t, "caps", "grant", "counter:counter:examples", "our@echo:echo:examples"); code != 0 {
		t.Fatalf("weft caps grant: code %d, stderr %q", code, errOut)
	}
	n.signal(t, syscall.SIGKILL)
	n.wait(t)

	n = startNode(t, dir)
	if out, errOut, code := n.weft(t, "send", "our@counter:counter:examples", "", "--await", "5s"); out != "3\n" || code != 0 {
		t.Errorf("counter after kill -9: %q %q %d, want \"3\\n\"", out, errOut, code)
	}
	if out, errOut, code := n.weft(t, "send", "our@echo:echo:examples", "back", "--await", "5s"); out != "back\n" || code != 0 {
		t.Errorf("echo after kill -9: %q %q %d", out, errOut, code)
	}
	out, errOut, code := n.weft(t, "caps", "list", "counter:counter:examples")
	if code != 0 || !strings.Contains(out, "echo:echo:examples") {
		t.Errorf("caps of counter after kill -9: code %d, stdout %q, stderr %q; want echo's messaging capability", code, out, errOut)
	}
	out, _, _ = n.weft(t, "--json", "ps")
	if !strings.Contains(out, "echo:echo:examples") {
		t.Errorf("ps after kill -9 lacks echo: %s", out)
	}
	n.stop(t)
}

// TestSystemdNotify: READY=1 once the API answers, WATCHDOG=1 after a
// probe, STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	nsock := filepath.Join(shortDir(t), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: nsock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(what string) string {
		t.Helper()
		timeout := time.After(failAfter)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %s", what)
				}
				if strings.Contains(m, what) {
					return m
				}
			case <-timeout:
				t.Fatalf("no %s from weftd within %v", what, failAfter)
			}
		}
	}

	dir := t.TempDir()
	sock := filepath.Join(shortDir(t), "weftd.sock")
	w := &weftd{cmd: exec.Command(weftdBin, append([]string{"--data-dir", dir, "--socket", sock}, loopbackP2P...)...), lines: make(chan string, 1024)}
	w.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+nsock, "WATCHDOG_USEC=200000")
	startCmd(t, w)

	ready := next("READY=1")
	if !strings.Contains(ready, "STATUS=Ready") {
		t.Errorf("READY=1 came without a STATUS: %q", ready)
	}
	// By READY=1 the API answers.
	if _, err := weftv1connect.NewNodeServiceClient(unixClient(sock), "http://weftd").GetInfo(context.Background(), connect.NewRequest(&weftv1.GetInfoRequest{})); err != nil {
		t.Errorf("GetInfo right after READY=1: %v", err)
	}
	next("WATCHDOG=1")
	next("WATCHDOG=1") // and again, on its interval
	w.signal(t, syscall.SIGTERM)
	next("STOPPING=1")
	if code := w.wait(t); code != 0 {
		t.Fatalf("weftd exited %d; stderr:\n%s", code, w.stderr())
	}
}

// TestSocketActivation: weftd serves on the socket systemd passes.
func TestSocketActivation(t *testing.T) {
	sock := filepath.Join(shortDir(t), "activated.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // f keeps the socket open
	defer f.Close()

	// LISTEN_PID must be weftd's own pid: sh sets it and execs weftd.
	unused := filepath.Join(shortDir(t), "unused.sock")
	w := &weftd{cmd: exec.Command("sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`,
		weftdBin, "--data-dir", t.TempDir(), "--socket", unused, "--log-format", "json", loopbackP2P[0], loopbackP2P[1]), lines: make(chan string, 1024)}
	w.cmd.ExtraFiles = []*os.File{f}
	startCmd(t, w)
	var ready map[string]any
	w.waitFor(t, `"node ready"`, jsonRecord("node ready", &ready))
	if ready["socket"] != sock {
		t.Errorf("node ready on socket %v, want the activated %s", ready["socket"], sock)
	}
	if _, err := os.Stat(unused); err == nil {
		t.Errorf("weftd made %s although systemd passed a socket", unused)
	}
	out, errOut, code := runTool(t, nil, weftBin, "--socket", sock, "status")
	if code != 0 || !strings.Contains(out, ready["node_id"].(string)) {
		t.Errorf("weft status over the activated socket: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	w.signal(t, syscall.SIGTERM)
	if code := w.wait(t); code != 0 {
		t.Fatalf("weftd exited %d; stderr:\n%s", code, w.stderr())
	}
}

// TestTCPNeedsTLSAndToken: the TCP listener serves TLS only, and only to
// callers with the token weftd generated into the data dir.
func TestTCPNeedsTLSAndToken(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	dir := t.TempDir()
	n := startNode(t, dir, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	addr, _ := n.ready["listen"].(string)
	if addr == "" {
		t.Fatalf("node ready has no listen address: %v", n.ready)
	}
	token, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "api.token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("api.token has mode %v, want 0600", fi.Mode().Perm())
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := weftv1connect.NewNodeServiceClient(hc, "https://"+addr)
	call := func(tok string) error {
		req := connect.NewRequest(&weftv1.GetInfoRequest{})
		if tok != "" {
			req.Header().Set("Authorization", "Bearer "+tok)
		}
		_, err := c.GetInfo(context.Background(), req)
		return err
	}
	if err := call(strings.TrimSpace(string(token))); err != nil {
		t.Errorf("GetInfo with the token: %v", err)
	}
	if err := call(""); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("GetInfo without a token: %v, want unauthenticated", err)
	}
	if err := call("0123456789abcdef0123456789abcdef"); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("GetInfo with a wrong token: %v, want unauthenticated", err)
	}
	// The CLI over TCP: the token from a file, the certificate trusted.
	tokenFile := filepath.Join(dir, "api.token")
	out, errOut, code := runTool(t, nil, weftBin, "--addr", "https://"+addr, "--ca", certFile, "--token-file", tokenFile, "status")
	if code != 0 || !strings.Contains(out, n.ready["node_id"].(string)) {
		t.Errorf("weft --addr status: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runTool(t, []string{"WEFT_TOKEN=wrong-token-0123456789"}, weftBin, "--addr", "https://"+addr, "--ca", certFile, "status"); code != 2 || !strings.Contains(errOut, "unauthenticated") {
		t.Errorf("weft --addr with a wrong token: code %d, stderr %q; want 2 and unauthenticated", code, errOut)
	}
	// Plain HTTP on the TLS port gets nowhere.
	if _, err := weftv1connect.NewNodeServiceClient(http.DefaultClient, "http://"+addr).GetInfo(context.Background(), connect.NewRequest(&weftv1.GetInfoRequest{})); err == nil {
		t.Error("plain HTTP on the TLS listener succeeded")
	}
	n.stop(t)
}

// TestMetricsListener: metrics on a loopback address, off by default.
func TestMetricsListener(t *testing.T) {
	n := startNode(t, t.TempDir(), "--metrics-listen", "127.0.0.1:0")
	addr, _ := n.ready["metrics"].(string)
	if addr == "" {
		t.Fatalf("node ready has no metrics address: %v", n.ready)
	}
	if _, _, code := n.weft(t, "status"); code != 0 {
		t.Fatal("weft status failed")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"weft_messages_routed_total", `weft_processes{state="running"}`, `weft_api_calls_total{code="ok",procedure="/weft.v1.NodeService/GetInfo"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	n.stop(t)

	off := startNode(t, t.TempDir())
	if m, ok := off.ready["metrics"]; ok && m != "" {
		t.Errorf("metrics on by default: %v", m)
	}
	off.stop(t)
}

// startCmd starts w.cmd as startWeftd does.
func startCmd(t testing.TB, w *weftd) {
	t.Helper()
	w.cmd.Stdout = &w.stdout
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go w.readStderr(stderr)
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		w.wait(t)
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts it.
func selfSigned(t testing.TB) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "weftd test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestKVAndStoreFromTheCLI: the owner reads and writes packages' databases
// through the API, and what was written survives a restart.
func TestKVAndStoreFromTheCLI(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	if out, errOut, code := n.weft(t, "kv", "set", "notes:examples", "index", "first", "hello kv"); code != 0 {
		t.Fatalf("weft kv set: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := n.weft(t, "kv", "get", "notes:examples", "index", "first"); code != 0 || out != "hello kv\n" {
		t.Errorf("weft kv get: code %d, stdout %q, stderr %q; want \"hello kv\\n\"", code, out, errOut)
	}
	if out, _, code := n.weft(t, "kv", "ls", "notes:examples"); code != 0 || !strings.Contains(out, "index") {
		t.Errorf("weft kv ls: code %d, stdout %q", code, out)
	}
	if _, errOut, code := n.weft(t, "kv", "get", "notes:examples", "index", "missing"); code != 2 || !strings.Contains(errOut, "not found") {
		t.Errorf("weft kv get of a missing key: code %d, stderr %q; want 2 and not found", code, errOut)
	}
	if _, errOut, code := n.weft(t, "kv", "set", "Bad:Name", "index", "k", "v"); code != 2 || !strings.Contains(errOut, "package") {
		t.Errorf("weft kv set with a bad package: code %d, stderr %q", code, errOut)
	}
	if _, errOut, code := n.weft(t, "store", "ls", "notes:examples"); code != 0 {
		t.Errorf("weft store ls of a package without drives: code %d, stderr %q", code, errOut)
	}
	n.stop(t)

	n = startNode(t, dir)
	if out, errOut, code := n.weft(t, "kv", "get", "notes:examples", "index", "first"); code != 0 || out != "hello kv\n" {
		t.Errorf("weft kv get after a restart: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	n.stop(t)
}

// TestNotesThroughTheNode runs the notes example in a real weftd: notes
// keeps each note in its drive and an index in its database, through the
// store host call; the operator sees both with weft store and weft kv,
// and both survive a restart of the node.
func TestNotesThroughTheNode(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "--install", exampleDir(t, "notes"))
	send := func(n *node, body string) string {
		t.Helper()
		out, errOut, code := n.weft(t, "send", "our@notes:notes:examples", body, "--await", "10s")
		if code != 0 {
			t.Fatalf("weft send %s: code %d, stderr %q", body, code, errOut)
		}
		return strings.TrimSuffix(out, "\n")
	}
	if got := send(n, `{"op":"put","id":"groceries","text":"Groceries\nmilk, eggs"}`); got != `{"ok":true}` {
		t.Fatalf("put: %s", got)
	}
	if got := send(n, `{"op":"put","id":"ideas","text":"Ideas"}`); got != `{"ok":true}` {
		t.Fatalf("put: %s", got)
	}
	if got := send(n, `{"op":"get","id":"groceries"}`); got != "Groceries\nmilk, eggs" {
		t.Fatalf("get: %q", got)
	}
	if got := send(n, `{"op":"list"}`); !strings.Contains(got, `"id":"groceries"`) || !strings.Contains(got, `"title":"Groceries"`) || !strings.Contains(got, `"id":"ideas"`) {
		t.Fatalf("list: %s", got)
	}
	if got := send(n, `{"op":"get","id":"../../etc/passwd"}`); !strings.Contains(got, `"error"`) {
		t.Fatalf("get of a bad id: %s", got)
	}
	// The operator's view of the same data.
	if out, errOut, code := n.weft(t, "store", "cat", "/notes:examples/notes/groceries.md"); code != 0 || out != "Groceries\nmilk, eggs" {
		t.Errorf("weft store cat: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := n.weft(t, "store", "ls", "notes:examples", "notes"); code != 0 || !strings.Contains(out, "groceries.md") || !strings.Contains(out, "ideas.md") {
		t.Errorf("weft store ls: code %d, stdout %q", code, out)
	}
	if out, _, code := n.weft(t, "kv", "get", "notes:examples", "index", "ideas"); code != 0 || !strings.Contains(out, `"title":"Ideas"`) {
		t.Errorf("weft kv get: code %d, stdout %q", code, out)
	}
	// notes holds read and write on its database and drive.
	out, _, code := n.weft(t, "caps", "list", "notes:notes:examples")
	for _, want := range []string{`our@kv:sys:weft {"db":"index","kind":"write","package":"notes:examples"}`, `our@vfs:sys:weft {"drive":"/notes:examples/notes","kind":"read"}`} {
		if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("weft caps list: code %d, stdout %q; want %s", code, out, want)
		}
	}
	if got := send(n, `{"op":"delete","id":"ideas"}`); got != `{"ok":true}` {
		t.Fatalf("delete: %s", got)
	}
	n.stop(t)

	n = startNode(t, dir)
	if got := send(n, `{"op":"get","id":"groceries"}`); got != "Groceries\nmilk, eggs" {
		t.Errorf("get after a restart: %q", got)
	}
	if got := send(n, `{"op":"list"}`); strings.Contains(got, "ideas") || !strings.Contains(got, "groceries") {
		t.Errorf("list after a restart: %s", got)
	}
	// Uninstalling keeps the data; the operator removes it.
	if out, errOut, code := n.weft(t, "uninstall", "notes:examples"); code != 0 {
		t.Fatalf("weft uninstall: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := n.weft(t, "store", "cat", "/notes:examples/notes/groceries.md"); code != 0 || out != "Groceries\nmilk, eggs" {
		t.Errorf("after uninstall, weft store cat: code %d, stdout %q", code, out)
	}
	if out, errOut, code := n.weft(t, "kv", "drop", "notes:examples", "index"); code != 0 || !strings.Contains(out, "dropped database index of notes:examples") {
		t.Errorf("weft kv drop: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := n.weft(t, "store", "rm", "notes:examples", "notes"); code != 0 || !strings.Contains(out, "removed drive notes of notes:examples") {
		t.Errorf("weft store rm: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := n.weft(t, "store", "ls", "notes:examples"); code != 0 || out != "" {
		t.Errorf("weft store ls after rm: code %d, stdout %q", code, out)
	}
	if out, _, code := n.weft(t, "kv", "ls", "notes:examples"); code != 0 || out != "" {
		t.Errorf("weft kv ls after drop: code %d, stdout %q", code, out)
	}
	if _, errOut, code := n.weft(t, "kv", "drop", "notes:examples", "index"); code != 2 || !strings.Contains(errOut, "not_found") {
		t.Errorf("weft kv drop again: code %d, stderr %q; want 2 and not_found", code, errOut)
	}

	// Installed again with data, then uninstalled with --purge: the
	// data goes with it.
	if out, errOut, code := n.weft(t, "install", "--approve-all", exampleDir(t, "notes")); code != 0 {
		t.Fatalf("weft install notes again: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := send(n, `{"op":"put","id":"later","text":"x"}`); got != `{"ok":true}` {
		t.Fatalf("put after reinstall: %s", got)
	}
	out, errOut, code := n.weft(t, "uninstall", "--purge", "notes:examples")
	if code != 0 || !strings.Contains(out, "purged notes:examples") || !strings.Contains(out, "dropped database index") || !strings.Contains(out, "removed drive notes") {
		t.Errorf("weft uninstall --purge: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := n.weft(t, "store", "ls", "notes:examples"); code != 0 || out != "" {
		t.Errorf("weft store ls after purge: code %d, stdout %q", code, out)
	}
	if out, _, code := n.weft(t, "kv", "ls", "notes:examples"); code != 0 || out != "" {
		t.Errorf("weft kv ls after purge: code %d, stdout %q", code, out)
	}
	n.stop(t)
}
