package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/weftos/weft/api/weftv1/weftv1connect"
)

// A conn holds the clients of the node's control API, over one
// http.Client: the Unix socket by default, HTTPS with a bearer token with
// --addr. Every client speaks the Connect protocol with the binary proto
// codec.
type conn struct {
	http     *http.Client
	node     weftv1connect.NodeServiceClient
	packages weftv1connect.PackageServiceClient
	procs    weftv1connect.ProcessServiceClient
	messages weftv1connect.MessageServiceClient
	caps     weftv1connect.CapabilityServiceClient
	store    weftv1connect.StoreServiceClient
	drivers  weftv1connect.DriverServiceClient
	backups  weftv1connect.BackupServiceClient
	peers    weftv1connect.PeerServiceClient
}

// dial returns the runner's conn, made on first use. It fails with a
// *nodeError when the socket does not exist, and with a *usageError when
// the TCP settings are incomplete or unreadable.
func (r *runner) dial() (*conn, error) {
	if r.conn != nil {
		return r.conn, nil
	}
	var (
		client  *http.Client
		baseURL string
	)
	if r.g.addr != "" {
		c, err := r.tcpClient()
		if err != nil {
			return nil, err
		}
		client, baseURL = c, strings.TrimRight(r.g.addr, "/")
	} else {
		fi, err := os.Stat(r.g.socket)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &nodeError{op: "connect", err: fmt.Errorf("no socket at %s (%s); is weftd running?", r.g.socket, r.socketFromText())}
		case err != nil:
			return nil, &nodeError{op: "connect", err: fmt.Errorf("socket %s (%s): %w", r.g.socket, r.socketFromText(), err)}
		case fi.Mode()&fs.ModeSocket == 0:
			return nil, &nodeError{op: "connect", err: fmt.Errorf("%s (%s) is not a socket", r.g.socket, r.socketFromText())}
		}
		path := r.g.socket
		client = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			// One node, one socket: keep a connection for the next call.
			MaxIdleConns: 2,
		}}
		// The host is a placeholder: the transport always dials the socket.
		baseURL = "http://weftd"
	}
	r.conn = &conn{
		http:     client,
		node:     weftv1connect.NewNodeServiceClient(client, baseURL),
		packages: weftv1connect.NewPackageServiceClient(client, baseURL),
		procs:    weftv1connect.NewProcessServiceClient(client, baseURL),
		messages: weftv1connect.NewMessageServiceClient(client, baseURL),
		caps:     weftv1connect.NewCapabilityServiceClient(client, baseURL),
		store:    weftv1connect.NewStoreServiceClient(client, baseURL),
		drivers:  weftv1connect.NewDriverServiceClient(client, baseURL),
		backups:  weftv1connect.NewBackupServiceClient(client, baseURL),
		peers:    weftv1connect.NewPeerServiceClient(client, baseURL),
	}
	return r.conn, nil
}

// tcpClient is the http.Client for --addr: TLS, trusting --ca if given
// (else the system's roots), and the token from --token-file or
// WEFT_TOKEN on every request.
func (r *runner) tcpClient() (*http.Client, error) {
	u, err := url.Parse(r.g.addr)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, usagef("--addr %q: want https://HOST:PORT", r.g.addr)
	}
	token := r.env.getenv("WEFT_TOKEN")
	if r.g.tokenFile != "" {
		b, err := os.ReadFile(r.g.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("read --token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		return nil, usagef("--addr needs a token: set WEFT_TOKEN or pass --token-file FILE")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.g.ca != "" {
		pem, err := os.ReadFile(r.g.ca)
		if err != nil {
			return nil, fmt.Errorf("read --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", r.g.ca)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment}
	return &http.Client{Transport: &bearer{token: token, next: tr}}, nil
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// close lets go of the conn's idle connections.
func (r *runner) close() {
	if r.conn != nil {
		r.conn.http.CloseIdleConnections()
	}
}
