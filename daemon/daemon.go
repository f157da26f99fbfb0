// Package daemon wires one weft node and owns its lifecycle: its
// configuration, its data directory, the node key, the store, the kernel,
// the Wasm host and the installed packages, the control API's listeners
// (Unix socket, optional TCP with TLS and a token, systemd socket
// activation), metrics, and systemd's notify and watchdog protocol. It
// starts them in order and stops them in reverse. It is the one place that
// knows every layer; nothing imports it but cmd/weftd.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/daemon/metrics"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/procstore"
	"github.com/weftos/weft/store"
	"github.com/weftos/weft/wasm"
)

// Files and directories weftd keeps in the data dir, besides the node key
// (identity.KeyFile), the database (store.FileName) and the lock
// (LockFile).
const (
	PackagesDir = "packages"    // the install registry
	DrivesDir   = "drives"      // the packages' file drives
	CacheDir    = "cache"       // wazero's compiled code
	TokenFile   = "api.token"   // the TCP listener's bearer token
	healthBody  = "weftd-probe" // what the health probe sends and expects back
)

// HealthProcess answers every request with its body: the daemon's health
// probe (systemd's watchdog) makes a round trip through the kernel to it.
var HealthProcess = kernel.ProcessId{Name: "health", Package: "sys", Publisher: "weft"}

// NewLogger returns a logger writing to w at level, in format "text" or
// "json".
func NewLogger(w io.Writer, level slog.Level, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("weftd: log format %q: want text or json", format)
}

// Info describes a node that is ready.
type Info struct {
	NodeID  string
	DataDir string // absolute
	// Socket is the control API's Unix socket (absolute), or the address
	// of the one systemd passed.
	Socket string
	// Listen is the TCP listener's address, MetricsAddr the metrics
	// listener's; empty when off.
	Listen      string
	MetricsAddr string
	Started     time.Time
}

// Daemon is one node. Run it once.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	used atomic.Bool
}

// New returns a daemon for cfg that logs to logger (nil discards). It
// touches nothing; Run does the work.
func New(cfg Config, logger *slog.Logger) *Daemon {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Daemon{cfg: cfg, log: logger}
}

// Run starts the node, calls ready (if not nil, on Run's goroutine, so it
// should return promptly) once the control API answers and the packages
// run, and blocks until ctx is done; then it stops the node and returns.
// It returns nil after a clean stop, and an error, naming the failed
// operation, if the node could not start or did not stop cleanly. A data
// dir held by another weftd fails at once with an *InUseError. If ctx
// ends while the node is starting, Run stops it without calling ready.
//
// Under systemd (NOTIFY_SOCKET set) it reports READY=1 at the same moment,
// STATUS= lines, STOPPING=1 when told to stop, and WATCHDOG=1 (when
// WATCHDOG_USEC is set) only after a round trip through the kernel
// succeeds.
func (d *Daemon) Run(ctx context.Context, ready func(Info)) error {
	if !d.used.CompareAndSwap(false, true) {
		return errors.New("weftd: Run called twice on one Daemon")
	}
	if err := d.cfg.Validate(); err != nil {
		return fmt.Errorf("weftd: %w", err)
	}
	var info Info // set once the node is ready
	err := d.run(ctx, ready, &info)
	if err == nil && info.NodeID != "" {
		d.log.Info("weftd stopped", "node_id", info.NodeID, "data_dir", info.DataDir)
	}
	return err
}

// run is Run; it fills *info when the node is ready. Its deferred calls
// stop everything in the reverse of the order it started.
func (d *Daemon) run(ctx context.Context, ready func(Info), info *Info) (err error) {
	cfg := d.cfg
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("weftd: data dir: %w", err)
	}
	d.log.Info("weftd starting", "version", cfg.Version, "data_dir", dir, "pid", os.Getpid())
	notify(d.log, "STATUS=Starting")

	if err := prepareDataDir(dir); err != nil {
		return err
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return fmt.Errorf("weftd: %w", err)
	}
	defer func() {
		if uerr := lock.release(); uerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: unlock data dir: %w", uerr))
		}
	}()

	key, created, err := identity.LoadOrCreate(dir)
	if err != nil {
		return fmt.Errorf("weftd: load node key: %w", err)
	}
	if created {
		d.log.Info("node key created", "node_id", key.NodeID(), "path", filepath.Join(dir, identity.KeyFile))
	} else {
		d.log.Info("node key loaded", "node_id", key.NodeID(), "path", filepath.Join(dir, identity.KeyFile))
	}

	// One quota and one write barrier over the database and the drives:
	// a snapshot (store.Snapshot) then sees both at one instant.
	usage := store.NewUsage(cfg.PackageQuota)
	barrier := &store.Barrier{}
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{Usage: usage, Barrier: barrier})
	if err != nil {
		return fmt.Errorf("weftd: open store: %w", err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: close store: %w", cerr))
		}
	}()

	drives, err := store.OpenDrives(filepath.Join(dir, DrivesDir), usage)
	if err != nil {
		return fmt.Errorf("weftd: open drives: %w", err)
	}
	drives.UseBarrier(barrier)
	defer func() {
		if cerr := drives.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: close drives: %w", cerr))
		}
	}()

	host, err := wasm.NewHost(context.Background(), wasm.Config{
		CacheDir: filepath.Join(dir, CacheDir, "wazero"),
		Limits:   cfg.Limits,
		Logger:   d.log,
	})
	if err != nil {
		return fmt.Errorf("weftd: start the Wasm host: %w", err)
	}
	defer func() {
		if cerr := host.Close(context.Background()); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: close the Wasm host: %w", cerr))
		}
	}()

	k, err := kernel.New(kernel.Config{
		Keyring: key,
		State:   st,
		Table:   st,
		Limits:  cfg.Limits,
		Logger:  d.log,
	})
	if err != nil {
		return fmt.Errorf("weftd: start kernel: %w", err)
	}
	// Registered after the store's and the host's, so it runs first:
	// processes stop before their store and their runtime close.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if cerr := k.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: stop kernel: %w", cerr))
		}
	}()
	host.SetStore(procstore.New(k, st, drives, d.log))
	if err := k.StartSystem(kernel.Spec{ID: HealthProcess, Process: kernel.ProcessFunc(echo)}); err != nil {
		return fmt.Errorf("weftd: start %s: %w", HealthProcess, err)
	}

	reg, err := install.OpenRegistry(filepath.Join(dir, PackagesDir), k, host, d.log)
	if err != nil {
		return fmt.Errorf("weftd: open the package registry: %w", err)
	}
	reg.UseBarrier(barrier)
	notify(d.log, "STATUS=Restoring processes")
	rep, err := reg.Restore()
	if err != nil {
		return fmt.Errorf("weftd: restore processes: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(rep.Failed)) {
		d.log.Error("process not restored; its record stays in the table", "process", id, "err", rep.Failed[id])
	}
	for _, p := range cfg.Install {
		if err := d.installAtStart(reg, p); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		// Told to stop while starting: never claim to be ready.
		return nil
	}

	// Serve the control API.
	started := time.Now()
	stopping := make(chan struct{})
	var stopOnce sync.Once
	stopTaps := func() { stopOnce.Do(func() { close(stopping) }) }
	defer stopTaps()
	met := metrics.New(k)
	apiCfg := controlapi.Config{
		Kernel:       k,
		Packages:     reg,
		Store:        st,
		Drives:       drives,
		Version:      cfg.Version,
		Started:      started,
		Logger:       d.log,
		Stopping:     stopping,
		Interceptors: []connect.Interceptor{met.Interceptor()},
	}
	srvs := &servers{log: d.log}
	defer func() {
		// Runs before the kernel stops: calls in flight finish first.
		stopTaps()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		srvs.shutdown(sctx)
	}()
	sock, err := d.serveUnix(srvs, apiCfg, cfg.Socket)
	if err != nil {
		return err
	}
	listen := ""
	if cfg.Listen != "" {
		if listen, err = d.serveTCP(srvs, apiCfg, dir); err != nil {
			return err
		}
	}
	metricsAddr := ""
	if cfg.MetricsListen != "" {
		if metricsAddr, err = d.serveMetrics(srvs, met.Handler(), cfg.MetricsListen); err != nil {
			return err
		}
	}
	if err := selfCheck(ctx, sock); err != nil {
		return fmt.Errorf("weftd: the control API on %s does not answer: %w", sock, err)
	}
	if ctx.Err() != nil {
		return nil
	}

	*info = Info{NodeID: key.NodeID(), DataDir: dir, Socket: sock, Listen: listen, MetricsAddr: metricsAddr, Started: started}
	running := countRunning(k)
	d.log.Info("node ready", "node_id", info.NodeID, "data_dir", dir, "socket", sock,
		"listen", listen, "metrics", metricsAddr,
		"processes_restored", len(rep.Started), "processes_not_restored", len(rep.Failed),
		"processes_running", running, "packages", len(reg.List()))
	notify(d.log, "READY=1\nSTATUS="+status(k, reg))
	if ready != nil {
		ready(*info)
	}

	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go d.watchdog(wctx, k, reg)

	<-ctx.Done()
	d.log.Info("weftd stopping", "reason", context.Cause(ctx))
	notify(d.log, "STOPPING=1\nSTATUS=Stopping")
	return nil
}

// installAtStart installs the package at path (a directory or a zip) with
// every capability it requests approved, unless that version is already
// installed.
func (d *Daemon) installAtStart(reg *install.Registry, path string) error {
	zip, err := readPackage(path)
	if err != nil {
		return fmt.Errorf("weftd: install %s: %w", path, err)
	}
	pkg, already, err := reg.Install(zip, install.Approval{All: true})
	if err != nil {
		return fmt.Errorf("weftd: install %s: %w", path, err)
	}
	if already { // the registry logs a fresh install
		d.log.Info("package already installed", "package", pkg.ID.String(), "version", pkg.Version, "path", path)
	}
	return nil
}

// echo answers every request that wants a response with its body.
func echo(ctx context.Context, h *kernel.Handle) error {
	for {
		m, err := h.Await()
		if err != nil {
			return nil
		}
		if m.WantsResponse() {
			if err := h.Respond(&kernel.Response{Body: m.Body}); err != nil {
				return err
			}
		}
	}
}

// probe makes a round trip through the kernel to HealthProcess.
func probe(ctx context.Context, k *kernel.Kernel) error {
	const timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := k.Send(ctx, &kernel.Request{Target: k.Address(HealthProcess), Body: []byte(healthBody), ExpectsResponse: timeout})
	if err != nil {
		return err
	}
	if string(m.Body) != healthBody {
		return fmt.Errorf("%s answered %q, want %q", HealthProcess, m.Body, healthBody)
	}
	return nil
}

// watchdog pings systemd's watchdog at half its interval, each time only
// after a health probe succeeds, until ctx is done. Without WATCHDOG_USEC
// it returns at once.
func (d *Daemon) watchdog(ctx context.Context, k *kernel.Kernel, reg *install.Registry) {
	every, err := sdWatchdogInterval()
	if err != nil {
		d.log.Warn("systemd watchdog settings unusable", "err", err)
		return
	}
	if every <= 0 {
		return
	}
	d.log.Info("systemd watchdog on", "interval", every)
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		if err := probe(ctx, k); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Error("health probe failed; not pinging the watchdog", "err", err)
		} else {
			notify(d.log, "WATCHDOG=1\nSTATUS="+status(k, reg))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// status is the one line systemctl status shows.
func status(k *kernel.Kernel, reg *install.Registry) string {
	return fmt.Sprintf("Ready: %d processes running, %d packages installed", countRunning(k), len(reg.List()))
}

// countRunning counts the running processes, the node's own not counted.
func countRunning(k *kernel.Kernel) int {
	n := 0
	for _, p := range k.Processes() {
		if p.State == kernel.StateRunning && p.ID.PackageId() != HealthProcess.PackageId() {
			n++
		}
	}
	return n
}

// prepareDataDir creates dir (mode 0700) if it is missing and refuses it if
// it is not a directory or if group or others may write to it: whoever can
// write there can replace the node key or the database.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("weftd: create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("weftd: data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("weftd: data dir %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("weftd: data dir %s has mode %04o, which lets group or others write to it; run chmod go-w %s", dir, perm, dir)
	}
	return nil
}

// servers are the HTTP servers the daemon runs.
type servers struct {
	log  *slog.Logger
	mu   sync.Mutex
	list []*http.Server
	wg   sync.WaitGroup
}

// serve serves l with srv until shutdown.
func (s *servers) serve(srv *http.Server, l net.Listener, name string, tls bool) {
	s.mu.Lock()
	s.list = append(s.list, srv)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		var err error
		if tls {
			err = srv.ServeTLS(l, "", "")
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener failed", "listener", name, "addr", l.Addr().String(), "err", err)
		}
	}()
}

// shutdown stops every server: no new calls; calls in flight finish, or
// are cut (and logged) when ctx ends.
func (s *servers) shutdown(ctx context.Context) {
	s.mu.Lock()
	list := s.list
	s.mu.Unlock()
	for _, srv := range list {
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("calls still in flight at the shutdown deadline; closing their connections", "err", err)
			srv.Close()
		}
	}
	s.wg.Wait()
}
