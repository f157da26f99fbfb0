package backup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftos/weft/store"
)

// StagingDir is the directory of the data dir that holds a node's
// snapshot while a backup reads it, and a restore's work while it runs.
// It is outside the drives and the registry (a snapshot may not be inside
// what it links), on their file system (hard links), and under the data
// dir (the unit's ProtectSystem=strict lets weftd write nowhere else).
const StagingDir = ".backup-staging"

// Source is what a backup of a running node holds.
type Source struct {
	Store  *store.Store
	Drives *store.Drives
	// Dirs are directories hard-linked into the snapshot, by the name
	// they take there (the install registry: "packages"). Their files
	// must be replaced by rename, never written in place.
	Dirs map[string]string
	// Files are small files copied into the snapshot, by the name they
	// take there (the node key, the config file).
	Files map[string]string
	// Optional are small files copied like Files when they exist, and
	// left out when they do not (the network's known peers and aliases,
	// written once the node has met some). They must be replaced by
	// rename, never written in place.
	Optional map[string]string
}

// CleanStaging removes what a backup or restore left in dataDir's
// staging directory when it was interrupted. weftd calls it at start,
// before anything could be staging.
func CleanStaging(dataDir string) error {
	if err := os.RemoveAll(filepath.Join(dataDir, StagingDir)); err != nil {
		return fmt.Errorf("backup: clean the staging directory: %w", err)
	}
	return nil
}

// stage writes a point-in-time copy of the node into a new directory
// under staging, and returns it. The caller removes it.
func stage(src Source, staging string) (string, error) {
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	dir, err := os.MkdirTemp(staging, "run-")
	if err != nil {
		return "", fmt.Errorf("stage: %w", err)
	}
	into := filepath.Join(dir, "node")
	if err := store.Snapshot(src.Store, src.Drives, into, src.Dirs); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("stage: %w", err)
	}
	for name, path := range src.Files {
		if err := copyFile(path, filepath.Join(into, name)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("stage %s: %w", name, err)
		}
	}
	for name, path := range src.Optional {
		if err := copyFile(path, filepath.Join(into, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(dir)
			return "", fmt.Errorf("stage %s: %w", name, err)
		}
	}
	return into, nil
}

// copyFile copies a small file, keeping its mode.
func copyFile(from, to string) error {
	if strings.ContainsRune(filepath.Base(to), os.PathSeparator) {
		return errors.New("bad name")
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
