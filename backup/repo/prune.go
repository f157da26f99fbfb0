package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/weftos/weft/backup/object"
)

// PruneResult is what Prune removed and kept.
type PruneResult struct {
	PacksDeleted  int    // held no blob a snapshot uses
	PacksRepacked int    // mostly unused: their used blobs copied to new packs
	PacksKept     int    // as they were
	PacksWritten  int    // new, holding the repacked blobs
	BlobsRemoved  int    // from the index
	BytesFreed    uint64 // of the packs deleted, less those written
}

// repackBelow is the share of a pack's bytes that must still be used for
// Prune to keep it whole; below it, Prune copies the used blobs into new
// packs and deletes the old one.
const repackBelow = 0.5

// Prune removes what no snapshot references, holding the repository's
// lock, so that a backup (which locks too) never adds blobs it believes
// stored while Prune deletes them. It reads the indexes afresh, walks
// every snapshot's trees (refusing to delete anything when one is
// broken), then:
//
//  1. copies the used blobs of packs less than half used into new packs
//     (checking each one), and writes their index;
//  2. writes one index of every pack that stays;
//  3. deletes every other index object;
//  4. deletes the packs nothing uses and the repacked ones.
//
// Interrupted after any step, the repository opens, checks and restores
// every snapshot: until step 3 the old indexes still name every old pack
// (which step 4 has not deleted), and after it the new index names every
// pack that stays. Leftovers (a pack no index names) are what Check
// reports as unindexed and a later Prune deletes.
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

func (r *Repo) prune(ctx context.Context, l *Lock) (*PruneResult, error) {
	if err := r.loadIndexes(ctx); err != nil {
		return nil, err
	}
	used, err := r.usedBlobs(ctx, l)
	if err != nil {
		return nil, err
	}

	// Each pack's blobs, as the index places them.
	r.mu.RLock()
	byPack := map[ID][]packEntry{}
	for h, loc := range r.index {
		byPack[loc.pack] = append(byPack[loc.pack], packEntry{Type: h.t, ID: h.id, Offset: loc.offset, Length: loc.length, RawLen: loc.rawLen})
	}
	sizes := map[ID]uint64{}
	for id, size := range r.packs {
		sizes[id] = size
	}
	r.mu.RUnlock()

	res := &PruneResult{}
	drop := map[ID]bool{} // packs to delete at the end
	var repack []ID
	for _, id := range sortedIDs(sizes) {
		var total, inUse uint64
		for _, e := range byPack[id] {
			total += uint64(e.Length)
			if used[handle{e.Type, e.ID}] {
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
			res.PacksKept++
		}
	}

	// 1. Copy the used blobs of mostly unused packs.
	w := r.NewWriter(0)
	w.repack = true
	for _, id := range repack {
		if err := r.copyUsed(ctx, w, id, byPack[id], used); err != nil {
			return nil, err
		}
		if err := l.refreshIfDue(ctx); err != nil {
			return nil, err
		}
	}
	if err := w.Flush(ctx); err != nil {
		return nil, err
	}
	res.PacksWritten = w.Stats.Packs

	// 2. One index of every pack that stays, with every blob in it.
	r.mu.RLock()
	stay := map[ID][]packEntry{}
	for h, loc := range r.index {
		if !drop[loc.pack] {
			stay[loc.pack] = append(stay[loc.pack], packEntry{Type: h.t, ID: h.id, Offset: loc.offset, Length: loc.length, RawLen: loc.rawLen})
		}
	}
	r.mu.RUnlock()
	var full []packIndex
	for _, id := range sortedIDs(stay) {
		es := stay[id]
		sortEntries(es)
		full = append(full, packIndex{ID: id, Blobs: es})
	}
	newIndex, _, err := w.writeIndex(ctx, full)
	if err != nil {
		return nil, err
	}

	// 3. Every other index goes.
	var stale []string
	if err := r.b.List(ctx, indexDir, func(in object.Info) error {
		if in.Name != newIndex {
			stale = append(stale, in.Name)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, name := range stale {
		if err := r.b.Delete(ctx, name); err != nil && !errors.Is(err, object.ErrNotFound) {
			return nil, err
		}
	}

	// 4. The packs nothing indexes any more: those dropped, and those no
	// index named already (left by an interrupted backup or prune; no
	// backup runs meanwhile, as it would hold the lock).
	if err := r.b.List(ctx, dataDir, func(in object.Info) error {
		id, err := ParseID(in.Name[strings.LastIndexByte(in.Name, '/')+1:])
		if err != nil {
			return nil // not a pack's name: not ours to delete
		}
		if _, ok := stay[id]; !ok && !drop[id] {
			drop[id] = true
			sizes[id] = uint64(in.Size)
			res.PacksDeleted++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, id := range sortedIDs(drop) {
		if err := r.b.Delete(ctx, packName(id)); err != nil && !errors.Is(err, object.ErrNotFound) {
			return nil, err
		}
		res.BytesFreed += sizes[id]
		if err := l.refreshIfDue(ctx); err != nil {
			return nil, err
		}
	}
	res.BytesFreed -= min(res.BytesFreed, w.Stats.PackBytes)
	for _, es := range byPack {
		for _, e := range es {
			if !used[handle{e.Type, e.ID}] {
				res.BlobsRemoved++
			}
		}
	}
	return res, r.loadIndexes(ctx)
}

// usedBlobs walks every snapshot's trees and returns the blobs they use.
// A snapshot whose trees cannot be read fails it: pruning a broken
// repository could delete what a repair needs.
func (r *Repo) usedBlobs(ctx context.Context, l *Lock) (map[handle]bool, error) {
	snaps, err := r.SnapshotList(ctx)
	if err != nil {
		return nil, err
	}
	used := map[handle]bool{}
	var walk func(id ID) error
	walk = func(id ID) error {
		h := handle{TreeBlob, id}
		if used[h] {
			return nil // a subtree seen in another snapshot
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		used[h] = true
		for _, n := range t.Nodes {
			switch n.Type {
			case NodeFile:
				for _, c := range n.Content {
					id, _ := ParseID(c)
					if !r.Has(DataBlob, id) {
						return fmt.Errorf("%w: data blob %v is not in the index", ErrCorrupt, id)
					}
					used[handle{DataBlob, id}] = true
				}
			case NodeDir:
				sub, _ := ParseID(n.Subtree)
				if err := walk(sub); err != nil {
					return err
				}
			}
		}
		return l.refreshIfDue(ctx)
	}
	for _, s := range snaps {
		root, _ := ParseID(s.Manifest.Tree)
		if err := walk(root); err != nil {
			return nil, fmt.Errorf("snapshot %v is broken, so nothing is deleted (run verify): %w", s.ID, err)
		}
	}
	return used, nil
}

// copyUsed copies the used blobs of a pack into w, reading the pack once
// and checking each blob.
func (r *Repo) copyUsed(ctx context.Context, w *Writer, pack ID, es []packEntry, used map[handle]bool) error {
	name := packName(pack)
	rc, err := r.b.Get(ctx, name, 0, -1)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if sha(raw) != pack {
		return corrupt(r.b, name, errors.New("its bytes do not hash to its name"))
	}
	for _, e := range es {
		if !used[handle{e.Type, e.ID}] {
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

// sortEntries sorts a pack's entries by offset.
func sortEntries(es []packEntry) {
	slices.SortFunc(es, func(a, b packEntry) int { return cmp.Compare(a.Offset, b.Offset) })
}
