package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
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
	// Progress, when set, is called on the backup's goroutine as it goes:
	// after a file or a chunk (and so after each pack upload), at most
	// every ProgressEvery (200 ms when zero), and once at the end. It must
	// not block long.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is what a backup has done so far.
//
// The totals come from a walk that only stats, before the run; a file
// that grows meanwhile raises them to what has been read, and a run that
// reads the whole tree ends with them equal to what it read. Every other
// count only grows.
type Progress struct {
	TotalBytes   uint64 // of the files under dir, from a stat-only walk before the run
	TotalFiles   uint64
	ScannedBytes uint64 // of the files read so far
	ScannedFiles uint64
	Targets      []TargetProgress // one per repository, in the order given
}

// TargetProgress is a backup's progress on one repository.
type TargetProgress struct {
	NewBytes      uint64 // plaintext of the blobs the repository lacked
	UploadedBytes uint64 // of the packs and indexes put to it
	Failed        error  // set once it failed; it gets no more work
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
	res, errs := BackupMany(ctx, dir, []*Repo{r}, opts)
	return res[0], errs[0]
}

// BackupMany stores the tree under dir as one new snapshot in each of
// repos, which must share one master key and one chunking (Init them with
// the same MasterKey and Params; others are refused before anything
// starts). Each file is read and chunked once, each new blob sealed once
// (MasterKey.Seal) and added to every repository that lacks it
// (Writer.AddSealed). Each repository is locked for the run, and its index
// brought up to date once locked (another process may have written or
// pruned since it was opened); one that fails (its lock, an upload, its
// manifest) is dropped with its error and the others go on. It returns
// one result and one error per repository, in order, exactly one of the
// two nil; a canceled ctx fails every repository still running.
//
// One repository slower than the others slows them all: each Writer
// holds at most a few packs waiting for their upload, so memory stays
// bounded.
func BackupMany(ctx context.Context, dir string, repos []*Repo, opts BackupOptions) ([]*BackupResult, []error) {
	res, errs := make([]*BackupResult, len(repos)), make([]error, len(repos))
	failAll := func(err error) ([]*BackupResult, []error) {
		for i := range errs {
			errs[i] = fmt.Errorf("backup: %w", err)
		}
		return res, errs
	}
	if len(repos) == 0 {
		return res, errs
	}
	for _, r := range repos[1:] {
		if !sameSealing(repos[0], r) {
			return failAll(fmt.Errorf("%s and %s do not share a master key and chunking", repos[0].b, r.b))
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return failAll(err)
	}
	if !fi.IsDir() {
		return failAll(fmt.Errorf("%s is not a directory", dir))
	}
	b := &backuper{mk: repos[0].mk, params: repos[0].params, opts: opts,
		chunk: make([]byte, repos[0].params.MaxSize), last: time.Now(),
		m: Manifest{Version: Version, Time: opts.Time, NodeID: opts.NodeID, WeftVersion: opts.WeftVersion, Hostname: opts.Hostname, Tags: opts.Tags,
			RootMode: uint32(fi.Mode().Perm()), RootMTimeNS: fi.ModTime().UnixNano()}}
	if b.m.Time.IsZero() {
		b.m.Time = time.Now()
	}
	b.m.Time = b.m.Time.UTC()
	if b.opts.ProgressEvery <= 0 {
		b.opts.ProgressEvery = 200 * time.Millisecond
	}
	b.progress.Targets = make([]TargetProgress, len(repos))
	b.progress.TotalBytes, b.progress.TotalFiles = measure(dir)
	for i, r := range repos {
		t := &target{i: i, r: r, w: r.NewWriter(opts.PackSize)}
		t.lock, err = r.Lock(ctx)
		if err == nil {
			if err = r.refreshIndexes(ctx); err != nil {
				t.lock.Unlock(context.WithoutCancel(ctx))
			}
		}
		if err != nil {
			errs[i] = fmt.Errorf("backup: %w", err)
			b.progress.Targets[i].Failed = errs[i]
			continue
		}
		b.targets = append(b.targets, t)
	}
	defer func() {
		for _, t := range b.targets {
			if t.err != nil {
				t.w.Abandon()
			}
			// A lock that cannot be removed expires; a snapshot written
			// is not undone by it, so the run's outcome stands.
			t.lock.Unlock(context.WithoutCancel(ctx))
		}
	}()
	stopSealers := b.startSealers(repos)
	root, err := b.dir(ctx, dir)
	stopSealers()
	if err != nil {
		b.failLive(fmt.Errorf("backup %s: %w", dir, err))
	} else {
		// The tree is read: the totals are what was read, whatever the
		// walk before found.
		b.progress.TotalBytes, b.progress.TotalFiles = b.progress.ScannedBytes, b.progress.ScannedFiles
	}
	for _, t := range b.live() {
		if err := t.w.Flush(ctx); err != nil {
			t.fail(b, fmt.Errorf("backup %s: %w", dir, err))
			continue
		}
		// Only a prune deletes indexes, and it locks: one gone means our
		// lock expired (a request stalled past LockTTL) and a prune ran,
		// which may have deleted blobs this run found in the index and
		// did not store again.
		if gone, err := t.r.indexesGone(ctx); err != nil || gone {
			if err == nil {
				err = errPrunedDuring
			}
			t.fail(b, fmt.Errorf("backup %s: %w", dir, err))
			continue
		}
		m := b.m
		m.Tree = root.String()
		m.AddedBytes = t.w.Stats.PackBytes
		id, err := t.r.WriteSnapshot(ctx, &m)
		if err != nil {
			t.fail(b, fmt.Errorf("backup %s: %w", dir, err))
			continue
		}
		res[t.i] = &BackupResult{Snapshot: id, Manifest: &m, Stats: t.w.Stats, Skipped: b.skipped}
	}
	b.report(true)
	for _, t := range b.targets {
		if t.err != nil {
			res[t.i], errs[t.i] = nil, t.err
		}
	}
	return res, errs
}

// sameSealing reports whether two repositories seal alike: one master
// key, one chunking.
func sameSealing(a, b *Repo) bool {
	return a.mk.enc == b.mk.enc && a.mk.mac == b.mk.mac && a.params == b.params
}

// measure returns the bytes and the number of the regular files under
// dir, by a walk that only stats.
func measure(dir string) (size, files uint64) {
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				size += uint64(fi.Size())
				files++
			}
		}
		return nil
	})
	return size, files
}

// target is one repository of a backup.
type target struct {
	i    int // in BackupMany's repos
	r    *Repo
	w    *Writer
	lock *Lock
	err  error // set once it failed
}

func (t *target) fail(b *backuper, err error) {
	if t.err == nil {
		t.err = err
		b.progress.Targets[t.i].Failed = err
	}
}

type backuper struct {
	mk       *MasterKey
	params   Params
	opts     BackupOptions
	targets  []*target
	chunker  *chunker.Chunker
	chunk    []byte
	m        Manifest
	skipped  []string
	progress Progress
	last     time.Time // of the last progress report

	jobs     chan *chunkJob // to the sealers
	queue    []*chunkJob    // chunks in flight, oldest first
	inFlight int            // their bytes
	depth    int            // bytes in flight at most, before the oldest is waited for
}

// live returns the targets that have not failed.
func (b *backuper) live() []*target {
	var ts []*target
	for _, t := range b.targets {
		if t.err == nil {
			ts = append(ts, t)
		}
	}
	return ts
}

func (b *backuper) failLive(err error) {
	for _, t := range b.live() {
		t.fail(b, err)
	}
}

// report calls the progress function, if it is due or final.
func (b *backuper) report(final bool) {
	if b.opts.Progress == nil || !final && time.Since(b.last) < b.opts.ProgressEvery {
		return
	}
	b.last = time.Now()
	for _, t := range b.targets {
		b.progress.Targets[t.i].UploadedBytes = t.w.Uploaded()
	}
	b.progress.TotalBytes = max(b.progress.TotalBytes, b.progress.ScannedBytes)
	b.progress.TotalFiles = max(b.progress.TotalFiles, b.progress.ScannedFiles)
	p := b.progress
	p.Targets = append([]TargetProgress(nil), b.progress.Targets...)
	b.opts.Progress(p)
}

// add adds a blob to every live target that lacks it, sealing it once, and
// returns its id. It fails only when no target is left.
func (b *backuper) add(ctx context.Context, t BlobType, p []byte) (ID, error) {
	return b.addPrepared(ctx, t, p, b.mk.BlobID(p), nil)
}

// addPrepared is add for a blob whose id is known, and which may be sealed
// already (sb; nil: sealed here if a target lacks it).
func (b *backuper) addPrepared(ctx context.Context, t BlobType, p []byte, id ID, sb *SealedBlob) (ID, error) {
	live := 0
	for _, tg := range b.targets {
		if tg.err != nil {
			continue
		}
		if tg.w.has(t, id) {
			tg.w.Stats.BlobsReused++
			live++
			continue
		}
		if sb == nil {
			s, err := b.mk.sealBlob(t, id, p)
			if err != nil {
				return ID{}, err
			}
			sb = &s
		}
		if err := tg.w.AddSealed(ctx, *sb); err != nil {
			tg.fail(b, err)
			continue
		}
		b.progress.Targets[tg.i].NewBytes += uint64(len(p))
		live++
	}
	if live == 0 {
		return ID{}, errNoTarget
	}
	return id, ctx.Err()
}

// errPrunedDuring fails a backup to a repository pruned while it ran.
var errPrunedDuring = errors.New("the repository was pruned while the backup ran (its lock had expired): its snapshot is not written; run it again")

// errNoTarget ends a backup whose every repository failed; each has its
// own error.
var errNoTarget = errors.New("every repository failed")

// refresh refreshes the live targets' locks when due.
func (b *backuper) refresh(ctx context.Context) error {
	live := 0
	for _, t := range b.live() {
		if err := t.lock.refreshIfDue(ctx); err != nil {
			t.fail(b, err)
			continue
		}
		live++
	}
	if live == 0 {
		return errNoTarget
	}
	return nil
}

// dir stores a directory's tree, its subdirectories' first, and returns
// its id.
func (b *backuper) dir(ctx context.Context, path string) (ID, error) {
	ents, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return ID{}, err
	}
	var nodes []*Node // their files' chunks may be in flight until flush
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
		n := &Node{Name: e.Name(), Mode: uint32(fi.Mode().Perm()), MTimeNS: fi.ModTime().UnixNano()}
		if err := checkName(n.Name); err != nil {
			b.skipped = append(b.skipped, p)
			continue
		}
		switch {
		case fi.Mode().IsRegular():
			n.Type = NodeFile
			if err := b.file(ctx, p, n); err != nil {
				return ID{}, fmt.Errorf("%s: %w", p, err)
			}
			b.m.Files++
			b.progress.ScannedFiles++
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
		nodes = append(nodes, n)
	}
	if err := b.flush(ctx); err != nil {
		return ID{}, fmt.Errorf("%s: %w", path, err)
	}
	t := &Tree{Nodes: make([]Node, 0, len(nodes))}
	for _, n := range nodes {
		t.Nodes = append(t.Nodes, *n)
	}
	if err := b.refresh(ctx); err != nil {
		return ID{}, err
	}
	return b.add(ctx, TreeBlob, encodeTree(t))
}

// A chunkJob is a chunk a sealer hashes, and seals unless every
// repository's index has it.
type chunkJob struct {
	data []byte
	node *Node // the file it is a chunk of
	id   ID
	sb   *SealedBlob // nil when every repository had it
	err  error
	done chan struct{}
}

// maxChunksInFlight bounds the chunks in flight when they are small (each
// holds two buffers of at least 64 KiB).
const maxChunksInFlight = 64

// startSealers starts the goroutines that hash and seal chunks (one per
// CPU), so that a backup uses every core for the work per byte while it
// reads and uploads. stop ends them.
func (b *backuper) startSealers(repos []*Repo) (stop func()) {
	b.jobs = make(chan *chunkJob)
	n := max(runtime.GOMAXPROCS(0), 1)
	// Room for every sealer to have a chunk of the mean size and the next
	// waiting, and for the reader to go on meanwhile: many chunks when
	// they are small files, a few when they are of a large one.
	b.depth = (2*n + 2) << b.params.AverageBits
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range b.jobs {
				j.id = b.mk.BlobID(j.data)
				for _, r := range repos {
					if !r.Has(DataBlob, j.id) {
						sb, err := b.mk.sealBlob(DataBlob, j.id, j.data)
						j.sb, j.err = &sb, err
						break
					}
				}
				close(j.done)
			}
		}()
	}
	return func() {
		close(b.jobs)
		wg.Wait()
	}
}

// file reads a file's chunks and hands them to the sealers; they are added
// to the repositories, and to n's content, in order, as later chunks come
// (next), at the latest when its directory is flushed. The chunker runs
// here; up to b.depth bytes of chunks of this file and those before it
// are being hashed and sealed meanwhile, so that small files keep every
// sealer busy as large ones do.
func (b *backuper) file(ctx context.Context, path string, n *Node) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n.Content = []string{}
	p := b.params
	if b.chunker == nil {
		b.chunker = chunker.NewWithBoundaries(f, chunker.Pol(p.Polynomial), uint(p.MinSize), uint(p.MaxSize))
	} else {
		b.chunker.ResetWithBoundaries(f, chunker.Pol(p.Polynomial), uint(p.MinSize), uint(p.MaxSize))
	}
	b.chunker.SetAverageBits(p.AverageBits)
	for {
		c, err := b.chunker.Next(b.chunk)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		j := &chunkJob{data: append(getBuf(len(c.Data)), c.Data...), node: n, done: make(chan struct{})}
		select {
		case b.jobs <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.queue = append(b.queue, j)
		b.inFlight += len(j.data)
		for b.inFlight >= b.depth || len(b.queue) >= maxChunksInFlight {
			if err := b.next(ctx); err != nil {
				return err
			}
		}
	}
}

// next adds the oldest chunk in flight to the repositories and to its
// file's content.
func (b *backuper) next(ctx context.Context) error {
	j := b.queue[0]
	b.queue = b.queue[1:]
	b.inFlight -= len(j.data)
	<-j.done
	if j.err != nil {
		return j.err
	}
	id, err := b.addPrepared(ctx, DataBlob, j.data, j.id, j.sb)
	if err != nil {
		return err
	}
	j.node.Content = append(j.node.Content, id.String())
	j.node.Size += uint64(len(j.data))
	b.m.Bytes += uint64(len(j.data))
	b.progress.ScannedBytes += uint64(len(j.data))
	// Every writer copied the sealed blob into its pack: nothing reads
	// the chunk or its sealed form any more.
	putBuf(j.data)
	if j.sb != nil {
		putBuf(j.sb.Sealed)
	}
	b.report(false)
	return b.refresh(ctx)
}

// flush adds every chunk in flight.
func (b *backuper) flush(ctx context.Context) error {
	for len(b.queue) > 0 {
		if err := b.next(ctx); err != nil {
			return err
		}
	}
	return nil
}
