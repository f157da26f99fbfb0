package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/weftos/weft/backup"
	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/controlapi"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/p2p"
	"github.com/weftos/weft/store"
)

// DefaultBackupKeyFile is where the Debian package makes the key that
// opens the node's backup repositories.
const DefaultBackupKeyFile = "/etc/weft/backup.key"

// BackupKeyEnv is the environment variable that holds the backup key
// material (an age identity or a passphrase) when key_file is empty.
const BackupKeyEnv = "WEFT_BACKUP_KEY"

// minAfterWrite bounds after_write from below: a run per write burst, not
// per write.
const minAfterWrite = time.Second

// BackupConfig is weftd.toml's [backup] table (documented there). It
// holds no secret: the key and the targets' credentials are in files
// (0640 root:weft) or the environment.
type BackupConfig struct {
	KeyFile    string                `toml:"key_file"`
	Interval   time.Duration         `toml:"interval"`
	AfterWrite time.Duration         `toml:"after_write"`
	Targets    []backup.TargetConfig `toml:"targets"`
}

// DefaultBackupConfig is an installed node's: no target, so no backups.
func DefaultBackupConfig() BackupConfig {
	return BackupConfig{KeyFile: DefaultBackupKeyFile}
}

func (c BackupConfig) validate() error {
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if err := t.Check(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if seen[t.Name] {
			return fmt.Errorf("config: backup target %s is declared twice", t.Name)
		}
		seen[t.Name] = true
	}
	if c.Interval < 0 {
		return fmt.Errorf("config: backup.interval %v: want a positive duration, or 0 for none", c.Interval)
	}
	if c.AfterWrite != 0 && c.AfterWrite < minAfterWrite {
		return fmt.Errorf("config: backup.after_write %v: want at least %v, or 0 for none", c.AfterWrite, minAfterWrite)
	}
	return nil
}

// loadKey reads the backup key from key_file, or from BackupKeyEnv when
// key_file is empty.
func (c BackupConfig) loadKey(getenv func(string) string) (*backup.Key, error) {
	if c.KeyFile != "" {
		k, err := backup.LoadKey(c.KeyFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("backup key file %s does not exist: make one with `weftd backup-key %s` (as root; then chown root:weft and chmod 0640), or set key_file", c.KeyFile, c.KeyFile)
		}
		return k, err
	}
	v := getenv(BackupKeyEnv)
	if v == "" {
		return nil, fmt.Errorf("backup: no key: set [backup] key_file, or %s in weftd's environment", BackupKeyEnv)
	}
	return backup.ParseKey([]byte(v))
}

// startBackups removes what an interrupted backup left staged, and, when
// targets are declared, starts the backup engine and its schedule. A
// target that is down does not stop the node: its runs fail, and say so.
func (n *node) startBackups(context.Context) error {
	if err := backup.CleanStaging(n.dir); err != nil {
		return err
	}
	c := n.cfg.Backup
	if len(c.Targets) == 0 {
		return nil
	}
	key, err := c.loadKey(os.Getenv)
	if err != nil {
		return err
	}
	var ts []backup.Target
	for _, tc := range c.Targets {
		t, err := backup.OpenTarget(tc, os.Getenv, nil)
		if err != nil {
			return err
		}
		ts = append(ts, t)
	}
	files := map[string]string{identity.KeyFile: filepath.Join(n.dir, identity.KeyFile)}
	if n.cfg.ConfigFile != "" {
		files[backup.SnapshotConfig] = n.cfg.ConfigFile
	}
	host, _ := os.Hostname()
	e, err := backup.New(backup.Config{
		Targets: ts,
		Key:     key,
		Source: backup.Source{Store: n.st, Drives: n.drives,
			Dirs:  map[string]string{PackagesDir: filepath.Join(n.dir, PackagesDir)},
			Files: files,
			// What the node has learnt of the network: the peers it knows
			// and the aliases its operator gave them.
			Optional: map[string]string{
				p2p.PeersFile:   filepath.Join(n.dir, p2p.PeersFile),
				p2p.AliasesFile: filepath.Join(n.dir, p2p.AliasesFile),
			}},
		DataDir:    n.dir,
		NodeID:     n.key.NodeID(),
		Version:    n.cfg.Version,
		Hostname:   host,
		Interval:   c.Interval,
		AfterWrite: c.AfterWrite,
		Changes:    n.changes,
		Logger:     n.log.With("part", "backup"),
	})
	if err != nil {
		return err
	}
	e.Start()
	n.backups = e
	n.log.Info("backups configured", "targets", e.Targets(), "key", key.Kind(), "interval", c.Interval, "after_write", c.AfterWrite)
	return nil
}

// backupsAPI is the engine as the control API takes it: a nil interface
// when no target is declared.
func (n *node) backupsAPI() controlapi.Backups {
	if n.backups == nil {
		return nil
	}
	return n.backups
}

// backupMetrics adds the backups' metrics, per target, read at scrape
// time.
func (n *node) backupMetrics() {
	if n.backups == nil {
		return
	}
	for i, name := range n.backups.Targets() {
		l := map[string]string{"target": name}
		get := func(f func(backup.TargetStatus) float64) func() float64 {
			return func() float64 { return f(n.backups.Status().Targets[i]) }
		}
		n.met.CounterFunc("weft_backup_runs_total", "Backup runs that included the target.", l,
			get(func(s backup.TargetStatus) float64 { return float64(s.Runs) }))
		n.met.CounterFunc("weft_backup_failures_total", "Backup runs that failed on the target.", l,
			get(func(s backup.TargetStatus) float64 { return float64(s.Failures) }))
		n.met.CounterFunc("weft_backup_uploaded_bytes_total", "Bytes of packs and indexes backup runs put to the target.", l,
			get(func(s backup.TargetStatus) float64 { return float64(s.Uploaded) }))
		n.met.GaugeFunc("weft_backup_last_success_timestamp_seconds", "When the last backup run that succeeded on the target began (Unix time); 0 if none since start.", l,
			get(func(s backup.TargetStatus) float64 {
				if s.LastSuccess.IsZero() {
					return 0
				}
				return float64(s.LastSuccess.UnixNano()) / 1e9
			}))
		n.met.GaugeFunc("weft_backup_last_run_failed", "1 when the last backup run on the target failed, else 0.", l,
			get(func(s backup.TargetStatus) float64 { return b2f(s.LastError != "") }))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// stopBackups stops the schedule, canceling a scheduled run.
func (n *node) stopBackups(context.Context) error {
	if n.backups != nil {
		n.backups.Close()
	}
	return nil
}

// restoredNames are the names a node's snapshot holds that a restore puts
// into the data dir: what startBackups's Source stages, but the config.
var restoredNames = append(slices.Clip(requiredNames), p2p.PeersFile, p2p.AliasesFile)

// requiredNames are the restoredNames a snapshot of a node must hold: all
// but what a node that never met a peer lacks.
var requiredNames = []string{store.FileName, store.SnapshotDrivesDir, PackagesDir, identity.KeyFile}

// RestoreOptions say what weftd restore restores and where.
type RestoreOptions struct {
	Target    backup.Target
	Key       *backup.Key
	Snapshot  string
	DataDir   string
	ConfigOut string
	Progress  func(done, total uint64)
}

// Restore restores a node from a backup into an empty data dir, offline
// (the node is lost: there is no weftd to ask). It makes the data dir
// (0700) if it is missing, locks it as weftd does, so that no weftd starts
// on it meanwhile, and leaves it either whole or as it was (see
// backup.Restore).
func Restore(ctx context.Context, o RestoreOptions) (*backup.RestoreResult, error) {
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("restore: %w", err)
	}
	// What an interrupted restore leaves (the lock file, the staging
	// directory) does not make a data dir non-empty: backup.Restore removes
	// the staging directory before it stages again.
	keep := []string{LockFile, backup.StagingDir}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, e := range ents {
		if !slices.Contains(keep, e.Name()) {
			return nil, fmt.Errorf("restore: data dir %s is not empty (it holds %s): a restore goes only into an empty one", dir, e.Name())
		}
	}
	lock, err := lockDataDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	var progress func(repo.RestoreProgress)
	if o.Progress != nil {
		progress = func(p repo.RestoreProgress) { o.Progress(p.RestoredBytes, p.TotalBytes) }
	}
	res, err := backup.Restore(ctx, backup.RestoreConfig{
		Target: o.Target, Key: o.Key, Snapshot: o.Snapshot,
		DataDir: dir, Keep: keep,
		Names: restoredNames, Required: requiredNames,
		ConfigOut: o.ConfigOut, Progress: progress,
	})
	if err != nil {
		return nil, err
	}
	// Run as root into weft's data dir, the lock file too must be weft's,
	// or the weftd started next could not open it.
	if err := backup.OwnLike(filepath.Join(dir, LockFile), dir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return res, nil
}
