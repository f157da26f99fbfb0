// Package s3test runs a real S3 server for tests: a versitygw process on
// 127.0.0.1 over a temporary directory, with its buckets, stopped when
// the test ends. The binary is the one `make tools` pins into bin/.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is a running versitygw. Its fields are what a client needs; the
// keys are random per server and must not be logged.
type Server struct {
	// Endpoint is the server's URL, "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root account's credentials.
	AccessKey, SecretKey string
	// Region is the region the server signs for.
	Region string
	// Buckets are the buckets made at start, empty: "bucket-0", "bucket-1", ….
	Buckets []string
	// Dir is the posix root: one directory per bucket.
	Dir string
	// Pid is the server's process id (a benchmark reads its CPU time).
	Pid int
}

// Binary is the name of the server's executable, looked up on PATH (make
// puts bin/ first on it) and then in bin/ of the enclosing repository.
const Binary = "versitygw"

// startTimeout bounds how long a start may take before the test fails;
// versitygw answers within about 0.1 s here.
const startTimeout = 15 * time.Second

// Start runs versitygw with n empty buckets and returns it once it
// answers. It is stopped, and its directory removed, when t ends. When
// the binary is missing or does not start, t fails (it never skips: a
// test that needs a real S3 server and has none has not passed).
func Start(t testing.TB, n int) *Server {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	s := &Server{
		AccessKey: "weft-test-" + randomHex(t, 5),
		SecretKey: randomHex(t, 20),
		Region:    "us-east-1",
		Dir:       t.TempDir(),
	}
	for i := range n {
		name := "bucket-" + strconv.Itoa(i)
		if err := os.Mkdir(filepath.Join(s.Dir, name), 0o755); err != nil {
			t.Fatalf("s3test: make bucket: %v", err)
		}
		s.Buckets = append(s.Buckets, name)
	}
	// A free port can be taken by someone else between our close and
	// the server's listen; then the server exits at once and we try
	// another.
	var lastErr error
	for range 3 {
		p, err := start(t, bin, s)
		if err == nil {
			t.Cleanup(p.stop(t))
			s.Pid = p.cmd.Process.Pid
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3test: %v (run `make tools` to build bin/%s)", lastErr, Binary)
	return nil
}

// FindBinary returns the path of versitygw: on PATH, or in bin/ of the
// repository that holds the working directory.
func FindBinary() (string, error) {
	if p, err := exec.LookPath(Binary); err == nil {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", Binary)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s is neither on PATH nor in the repository's bin/: run `make tools`", Binary)
		}
		dir = parent
	}
}

type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

const healthPath = "/weft-s3test-health"

func start(t testing.TB, bin string, s *Server) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	p := &proc{out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "--port", addr, "--quiet", "--health", healthPath,
		"--region", s.Region, "posix", s.Dir)
	// The keys go in the environment, not the arguments, so that they do
	// not show in ps or in an error that quotes the command.
	p.cmd.Env = append(os.Environ(),
		"ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	setDeathSignal(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()

	endpoint := "http://" + addr
	if err := p.waitReady(endpoint + healthPath); err != nil {
		p.kill()
		return nil, fmt.Errorf("%s on %s: %w; its output:\n%s", Binary, addr, err, p.out.String())
	}
	s.Endpoint = endpoint
	return p, nil
}

// waitReady polls the health endpoint until it answers 200, the process
// exits, or startTimeout passes.
func (p *proc) waitReady(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before answering: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("did not answer within %v", startTimeout)
		case <-tick.C:
		}
	}
}

// stop returns the cleanup that ends the process: SIGTERM, then SIGKILL
// if it has not exited after a few seconds.
func (p *proc) stop(t testing.TB) func() {
	return func() {
		select {
		case <-p.exited:
			t.Errorf("s3test: %s exited during the test: %v; its output:\n%s", Binary, p.err, p.out.String())
			return
		default:
		}
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			p.kill()
		}
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// freePort asks the kernel for a port on 127.0.0.1 that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return hex.EncodeToString(b)
}

// syncBuffer is the process's output, written by exec's copying
// goroutines and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
