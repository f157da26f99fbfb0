package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// The attacks of issue 12 on the control API's connections, each against
// both listeners of a real weftd, with the operator's calls answered
// during it. The [api] bounds are turned down so that each attack ends in
// well under a second; nothing here waits on a clock for synchronisation:
// every wait is for the node to close a connection or answer a call.
const connsConfig = `
[api]
idle_timeout = "300ms"
body_timeout = "300ms"
body_min_rate = 65536
max_connections = 8
max_connections_per_client = 4
`

// limitedNode is a weftd with the bounds above, a Unix socket and a TCP
// listener.
type limitedNode struct {
	*node
	tcp   string // host:port
	pool  *x509.CertPool
	token string
}

func startLimitedNode(t *testing.T) *limitedNode {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "weftd.toml")
	if err := os.WriteFile(cfg, []byte(connsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := selfSigned(t)
	n := startNode(t, dir, "--config", cfg, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	token, err := os.ReadFile(filepath.Join(dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	return &limitedNode{node: n, tcp: n.ready["listen"].(string), pool: pool, token: strings.TrimSpace(string(token))}
}

// listener is one of the node's two ways in, as an attacker sees it.
type listener struct {
	name string
	// dial opens a connection that speaks proto ("http/1.1" or "h2")
	// after any TLS handshake.
	dial func(t *testing.T, proto string) net.Conn
	// raw opens a connection and sends nothing, not even a TLS hello.
	raw func(t *testing.T) net.Conn
}

func (n *limitedNode) listeners() []listener {
	return []listener{
		{
			name: "unix",
			dial: func(t *testing.T, _ string) net.Conn { return dialT(t, "unix", n.sock) },
			raw:  func(t *testing.T) net.Conn { return dialT(t, "unix", n.sock) },
		},
		{
			name: "tcp",
			dial: func(t *testing.T, proto string) net.Conn {
				t.Helper()
				c := dialT(t, "tcp", n.tcp)
				tc := tls.Client(c, &tls.Config{RootCAs: n.pool, ServerName: "127.0.0.1", NextProtos: []string{proto}})
				if err := tc.Handshake(); err != nil {
					t.Fatalf("TLS handshake: %v", err)
				}
				return tc
			},
			raw: func(t *testing.T) net.Conn { return dialT(t, "tcp", n.tcp) },
		},
	}
}

func dialT(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, failAfter)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// operatorCalls makes the operator's calls: `weft status` on the Unix
// socket, and GetInfo with the token over TCP. Both must be answered.
func (n *limitedNode) operatorCalls(t *testing.T, during string) {
	t.Helper()
	if out, errOut, code := n.weft(t, "status"); code != 0 {
		t.Errorf("during %s: weft status on the Unix socket: code %d, stdout %q, stderr %q", during, code, out, errOut)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.pool}}}
	defer hc.CloseIdleConnections()
	req := connect.NewRequest(&weftv1.GetInfoRequest{})
	req.Header().Set("Authorization", "Bearer "+n.token)
	ctx, cancel := context.WithTimeout(context.Background(), failAfter)
	defer cancel()
	if _, err := weftv1connect.NewNodeServiceClient(hc, "https://"+n.tcp).GetInfo(ctx, req); err != nil {
		t.Errorf("during %s: GetInfo over TCP with the token: %v", during, err)
	}
}

// waitClosed reads c until the node closes it, failing the test if it has
// not within failAfter.
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(failAfter))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: still open after %v", what, failAfter)
	}
}

func TestConnectionAttacks(t *testing.T) {
	n := startLimitedNode(t)
	for _, l := range n.listeners() {
		t.Run(l.name, func(t *testing.T) {
			t.Run("idle keep-alive", func(t *testing.T) {
				c := l.dial(t, "http/1.1")
				fmt.Fprintf(c, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("the first call: %v", err)
				}
				resp.Body.Close()
				if resp.Close {
					t.Fatal("the node closed the connection after the call; the test needs it kept alive")
				}
				n.operatorCalls(t, "an idle keep-alive")
				waitClosed(t, c, "an idle keep-alive connection")
			})
			t.Run("trickled body", func(t *testing.T) {
				c := l.dial(t, "http/1.1")
				fmt.Fprintf(c, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
				stop := make(chan struct{})
				defer close(stop)
				go trickle(c, stop)
				n.operatorCalls(t, "a trickled body")
				waitClosed(t, c, "a connection trickling its body")
			})
			t.Run("HTTP/2 preface and SETTINGS only", func(t *testing.T) {
				c := l.dial(t, "h2")
				if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
					t.Fatal(err)
				}
				n.operatorCalls(t, "an HTTP/2 connection with no streams")
				waitClosed(t, c, "an HTTP/2 connection with only a preface and SETTINGS")
			})
			t.Run("flood of idle connections", func(t *testing.T) {
				// Twice the listener's bound, none of them saying
				// anything: each new one takes the place of an older one.
				var flood []net.Conn
				for range 16 {
					flood = append(flood, l.raw(t))
				}
				n.operatorCalls(t, "a flood of idle connections")
				// The node closed at least those past its bound (the
				// rest go at the read-header timeout).
				closed := make(chan bool, len(flood))
				for _, c := range flood[:8] { // the oldest were evicted
					go func() {
						c.SetReadDeadline(time.Now().Add(failAfter))
						_, err := c.Read(make([]byte, 1))
						closed <- err != nil && !isTimeout(err)
					}()
				}
				for range 8 {
					if !<-closed {
						t.Error("a connection of the flood's oldest half was still open")
					}
				}
			})
		})
	}
	// The bound per client of connections over TCP, each a call without a
	// token trickling its body (the attack that once took every open file
	// and locked the operator out): the operator on the Unix socket is
	// answered throughout, and each attacker's connection is closed.
	t.Run("unauthenticated calls trickling their bodies over tcp", func(t *testing.T) {
		tcp := n.listeners()[1]
		stop := make(chan struct{})
		var busy []net.Conn
		for range 4 {
			c := tcp.dial(t, "http/1.1")
			fmt.Fprintf(c, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
			busy = append(busy, c)
			go trickle(c, stop)
		}
		if out, errOut, code := n.weft(t, "status"); code != 0 {
			t.Errorf("weft status on the Unix socket during a busy TCP flood: code %d, stdout %q, stderr %q", code, out, errOut)
		}
		close(stop)
		for _, c := range busy {
			waitClosed(t, c, "a busy connection trickling its body")
		}
		n.operatorCalls(t, "after a busy flood")
	})
	n.stop(t)
}

// trickle writes a byte to c every 20 ms, 50 bytes a second, until stop
// is closed or the node cuts the connection: an attacker's body.
func trickle(c net.Conn, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestOpenFilesLimit: weftd refuses to start when its open files limit
// cannot hold its listeners' connections and its own files.
func TestOpenFilesLimit(t *testing.T) {
	sock := filepath.Join(shortDir(t), "weftd.sock")
	_, errOut, code := runTool(t, nil, "/bin/sh", "-c", `ulimit -n 1500 && exec "$0" "$@"`,
		weftdBin, "--data-dir", t.TempDir(), "--socket", sock, loopbackP2P[0], loopbackP2P[1])
	if code == 0 || !strings.Contains(errOut, "api.max_connections") || !strings.Contains(errOut, "LimitNOFILE") {
		t.Errorf("weftd under ulimit -n 1500: code %d, stderr %q; want a refusal naming api.max_connections and LimitNOFILE", code, errOut)
	}
}

// TestRequestBodyBudget: request bodies in flight are bounded node-wide;
// a call past the budget is refused before its body is read, and the
// memory a large request took is given back once it is done.
func TestRequestBodyBudget(t *testing.T) {
	const budget = 300 << 20 // the least allowed is one of the largest requests, 257 MiB
	cfg := filepath.Join(t.TempDir(), "weftd.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[api]\nmax_request_bytes_in_flight = %d\n", budget)), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, t.TempDir(), "--config", cfg, "--log-level", "debug", "--metrics-listen", "127.0.0.1:0")
	metricsURL := "http://" + n.ready["metrics"].(string) + "/metrics"

	// A holds 200 MiB of the budget: its headers are in, its body is not.
	a := dialT(t, "unix", n.sock)
	fmt.Fprintf(a, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 200<<20)
	waitMetric(t, metricsURL, "weft_api_request_bytes_in_flight", func(v float64) bool { return v >= 200<<20 })
	// B asks for 150 MiB more: refused at once, before a byte of its body
	// is sent.
	b := dialT(t, "unix", n.sock)
	fmt.Fprintf(b, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 150<<20)
	b.SetReadDeadline(time.Now().Add(failAfter))
	resp, err := http.ReadResponse(bufio.NewReader(b), nil)
	if err != nil {
		t.Fatalf("B: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"resource_exhausted"`) || !strings.Contains(string(body), "api.max_request_bytes_in_flight") {
		t.Errorf("B, over the budget: %s %s; want resource_exhausted naming api.max_request_bytes_in_flight", resp.Status, body)
	}
	// Small calls still fit beside A.
	if _, _, code := n.weft(t, "status"); code != 0 {
		t.Error("weft status beside A failed")
	}
	// A gone, its bytes are free again: a 20 MiB body is read (and
	// refused for what it says), and the memory it took is returned.
	a.Close()
	waitMetric(t, metricsURL, "weft_api_request_bytes_in_flight", func(v float64) bool { return v == 0 })
	var freed map[string]any
	big := strings.Repeat(" ", 20<<20)
	{
		c := dialT(t, "unix", n.sock)
		fmt.Fprintf(c, "POST /weft.v1.NodeService/GetInfo HTTP/1.1\r\nHost: weft\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(big)+2, "{}"+big)
		c.SetReadDeadline(time.Now().Add(failAfter))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("the 20 MiB call: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(body), `"resource_exhausted"`) {
			t.Errorf("a 20 MiB call with the budget free: %s", body)
		}
	}
	n.waitFor(t, "memory returned after the large request", jsonRecord("memory returned to the operating system after a large request", &freed))
	n.stop(t)
}

// waitMetric reads the node's metrics until the unlabelled sample name
// satisfies ok, failing the test after failAfter.
func waitMetric(t *testing.T, url, name string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(failAfter)
	last := "no sample"
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for line := range strings.Lines(string(b)) {
			if v, found := strings.CutPrefix(strings.TrimSpace(line), name+" "); found {
				last = v
				if f, err := strconv.ParseFloat(v, 64); err == nil && ok(f) {
					return
				}
			}
		}
	}
	t.Fatalf("metric %s: %s after %v", name, last, failAfter)
}
