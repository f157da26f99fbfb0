package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/weftos/weft/backup/repo"
	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/internal/dirsync"
	"github.com/weftos/weft/store"
)

// What a snapshot of a node holds at its root, besides the Dirs of its
// Source ("packages"): the database, the drives, the node key and the
// config file weftd read.
const (
	SnapshotConfig = "weftd.toml"
)

// RestoreMarker is the file a restore leaves in the data dir while it
// moves the restored data in. weftd refuses a data dir that holds it: the
// restore was interrupted and the data dir is not whole.
const RestoreMarker = "restore-incomplete"

// RestoreConfig says what to restore and where.
type RestoreConfig struct {
	Target Target
	Key    *Key
	// Snapshot is a snapshot id, a unique prefix of one (at least 8 hex
	// digits), or "latest" (the default).
	Snapshot string
	// DataDir receives the node. It must hold nothing but the names in
	// Keep (the data dir's lock file, taken by the caller).
	DataDir string
	Keep    []string
	// Names are the names the snapshot's root holds that go into the data
	// dir as they are; a restore refuses a snapshot without each of
	// Required.
	Names, Required []string
	// ConfigOut, when set, receives the config file the snapshot holds
	// (mode 0640), for the operator to compare with theirs.
	ConfigOut string
	Progress  func(repo.RestoreProgress)
}

// RestoreResult is what a restore put in place.
type RestoreResult struct {
	Snapshot repo.SnapshotInfo
	NodeID   string
}

// Restore restores a node from a snapshot into an empty data dir. It
// stages everything inside the data dir, checks it all (every blob
// against its keyed hash, the node key against the snapshot's node id,
// the database by opening it), and only then moves it into place, with
// RestoreMarker present while it moves: a failed restore leaves the data
// dir as it found it; one killed while it stages leaves only its staging
// directory (which weftd and the next restore remove); one killed while it
// moves (a few renames) leaves the marker, which weftd refuses to start
// on. The data dir ends 0700 and the node key 0600; run
// as root, everything restored takes the data dir's owner.
func Restore(ctx context.Context, c RestoreConfig) (*RestoreResult, error) {
	fail := func(err error) (*RestoreResult, error) { return nil, fmt.Errorf("restore: %w", err) }
	if err := checkEmpty(c.DataDir, c.Keep); err != nil {
		return fail(err)
	}
	if err := os.Chmod(c.DataDir, 0o700); err != nil {
		return fail(err)
	}
	r, err := repo.Open(ctx, c.Target.Backend, c.Key.Identities()...)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", c.Target.Name, err))
	}
	snap, err := findSnapshot(ctx, r, c.Snapshot)
	if err != nil {
		return fail(err)
	}
	staging := filepath.Join(c.DataDir, StagingDir)
	if err := os.RemoveAll(staging); err != nil { // an interrupted restore's
		return fail(err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(staging)
	into := filepath.Join(staging, "node")
	if err := r.Restore(ctx, snap.ID, into, repo.RestoreOptions{Progress: c.Progress}); err != nil {
		return fail(err)
	}
	if err := checkRestored(into, snap.Manifest, c.Required); err != nil {
		return fail(fmt.Errorf("snapshot %s: %w", snap.ID, err))
	}
	if c.ConfigOut != "" {
		if err := copyConfig(filepath.Join(into, SnapshotConfig), c.ConfigOut); err != nil {
			return fail(err)
		}
	}
	if err := OwnLike(into, c.DataDir); err != nil {
		return fail(err)
	}
	if err := moveIn(into, c.DataDir, c.Names); err != nil {
		return fail(err)
	}
	return &RestoreResult{Snapshot: snap, NodeID: snap.Manifest.NodeID}, nil
}

// checkEmpty refuses a data dir that holds anything but keep.
func checkEmpty(dir string, keep []string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !slices.Contains(keep, e.Name()) {
			return fmt.Errorf("data dir %s is not empty (it holds %s): a restore goes only into an empty one", dir, e.Name())
		}
	}
	return nil
}

// findSnapshot resolves "latest", an id, or a unique prefix of one.
func findSnapshot(ctx context.Context, r *repo.Repo, want string) (repo.SnapshotInfo, error) {
	snaps, err := r.SnapshotList(ctx) // newest first
	if err != nil {
		return repo.SnapshotInfo{}, err
	}
	return repo.FindSnapshot(snaps, want)
}

// checkRestored checks a restored node before it is moved into place.
func checkRestored(dir string, m *repo.Manifest, required []string) error {
	for _, n := range required {
		if _, err := os.Lstat(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("it holds no %s: not a snapshot of a node", n)
		}
	}
	if err := os.Chmod(filepath.Join(dir, identity.KeyFile), 0o600); err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	key, err := identity.Load(dir)
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	if key.NodeID() != m.NodeID {
		return fmt.Errorf("its node key is node %s's, its manifest says %s", key.NodeID(), m.NodeID)
	}
	st, err := store.Open(filepath.Join(dir, store.FileName), store.Options{})
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if _, err := st.Processes(); err != nil {
		st.Close()
		return fmt.Errorf("database: %w", err)
	}
	return st.Close()
}

// moveIn renames each of names from dir into dataDir, with RestoreMarker
// there while it does.
func moveIn(dir, dataDir string, names []string) error {
	marker := filepath.Join(dataDir, RestoreMarker)
	if err := os.WriteFile(marker, []byte("weftd restore was moving a snapshot into this data dir and did not finish: empty the directory and restore again\n"), 0o600); err != nil {
		return err
	}
	if err := dirsync.Sync(dataDir); err != nil {
		return err
	}
	for _, n := range names {
		from := filepath.Join(dir, n)
		if _, err := os.Lstat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(from, filepath.Join(dataDir, n)); err != nil {
			return err
		}
	}
	if err := dirsync.Sync(dataDir); err != nil {
		return err
	}
	if err := os.Remove(marker); err != nil {
		return err
	}
	return dirsync.Sync(dataDir)
}

// copyConfig writes the snapshot's config file to out, refusing to
// replace a file.
func copyConfig(from, out string) error {
	data, err := os.ReadFile(from)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("the snapshot holds no config file (the node ran on defaults)")
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("config out: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// OwnLike is the one rule for files a restore makes as root: everything
// under path (a file or a directory) gets the owner of like, the data
// dir, when that is not root (weftd's user, who must be able to open
// them). Run as anyone else it does nothing: what it made is its own.
func OwnLike(path, like string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(like)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	return filepath.WalkDir(path, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}
