package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Restore writes snapshot snap's tree into dst, which must not exist or
// be an empty directory. Every blob is checked against its id after
// decryption; files get their modes and modification times.
func (r *Repo) Restore(ctx context.Context, snap ID, dst string) error {
	m, err := r.LoadSnapshot(ctx, snap)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	root, _ := ParseID(m.Tree) // checked by decodeManifest
	if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("restore: %w", err)
	}
	if ents, err := os.ReadDir(dst); err != nil || len(ents) > 0 {
		return fmt.Errorf("restore: %s is not an empty directory (%v)", dst, err)
	}
	if err := r.restoreDir(ctx, root, dst); err != nil {
		return fmt.Errorf("restore %v: %w", snap, err)
	}
	return nil
}

func (r *Repo) restoreDir(ctx context.Context, id ID, dir string) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(dir, n.Name) // names are checked by decodeTree
		mtime := time.Unix(0, n.MTimeNS)
		switch n.Type {
		case NodeFile:
			if err := r.restoreFile(ctx, n, p); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		case NodeDir:
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			sub, _ := ParseID(n.Subtree)
			if err := r.restoreDir(ctx, sub, p); err != nil {
				return err
			}
		case NodeSymlink:
			if err := os.Symlink(n.Target, p); err != nil {
				return err
			}
			continue
		}
		if err := os.Chmod(p, os.FileMode(n.Mode)); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) restoreFile(ctx context.Context, n Node, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var size uint64
	for _, c := range n.Content {
		id, _ := ParseID(c)
		data, err := r.LoadBlob(ctx, DataBlob, id)
		if err != nil {
			f.Close()
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		size += uint64(len(data))
	}
	if err := f.Close(); err != nil {
		return err
	}
	if size != n.Size {
		return fmt.Errorf("%w: its blobs hold %d bytes, its tree says %d", ErrCorrupt, size, n.Size)
	}
	return nil
}
