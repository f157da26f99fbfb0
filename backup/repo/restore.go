package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"
)

// RestoreOptions say how a restore reports its progress.
type RestoreOptions struct {
	// Progress, when set, is called on Restore's goroutine as it goes:
	// after a pack range at most every ProgressEvery (200 ms when zero),
	// and once at the end. It must not block long.
	Progress      func(RestoreProgress)
	ProgressEvery time.Duration
}

// RestoreProgress is what a restore has done so far.
type RestoreProgress struct {
	TotalBytes, RestoredBytes uint64
	TotalFiles, RestoredFiles uint64
}

// restoreWorkers is how many pack ranges a restore reads (and decrypts
// and writes) at once: a bucket serves several requests at once faster
// than one after another, and decryption uses more than one core. Each
// holds one range (at most a pack, about 4 MiB) and one blob's plaintext.
const restoreWorkers = 4

// Restore writes snapshot snap's tree into dst, which must not exist or
// be an empty directory. It walks the trees first and makes every
// directory, symlink and (empty) file; then it reads each pack that holds
// needed data once (one ranged read per run of needed blobs), checks each
// blob against its id after decryption, and writes it at every offset of
// every file that holds it; last, files and directories get their modes
// and modification times. Memory holds the plan (about a hundred bytes
// per chunk of the snapshot and per file) and, for each of
// restoreWorkers ranges read at once, the range and one blob's
// plaintext: never the snapshot's data.
func (r *Repo) Restore(ctx context.Context, snap ID, dst string, opts RestoreOptions) error {
	m, err := r.LoadSnapshot(ctx, snap)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// Another process may have pruned since the index was read.
	if err := r.refreshIndexes(ctx); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	root, _ := ParseID(m.Tree) // checked by decodeManifest
	if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("restore: %w", err)
	}
	if ents, err := os.ReadDir(dst); err != nil || len(ents) > 0 {
		return fmt.Errorf("restore: %s is not an empty directory (%v)", dst, err)
	}
	rs := &restorer{r: r, opts: opts, packs: map[ID][]need{}, last: time.Now()}
	if rs.opts.ProgressEvery <= 0 {
		rs.opts.ProgressEvery = 200 * time.Millisecond
	}
	if err := rs.walk(ctx, root, dst); err != nil {
		return fmt.Errorf("restore %v: %w", snap, err)
	}
	if err := rs.fill(ctx); err != nil {
		return fmt.Errorf("restore %v: %w", snap, err)
	}
	if err := rs.finish(); err != nil {
		return fmt.Errorf("restore %v: %w", snap, err)
	}
	if m.RootMTimeNS != 0 {
		if err := os.Chmod(dst, os.FileMode(m.RootMode)); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		t := time.Unix(0, m.RootMTimeNS)
		if err := os.Chtimes(dst, t, t); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	rs.report(true)
	return nil
}

// need is a blob a restore needs from a pack, and where it goes.
type need struct {
	loc  location
	id   ID
	file int   // in restorer.files
	at   int64 // offset in the file
}

// restoreFile is a file being restored.
type restoreFile struct {
	path    string
	size    uint64
	mode    os.FileMode
	mtime   time.Time
	pending int // blobs not yet written
}

// restoreDir is a directory whose mode and time are set at the end.
type restoreDir struct {
	path  string
	mode  os.FileMode
	mtime time.Time
}

type restorer struct {
	r     *Repo
	opts  RestoreOptions
	files []restoreFile
	dirs  []restoreDir // parents before children
	packs map[ID][]need
	last  time.Time

	mu        sync.Mutex // guards progress, createErr, and files' pending while filling
	progress  RestoreProgress
	createErr error

	toCreate chan string // to the creators (startCreators)
	creators sync.WaitGroup
}

func (rs *restorer) report(final bool) {
	if rs.opts.Progress == nil || !final && time.Since(rs.last) < rs.opts.ProgressEvery {
		return
	}
	rs.last = time.Now()
	rs.mu.Lock()
	p := rs.progress
	rs.mu.Unlock()
	rs.opts.Progress(p)
}

// walk makes the tree's directories, symlinks and empty files, and plans
// the reads that fill the files. It goes breadth first, reading the trees
// of up to maxTreeBatch directories at once, grouped by pack.
func (rs *restorer) walk(ctx context.Context, root ID, dst string) (err error) {
	type dirAt struct {
		tree ID
		path string
	}
	rs.startCreators()
	defer func() {
		if cerr := rs.stopCreators(); err == nil {
			err = cerr
		}
	}()
	queue := []dirAt{{root, dst}}
	for len(queue) > 0 {
		batch := queue[:min(len(queue), maxTreeBatch)]
		queue = queue[len(batch):]
		ids := make([]ID, len(batch))
		for i, d := range batch {
			ids[i] = d.tree
		}
		trees, err := rs.r.loadTrees(ctx, ids)
		if err != nil {
			return err
		}
		for _, d := range batch {
			for _, n := range trees[d.tree].Nodes {
				if err := ctx.Err(); err != nil {
					return err
				}
				p := filepath.Join(d.path, n.Name) // names are checked by decodeTree
				mtime := time.Unix(0, n.MTimeNS)
				switch n.Type {
				case NodeFile:
					if err := rs.planFile(n, p, mtime); err != nil {
						return fmt.Errorf("%s: %w", p, err)
					}
				case NodeDir:
					if err := os.Mkdir(p, 0o700); err != nil {
						return err
					}
					rs.dirs = append(rs.dirs, restoreDir{path: p, mode: os.FileMode(n.Mode & 0o777), mtime: mtime})
					sub, _ := ParseID(n.Subtree)
					queue = append(queue, dirAt{sub, p})
				case NodeSymlink:
					if err := os.Symlink(n.Target, p); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// planFile creates an empty file and plans the reads of its blobs.
func (rs *restorer) planFile(n Node, p string, mtime time.Time) error {
	if err := rs.create(p); err != nil {
		return err
	}
	fi := len(rs.files)
	var at uint64
	for _, c := range n.Content {
		id, _ := ParseID(c)
		l, ok := rs.r.lookup(DataBlob, id)
		if !ok {
			return rs.r.notIndexed(DataBlob, id)
		}
		rs.packs[l.pack] = append(rs.packs[l.pack], need{loc: l, id: id, file: fi, at: int64(at)})
		at += uint64(l.rawLen)
	}
	if at != n.Size {
		return fmt.Errorf("%w: its blobs hold %d bytes, its tree says %d", ErrCorrupt, at, n.Size)
	}
	rs.files = append(rs.files, restoreFile{path: p, size: n.Size, mode: os.FileMode(n.Mode & 0o777), mtime: mtime, pending: len(n.Content)})
	rs.progress.TotalBytes += n.Size
	rs.progress.TotalFiles++
	return nil
}

// Creating a file is the dearest step of a restore of small files (up to
// a millisecond of system time each on some machines, far more than
// writing its bytes), and the walk would otherwise do it alone, one file
// after another, while the other cores wait for the fill: creators
// create the walk's files on every core. A directory is made by the walk
// before the files in it are handed on, so they find it.
func (rs *restorer) startCreators() {
	rs.toCreate = make(chan string, 64)
	for range 2 * runtime.GOMAXPROCS(0) {
		rs.creators.Add(1)
		go func() {
			defer rs.creators.Done()
			for p := range rs.toCreate {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err == nil {
					err = f.Close()
				}
				if err != nil {
					rs.mu.Lock()
					if rs.createErr == nil {
						rs.createErr = err
					}
					rs.mu.Unlock()
				}
			}
		}()
	}
}

// create hands a file to the creators, or returns the first error one of
// them met.
func (rs *restorer) create(p string) error {
	rs.mu.Lock()
	err := rs.createErr
	rs.mu.Unlock()
	if err != nil {
		return err
	}
	rs.toCreate <- p
	return nil
}

// stopCreators waits for every file handed on to be created, and returns
// the first error.
func (rs *restorer) stopCreators() error {
	close(rs.toCreate)
	rs.creators.Wait()
	return rs.createErr
}

// rangeJob is a run of needed blobs of a pack, read at once.
type rangeJob struct {
	pack       ID
	start, end int64
	needs      []need // sorted by offset
}

// fill reads every pack with needed blobs once, in ranges, restoreWorkers
// ranges at a time, and writes each blob where it goes.
func (rs *restorer) fill(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan rangeJob)
	go func() {
		defer close(jobs)
		for _, pack := range sortedIDs(rs.packs) {
			needs := rs.packs[pack]
			slices.SortStableFunc(needs, func(a, b need) int { return cmp.Compare(a.loc.offset, b.loc.offset) })
			for len(needs) > 0 {
				j, start, end := nextSpan(len(needs), func(i int) location { return needs[i].loc })
				select {
				case jobs <- rangeJob{pack: pack, start: start, end: end, needs: needs[:j]}:
				case <-ctx.Done():
					return
				}
				needs = needs[j:]
			}
		}
	}()
	done := make(chan error)
	var wg sync.WaitGroup
	for range restoreWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				done <- rs.restoreRange(ctx, j)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	var first error
	for err := range done {
		if err != nil && first == nil {
			first = err
			cancel() // the others stop at their next read
		}
		if first == nil {
			rs.report(false)
		}
	}
	return first
}

// restoreRange reads a range of a pack and writes its blobs where they go;
// several run at once.
func (rs *restorer) restoreRange(ctx context.Context, j rangeJob) error {
	buf, err := rs.r.readPackRange(ctx, j.pack, j.start, j.end)
	if err != nil {
		return err
	}
	name := packName(j.pack)
	for i := 0; i < len(j.needs); {
		n := j.needs[i]
		k := i + 1
		for k < len(j.needs) && j.needs[k].loc == n.loc {
			k++ // the same blob, wanted elsewhere too
		}
		c := buf[int64(n.loc.offset)-j.start : int64(n.loc.offset)-j.start+int64(n.loc.length)]
		fbuf, pbuf := getBuf(len(c)), getBuf(int(n.loc.rawLen))
		plain, err := rs.r.mk.openBlobTo(fbuf, pbuf, DataBlob, n.id, int(n.loc.rawLen), c)
		if err != nil {
			return corrupt(rs.r.b, name, fmt.Errorf("data blob %v: %w", n.id, err))
		}
		for _, d := range j.needs[i:k] {
			if err := rs.writeAt(d.file, plain, d.at); err != nil {
				return err
			}
		}
		putBuf(fbuf)
		putBuf(pbuf)
		i = k
	}
	putBuf(buf)
	return nil
}

// writeAt writes a blob into a file at an offset, and finishes the file
// when it was the last blob it waited for. Files are opened for each
// write (cheap next to creating them), so that ranges written at once
// share nothing but the counts.
func (rs *restorer) writeAt(file int, p []byte, at int64) error {
	rf := &rs.files[file]
	f, err := os.OpenFile(rf.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(p, at)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rs.mu.Lock()
	rf.pending--
	last := rf.pending == 0
	rs.progress.RestoredBytes += uint64(len(p))
	rs.mu.Unlock()
	if !last {
		return nil
	}
	// No other write to it is left: finish it.
	if err := finishFile(rf); err != nil {
		return err
	}
	rs.mu.Lock()
	rs.progress.RestoredFiles++
	rs.mu.Unlock()
	return nil
}

func finishFile(f *restoreFile) error {
	if err := os.Chmod(f.path, f.mode); err != nil {
		return err
	}
	return os.Chtimes(f.path, f.mtime, f.mtime)
}

// finish gives empty files, then directories (deepest first), their
// modes and times.
func (rs *restorer) finish() error {
	for i := range rs.files {
		if f := &rs.files[i]; f.pending == 0 && f.size == 0 {
			if err := finishFile(f); err != nil {
				return err
			}
			rs.progress.RestoredFiles++
		}
	}
	for i := len(rs.dirs) - 1; i >= 0; i-- {
		d := rs.dirs[i]
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}
