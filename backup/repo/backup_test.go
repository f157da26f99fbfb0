package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/weftos/weft/backup/object"
)

// progressLog records a backup's progress events and checks, as they
// come, that no count goes back and that the totals are never below what
// was scanned.
type progressLog struct {
	t      *testing.T
	events []Progress
}

func (l *progressLog) add(p Progress) {
	l.t.Helper()
	if p.ScannedBytes > p.TotalBytes || p.ScannedFiles > p.TotalFiles {
		l.t.Errorf("progress scanned past its totals: %+v", p)
	}
	if n := len(l.events); n > 0 {
		q := l.events[n-1]
		back := p.ScannedBytes < q.ScannedBytes || p.ScannedFiles < q.ScannedFiles || len(p.Targets) != len(q.Targets)
		for i := range p.Targets {
			a, b := q.Targets[i], p.Targets[i]
			back = back || b.NewBytes < a.NewBytes || b.UploadedBytes < a.UploadedBytes || a.Failed != nil && b.Failed != a.Failed
		}
		if back {
			l.t.Errorf("progress went back: %+v after %+v", p, q)
		}
	}
	l.events = append(l.events, p)
}

func (l *progressLog) last() Progress {
	l.t.Helper()
	if len(l.events) == 0 {
		l.t.Fatal("no progress reported")
	}
	return l.events[len(l.events)-1]
}

// sharedRepos makes n repositories on Mem backends, all of one key and
// chunking; wrap, when set, wraps the i-th backend.
func sharedRepos(t *testing.T, n int, wrap func(i int, b *object.Mem) object.Backend) ([]*Repo, []*object.Mem, *age.X25519Identity) {
	t.Helper()
	ctx := context.Background()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p := testParams(t)
	var repos []*Repo
	var mems []*object.Mem
	for i := range n {
		m := object.NewMem(fmt.Sprintf("%s-%d", t.Name(), i))
		var b object.Backend = m
		if wrap != nil {
			b = wrap(i, m)
		}
		r, err := Init(ctx, b, mk, p, id.Recipient())
		if err != nil {
			t.Fatal(err)
		}
		repos, mems = append(repos, r), append(mems, m)
	}
	return repos, mems, id
}

func treeSize(t *testing.T, dir string) (bytes, files uint64) {
	t.Helper()
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			bytes += uint64(fi.Size())
			files++
		}
		return nil
	})
	return bytes, files
}

// TestBackupManyDedupAndOneFailing: two repositories of one key get one
// snapshot each from one reading, and store nothing again when nothing
// changed; one whose backend fails midway fails alone, with the error,
// and the other's snapshot restores; the failed one is left valid, and
// its next backup completes. Progress only grows and ends at the totals.
func TestBackupManyDedupAndOneFailing(t *testing.T) {
	ctx := context.Background()
	var f *failingPuts
	repos, mems, id := sharedRepos(t, 2, func(i int, m *object.Mem) object.Backend {
		if i == 0 {
			return m
		}
		f = &failingPuts{Backend: m}
		f.left.Store(1 << 40)
		return f
	})
	src := t.TempDir()
	for i := range 6 {
		write(t, filepath.Join(src, "d", fmt.Sprint(i)), randBytes(uint64(i), 100<<10), 0o644)
	}
	write(t, filepath.Join(src, "empty"), nil, 0o600)
	run := func() ([]*BackupResult, []error, *progressLog) {
		t.Helper()
		log := &progressLog{t: t}
		res, errs := BackupMany(ctx, src, repos, BackupOptions{PackSize: 64 << 10, ProgressEvery: time.Nanosecond, Progress: log.add})
		if len(res) != 2 || len(errs) != 2 {
			t.Fatalf("%d results and %d errors for 2 repositories", len(res), len(errs))
		}
		for i := range res {
			if (res[i] == nil) == (errs[i] == nil) {
				t.Fatalf("repository %d: result %v and error %v", i, res[i], errs[i])
			}
		}
		return res, errs, log
	}
	wantBytes, wantFiles := treeSize(t, src)
	checkEnd := func(log *progressLog) {
		t.Helper()
		last := log.last()
		if last.ScannedBytes != wantBytes || last.TotalBytes != wantBytes || last.ScannedFiles != wantFiles || last.TotalFiles != wantFiles {
			t.Errorf("last progress %+v: want %d bytes in %d files scanned of as many", last, wantBytes, wantFiles)
		}
	}

	// First run: both get the snapshot, and every new byte goes to both.
	res, errs, log := run()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if res[0].Manifest.Tree != res[1].Manifest.Tree {
		t.Error("two repositories of one key got different trees")
	}
	checkEnd(log)
	last := log.last()
	for i, tp := range last.Targets {
		if tp.Failed != nil || tp.NewBytes < wantBytes || tp.UploadedBytes < res[i].Stats.PackBytes+res[i].Stats.IndexBytes || res[i].Stats.IndexBytes == 0 {
			t.Errorf("target %d: progress %+v, stats %+v", i, tp, res[i].Stats)
		}
	}
	if len(log.events) < 8 {
		t.Errorf("%d progress events for 7 files, want one a file at least", len(log.events))
	}
	if e := log.events[0]; e.ScannedFiles != 0 || e.ScannedBytes == 0 {
		t.Errorf("first progress %+v: want one in the middle of the first file", e)
	}

	// Nothing changed: nothing new, nothing uploaded but the manifest.
	res, errs, log = run()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	checkEnd(log)
	for i, r := range res {
		if r.Stats.BlobsAdded != 0 || r.Stats.PackBytes != 0 || log.last().Targets[i].NewBytes != 0 {
			t.Errorf("an unchanged tree, repository %d: stats %+v, progress %+v", i, r.Stats, log.last().Targets[i])
		}
	}

	// New data; the second backend fails after its lock and two packs
	// with their indexes.
	for i := range 6 {
		write(t, filepath.Join(src, "d", fmt.Sprint(i)), randBytes(uint64(i+10), 100<<10), 0o644)
	}
	f.left.Store(5)
	res, errs, log = run()
	if errs[0] != nil {
		t.Fatalf("the healthy repository failed: %v", errs[0])
	}
	if !errors.Is(errs[1], errInjected) {
		t.Fatalf("the failing repository: %v", errs[1])
	}
	checkEnd(log)
	if last := log.last(); last.Targets[1].Failed == nil || !errors.Is(last.Targets[1].Failed, errInjected) || last.Targets[0].Failed != nil {
		t.Errorf("last progress %+v", last)
	}
	good := res[0].Snapshot
	dst := filepath.Join(t.TempDir(), "r")
	if err := mustOpen(t, mems[0], id).Restore(ctx, good, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)

	// The failed repository: unlocked, valid, two snapshots; its next run
	// stores what it lacks and the other stores nothing.
	if n := len(objects(t, mems[1], locksDir)); n != 0 {
		t.Errorf("the failed run left %d locks", n)
	}
	if c, err := mustOpen(t, mems[1], id).Check(ctx, true); err != nil || !c.OK() {
		t.Fatalf("check of the repository whose run failed: %+v, %v", c, err)
	}
	if snaps := objects(t, mems[1], snapshotsDir); len(snaps) != 2 {
		t.Errorf("the failed run left %d snapshots, want the 2 before it", len(snaps))
	}
	f.left.Store(1 << 40)
	res, errs, _ = run()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if res[0].Stats.PackBytes != 0 || res[1].Stats.PackBytes == 0 {
		t.Errorf("after the failure, the healthy one stored %d bytes, the other %d", res[0].Stats.PackBytes, res[1].Stats.PackBytes)
	}
	dst = filepath.Join(t.TempDir(), "r")
	if err := mustOpen(t, mems[1], id).Restore(ctx, res[1].Snapshot, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
}

// TestBackupManyRefusals: repositories of different keys or chunking are
// refused before anything is written; a locked one fails alone; a
// canceled context fails every one.
func TestBackupManyRefusals(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	for i := range 4 {
		write(t, filepath.Join(src, fmt.Sprint(i)), randBytes(uint64(i), 100<<10), 0o644)
	}
	repos, mems, id := sharedRepos(t, 2, nil)

	other, ob, _ := testRepo(t)
	otherParams, err := Init(ctx, object.NewMem("params"), repos[0].Key(), testParams(t), id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	for _, odd := range []*Repo{other, otherParams} {
		_, errs := BackupMany(ctx, src, []*Repo{repos[0], odd}, BackupOptions{})
		if errs[0] == nil || errs[1] == nil {
			t.Fatalf("repositories that seal differently backed up together: %v", errs)
		}
		if n := len(objects(t, mems[0], locksDir)) + len(objects(t, ob, locksDir)) + len(objects(t, mems[0], dataDir)); n != 0 {
			t.Fatalf("a refused backup wrote %d objects", n)
		}
	}

	l, err := mustOpen(t, mems[1], id).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, errs := BackupMany(ctx, src, repos, BackupOptions{})
	if errs[0] != nil || res[0] == nil || !errors.Is(errs[1], ErrLocked) || res[1] != nil {
		t.Fatalf("one repository locked: %v, %v", res, errs)
	}
	l.Unlock(ctx)

	cctx, cancel := context.WithCancel(ctx)
	write(t, filepath.Join(src, "new"), randBytes(99, 200<<10), 0o644)
	res, errs = BackupMany(cctx, src, repos, BackupOptions{ProgressEvery: time.Nanosecond, Progress: func(Progress) { cancel() }})
	for i := range repos {
		if res[i] != nil || !errors.Is(errs[i], context.Canceled) {
			t.Errorf("repository %d after a cancel: %v, %v", i, res[i], errs[i])
		}
		if n := len(objects(t, mems[i], locksDir)); n != 0 {
			t.Errorf("repository %d: a canceled run left %d locks", i, n)
		}
	}
}

// TestBackupSeesAnotherProcessesPrune: a Repo opened before another
// process forgot and pruned does not trust its index in memory once it
// holds the lock: the blobs the prune deleted are stored again.
func TestBackupSeesAnotherProcessesPrune(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	one, two := t.TempDir(), t.TempDir()
	write(t, filepath.Join(one, "f"), randBytes(1, 200<<10), 0o644)
	write(t, filepath.Join(two, "g"), randBytes(2, 20<<10), 0o644)
	if _, err := r.Backup(ctx, one, BackupOptions{Time: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	// Another process: a snapshot of two only, then the first forgotten
	// and everything of one pruned.
	other := mustOpen(t, b, id)
	if _, err := other.Backup(ctx, two, BackupOptions{Time: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Forget(ctx, KeepPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	if res, err := other.Prune(ctx); err != nil || res.BlobsRemoved == 0 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
	// r still believes one's blobs stored.
	res, err := r.Backup(ctx, one, BackupOptions{Time: time.Unix(3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.PackBytes < 200<<10 {
		t.Errorf("the backup after another's prune stored %d bytes: it trusted a stale index", res.Stats.PackBytes)
	}
	c, err := mustOpen(t, b, id).Check(ctx, true)
	if err != nil || !c.OK() {
		t.Fatalf("check: %+v, %v", c, err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if err := r.Restore(ctx, res.Snapshot, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, one, dst)
}

// pruneDuring deletes every index there was before the backup, at the
// backup's first pack: what a prune that ran once the backup's lock had
// expired would leave.
type pruneDuring struct {
	object.Backend
	old  []string
	done bool
}

func (p *pruneDuring) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if !p.done && strings.HasPrefix(name, dataDir) {
		p.done = true
		for _, n := range p.old {
			p.Backend.Delete(ctx, n)
		}
	}
	return p.Backend.Put(ctx, name, r, size)
}

// TestBackupRefusesARepositoryPrunedMeanwhile: a backup whose repository
// lost an index while it ran writes no snapshot: the blobs it reused may
// be gone.
func TestBackupRefusesARepositoryPrunedMeanwhile(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	src := t.TempDir()
	write(t, filepath.Join(src, "old"), randBytes(1, 100<<10), 0o644)
	if _, err := r.Backup(ctx, src, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "new"), randBytes(2, 100<<10), 0o644)
	p := &pruneDuring{Backend: b, old: objects(t, b, indexDir)}
	_, err := mustOpen(t, p, id).Backup(ctx, src, BackupOptions{})
	if !errors.Is(err, errPrunedDuring) {
		t.Fatalf("backup of a repository pruned meanwhile: %v", err)
	}
	if n := len(objects(t, b, snapshotsDir)); n != 1 {
		t.Fatalf("%d snapshots, want only the first", n)
	}
}
