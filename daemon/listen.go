package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/weftos/weft/api/weftv1"
	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/packages/pkgzip"
)

// readHeaderTimeout bounds how long a client may take to send a request's
// headers: a connection that stalls there holds no more than this.
const readHeaderTimeout = 10 * time.Second

// newServer returns an HTTP server for h that speaks HTTP/1.1 and HTTP/2
// (over TLS, or in the clear with prior knowledge, as gRPC clients do on
// a Unix socket), within lim: headers in readHeaderTimeout, bodies within
// lim's bound, idle connections closed after lim.IdleTimeout. connState
// is its ConnState (the listener's bookkeeping).
func newServer(h http.Handler, log *slog.Logger, lim ConnLimits, connState func(net.Conn, http.ConnState)) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           bodyDeadline(h, lim),
		Protocols:         &p,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		HTTP2: &http.HTTP2Config{
			// A peer that stops reading what the node writes is cut
			// rather than holding the connection's writer.
			WriteByteTimeout: lim.BodyTimeout,
			// A connection whose peer has vanished is found and closed.
			SendPingTimeout: lim.IdleTimeout,
			PingTimeout:     readHeaderTimeout,
		},
		ConnState:   connState,
		ConnContext: controlapi.ConnContext,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveLimited serves h on l, bounded by the [api] limits: at most
// max_connections, and max_connections_per_client for each client,
// counted as they are accepted, before any authentication.
func (n *node) serveLimited(h http.Handler, l net.Listener, name string, tlsConfig *tls.Config) {
	ll := newLimitedListener(l, name, n.cfg.API, n.log)
	lab := map[string]string{"listener": name, "addr": l.Addr().String()}
	n.met.GaugeFunc("weft_api_connections", "Open control API connections.", lab, func() float64 { return float64(ll.open()) })
	n.met.CounterFunc("weft_api_connections_refused_total", "Connections closed as they were accepted, every one at the bound having a call in flight.", lab,
		func() float64 { return float64(ll.refused.Load()) })
	n.met.CounterFunc("weft_api_connections_evicted_total", "Idle connections closed to make room for new ones at the bound.", lab,
		func() float64 { return float64(ll.evicted.Load()) })
	srv := newServer(n.bodies.middleware(h), n.log, n.cfg.API, ll.connState)
	srv.TLSConfig = tlsConfig
	n.srvs.serve(srv, ll, name, tlsConfig != nil)
}

// serveUnix serves the control API on the Unix sockets systemd passed
// (socket activation) or, without them, on a socket it makes at path. It
// returns the socket's address.
func (n *node) serveUnix(cfg controlapi.Config, path string) (string, error) {
	h, err := controlapi.New(cfg)
	if err != nil {
		return "", fmt.Errorf("control API: %w", err)
	}
	passed, err := activation.Listeners()
	if err != nil {
		return "", fmt.Errorf("sockets from systemd: %w", err)
	}
	if len(passed) > 0 {
		var addr string
		for _, l := range passed {
			if l == nil || l.Addr().Network() != "unix" {
				for _, l := range passed {
					if l != nil {
						l.Close()
					}
				}
				return "", errors.New("systemd passed a socket that is not a Unix stream socket; for TCP, set listen in the config")
			}
		}
		for _, l := range passed {
			n.serveLimited(h, l, "systemd socket", nil)
			if addr == "" {
				addr = l.Addr().String()
			}
			n.log.Info("serving the control API", "socket", l.Addr().String(), "from", "systemd")
		}
		return addr, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("socket: %w", err)
	}
	l, err := listenUnix(abs)
	if err != nil {
		return "", fmt.Errorf("socket %s: %w", abs, err)
	}
	n.serveLimited(h, l, "socket", nil)
	n.log.Info("serving the control API", "socket", abs)
	return abs, nil
}

// listenUnix makes a Unix socket at path, mode 0660. A socket file left
// by a weftd that died is replaced; one that answers is not.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the stale socket: %w", err)
		}
	}
	// The socket is made with the umask's mode; make it 0660 from the
	// start rather than open it to others for a moment.
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// serveTCP serves the control API with TLS on cfg.Listen to callers that
// present the token. It returns the listener's address.
func (n *node) serveTCP(cfg controlapi.Config) (string, error) {
	cert, err := tls.LoadX509KeyPair(n.cfg.TLSCert, n.cfg.TLSKey)
	if err != nil {
		return "", fmt.Errorf("listen %s: TLS certificate: %w", n.cfg.Listen, err)
	}
	tokenPath := n.cfg.TokenFile
	if tokenPath == "" {
		tokenPath = filepath.Join(n.dir, TokenFile)
	}
	token, created, err := loadOrCreateToken(tokenPath)
	if err != nil {
		return "", fmt.Errorf("listen %s: token: %w", n.cfg.Listen, err)
	}
	if created {
		n.log.Info("API token created", "path", tokenPath)
	}
	cfg.Token = token
	h, err := controlapi.New(cfg)
	if err != nil {
		return "", fmt.Errorf("control API: %w", err)
	}
	l, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %s: %w", n.cfg.Listen, err)
	}
	n.serveLimited(h, l, "tcp", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	n.log.Info("serving the control API", "listen", l.Addr().String(), "tls", true, "token_file", tokenPath)
	return l.Addr().String(), nil
}

// serveMetrics serves h at /metrics on addr, a loopback address.
func (n *node) serveMetrics(h http.Handler, addr string) (string, error) {
	if err := checkLoopback(addr); err != nil {
		return "", fmt.Errorf("metrics_listen: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	n.serveLimited(mux, l, "metrics", nil)
	n.log.Info("serving metrics", "addr", "http://"+l.Addr().String()+"/metrics")
	return l.Addr().String(), nil
}

// loadOrCreateToken reads the bearer token at path, or makes one (256
// random bits, hex, mode 0600) if there is no file. A token file that
// group or others may read is refused.
func loadOrCreateToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		rand.Read(raw)
		token = hex.EncodeToString(raw)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return "", false, err
		}
		if _, err := f.WriteString(token + "\n"); err != nil {
			f.Close()
			return "", false, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return "", false, err
		}
		return token, true, f.Close()
	}
	if err != nil {
		return "", false, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", false, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", false, fmt.Errorf("%s has mode %04o, which lets group or others read it; run chmod 600 %s", path, perm, path)
	}
	token = strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", false, fmt.Errorf("%s holds %d characters; a token needs at least 16", path, len(token))
	}
	return token, false, nil
}

// readPackage returns the zip archive of the package at path: the file
// itself for a .zip, the directory zipped otherwise.
func readPackage(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return pkgzip.Dir(path)
	}
	return os.ReadFile(path)
}

// selfCheck calls the control API on its own socket, so that READY=1 is
// only said once it answers.
func selfCheck(ctx context.Context, sock string) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := weftv1connect.NewNodeServiceClient(c, "http://weftd").GetInfo(ctx, connect.NewRequest(&weftv1.GetInfoRequest{}))
	return err
}

// notify sends state to systemd if weftd runs under it (NOTIFY_SOCKET).
func notify(log *slog.Logger, state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notify failed", "state", state, "err", err)
	}
}

// sdWatchdogInterval is systemd's watchdog interval for this process, or
// zero when the watchdog is off.
func sdWatchdogInterval() (time.Duration, error) {
	return sddaemon.SdWatchdogEnabled(false)
}
