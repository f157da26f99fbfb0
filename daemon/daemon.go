// Package daemon wires one weft node and owns its lifecycle: its
// configuration, its data directory, the node key, the store, the kernel,
// the node on the network (p2p), the Wasm host and the installed
// packages, the control API's listeners (Unix socket, optional TCP with
// TLS and a token, systemd socket activation), metrics, and systemd's
// notify and watchdog protocol. It
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

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/daemon/metrics"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/packages/install"
	"github.com/weftos/weft/plugins"
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
	// P2PListen are the full multiaddrs other nodes reach this one at
	// (ending in /p2p/NODE_ID); nil when the network is off.
	P2PListen []string
	Started   time.Time
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

// node is one node's parts as they start: each part fills its own fields
// and may use those of the parts before it.
type node struct {
	cfg Config
	log *slog.Logger
	dir string // the data dir, absolute

	lock     *dirLock
	key      *identity.Key
	barrier  *store.Barrier
	changes  *store.Changes // noted by every durable write of the store, drives and registry
	st       *store.Store
	drives   *store.Drives
	host     *wasm.Host
	k        *kernel.Kernel
	net      *p2p.Node // nil when the network is off
	drivers  *plugins.Manager
	reg      *install.Registry
	backups  *backup.Engine // nil when no target is declared
	restored kernel.RestoreReport
	srvs     *servers
	bodies   *bodyBudget
	stopTaps func()
	met      *metrics.Metrics
	api      Info // the listeners' addresses and the time the API started
}

// parts lists the node's subsystems in the order they start; they stop in
// the reverse order. Adding one is a part here and its start and stop
// methods: put it after every part it uses.
func (n *node) parts() []part {
	return []part{
		{"data dir", n.lockDataDir, n.unlockDataDir},
		{"node key", n.loadKey, nil},
		{"store", n.openStore, n.closeStore},
		{"drives", n.openDrives, n.closeDrives},
		{"Wasm host", n.startHost, n.closeHost},
		{"kernel", n.startKernel, n.stopKernel},
		{"network", n.startNetwork, n.stopNetwork},
		{"drivers", n.startDrivers, n.stopDrivers},
		{"packages", n.restorePackages, nil},
		{"backups", n.startBackups, n.stopBackups},
		{"control API", n.serveAPI, n.stopAPI},
	}
}

// run is Run; it fills *info when the node is ready.
func (d *Daemon) run(ctx context.Context, ready func(Info), info *Info) (err error) {
	dir, err := filepath.Abs(d.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	d.log.Info("weftd starting", "version", d.cfg.Version, "data_dir", dir, "pid", os.Getpid())
	notify(d.log, "STATUS=Starting")
	if max, ok := cgroupMemoryMax(); ok && max < memoryNeed(d.cfg) {
		d.log.Warn("the cgroup's memory.max is below what the node's budgets let it hold; it may be stopped for memory before a budget refuses anything",
			"memory_max", max, "budgets", memoryNeed(d.cfg),
			"guest_memory_total", d.cfg.Limits.WithDefaults().GuestMemoryTotal, "max_request_bytes_in_flight", d.cfg.API.MaxRequestBytesInFlight)
	}

	n := &node{cfg: d.cfg, log: d.log, dir: dir}
	parts, ok, err := startParts(ctx, d.log, d.cfg.ShutdownTimeout, n.parts())
	if !ok {
		return err
	}
	defer func() { err = errors.Join(err, parts.stop()) }()
	if ctx.Err() != nil {
		return nil // told to stop while starting: never claim to be ready
	}

	*info = n.api
	info.NodeID, info.DataDir = n.key.NodeID(), dir
	if n.net != nil {
		info.P2PListen = n.net.ListenAddrs()
	}
	d.log.Info("node ready", "node_id", info.NodeID, "data_dir", dir, "socket", info.Socket,
		"listen", info.Listen, "metrics", info.MetricsAddr, "network", n.net != nil, "p2p_listen", info.P2PListen,
		"processes_restored", len(n.restored.Started), "processes_not_restored", len(n.restored.Failed),
		"processes_running", countRunning(n.k), "packages", len(n.reg.List()))
	notify(d.log, "READY=1\nSTATUS="+status(n.k, n.reg))
	if ready != nil {
		ready(*info)
	}

	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go d.watchdog(wctx, n.k, n.reg)

	<-ctx.Done()
	d.log.Info("weftd stopping", "reason", context.Cause(ctx))
	notify(d.log, "STOPPING=1\nSTATUS=Stopping")
	return nil
}

// lockDataDir makes the data dir if it is missing, checks it, and locks
// it against a second weftd.
func (n *node) lockDataDir(context.Context) error {
	if err := prepareDataDir(n.dir); err != nil {
		return err
	}
	lock, err := lockDataDir(n.dir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(n.dir, backup.RestoreMarker)); err == nil {
		return errors.Join(fmt.Errorf("data dir %s holds %s: a weftd restore into it was interrupted and the node is not whole; empty the directory and restore again", n.dir, backup.RestoreMarker), lock.release())
	}
	n.lock = lock
	return nil
}

func (n *node) unlockDataDir(context.Context) error { return n.lock.release() }

// loadKey loads the node key, making one on first start.
func (n *node) loadKey(context.Context) error {
	key, created, err := identity.LoadOrCreate(n.dir)
	if err != nil {
		return err
	}
	n.key = key
	msg := "node key loaded"
	if created {
		msg = "node key created"
	}
	n.log.Info(msg, "node_id", key.NodeID(), "path", filepath.Join(n.dir, identity.KeyFile))
	return nil
}

// openStore opens the database. One quota, one write barrier and one
// change count cover the database, the drives and the install registry,
// so a snapshot (store.Snapshot) sees all three at one instant and the
// backup scheduler hears of a write to any of them.
func (n *node) openStore(context.Context) error {
	n.barrier, n.changes = &store.Barrier{}, &store.Changes{}
	st, err := store.Open(filepath.Join(n.dir, store.FileName), store.Options{Usage: store.NewUsage(n.cfg.PackageQuota), Barrier: n.barrier, Changes: n.changes})
	if err != nil {
		return err
	}
	n.st = st
	return nil
}

func (n *node) closeStore(context.Context) error { return n.st.Close() }

// openDrives opens the packages' file drives, under the store's quota and
// barrier.
func (n *node) openDrives(context.Context) error {
	drives, err := store.OpenDrives(filepath.Join(n.dir, DrivesDir), n.st.Usage())
	if err != nil {
		return err
	}
	drives.UseBarrier(n.barrier)
	drives.UseChanges(n.changes)
	n.drives = drives
	return nil
}

func (n *node) closeDrives(context.Context) error { return n.drives.Close() }

// startHost starts the Wasm host, with its compilation cache in the data
// dir.
func (n *node) startHost(context.Context) error {
	host, err := wasm.NewHost(context.Background(), wasm.Config{
		CacheDir: filepath.Join(n.dir, CacheDir, "wazero"),
		Limits:   n.cfg.Limits,
		Logger:   n.log,
	})
	if err != nil {
		return err
	}
	n.host = host
	return nil
}

func (n *node) closeHost(ctx context.Context) error { return n.host.Close(ctx) }

// startKernel starts the kernel and the node's own processes, and gives
// the Wasm host the store as processes reach it.
func (n *node) startKernel(context.Context) error {
	k, err := kernel.New(kernel.Config{
		Keyring: n.key,
		State:   n.st,
		Table:   n.st,
		// Revocations outlive a restart (docs/capabilities.md).
		Revocations: revocations{n.st},
		Limits:      n.cfg.Limits,
		Logger:      n.log,
	})
	if err != nil {
		return err
	}
	n.host.SetStore(procstore.New(k, n.st, n.drives, n.log))
	if err := k.StartSystem(kernel.Spec{ID: HealthProcess, Process: kernel.ProcessFunc(echo)}); err != nil {
		return errors.Join(fmt.Errorf("%s: %w", HealthProcess, err), k.Close(context.Background()))
	}
	n.k = k
	return nil
}

// stopKernel stops every process; it runs before the host and the store
// close, so processes stop before their runtime and their data.
func (n *node) stopKernel(ctx context.Context) error { return n.k.Close(ctx) }

// restorePackages opens the install registry, starts again the processes
// of the installed packages, and installs the packages the config names.
func (n *node) restorePackages(context.Context) error {
	reg, err := install.OpenRegistry(filepath.Join(n.dir, PackagesDir), n.k, n.host, n.log)
	if err != nil {
		return fmt.Errorf("open the registry: %w", err)
	}
	reg.UseBarrier(n.barrier)
	reg.UseChanges(n.changes)
	n.reg = reg
	notify(n.log, "STATUS=Restoring processes")
	rep, err := reg.Restore()
	if err != nil {
		return fmt.Errorf("restore processes: %w", err)
	}
	n.restored = rep
	for _, id := range slices.Sorted(maps.Keys(rep.Failed)) {
		n.log.Error("process not restored; its record stays in the table", "process", id, "err", rep.Failed[id])
	}
	for _, p := range n.cfg.Install {
		if err := n.installAtStart(p); err != nil {
			return err
		}
	}
	return nil
}

// serveAPI serves the control API on the Unix socket and, as configured,
// on TCP, and metrics; it returns once the API answers on the socket.
func (n *node) serveAPI(ctx context.Context) error {
	started := time.Now()
	stopping := make(chan struct{})
	var once sync.Once
	n.stopTaps = func() { once.Do(func() { close(stopping) }) }
	n.srvs = &servers{log: n.log}
	n.bodies = newBodyBudget(n.cfg.API.MaxRequestBytesInFlight, n.log)
	opts := []metrics.Option{metrics.WithDrivers(n.drivers)}
	if n.net != nil {
		opts = append(opts, metrics.WithPeers(n.net))
	}
	n.met = metrics.New(n.k, opts...)
	n.backupMetrics()
	n.met.GaugeFunc("weft_api_request_bytes_in_flight", "Bytes of control API request bodies held (reserved) now.", nil,
		func() float64 { return float64(n.bodies.used.Load()) })
	n.met.GaugeFunc("weft_guest_memory_bytes", "Bytes of linear memory the Wasm instances hold against limits.guest_memory_total.", nil,
		func() float64 { return float64(n.host.GuestMemory().Total) })
	apiCfg := controlapi.Config{
		Kernel:       n.k,
		Packages:     n.reg,
		Store:        n.st,
		Drives:       n.drives,
		Drivers:      n.drivers,
		Backups:      n.backupsAPI(),
		Network:      n.networkAPI(),
		Version:      n.cfg.Version,
		Started:      started,
		Logger:       n.log,
		Stopping:     stopping,
		Interceptors: []connect.Interceptor{n.met.Interceptor()},
	}
	err := n.listen(ctx, apiCfg)
	if err != nil {
		// Nothing after this part will stop what did start.
		n.stopAPI(context.Background())
		return err
	}
	n.api.Started = started
	return nil
}

// listen starts the listeners serveAPI serves, filling n.api.
func (n *node) listen(ctx context.Context, apiCfg controlapi.Config) (err error) {
	listeners := 1 // the Unix socket; systemd may pass more, each bounded too
	if n.cfg.Listen != "" {
		listeners++
	}
	if n.cfg.MetricsListen != "" {
		listeners++
	}
	if err := checkOpenFiles(listeners, n.cfg.API.MaxConnections); err != nil {
		return err
	}
	if n.api.Socket, err = n.serveUnix(apiCfg, n.cfg.Socket); err != nil {
		return err
	}
	if n.cfg.Listen != "" {
		if n.api.Listen, err = n.serveTCP(apiCfg); err != nil {
			return err
		}
	}
	if n.cfg.MetricsListen != "" {
		if n.api.MetricsAddr, err = n.serveMetrics(n.met.Handler(), n.cfg.MetricsListen); err != nil {
			return err
		}
	}
	if err := selfCheck(ctx, n.api.Socket); err != nil {
		return fmt.Errorf("the control API on %s does not answer: %w", n.api.Socket, err)
	}
	return nil
}

// stopAPI ends the Tap streams, then shuts the listeners down: calls in
// flight finish, until the deadline. It runs before the kernel stops.
func (n *node) stopAPI(ctx context.Context) error {
	n.stopTaps()
	n.srvs.shutdown(ctx)
	return nil
}

// installAtStart installs the package at path (a directory or a zip) with
// every capability it requests approved, unless that version is already
// installed.
func (n *node) installAtStart(path string) error {
	zip, err := readPackage(path)
	if err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	pkg, already, err := n.reg.Install(zip, install.Approval{All: true})
	if err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	if already { // the registry logs a fresh install
		n.log.Info("package already installed", "package", pkg.ID.String(), "version", pkg.Version, "path", path)
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
		return fmt.Errorf("create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("data dir %s has mode %04o, which lets group or others write to it; run chmod go-w %s", dir, perm, dir)
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
