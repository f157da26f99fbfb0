package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/weftos/weft/backup/object"
)

func snapAt(t time.Time, i int) SnapshotInfo {
	var id ID
	id[0] = byte(i)
	return SnapshotInfo{ID: id, Manifest: &Manifest{Time: t}}
}

func TestKeepPolicy(t *testing.T) {
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) // a Tuesday
	// Newest first: every 6 hours for 20 days.
	var snaps []SnapshotInfo
	for i := range 80 {
		snaps = append(snaps, snapAt(base.Add(-time.Duration(i)*6*time.Hour), i))
	}
	kept := func(p KeepPolicy) []int {
		keep, remove := p.Apply(snaps)
		if len(keep)+len(remove) != len(snaps) {
			t.Fatalf("%+v: %d kept and %d removed of %d", p, len(keep), len(remove), len(snaps))
		}
		var is []int
		for _, s := range keep {
			is = append(is, int(s.ID[0]))
		}
		return is
	}
	for _, c := range []struct {
		p    KeepPolicy
		want []int
	}{
		{KeepPolicy{Last: 3}, []int{0, 1, 2}},
		{KeepPolicy{Last: 100}, nil}, // all
		// Each day's newest: 12:00 on the 10th, then 18:00 of each
		// earlier day (i = 3, 7, 11, …).
		{KeepPolicy{Daily: 4}, []int{0, 3, 7, 11}},
		{KeepPolicy{Hourly: 2}, []int{0, 1}},
		// ISO weeks: Mar 9-15 (newest: 0), Mar 2-8 (Sunday 8th 18:00: i=7),
		// Feb 23-Mar 1 (Mar 1 18:00: i = 35).
		{KeepPolicy{Weekly: 3}, []int{0, 7, 35}},
		{KeepPolicy{Monthly: 2}, []int{0, 39}}, // Mar; Feb 28 18:00
		{KeepPolicy{Yearly: 5}, []int{0}},
		{KeepPolicy{Last: 1, Daily: 2}, []int{0, 3}},
	} {
		got := kept(c.p)
		if c.want == nil {
			if len(got) != len(snaps) {
				t.Errorf("%+v keeps %d of %d", c.p, len(got), len(snaps))
			}
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v keeps %v, want %v", c.p, got, c.want)
		}
	}
}

// backupN makes n snapshots of a tree of small files, a quarter of whose
// bytes stay the same between them and the rest change, interleaved (so
// that the packs of older snapshots end mostly unused: prune repacks
// them), with times an hour apart (oldest first). It returns their ids.
func backupN(t *testing.T, r *Repo, n int) ([]ID, string) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	var ids []ID
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		for j := range 12 {
			write(t, filepath.Join(src, fmt.Sprintf("p%02d-a", j)), randBytes(uint64(100+j), 6<<10), 0o644)
			write(t, filepath.Join(src, fmt.Sprintf("p%02d-b", j)), randBytes(uint64(1000*(i+1)+j), 18<<10), 0o644)
		}
		res, err := r.Backup(ctx, src, BackupOptions{PackSize: 64 << 10, Time: base.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Snapshot)
	}
	return ids, src
}

func packBytes(t *testing.T, b object.Backend) (n int, size int64) {
	t.Helper()
	err := b.List(context.Background(), dataDir, func(in object.Info) error { n++; size += in.Size; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

func TestFindSnapshot(t *testing.T) {
	mk := func(hexID string) SnapshotInfo {
		var id ID
		b, err := hex.DecodeString(hexID)
		if err != nil {
			t.Fatal(err)
		}
		copy(id[:], b)
		return SnapshotInfo{ID: id, Manifest: &Manifest{}}
	}
	snaps := []SnapshotInfo{mk("abcdef0123"), mk("abcdef0199"), mk("12345678aa")} // newest first
	for _, c := range []struct {
		want, got, err string
	}{
		{want: "latest", got: "abcdef0123"},
		{want: "", got: "abcdef0123"},
		{want: "12345678", got: "12345678aa"},
		{want: "ABCDEF0199", got: "abcdef0199"},
		{want: snaps[1].ID.String(), got: "abcdef0199"},
		{want: "abcdef01", err: "2 snapshots begin so"},
		{want: "99999999", err: ErrNoSnapshot.Error()},
		{want: "abcdef0", err: "8 to 64 hex digits"},
		{want: "abcdefgh", err: "8 to 64 hex digits"},
		{want: snaps[0].ID.String() + "0", err: "8 to 64 hex digits"},
		{want: strings.Repeat("x", 4000), err: "bytes cut"},
	} {
		s, err := FindSnapshot(snaps, c.want)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("FindSnapshot(%.20q) = %v, %v; want an error with %q", c.want, s.ID, err, c.err)
		case c.err == "" && (err != nil || !strings.HasPrefix(s.ID.String(), c.got)):
			t.Errorf("FindSnapshot(%q) = %v, %v; want %s", c.want, s.ID, err, c.got)
		}
	}
	if _, err := FindSnapshot(nil, "latest"); !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("latest of none: %v", err)
	}
}

func TestForgetIDs(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	ids, _ := backupN(t, r, 3)
	gone := "0000000000"
	keep, remove, missing, err := r.ForgetIDs(ctx, []string{ids[1].String()[:10], gone}, true)
	if err != nil || len(keep) != 2 || len(remove) != 1 || remove[0].ID != ids[1] || !slices.Equal(missing, []string{gone}) {
		t.Fatalf("dry run: %v %v %v %v", keep, remove, missing, err)
	}
	if snaps, _ := r.Snapshots(ctx); len(snaps) != 3 {
		t.Fatalf("a dry run removed snapshots: %d left", len(snaps))
	}
	for _, bad := range [][]string{nil, {"nothex!!"}, {ids[0].String(), "short"}, {"latest"}, {""}} {
		if _, _, _, err := r.ForgetIDs(ctx, bad, false); err == nil {
			t.Fatalf("forget %q ran", bad)
		}
	}
	if snaps, _ := r.Snapshots(ctx); len(snaps) != 3 {
		t.Fatalf("a refused forget removed snapshots: %d left", len(snaps))
	}
	// The newest, which no keep rule would let go.
	keep, remove, missing, err = r.ForgetIDs(ctx, []string{ids[2].String()}, false)
	if err != nil || len(keep) != 2 || len(remove) != 1 || remove[0].ID != ids[2] || len(missing) != 0 {
		t.Fatalf("forget: %v %v %v %v", keep, remove, missing, err)
	}
	// Held by another's lock: refused, as Forget is.
	other, err := Open(ctx, b, id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := other.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.ForgetIDs(ctx, []string{ids[0].String()}, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("forget beside a lock: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Check(ctx, false); err != nil || !c.OK() {
		t.Fatalf("check: %+v, %v", c, err)
	}
}

func TestForgetAndPrune(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	ids, src := backupN(t, r, 4)
	_, before := packBytes(t, b)

	keep, remove, err := r.Forget(ctx, KeepPolicy{Last: 2}, true)
	if err != nil || len(keep) != 2 || len(remove) != 2 || keep[0].ID != ids[3] || remove[1].ID != ids[0] {
		t.Fatalf("dry run: %v %v %v", keep, remove, err)
	}
	if snaps, _ := r.Snapshots(ctx); len(snaps) != 4 {
		t.Fatalf("a dry run removed snapshots: %d left", len(snaps))
	}
	if _, _, err := r.Forget(ctx, KeepPolicy{}, false); err == nil {
		t.Fatal("forget with no rule ran")
	}
	if _, _, err := r.Forget(ctx, KeepPolicy{Last: 2}, false); err != nil {
		t.Fatal(err)
	}
	res, err := r.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, after := packBytes(t, b)
	t.Logf("prune: %+v; packs %d → %d bytes", res, before, after)
	if res.PacksDeleted+res.PacksRepacked == 0 || res.BlobsRemoved == 0 || after >= before {
		t.Fatalf("prune freed nothing: %+v, %d → %d bytes", res, before, after)
	}
	if n := len(objects(t, b, indexDir)); n != 1 {
		t.Errorf("%d indexes after prune, want 1", n)
	}

	// What stays checks clean, reading every pack, and restores, also
	// from a repository opened afresh.
	for _, rr := range []*Repo{r, mustOpen(t, b, id)} {
		c, err := rr.Check(ctx, true)
		if err != nil || !c.OK() || len(c.Unreferenced) != 0 {
			t.Fatalf("check after prune: %+v, %v", c, err)
		}
	}
	dst := filepath.Join(t.TempDir(), "r")
	if err := r.Restore(ctx, ids[3], dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
	// The next backup after a prune stores only what is new.
	write(t, filepath.Join(src, "new"), randBytes(999, 10<<10), 0o644)
	next, err := r.Backup(ctx, src, BackupOptions{PackSize: 64 << 10})
	if err != nil || next.Stats.PackBytes > 64<<10 {
		t.Fatalf("backup after prune: %v, %+v", err, next)
	}
}

func mustOpen(t *testing.T, b object.Backend, id age.Identity) *Repo {
	t.Helper()
	r, err := Open(context.Background(), b, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failingDeletes fails every Delete after left of them, and every Put
// after putsLeft.
type failingOps struct {
	object.Backend
	deletes, puts atomic.Int64
}

func (f *failingOps) Delete(ctx context.Context, name string) error {
	if f.deletes.Add(-1) < 0 {
		return errInjected
	}
	return f.Backend.Delete(ctx, name)
}

func (f *failingOps) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if f.puts.Add(-1) < 0 {
		return errInjected
	}
	return f.Backend.Put(ctx, name, r, size)
}

// TestPruneInterrupted stops a prune at each of its writes and deletes
// in turn: every time, the repository opens, checks clean (reading every
// pack) and restores every snapshot; and a prune run again finishes.
func TestPruneInterrupted(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	ids, src := backupN(t, r, 3)
	if _, _, err := r.Forget(ctx, KeepPolicy{Last: 1}, false); err != nil {
		t.Fatal(err)
	}
	pristine := map[string][]byte{}
	b.List(ctx, "", func(in object.Info) error { pristine[in.Name] = b.Bytes(in.Name); return nil })
	reset := func() *object.Mem {
		m := object.NewMem("copy")
		for name, data := range pristine {
			m.Set(name, data)
		}
		return m
	}
	// Count a whole prune's puts and deletes on a copy, then fail each
	// of them in turn.
	counter := &failingOps{Backend: reset()}
	counter.puts.Store(1 << 40)
	counter.deletes.Store(1 << 40)
	res, err := mustOpen(t, counter, id).Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.PacksRepacked == 0 || res.PacksDeleted == 0 {
		t.Fatalf("the prune to interrupt repacks and deletes nothing: %+v", res)
	}
	puts, deletes := 1<<40-counter.puts.Load(), 1<<40-counter.deletes.Load()
	t.Logf("a whole prune: %+v, %d puts, %d deletes", res, puts, deletes)
	var cases []struct{ puts, deletes int64 }
	for i := range puts {
		cases = append(cases, struct{ puts, deletes int64 }{i, 1 << 40})
	}
	for i := range deletes {
		cases = append(cases, struct{ puts, deletes int64 }{1 << 40, i})
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("puts=%d,deletes=%d", min(c.puts, 99), min(c.deletes, 99)), func(t *testing.T) {
			m := reset()
			f := &failingOps{Backend: m}
			f.puts.Store(c.puts)
			f.deletes.Store(c.deletes)
			rf := mustOpen(t, f, id)
			if _, err := rf.Prune(ctx); !errors.Is(err, errInjected) {
				t.Fatalf("the prune did not reach the failure: %v", err)
			}
			// Locks of the interrupted prune expire; unlock by hand here.
			for _, l := range objects(t, m, locksDir) {
				m.Delete(ctx, l)
			}
			ro := mustOpen(t, m, id)
			chk, err := ro.Check(ctx, true)
			if err != nil || !chk.OK() {
				t.Fatalf("check after an interrupted prune: %+v, %v", chk, err)
			}
			dst := filepath.Join(t.TempDir(), "r")
			if err := ro.Restore(ctx, ids[2], dst, RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			sameTree(t, src, dst)
			if _, err := ro.Prune(ctx); err != nil {
				t.Fatalf("prune again: %v", err)
			}
			if chk, err := mustOpen(t, m, id).Check(ctx, true); err != nil || !chk.OK() || len(chk.Unreferenced) != 0 {
				t.Fatalf("check after the second prune: %+v, %v", chk, err)
			}
		})
	}
}

func TestPruneRespectsTheLock(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	backupN(t, r, 1)
	l, err := mustOpen(t, b, id).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prune(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("prune beside a lock: %v", err)
	}
	if _, _, err := r.Forget(ctx, KeepPolicy{Last: 1}, false); !errors.Is(err, ErrLocked) {
		t.Fatalf("forget beside a lock: %v", err)
	}
	l.Unlock(ctx)
}

// TestPruneRefusesABrokenRepository: a snapshot that needs a blob no pack
// holds makes prune delete nothing.
func TestPruneRefusesABrokenRepository(t *testing.T) {
	ctx := context.Background()
	r, b, _ := testRepo(t)
	backupN(t, r, 2)
	keep, _, err := r.Forget(ctx, KeepPolicy{Last: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	// The pack of a file's blob that the snapshot kept needs.
	root, _ := ParseID(keep[0].Manifest.Tree)
	tree, err := r.LoadTree(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := ParseID(tree.Nodes[len(tree.Nodes)-1].Content[0])
	loc, _ := r.lookup(DataBlob, blob)
	if err := b.Delete(ctx, packName(loc.pack)); err != nil {
		t.Fatal(err)
	}
	before := objects(t, b, "")
	_, err = r.Prune(ctx)
	if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("prune of a repository missing a pack: %v", err)
	}
	if after := objects(t, b, ""); !slices.Equal(before, after) {
		t.Fatalf("a refused prune changed the repository: %v → %v", before, after)
	}
}

// TestPruneReindexesUnindexedPacks: packs no index names (every index
// lost, a backup stopped before its index, then run again) are read and
// indexed, not deleted with what they hold; a blob stored twice ends
// stored once.
func TestPruneReindexesUnindexedPacks(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	ids, src := backupN(t, r, 2)
	// A backup of new data stopped after its lock, 3 packs and their
	// indexes, and its last pack (the trees); run again, it stores those
	// trees again.
	for j := range 12 {
		write(t, filepath.Join(src, fmt.Sprintf("p%02d-b", j)), randBytes(uint64(7000+j), 18<<10), 0o644)
	}
	f := &failingOps{Backend: b}
	f.puts.Store(1 + 3*2 + 1)
	f.deletes.Store(1 << 40)
	if _, err := mustOpen(t, f, id).Backup(ctx, src, BackupOptions{PackSize: 64 << 10}); !errors.Is(err, errInjected) {
		t.Fatalf("the backup to stop: %v", err)
	}
	for _, l := range objects(t, b, locksDir) {
		b.Delete(ctx, l)
	}
	third, err := mustOpen(t, b, id).Backup(ctx, src, BackupOptions{PackSize: 64 << 10, Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, third.Snapshot)
	// And every index lost.
	for _, name := range objects(t, b, indexDir) {
		b.Delete(ctx, name)
	}
	packs := len(objects(t, b, dataDir))

	res, err := mustOpen(t, b, id).Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("prune: %+v", res)
	if res.PacksReindexed != packs {
		t.Errorf("prune read %d packs' headers, want all %d", res.PacksReindexed, packs)
	}
	ro := mustOpen(t, b, id)
	c, err := ro.Check(ctx, true)
	if err != nil || !c.OK() || len(c.Unreferenced) != 0 {
		t.Fatalf("check after prune: %+v, %v", c, err)
	}
	if snaps, _ := ro.Snapshots(ctx); len(snaps) != 3 {
		t.Fatalf("%d snapshots after prune, want 3", len(snaps))
	}
	for _, s := range ids {
		if err := ro.Restore(ctx, s, filepath.Join(t.TempDir(), "r"), RestoreOptions{}); err != nil {
			t.Fatalf("restore %v: %v", s, err)
		}
	}
	// Each blob in one pack only.
	seen := map[handle]ID{}
	err = ro.loadIndexes(ctx, func(ps []packIndex) {
		for _, p := range ps {
			for _, e := range p.Blobs {
				h := handle{e.Type, e.ID}
				if other, ok := seen[h]; ok && other != p.ID {
					t.Errorf("blob %v in packs %v and %v", e.ID, other, p.ID)
				}
				seen[h] = p.ID
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestForgetDryRunBesideALock: a dry run only reads, so a run holding the
// lock does not stop it.
func TestForgetDryRunBesideALock(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	backupN(t, r, 3)
	l, err := mustOpen(t, b, id).Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	keep, remove, err := r.Forget(ctx, KeepPolicy{Last: 1}, true)
	if err != nil || len(keep) != 1 || len(remove) != 2 {
		t.Fatalf("dry run beside a lock: %d kept, %d removed, %v", len(keep), len(remove), err)
	}
	if n := len(objects(t, b, locksDir)); n != 1 {
		t.Errorf("a dry run left %d locks, want the other holder's", n)
	}
}

// countingGets counts the Gets of packs.
type countingGets struct {
	object.Backend
	gets atomic.Int64
}

func (c *countingGets) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if filepath.Dir(filepath.Dir(name)) == "data" {
		c.gets.Add(1)
	}
	return c.Backend.Get(ctx, name, off, n)
}

// TestRestoreReadsPacksNotBlobs: a restore asks for about one range per
// pack, not one per blob, writes a blob that several files hold (and one
// file holds many times) everywhere, and keeps modes and the root's mode
// and time.
func TestRestoreReadsPacksNotBlobs(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	src := t.TempDir()
	// 18 directories of one file each: a tree read per directory would
	// be 18 reads more.
	for i := range 18 {
		write(t, filepath.Join(src, "d", fmt.Sprint(i), "f"), randBytes(uint64(i), 50<<10), 0o640)
	}
	// Zeros chunk into identical chunks of the maximum size: one blob, 8
	// times in each of two files.
	zeros := make([]byte, 8*64<<10)
	write(t, filepath.Join(src, "d", "zeros"), zeros, 0o644)
	write(t, filepath.Join(src, "e", "zeros-again"), zeros, 0o600)
	write(t, filepath.Join(src, "empty"), nil, 0o600)
	os.Chmod(src, 0o750)
	rootTime := time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC)
	os.Chtimes(src, rootTime, rootTime)
	res, err := r.Backup(ctx, src, BackupOptions{PackSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c := &countingGets{Backend: b}
	rc := mustOpen(t, c, id)
	c.gets.Store(0)
	dst := filepath.Join(t.TempDir(), "r")
	var final RestoreProgress
	if err := rc.Restore(ctx, res.Snapshot, dst, RestoreOptions{Progress: func(p RestoreProgress) { final = p }}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
	packs, _ := packBytes(t, b)
	blobs := res.Stats.BlobsAdded
	t.Logf("%d gets of packs for %d packs and %d blobs", c.gets.Load(), packs, blobs)
	// A read per pack, and one per level of the tree (3) for the trees.
	if got := c.gets.Load(); got > int64(packs)+3 || got >= int64(blobs)/2 {
		t.Fatalf("%d gets of packs for %d packs and %d blobs", got, packs, blobs)
	}
	if final.RestoredBytes != final.TotalBytes || final.RestoredFiles != 21 || final.TotalFiles != 21 {
		t.Fatalf("final progress %+v", final)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(rootTime) {
		t.Fatalf("root: %v, %v", fi.Mode(), fi.ModTime())
	}
	// A check without reading data reads the trees a level at a time too.
	c.gets.Store(0)
	if chk, err := rc.Check(ctx, false); err != nil || !chk.OK() {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	if got := c.gets.Load(); got > 3 {
		t.Errorf("check read packs %d times for a tree of 3 levels", got)
	}
}
