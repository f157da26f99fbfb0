package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/weftos/weft/backup/object"
)

// testParams chunk small (4 to 64 KiB, 16 KiB on average), so that small
// trees make many chunks.
func testParams(t testing.TB) Params {
	t.Helper()
	p, err := NewParams()
	if err != nil {
		t.Fatal(err)
	}
	p.MinSize, p.MaxSize, p.AverageBits = 4<<10, 64<<10, 14
	return p
}

func testRepo(t testing.TB) (*Repo, *object.Mem, *age.X25519Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b := object.NewMem(t.Name())
	r, err := Init(context.Background(), b, mk, testParams(t), id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	return r, b, id
}

func passphrase(t testing.TB, s string) (*age.ScryptRecipient, *age.ScryptIdentity) {
	rc, err := age.NewScryptRecipient(s)
	if err != nil {
		t.Fatal(err)
	}
	rc.SetWorkFactor(10) // fast; the default takes a second
	id, err := age.NewScryptIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return rc, id
}

// randBytes is deterministic per seed.
func randBytes(seed uint64, n int) []byte {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func write(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// sampleTree writes text, random bytes, many small files, empty files,
// symlinks and nested directories with assorted modes.
func sampleTree(t testing.TB, dir string) {
	t.Helper()
	write(t, filepath.Join(dir, "README.txt"), []byte(strings.Repeat("weft keeps its data here.\n", 2000)), 0o644)
	write(t, filepath.Join(dir, "random.bin"), randBytes(1, 300<<10), 0o600)
	write(t, filepath.Join(dir, "empty"), nil, 0o640)
	write(t, filepath.Join(dir, "bin", "tool"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	for i := range 150 {
		write(t, filepath.Join(dir, "db", "small", string(rune('a'+i%26))+strings.Repeat("x", i/26)), randBytes(uint64(100+i), i*7), 0o644)
	}
	write(t, filepath.Join(dir, "a", "b", "c", "d", "deep.txt"), []byte("deep\n"), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../nowhere", filepath.Join(dir, "a", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
}

// sameTree fails unless b holds what a holds: names, types, modes,
// contents, link targets and files' modification times.
func sameTree(t testing.TB, a, b string) {
	t.Helper()
	seen := 0
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		fa, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fb, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: missing from the restore: %v", rel, err)
			return nil
		}
		seen++
		if fa.Mode() != fb.Mode() && rel != "." {
			t.Errorf("%s: mode %v, want %v", rel, fb.Mode(), fa.Mode())
		}
		switch {
		case fa.Mode().IsRegular():
			da, _ := os.ReadFile(p)
			db, _ := os.ReadFile(q)
			if !bytes.Equal(da, db) {
				t.Errorf("%s: contents differ (%d bytes, want %d)", rel, len(db), len(da))
			}
			if !fa.ModTime().Equal(fb.ModTime()) {
				t.Errorf("%s: mtime %v, want %v", rel, fb.ModTime(), fa.ModTime())
			}
		case fa.Mode()&fs.ModeSymlink != 0:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: link to %q, want %q", rel, lb, la)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(b, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != seen {
		t.Errorf("the restore holds %d entries, the original %d", n, seen)
	}
}

func TestInitOpenWithIdentityAndPassphrase(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	rc, pass := passphrase(t, "correct horse")
	k, err := r.AddKey(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Kinds) != 1 || k.Kinds[0] != "scrypt" {
		t.Errorf("passphrase key kinds %v, want [scrypt]", k.Kinds)
	}
	for _, ident := range []age.Identity{id, pass} {
		r2, err := Open(ctx, b, ident)
		if err != nil {
			t.Fatalf("open with %T: %v", ident, err)
		}
		if r2.ID() != r.ID() || r2.Params() != r.Params() || *r2.Key() != *r.Key() {
			t.Errorf("open with %T: another repository's id, params or key", ident)
		}
	}

	other, _ := age.GenerateX25519Identity()
	_, wrongPass := passphrase(t, "wrong horse")
	for _, ident := range []age.Identity{other, wrongPass} {
		_, err := Open(ctx, b, ident)
		if !errors.Is(err, ErrWrongKey) {
			t.Errorf("open with a wrong %T: %v, want ErrWrongKey", ident, err)
		}
	}

	keys, err := r.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range keys {
		kinds[strings.Join(k.Kinds, ",")] = true
	}
	if len(keys) != 2 || !kinds["X25519"] || !kinds["scrypt"] {
		t.Errorf("keys %+v, want an X25519 one and a scrypt one", keys)
	}
	if err := r.RemoveKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, b, pass); !errors.Is(err, ErrWrongKey) {
		t.Errorf("open with a removed passphrase: %v, want ErrWrongKey", err)
	}
	if err := r.RemoveKey(ctx, keys[0].ID+keys[1].ID); !errors.Is(err, object.ErrNotFound) {
		t.Errorf("remove an unknown key: %v", err)
	}
	last, _ := r.ListKeys(ctx)
	if err := r.RemoveKey(ctx, last[0].ID); err == nil || !strings.Contains(err.Error(), "last") {
		t.Errorf("remove the last key: %v, want a refusal", err)
	}

	if _, err := Init(ctx, b, r.Key(), r.Params(), id.Recipient()); !errors.Is(err, ErrExists) {
		t.Errorf("init over a repository: %v, want ErrExists", err)
	}
	if _, err := Open(ctx, object.NewMem("empty"), id); !errors.Is(err, ErrNoRepo) {
		t.Errorf("open an empty backend: %v, want ErrNoRepo", err)
	}
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	src := t.TempDir()
	sampleTree(t, src)
	res, err := r.Backup(ctx, src, BackupOptions{NodeID: "k51test", WeftVersion: "0.1.0", Hostname: "h", Tags: []string{"daily"}})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	if m.Files != 155 || m.Symlinks != 2 || m.Dirs != 8 || m.NodeID != "k51test" {
		t.Errorf("manifest %+v: want 155 files, 8 dirs, 2 symlinks", m)
	}

	r2, err := Open(ctx, b, id) // restoring needs only the bucket and the key
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := r2.Snapshots(ctx)
	if err != nil || len(snaps) != 1 || snaps[0] != res.Snapshot {
		t.Fatalf("snapshots %v, %v; want [%v]", snaps, err, res.Snapshot)
	}
	got, err := r2.LoadSnapshot(ctx, snaps[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.Tree != m.Tree || got.Bytes != m.Bytes || !got.Time.Equal(m.Time) || got.Tags[0] != "daily" {
		t.Errorf("manifest read back %+v, written %+v", got, m)
	}
	dst := filepath.Join(t.TempDir(), "restore")
	if err := r2.Restore(ctx, snaps[0], dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)

	c, err := r2.Check(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() || len(c.Unreferenced) != 0 {
		t.Errorf("check of a fresh repository: %+v", c)
	}
}

func TestSecondBackupStoresOnlyTheChange(t *testing.T) {
	ctx := context.Background()
	r, _, _ := testRepo(t)
	src := t.TempDir()
	const files, size = 8, 512 << 10
	for i := range files {
		write(t, filepath.Join(src, "d", string(rune('a'+i))), randBytes(uint64(i), size), 0o644)
	}
	first, err := r.Backup(ctx, src, BackupOptions{PackSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	// Change 1 % of the bytes: 4 runs of about 10 KiB in 4 files.
	for i := range 4 {
		p := filepath.Join(src, "d", string(rune('a'+2*i)))
		data, _ := os.ReadFile(p)
		copy(data[100<<10*(i+1):], randBytes(uint64(1000+i), files*size/100/4))
		write(t, p, data, 0o644)
	}
	second, err := r.Backup(ctx, src, BackupOptions{PackSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	frac := float64(second.Stats.PackBytes) / float64(first.Stats.PackBytes)
	t.Logf("first backup %d bytes of packs, second %d (%.1f %%)", first.Stats.PackBytes, second.Stats.PackBytes, 100*frac)
	if first.Stats.PackBytes < files*size || frac > 0.10 {
		t.Errorf("after a 1 %% change the second backup stored %.1f %% of the first", 100*frac)
	}
	if second.Manifest.AddedBytes != second.Stats.PackBytes {
		t.Errorf("manifest added_bytes %d, stats %d", second.Manifest.AddedBytes, second.Stats.PackBytes)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if err := r.Restore(ctx, second.Snapshot, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
}

func TestIdenticalContentStoredOnce(t *testing.T) {
	ctx := context.Background()
	r, _, _ := testRepo(t)
	one, two := t.TempDir(), t.TempDir()
	data := randBytes(7, 400<<10)
	write(t, filepath.Join(one, "x", "f"), data, 0o644)
	for i, p := range []string{"x/f", "y/f", "z/copy", "z/deeper/again"} {
		write(t, filepath.Join(two, p), data, 0o644)
		// Distinct times, so that x and y are two trees whatever the
		// file system's clock granularity.
		mt := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(two, p), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	a, err := r.Backup(ctx, one, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A second repository that chunks alike, so that counts compare.
	rid, _ := age.GenerateX25519Identity()
	r2, err := Init(ctx, object.NewMem("two"), r.Key(), r.Params(), rid.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	b, err := r2.Backup(ctx, two, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Four copies cost the one copy's data blobs plus three more trees
	// (y, z, z/deeper; both have a root and an x).
	if b.Stats.BlobsAdded != a.Stats.BlobsAdded+3 || b.Stats.PackBytes > a.Stats.PackBytes+16<<10 {
		t.Errorf("four copies stored %d blobs, %d bytes; one copy %d blobs, %d bytes",
			b.Stats.BlobsAdded, b.Stats.PackBytes, a.Stats.BlobsAdded, a.Stats.PackBytes)
	}
	// In one repository, the copies after the original add only trees.
	c, err := r.Backup(ctx, two, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Stats.BlobsAdded > 5 || c.Stats.BlobsReused < a.Stats.BlobsAdded-2 {
		t.Errorf("backing up the copies after the original added %d blobs, reused %d", c.Stats.BlobsAdded, c.Stats.BlobsReused)
	}
}

// objects lists a backend's object names under prefix.
func objects(t testing.TB, b object.Backend, prefix string) []string {
	t.Helper()
	var names []string
	if err := b.List(context.Background(), prefix, func(in object.Info) error { names = append(names, in.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return names
}

func flip(b *object.Mem, name string, at int) {
	data := b.Bytes(name)
	data[at%len(data)] ^= 0x40
	b.Set(name, data)
}

func TestTamperedObjectsAreRefused(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Repo, *object.Mem, *age.X25519Identity, *BackupResult) {
		r, b, id := testRepo(t)
		src := t.TempDir()
		sampleTree(t, src)
		res, err := r.Backup(ctx, src, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r, b, id, res
	}
	wantNamed := func(t *testing.T, err error, name string) {
		t.Helper()
		if err == nil || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v: want ErrCorrupt naming %s", err, name)
		}
	}

	t.Run("pack", func(t *testing.T) {
		r, b, _, res := setup(t)
		for _, name := range objects(t, b, dataDir) {
			flip(b, name, 100)
		}
		err := r.Restore(ctx, res.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{})
		wantNamed(t, err, dataDir)
		c, err := r.Check(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if c.OK() || len(c.Broken()) != 1 || !strings.Contains(strings.Join(c.Problems, "\n"), "do not hash to its name") {
			t.Errorf("check after flipping a byte of every pack: %+v", c)
		}
	})
	// An index that fails its checks does not stop Open: check names it,
	// a restore that needs a blob only it named fails naming it, and
	// prune indexes its packs again from their headers.
	t.Run("index", func(t *testing.T) {
		_, b, id, res := setup(t)
		name := objects(t, b, indexDir)[0]
		flip(b, name, 50)
		r, err := Open(ctx, b, id)
		if err != nil {
			t.Fatalf("open with a corrupt index: %v", err)
		}
		c, err := r.Check(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), name) || len(c.Broken()) != 1 || len(c.Unreferenced) == 0 {
			t.Errorf("check with a corrupt index: %+v", c)
		}
		err = r.Restore(ctx, res.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{})
		wantNamed(t, err, name)
		if _, err := r.Prune(ctx); err != nil {
			t.Fatalf("prune with a corrupt index: %v", err)
		}
		r = mustOpen(t, b, id)
		if c, err := r.Check(ctx, true); err != nil || !c.OK() || len(c.Unreferenced) != 0 {
			t.Fatalf("check after the prune: %+v, %v", c, err)
		}
		if err := r.Restore(ctx, res.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{}); err != nil {
			t.Fatalf("restore after the prune: %v", err)
		}
	})
	t.Run("pack size", func(t *testing.T) {
		r, b, _, _ := setup(t)
		name := objects(t, b, dataDir)[0]
		b.Set(name, append(b.Bytes(name), 0))
		c, err := r.Check(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), name) || len(c.Broken()) != 1 {
			t.Errorf("check without reading data, a pack a byte longer: %+v", c)
		}
	})
	t.Run("index listing a pack short", func(t *testing.T) {
		r, _, _, _ := setup(t)
		var pi packIndex
		r.loadIndexes(ctx, func(ps []packIndex) {
			for _, p := range ps {
				if len(p.Blobs) > 1 {
					pi = p
				}
			}
		})
		pi.Blobs = pi.Blobs[:1]
		if _, _, err := r.NewWriter(0).writeIndex(ctx, []packIndex{pi}); err != nil {
			t.Fatal(err)
		}
		c, err := r.Check(ctx, false)
		if err != nil || c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), "another index") {
			t.Errorf("check with two indexes listing a pack differently: %+v, %v", c, err)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		r, b, _, res := setup(t)
		name := snapshotName(res.Snapshot)
		flip(b, name, 30)
		_, err := r.LoadSnapshot(ctx, res.Snapshot)
		wantNamed(t, err, name)
		c, err := r.Check(ctx, false)
		if err != nil || c.OK() {
			t.Errorf("check with an altered manifest: %+v, %v", c, err)
		}
	})
	t.Run("config", func(t *testing.T) {
		_, b, id, _ := setup(t)
		flip(b, configName, 40)
		_, err := Open(ctx, b, id)
		wantNamed(t, err, configName)
	})
	t.Run("swapped manifest", func(t *testing.T) {
		r, b, _, res := setup(t)
		src := t.TempDir()
		write(t, filepath.Join(src, "f"), []byte("other"), 0o644)
		res2, err := r.Backup(ctx, src, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The second snapshot's bytes under the first's name.
		b.Set(snapshotName(res.Snapshot), b.Bytes(snapshotName(res2.Snapshot)))
		_, err = r.LoadSnapshot(ctx, res.Snapshot)
		wantNamed(t, err, snapshotName(res.Snapshot))
	})
	t.Run("index as manifest", func(t *testing.T) {
		r, b, _, _ := setup(t)
		raw := b.Bytes(objects(t, b, indexDir)[0])
		id := sha(raw) // a valid name for these bytes
		b.Set(snapshotName(id), raw)
		_, err := r.LoadSnapshot(ctx, id)
		wantNamed(t, err, snapshotName(id))
	})
	t.Run("manifest as index", func(t *testing.T) {
		_, b, key, res := setup(t)
		raw := b.Bytes(snapshotName(res.Snapshot))
		name := indexName(sha(raw))
		b.Set(name, raw)
		r := mustOpen(t, b, key)
		c, err := r.Check(ctx, false)
		if err != nil || c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), name) {
			t.Errorf("check with a manifest as an index: %+v, %v", c, err)
		}
		if err := r.Restore(ctx, res.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{}); err != nil {
			t.Errorf("restore beside an index that does not read, but is not needed: %v", err)
		}
	})
	t.Run("swapped index", func(t *testing.T) {
		r, b, key, res := setup(t)
		src := t.TempDir()
		write(t, filepath.Join(src, "f"), []byte("other"), 0o644)
		if _, err := r.Backup(ctx, src, BackupOptions{}); err != nil {
			t.Fatal(err)
		}
		idx := objects(t, b, indexDir)
		b.Set(idx[0], b.Bytes(idx[1]))
		r = mustOpen(t, b, key)
		c, err := r.Check(ctx, false)
		if err != nil || c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), idx[0]+": "+ErrCorrupt.Error()) {
			t.Errorf("check with an index under another's name: %+v, %v", c, err)
		}
		// Whichever snapshot needed it restores, or fails naming it.
		err = r.Restore(ctx, res.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{})
		if err != nil {
			wantNamed(t, err, idx[0])
		}
	})
}

// TestCheckNamesSnapshotsADeletedPackBreaks loses a pack, checks that
// verify names the snapshot it breaks, and repairs the repository.
func TestCheckNamesSnapshotsADeletedPackBreaks(t *testing.T) {
	ctx := context.Background()
	r, b, _ := testRepo(t)
	src := t.TempDir()
	write(t, filepath.Join(src, "old"), randBytes(1, 100<<10), 0o644)
	first, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]bool{}
	for _, n := range objects(t, b, dataDir) {
		before[n] = true
	}
	write(t, filepath.Join(src, "sub", "new"), randBytes(2, 100<<10), 0o644)
	second, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, n := range objects(t, b, dataDir) {
		if !before[n] {
			if err := b.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	if deleted == 0 {
		t.Fatal("the second backup wrote no pack")
	}
	for _, readData := range []bool{false, true} {
		c, err := r.Check(ctx, readData)
		if err != nil {
			t.Fatal(err)
		}
		broken := c.Broken()
		if len(broken) != 1 || broken[0] != second.Snapshot {
			t.Errorf("readData %v: broken %v, want only the second snapshot %v (first %v)", readData, broken, second.Snapshot, first.Snapshot)
		}
		if !strings.Contains(strings.Join(c.Problems, "\n"), "missing") {
			t.Errorf("readData %v: problems %q name no missing pack", readData, c.Problems)
		}
	}

	// The recovery docs/backup.md gives: prune refuses while a snapshot
	// is broken; forget it by id, prune (the index drops the lost pack),
	// and the next backup stores its blobs again, whole.
	if _, err := r.Prune(ctx); err == nil {
		t.Fatal("prune ran on a broken repository")
	}
	if _, _, _, err := r.ForgetIDs(ctx, []string{second.Snapshot.String()}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prune(ctx); err != nil {
		t.Fatalf("prune once the broken snapshot is forgotten: %v", err)
	}
	third, err := r.Backup(ctx, src, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.Check(ctx, true); err != nil || !c.OK() {
		t.Fatalf("check after the repair: %+v, %v", c, err)
	}
	if err := r.Restore(ctx, first.Snapshot, filepath.Join(t.TempDir(), "r"), RestoreOptions{}); err != nil {
		t.Fatalf("restore the first snapshot after the repair: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if err := r.Restore(ctx, third.Snapshot, dst, RestoreOptions{}); err != nil {
		t.Fatalf("restore the new snapshot: %v", err)
	}
	sameTree(t, src, dst)
}

var errInjected = errors.New("injected failure")

// failingPuts fails every Put after the first n.
type failingPuts struct {
	object.Backend
	left atomic.Int64
}

func (f *failingPuts) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if f.left.Add(-1) < 0 {
		return errInjected
	}
	return f.Backend.Put(ctx, name, r, size)
}

func TestInterruptedBackupResumes(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	src := t.TempDir()
	for i := range 4 {
		write(t, filepath.Join(src, string(rune('a'+i))), randBytes(uint64(i), 256<<10), 0o644)
	}
	opts := BackupOptions{PackSize: 64 << 10}

	// A lock, then a pack and its checkpoint index each: the failure
	// comes after 9 packs of about 16, one of them without its index.
	fb := &failingPuts{Backend: b}
	fb.left.Store(1 + 2*8 + 1)
	rf, err := Open(ctx, fb, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rf.Backup(ctx, src, opts); !errors.Is(err, errInjected) {
		t.Fatalf("backup through a failing backend: %v", err)
	}
	if n := len(objects(t, b, snapshotsDir)); n != 0 {
		t.Fatalf("an interrupted backup wrote %d snapshots", n)
	}

	r, err = Open(ctx, b, id)
	if err != nil {
		t.Fatalf("open after an interrupted backup: %v", err)
	}
	c, err := r.Check(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.OK() || len(c.Unreferenced) != 1 {
		t.Errorf("check after an interrupted backup: %+v, want clean with one unreferenced pack", c)
	}
	var kept int64 // bytes of the packs the interrupted run indexed
	for _, name := range objects(t, b, dataDir) {
		if name != packName(c.Unreferenced[0]) {
			in, _ := b.Stat(ctx, name)
			kept += in.Size
		}
	}
	res, err := r.Backup(ctx, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	rid, _ := age.GenerateX25519Identity()
	full, err := Init(ctx, object.NewMem("whole"), r.Key(), r.Params(), rid.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	whole, err := full.Backup(ctx, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed backup stored %d bytes after %d kept; a whole one %d", res.Stats.PackBytes, kept, whole.Stats.PackBytes)
	if uint64(kept) < whole.Stats.PackBytes/3 || res.Stats.PackBytes+uint64(kept) > whole.Stats.PackBytes+16<<10 {
		t.Errorf("the resumed backup stored %d bytes, a whole one %d: it did not reuse what the interrupted one uploaded", res.Stats.PackBytes, whole.Stats.PackBytes)
	}
	dst := filepath.Join(t.TempDir(), "r")
	if err := r.Restore(ctx, res.Snapshot, dst, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, dst)
}

func TestLockExcludesUntilExpiry(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r.now = func() time.Time { return now }
	l, err := r.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, b, id)
	if err != nil {
		t.Fatal(err)
	}
	other.now = r.now
	if _, err := other.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("a second lock: %v, want ErrLocked", err)
	}
	if _, err := other.Backup(ctx, t.TempDir(), BackupOptions{}); !errors.Is(err, ErrLocked) {
		t.Errorf("a backup while locked: %v, want ErrLocked", err)
	}
	now = now.Add(LockTTL - time.Minute)
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(LockTTL - time.Minute)
	if _, err := other.Lock(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("a lock while a refreshed one holds: %v, want ErrLocked", err)
	}
	now = now.Add(2 * time.Minute) // the holder died: its lock expired
	l2, err := other.Lock(ctx)
	if err != nil {
		t.Fatalf("lock after the holder's expired: %v", err)
	}
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(objects(t, b, locksDir)); n != 1 {
		t.Errorf("%d locks left, want the expired one", n)
	}
}

func TestSealOnceAddToSeveralRepositories(t *testing.T) {
	ctx := context.Background()
	a, _, ida := testRepo(t)
	bb := object.NewMem("second")
	b, err := Init(ctx, bb, a.Key(), a.Params(), ida.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() == b.ID() {
		t.Error("two repositories with one id")
	}
	data := randBytes(3, 10000)
	sb, err := a.Key().Seal(DataBlob, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Repo{a, b} {
		w := r.NewWriter(0)
		if err := w.AddSealed(ctx, sb); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := r.LoadBlob(ctx, DataBlob, sb.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: blob read back: %v", r.Backend(), err)
		}
		if !r.Has(DataBlob, sb.ID) || r.Has(TreeBlob, sb.ID) {
			t.Errorf("%s: Has is wrong about the blob", r.Backend())
		}
	}
	// Another repository's key does not open the blob.
	c, _, _ := testRepo(t)
	w := c.NewWriter(0)
	if err := w.AddSealed(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadBlob(ctx, DataBlob, sb.ID); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a blob sealed under another key: %v, want ErrCorrupt", err)
	}
}

// failingIndexGets fails every Get of an index.
type failingIndexGets struct{ object.Backend }

func (f failingIndexGets) Get(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, indexDir) {
		return nil, errInjected
	}
	return f.Backend.Get(ctx, name, off, n)
}

// TestOpenFailsWhenAnIndexCannotBeRead: only an index that fails its
// checks is skipped; one the backend cannot deliver fails Open, which
// must not guess the repository's contents from part of its index.
func TestOpenFailsWhenAnIndexCannotBeRead(t *testing.T) {
	ctx := context.Background()
	r, b, id := testRepo(t)
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	if _, err := r.Backup(ctx, src, BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, failingIndexGets{b}, id); !errors.Is(err, errInjected) {
		t.Fatalf("open when indexes cannot be read: %v", err)
	}
}

// TestCompressProbes: a blob whose probes do not shrink is stored as it
// is; one of which any probe shrinks is compressed; both open again.
func TestCompressProbes(t *testing.T) {
	rnd := randBytes(5, 256<<10)
	text := []byte(strings.Repeat("weft keeps its data here. ", 10<<10))
	halfText := append(bytes.Clone(rnd[:128<<10]), text[:128<<10]...) // the middle probe is text
	for _, c := range []struct {
		name string
		p    []byte
		flag byte
	}{{"random", rnd, flagRaw}, {"text", text, flagZstd}, {"half text", halfText, flagZstd}, {"small random", rnd[:4<<10], flagRaw}} {
		f := compress(nil, c.p)
		if f[0] != c.flag {
			t.Errorf("%s: flag %d, want %d", c.name, f[0], c.flag)
		}
		p, err := decompress(nil, f, len(c.p))
		if err != nil || !bytes.Equal(p, c.p) {
			t.Errorf("%s: does not decompress: %v", c.name, err)
		}
	}
}
