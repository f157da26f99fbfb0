// Package daemon wires one weft node and owns its lifecycle: it holds the
// node's data directory, loads the node key, opens the store, starts the
// kernel, restores the process table, and stops them all in order. It is
// the one place that knows every layer; nothing imports it but cmd/weftd.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/store"
)

// DefaultDataDir is the data directory of an installed weftd.
const DefaultDataDir = "/var/lib/weft"

// stopTimeout bounds how long Run waits for the kernel's processes to
// return once the node is told to stop.
const stopTimeout = 10 * time.Second

// Config configures one node. DefaultConfig fills every field.
type Config struct {
	// DataDir holds everything the node keeps: its key, its database and
	// its lock file. Run creates it (mode 0700) if it is missing and
	// refuses one that group or others may write to.
	DataDir string
	// LogLevel and LogFormat ("text" or "json") shape the logger that
	// NewLogger makes.
	LogLevel  slog.Level
	LogFormat string
	// Limits bound what processes may consume; zero fields take the
	// kernel's defaults.
	Limits kernel.Limits
	// Version is the weftd build, for the logs. It is set by the binary,
	// not read from a config file.
	Version string
}

// DefaultConfig returns the configuration of an installed weftd.
func DefaultConfig() Config {
	return Config{
		DataDir:   DefaultDataDir,
		LogLevel:  slog.LevelInfo,
		LogFormat: "text",
		Limits:    kernel.DefaultLimits(),
		Version:   "dev",
	}
}

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
	Started time.Time
}

// errNoRuntime is why every persisted process is left alone for now.
var errNoRuntime = errors.New("no process runtime is built into this weftd yet")

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
// should return promptly) once the node is up, and blocks until ctx is
// done; then it stops the node, giving its processes 10 s to return, and
// returns. It returns nil after a clean stop, and an error, naming the
// failed operation, if the node could not start or did not stop cleanly.
// A data dir held by another weftd fails at once with an *InUseError. If
// ctx ends while the node is starting, Run stops it without calling ready.
//
// Persisted processes that cannot be made again are logged as errors and
// left in the table untouched; the node runs without them. For now that is
// every one of them: there is no Wasm runtime yet.
func (d *Daemon) Run(ctx context.Context, ready func(Info)) error {
	if !d.used.CompareAndSwap(false, true) {
		return errors.New("weftd: Run called twice on one Daemon")
	}
	var info Info // set once the node is ready
	err := d.run(ctx, ready, &info)
	if err == nil && info.NodeID != "" {
		d.log.Info("weftd stopped", "node_id", info.NodeID, "data_dir", info.DataDir)
	}
	return err
}

// run is Run; it fills *info when the node is ready. Its deferred calls
// stop the kernel, close the store and release the lock, in that order.
func (d *Daemon) run(ctx context.Context, ready func(Info), info *Info) (err error) {
	if d.cfg.DataDir == "" {
		return errors.New("weftd: config: data dir is empty")
	}
	dir, err := filepath.Abs(d.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("weftd: data dir: %w", err)
	}
	d.log.Info("weftd starting", "version", d.cfg.Version, "data_dir", dir, "pid", os.Getpid())

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

	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		return fmt.Errorf("weftd: open store: %w", err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: close store: %w", cerr))
		}
	}()

	k, err := kernel.New(kernel.Config{
		Keyring: key,
		State:   st,
		Table:   st,
		Limits:  d.cfg.Limits,
		Logger:  d.log,
	})
	if err != nil {
		return fmt.Errorf("weftd: start kernel: %w", err)
	}
	// Registered after the store's, so it runs first: processes stop
	// before their store closes.
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if cerr := k.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("weftd: stop kernel: %w", cerr))
		}
	}()

	rep, err := k.Restore(func(kernel.ProcessId, []byte) (kernel.Process, error) {
		return nil, errNoRuntime
	})
	if err != nil {
		return fmt.Errorf("weftd: restore processes: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(rep.Failed)) {
		d.log.Error("process not restored; its record stays in the table", "process", id, "err", rep.Failed[id])
	}

	if ctx.Err() != nil {
		// Told to stop while starting: never claim to be ready.
		return nil
	}
	*info = Info{NodeID: key.NodeID(), DataDir: dir, Started: time.Now()}
	d.log.Info("node ready", "node_id", info.NodeID, "data_dir", dir,
		"processes_restored", len(rep.Started), "processes_not_restored", len(rep.Failed))
	if ready != nil {
		ready(*info)
	}

	<-ctx.Done()
	d.log.Info("weftd stopping", "reason", context.Cause(ctx))
	return nil
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
