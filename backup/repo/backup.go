package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/restic/chunker"
)

// BackupOptions say what a snapshot's manifest records, and how to pack.
type BackupOptions struct {
	Time        time.Time // zero: now
	NodeID      string
	WeftVersion string
	Hostname    string
	Tags        []string
	PackSize    int // 0: DefaultPackSize
}

// BackupResult is what a backup stored.
type BackupResult struct {
	Snapshot ID
	Manifest *Manifest
	Stats    WriteStats
	Skipped  []string // paths neither file, dir nor symlink (sockets, devices)
}

// Backup stores the tree under dir as a new snapshot. It holds the
// repository's lock while it runs. Packs go up as they fill, the index
// after them, the manifest last: an interrupted backup leaves a
// repository that opens and checks, and whose next backup uploads only
// what is missing.
func (r *Repo) Backup(ctx context.Context, dir string, opts BackupOptions) (*BackupResult, error) {
	l, err := r.Lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	res, err := r.backup(ctx, dir, opts, l)
	if uerr := l.Unlock(context.WithoutCancel(ctx)); err == nil && uerr != nil {
		return nil, fmt.Errorf("backup: %w", uerr)
	}
	return res, err
}

func (r *Repo) backup(ctx context.Context, dir string, opts BackupOptions, l *Lock) (*BackupResult, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("backup: %s is not a directory", dir)
	}
	b := &backuper{r: r, w: r.NewWriter(opts.PackSize), lock: l,
		chunk: make([]byte, r.params.MaxSize),
		m:     &Manifest{Version: Version, Time: opts.Time, NodeID: opts.NodeID, WeftVersion: opts.WeftVersion, Hostname: opts.Hostname, Tags: opts.Tags}}
	if b.m.Time.IsZero() {
		b.m.Time = time.Now()
	}
	b.m.Time = b.m.Time.UTC()
	root, err := b.dir(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	if err := b.w.Flush(ctx); err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	b.m.Tree = root.String()
	b.m.AddedBytes = b.w.Stats.PackBytes
	id, err := r.WriteSnapshot(ctx, b.m)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dir, err)
	}
	return &BackupResult{Snapshot: id, Manifest: b.m, Stats: b.w.Stats, Skipped: b.skipped}, nil
}

type backuper struct {
	r       *Repo
	w       *Writer
	lock    *Lock
	chunker *chunker.Chunker
	chunk   []byte
	m       *Manifest
	skipped []string
}

// dir stores a directory's tree, its subdirectories' first, and returns
// its id.
func (b *backuper) dir(ctx context.Context, path string) (ID, error) {
	ents, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return ID{}, err
	}
	t := &Tree{Nodes: []Node{}}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return ID{}, err
		}
		p := filepath.Join(path, e.Name())
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the listing
		}
		if err != nil {
			return ID{}, err
		}
		n := Node{Name: e.Name(), Mode: uint32(fi.Mode().Perm()), MTimeNS: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode().IsRegular():
			n.Type = NodeFile
			if n.Content, n.Size, err = b.file(ctx, p); err != nil {
				return ID{}, fmt.Errorf("%s: %w", p, err)
			}
			b.m.Files++
			b.m.Bytes += n.Size
		case fi.IsDir():
			n.Type = NodeDir
			id, err := b.dir(ctx, p)
			if err != nil {
				return ID{}, err
			}
			n.Subtree = id.String()
			b.m.Dirs++
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Type = NodeSymlink
			if n.Target, err = os.Readlink(p); err != nil {
				return ID{}, err
			}
			n.Mode = 0o777
			b.m.Symlinks++
		default:
			b.skipped = append(b.skipped, p)
			continue
		}
		if err := checkName(n.Name); err != nil {
			b.skipped = append(b.skipped, p)
			continue
		}
		t.Nodes = append(t.Nodes, n)
	}
	if err := b.lock.refreshIfDue(ctx); err != nil {
		return ID{}, err
	}
	return b.w.Add(ctx, TreeBlob, encodeTree(t))
}

// file stores a file's chunks and returns their ids and its size.
func (b *backuper) file(ctx context.Context, path string) ([]string, uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	p := b.r.params
	if b.chunker == nil {
		b.chunker = chunker.NewWithBoundaries(f, chunker.Pol(p.Polynomial), uint(p.MinSize), uint(p.MaxSize))
	} else {
		b.chunker.ResetWithBoundaries(f, chunker.Pol(p.Polynomial), uint(p.MinSize), uint(p.MaxSize))
	}
	b.chunker.SetAverageBits(p.AverageBits)
	ids := []string{}
	var size uint64
	for {
		c, err := b.chunker.Next(b.chunk)
		if err == io.EOF {
			return ids, size, nil
		}
		if err != nil {
			return nil, 0, err
		}
		id, err := b.w.Add(ctx, DataBlob, c.Data)
		if err != nil {
			return nil, 0, err
		}
		ids = append(ids, id.String())
		size += uint64(c.Length)
		if err := b.lock.refreshIfDue(ctx); err != nil {
			return nil, 0, err
		}
	}
}
