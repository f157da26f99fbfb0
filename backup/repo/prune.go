package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/weftos/weft/backup/object"
)

// PruneResult is what Prune removed and kept.
type PruneResult struct {
	PacksDeleted   int    // held no blob a snapshot uses, or were not packs of this repository
	PacksRepacked  int    // mostly unused: their used blobs copied to new packs, then deleted
	PacksKept      int    // as they were
	PacksWritten   int    // new, holding the repacked blobs
	PacksReindexed int    // no index named them: their headers were read
	BlobsRemoved   int    // no longer in the index
	BytesFreed     uint64 // of the packs deleted, less those written
}

// repackBelow is the share of a pack's blob bytes that must still be used
// for Prune to keep it whole; below it, Prune copies the used blobs into
// new packs and deletes the old one.
const repackBelow = 0.5

// Prune removes what no snapshot references, holding the repository's
// lock, so that a backup (which locks too, and reads the index afresh
// once it holds the lock) never adds blobs it believes stored while
// Prune deletes them. docs/backup.md gives the steps and why a prune
// stopped after any of them leaves a repository that opens, checks and
// restores every snapshot.
func (r *Repo) Prune(ctx context.Context) (res *PruneResult, err error) {
	l, err := r.Lock(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer func() {
		if uerr := l.Unlock(context.WithoutCancel(ctx)); err == nil && uerr != nil {
			res, err = nil, fmt.Errorf("prune: %w", uerr)
		}
	}()
	res, err = r.prune(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return res, nil
}

// packSet is every pack a prune knows of: those indexes name and those
// listed under data/, with their blobs.
type packSet struct {
	entries map[ID][]packEntry // every blob of each pack, by offset
	present map[ID]int64       // listed, with its size
	junk    map[ID]bool        // listed, but no pack of this repository
}

func (r *Repo) prune(ctx context.Context, l *Lock) (*PruneResult, error) {
	// 0. What is there, and what the snapshots use.
	res := &PruneResult{}
	ps, err := r.packSet(ctx, l, res)
	if err != nil {
		return nil, err
	}
	used, err := r.usedBlobs(ctx, l)
	if err != nil {
		return nil, err
	}
	home := ps.homes(used)

	// 1. Sort the packs there: delete, repack or keep.
	drop := map[ID]bool{} // to delete at the end
	for id := range ps.junk {
		drop[id] = true
		res.PacksDeleted++
	}
	keep := map[ID]bool{}
	var repack []ID
	for _, id := range sortedIDs(ps.present) {
		if ps.junk[id] {
			continue
		}
		var total, inUse uint64
		for _, e := range ps.entries[id] {
			total += uint64(e.Length)
			if home[handle{e.Type, e.ID}] == id {
				inUse += uint64(e.Length)
			}
		}
		switch {
		case inUse == 0:
			drop[id] = true
			res.PacksDeleted++
		case float64(inUse) < repackBelow*float64(total):
			drop[id] = true
			repack = append(repack, id)
			res.PacksRepacked++
		default:
			keep[id] = true
			res.PacksKept++
		}
	}

	// 2. Copy the used blobs of mostly unused packs into new ones.
	w := r.NewWriter(0)
	w.repack = true
	for _, id := range repack {
		if err := r.copyUsed(ctx, w, id, ps.entries[id], home); err != nil {
			w.Abandon()
			return nil, err
		}
		if err := l.refreshIfDue(ctx); err != nil {
			w.Abandon()
			return nil, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return nil, err
	}
	res.PacksWritten = w.Stats.Packs

	// 3. One index of every pack that stays, with every blob in it.
	full := slices.Clone(w.written)
	for id := range keep {
		full = append(full, packIndex{ID: id, Blobs: ps.entries[id]})
	}
	slices.SortFunc(full, func(a, b packIndex) int { return slices.Compare(a.ID[:], b.ID[:]) })
	newIndex, _, err := w.writeIndex(ctx, full)
	if err != nil {
		return nil, err
	}

	// 4. Every other index goes, once the lock is known to be still ours,
	if err := l.confirm(ctx); err != nil {
		return nil, err
	}
	stale, err := r.listIndexes(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range stale {
		if name == newIndex {
			continue
		}
		if err := r.b.Delete(ctx, name); err != nil && !isNotFound(err) {
			return nil, err
		}
		r.noteIndex(name, false)
	}

	// then the packs dropped, now that no index names them.
	for _, id := range sortedIDs(drop) {
		if err := r.b.Delete(ctx, packName(id)); err != nil && !isNotFound(err) {
			return nil, err
		}
		res.BytesFreed += uint64(ps.present[id])
		if err := l.refreshIfDue(ctx); err != nil {
			return nil, err
		}
	}
	res.BytesFreed -= min(res.BytesFreed, w.Stats.PackBytes)

	before, after := map[handle]bool{}, map[handle]bool{}
	for _, es := range ps.entries {
		for _, e := range es {
			before[handle{e.Type, e.ID}] = true
		}
	}
	for _, p := range full {
		for _, e := range p.Blobs {
			after[handle{e.Type, e.ID}] = true
		}
	}
	for h := range before {
		if !after[h] {
			res.BlobsRemoved++
		}
	}
	return res, r.loadIndexes(ctx, nil)
}

// packSet reads every index afresh and lists data/. A pack no index
// names (left by an interrupted backup or prune, or named only by an
// index that no longer reads) is read whole: if it hashes to its name and
// its header opens, its blobs are added to the index in memory, so that
// what it holds counts like any other pack's; else it is junk. Packs
// indexes name that are not there are left out. Where a blob is in
// several packs, the index in memory is made to name one that is there.
func (r *Repo) packSet(ctx context.Context, l *Lock, res *PruneResult) (*packSet, error) {
	ps := &packSet{entries: map[ID][]packEntry{}, present: map[ID]int64{}, junk: map[ID]bool{}}
	if err := r.loadIndexes(ctx, func(pis []packIndex) {
		for _, p := range pis {
			ps.entries[p.ID] = unionEntries(ps.entries[p.ID], p.Blobs)
		}
	}); err != nil {
		return nil, err
	}
	if err := r.b.List(ctx, dataDir, func(in object.Info) error {
		id, err := ParseID(path.Base(in.Name))
		if err != nil || in.Name != packName(id) {
			return nil // not a pack's name: not ours to delete
		}
		ps.present[id] = in.Size
		return nil
	}); err != nil {
		return nil, err
	}
	for _, id := range sortedIDs(ps.present) {
		if _, ok := ps.entries[id]; ok {
			continue
		}
		raw, err := object.ReadAll(ctx, r.b, packName(id))
		if isNotFound(err) {
			delete(ps.present, id) // gone since the listing
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", packName(id), err)
		}
		es, err := r.mk.parsePack(raw)
		if sha(raw) != id || err != nil {
			ps.junk[id] = true
			continue
		}
		ps.entries[id] = es
		res.PacksReindexed++
		if err := l.refreshIfDue(ctx); err != nil {
			return nil, err
		}
	}
	for id := range ps.entries {
		if _, ok := ps.present[id]; !ok {
			delete(ps.entries, id)
		}
	}
	// The index in memory: one place per blob, in a pack that is there.
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, loc := range r.index {
		if _, ok := ps.present[loc.pack]; !ok || ps.junk[loc.pack] {
			delete(r.index, h)
		}
	}
	for _, id := range sortedIDs(ps.entries) {
		for _, e := range ps.entries[id] {
			h := handle{e.Type, e.ID}
			if _, ok := r.index[h]; !ok {
				r.index[h] = location{pack: id, offset: e.Offset, length: e.Length, rawLen: e.RawLen}
			}
		}
	}
	return ps, nil
}

// homes chooses, for every used blob, the one pack whose copy stays: of
// the packs that hold it, the one whose bytes are most used (by any copy
// of a used blob), so that a blob stored twice (a backup stopped before
// its index, then run again) does not keep two packs half used.
func (ps *packSet) homes(used map[handle]bool) map[handle]ID {
	share := map[ID]float64{}
	for id, es := range ps.entries {
		var total, inUse uint64
		for _, e := range es {
			total += uint64(e.Length)
			if used[handle{e.Type, e.ID}] {
				inUse += uint64(e.Length)
			}
		}
		if total > 0 {
			share[id] = float64(inUse) / float64(total)
		}
	}
	home := map[handle]ID{}
	for _, id := range sortedIDs(ps.entries) {
		for _, e := range ps.entries[id] {
			h := handle{e.Type, e.ID}
			if !used[h] {
				continue
			}
			if cur, ok := home[h]; !ok || share[id] > share[cur] {
				home[h] = id
			}
		}
	}
	return home
}

// usedBlobs walks every snapshot's trees and returns the blobs they use.
// A snapshot whose trees cannot be read, or that needs a blob no pack
// there holds, fails it: pruning a broken repository could delete what a
// repair needs.
func (r *Repo) usedBlobs(ctx context.Context, l *Lock) (map[handle]bool, error) {
	snaps, err := r.SnapshotList(ctx)
	if err != nil {
		return nil, err
	}
	used := map[handle]bool{}
	for _, s := range snaps {
		root, _ := ParseID(s.Manifest.Tree)
		if err := r.walkTrees(ctx, root, used, l); err != nil {
			return nil, fmt.Errorf("snapshot %v is broken, so nothing is deleted (run verify): %w", s.ID, err)
		}
	}
	return used, nil
}

// walkTrees adds to used the trees under root and the data blobs they
// name, checking that the index knows each; it reads the trees breadth
// first, in batches grouped by pack, and skips those used holds already.
func (r *Repo) walkTrees(ctx context.Context, root ID, used map[handle]bool, l *Lock) error {
	if used[handle{TreeBlob, root}] {
		return nil
	}
	queue := []ID{root}
	for len(queue) > 0 {
		batch := queue[:min(len(queue), maxTreeBatch)]
		queue = queue[len(batch):]
		trees, err := r.loadTrees(ctx, batch)
		if err != nil {
			return err
		}
		for _, id := range batch {
			h := handle{TreeBlob, id}
			if used[h] {
				continue // twice in the batch
			}
			used[h] = true
			for _, n := range trees[id].Nodes {
				switch n.Type {
				case NodeFile:
					for _, c := range n.Content {
						id, _ := ParseID(c)
						if !r.Has(DataBlob, id) {
							return fmt.Errorf("%w: data blob %v is in no pack", ErrCorrupt, id)
						}
						used[handle{DataBlob, id}] = true
					}
				case NodeDir:
					sub, _ := ParseID(n.Subtree)
					if !used[handle{TreeBlob, sub}] {
						queue = append(queue, sub)
					}
				}
			}
		}
		if err := l.refreshIfDue(ctx); err != nil {
			return err
		}
	}
	return nil
}

// copyUsed copies into w the blobs of a pack whose home it is, reading the
// pack once and checking each blob.
func (r *Repo) copyUsed(ctx context.Context, w *Writer, pack ID, es []packEntry, home map[handle]ID) error {
	name := packName(pack)
	raw, err := object.ReadAll(ctx, r.b, name)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if sha(raw) != pack {
		return corrupt(r.b, name, errors.New("its bytes do not hash to its name"))
	}
	for _, e := range es {
		if home[handle{e.Type, e.ID}] != pack {
			continue
		}
		end := uint64(e.Offset) + uint64(e.Length)
		if end > uint64(len(raw)) {
			return corrupt(r.b, name, fmt.Errorf("blob %v lies past the pack's end", e.ID))
		}
		c := raw[e.Offset:end]
		if _, err := r.mk.openBlob(e.Type, e.ID, int(e.RawLen), c); err != nil {
			return corrupt(r.b, name, fmt.Errorf("%s blob %v: %w", e.Type, e.ID, err))
		}
		if err := w.AddSealed(ctx, SealedBlob{Type: e.Type, ID: e.ID, RawLen: e.RawLen, Sealed: c}); err != nil {
			return err
		}
	}
	return nil
}

// unionEntries adds to a pack's entries those of another index's listing
// of it that it lacks, sorted by offset. (Two indexes list a pack alike;
// this does not trust that they do.)
func unionEntries(es, more []packEntry) []packEntry {
	have := map[handle]bool{}
	for _, e := range es {
		have[handle{e.Type, e.ID}] = true
	}
	for _, e := range more {
		if !have[handle{e.Type, e.ID}] {
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b packEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	return es
}
