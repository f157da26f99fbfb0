package controlapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/api/weftv1/weftv1connect"
	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/plugins"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

const baseURL = "http://weft"

// The test processes, started on every node.
var (
	echoID = kernel.ProcessId{Name: "echo", Package: "test", Publisher: "weft-test"}
	sinkID = kernel.ProcessId{Name: "sink", Package: "other", Publisher: "weft-test"}
)

// node is a kernel served by the control API on a Unix socket.
type node struct {
	t        *testing.T
	k        *kernel.Kernel
	reg      *install.Registry
	drivers  *plugins.Manager // with nodeOptions.drivers
	st       *store.Store     // the kernel's store, which holds the databases
	drives   *store.Drives    // in the data directory, sharing st's usage
	sock     string
	logs     *logBuffer
	stopping chan struct{}

	hc   *http.Client // HTTP/1.1 over the socket
	node weftv1connect.NodeServiceClient
	pkgs weftv1connect.PackageServiceClient
	proc weftv1connect.ProcessServiceClient
	msg  weftv1connect.MessageServiceClient
	caps weftv1connect.CapabilityServiceClient
	stor weftv1connect.StoreServiceClient
	drv  weftv1connect.DriverServiceClient
	bak  weftv1connect.BackupServiceClient
	peer weftv1connect.PeerServiceClient

	backups *backup.Engine // with nodeOptions.backupTargets
	net     *p2p.Node      // with nodeOptions.network
}

type nodeOptions struct {
	token string
	host  *wasm.Host // with a registry when set
	// interceptors go to Config.Interceptors.
	interceptors []connect.Interceptor
	// quota is the per-package storage quota; 0 is the store's default.
	quota int64
	// noStorage serves the API without Config.Store and Config.Drives
	// (the node still has them, for the kernel).
	noStorage bool
	// drivers are started by a plugins.Manager, given as Config.Drivers;
	// without any the API has no Drivers.
	drivers []plugins.Decl
	// backupTargets, when not nil, are the targets of a backup engine
	// given as Config.Backups.
	backupTargets []backup.Target
	// network puts the node on the network: a p2p.Node on a free TCP
	// port of 127.0.0.1, given as Config.Network.
	network bool
}

func newNode(t *testing.T, o nodeOptions, clientOpts ...connect.ClientOption) *node {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	usage := store.NewUsage(o.quota)
	barrier := new(store.Barrier)
	st, err := store.Open(filepath.Join(dataDir, store.FileName), store.Options{Usage: usage, Barrier: barrier})
	if err != nil {
		t.Fatal(err)
	}
	drives, err := store.OpenDrives(filepath.Join(dataDir, "drives"), usage)
	if err != nil {
		t.Fatal(err)
	}
	drives.UseBarrier(barrier)
	k, err := kernel.New(kernel.Config{Keyring: key, State: st, Table: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.Close(ctx); err != nil {
			t.Errorf("kernel close: %v", err)
		}
		st.Close()
		if err := drives.Close(); err != nil {
			t.Errorf("drives close: %v", err)
		}
	})
	n := &node{t: t, k: k, st: st, drives: drives, logs: &logBuffer{}, stopping: make(chan struct{})}
	if o.host != nil {
		n.reg, err = install.OpenRegistry(filepath.Join(dataDir, "packages"), k, o.host, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []kernel.ProcessId{echoID, sinkID} {
		f := echo
		if id == sinkID {
			f = sink
		}
		if err := k.Start(kernel.Spec{ID: id, Process: kernel.ProcessFunc(f), Public: true}); err != nil {
			t.Fatal(err)
		}
	}

	if o.drivers != nil {
		n.drivers, err = plugins.NewManager(k, procstore.New(k, st, drives, nil), nil, o.drivers)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.drivers.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Before the kernel closes: cleanups run last registered first.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := n.drivers.Stop(ctx); err != nil {
				t.Errorf("stop drivers: %v", err)
			}
		})
	}

	cfg := controlapi.Config{
		Kernel:       k,
		Packages:     n.reg,
		Store:        st,
		Drives:       drives,
		Version:      "1.2.3-test",
		Started:      time.Now(),
		Logger:       slog.New(slog.NewJSONHandler(n.logs, nil)),
		Token:        o.token,
		Stopping:     n.stopping,
		Interceptors: o.interceptors,
	}
	if o.noStorage {
		cfg.Store, cfg.Drives = nil, nil
	}
	if o.network {
		n.net, err = p2p.New(p2p.Config{Kernel: k, Key: key, DataDir: filepath.Join(dataDir, "p2p"), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			t.Fatal(err)
		}
		// Before the kernel closes: cleanups run last registered first.
		t.Cleanup(func() {
			if err := n.net.Close(); err != nil {
				t.Errorf("close the p2p node: %v", err)
			}
		})
		cfg.Network = n.net
	}
	if n.drivers != nil { // never a nil *Manager in the interface
		cfg.Drivers = n.drivers
	}
	if o.backupTargets != nil {
		gen, err := backup.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		bkey, err := backup.ParseKey(gen)
		if err != nil {
			t.Fatal(err)
		}
		n.backups, err = backup.New(backup.Config{Targets: o.backupTargets, Key: bkey,
			Source: backup.Source{Store: st, Drives: drives}, DataDir: dataDir, NodeID: key.NodeID(), Version: "1.2.3-test"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Backups = n.backups
	}
	h, err := controlapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "capi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	n.sock = filepath.Join(sockDir, "api.sock")
	ln, err := net.Listen("unix", n.sock)
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, ConnContext: controlapi.ConnContext, Protocols: &p}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	n.hc = n.httpClient(false)
	t.Cleanup(n.hc.CloseIdleConnections)
	n.clients(n.hc, clientOpts...)
	return n
}

// httpClient dials the node's socket; h2c speaks unencrypted HTTP/2 only,
// as gRPC needs.
func (n *node) httpClient(h2c bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.sock)
		},
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr}
}

func (n *node) clients(hc *http.Client, opts ...connect.ClientOption) {
	n.node = weftv1connect.NewNodeServiceClient(hc, baseURL, opts...)
	n.pkgs = weftv1connect.NewPackageServiceClient(hc, baseURL, opts...)
	n.proc = weftv1connect.NewProcessServiceClient(hc, baseURL, opts...)
	n.msg = weftv1connect.NewMessageServiceClient(hc, baseURL, opts...)
	n.caps = weftv1connect.NewCapabilityServiceClient(hc, baseURL, opts...)
	n.stor = weftv1connect.NewStoreServiceClient(hc, baseURL, opts...)
	n.drv = weftv1connect.NewDriverServiceClient(hc, baseURL, opts...)
	n.bak = weftv1connect.NewBackupServiceClient(hc, baseURL, opts...)
	n.peer = weftv1connect.NewPeerServiceClient(hc, baseURL, opts...)
}

// echo answers every request that expects a response with "echo:" and
// the request's body, metadata and blob.
func echo(_ context.Context, h *kernel.Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.IsRequest() && m.WantsResponse() {
			_ = h.Respond(&kernel.Response{Body: append([]byte("echo:"), m.Body...), Metadata: m.Metadata, Blob: h.Blob()})
		}
	}
}

// sink takes every message and answers none.
func sink(_ context.Context, h *kernel.Handle) error {
	for {
		if _, err := h.Await(); err != nil {
			return nil
		}
	}
}

func ctxT(t *testing.T) context.Context {
	// A bound against a hung call, not a measure: installs compile Go
	// guests, which on a loaded 2-core machine under -race take minutes.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is a Connect error with code, and its message
// holds every one of want.
func wantCode(t *testing.T, err error, code connect.Code, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("code %v (%v), want %v", got, err, code)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the lines logged with message msg, decoded.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := bytes.Clone(b.buf.Bytes())
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}
