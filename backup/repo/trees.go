package repo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
)

// maxRangeGap is the most unneeded bytes between two needed blobs of a
// pack that a reader reads through rather than asking for a second range.
const maxRangeGap = 1 << 20

// maxTreeBatch bounds the trees read at once, and so held in memory
// together, by a walk of a snapshot's trees.
const maxTreeBatch = 512

// nextSpan returns the range one read covers for n blobs of a pack sorted
// by offset, loc(i) being the i-th: the first j of them, each no more than
// maxRangeGap past the end of those before.
func nextSpan(n int, loc func(int) location) (j int, start, end int64) {
	start = int64(loc(0).offset)
	end = start + int64(loc(0).length)
	for j = 1; j < n; j++ {
		l := loc(j)
		if int64(l.offset) > end+maxRangeGap {
			break
		}
		end = max(end, int64(l.offset)+int64(l.length))
	}
	return j, start, end
}

// readPackRange reads bytes [start, end) of a pack, refusing fewer.
func (r *Repo) readPackRange(ctx context.Context, pack ID, start, end int64) ([]byte, error) {
	name := packName(pack)
	rc, err := r.b.Get(ctx, name, start, end-start)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	// Read into a buffer of the range's size (from getBuf: the caller
	// may give it back), then make sure nothing follows.
	buf := getBuf(int(end - start))[:end-start]
	n, err := io.ReadFull(rc, buf)
	if err == nil {
		var one [1]byte
		var m int
		m, err = io.ReadFull(rc, one[:])
		n += m
		if err == io.EOF {
			return buf, nil
		}
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return nil, corrupt(r.b, name, fmt.Errorf("range %d-%d holds %d bytes", start, end, n))
}

// loadTrees reads and checks the trees ids (an id may come more than
// once), grouped by pack: one ranged read per run of them in a pack, not
// one per tree, which on a bucket is the difference between a round trip
// per directory and one per pack. The first tree that cannot be read
// fails it.
func (r *Repo) loadTrees(ctx context.Context, ids []ID) (map[ID]*Tree, error) {
	out := make(map[ID]*Tree, len(ids))
	err := r.eachTree(ctx, ids, func(id ID, t *Tree, err error) error {
		out[id] = t
		return err
	})
	return out, err
}

// eachTree reads the trees ids as loadTrees does, and calls fn once per
// distinct id with its tree, or with why it could not be read: not in the
// index, ErrCorrupt, or the backend's error for its range. An error from
// fn ends it.
func (r *Repo) eachTree(ctx context.Context, ids []ID, fn func(ID, *Tree, error) error) error {
	type treeAt struct {
		id  ID
		loc location
	}
	seen := make(map[ID]bool, len(ids))
	byPack := map[ID][]treeAt{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		l, ok := r.lookup(TreeBlob, id)
		if !ok {
			if err := fn(id, nil, r.notIndexed(TreeBlob, id)); err != nil {
				return err
			}
			continue
		}
		byPack[l.pack] = append(byPack[l.pack], treeAt{id, l})
	}
	for _, pack := range sortedIDs(byPack) {
		ts := byPack[pack]
		slices.SortFunc(ts, func(a, b treeAt) int { return cmp.Compare(a.loc.offset, b.loc.offset) })
		for len(ts) > 0 {
			j, start, end := nextSpan(len(ts), func(i int) location { return ts[i].loc })
			buf, rerr := r.readPackRange(ctx, pack, start, end)
			for _, t := range ts[:j] {
				tree, err := r.openTree(pack, t.id, t.loc, buf, start, rerr)
				if err := fn(t.id, tree, err); err != nil {
					return err
				}
			}
			ts = ts[j:]
		}
	}
	return nil
}

// openTree opens and decodes a tree blob at loc in buf, the bytes of its
// pack from start (or their read's error, rerr).
func (r *Repo) openTree(pack, id ID, loc location, buf []byte, start int64, rerr error) (*Tree, error) {
	if rerr != nil {
		return nil, fmt.Errorf("tree blob %v: %w", id, rerr)
	}
	c := buf[int64(loc.offset)-start : int64(loc.offset)-start+int64(loc.length)]
	p, err := r.mk.openBlob(TreeBlob, id, int(loc.rawLen), c)
	if err != nil {
		return nil, corrupt(r.b, packName(pack), fmt.Errorf("tree blob %v: %w", id, err))
	}
	tree, err := decodeTree(p)
	if err != nil {
		return nil, fmt.Errorf("tree %v: %w: %w", id, ErrCorrupt, err)
	}
	return tree, nil
}

// notIndexed is the error for a blob the index does not know. When
// indexes were skipped because they failed their checks, it names them
// and is ErrCorrupt: the blob may be in a pack only they named.
func (r *Repo) notIndexed(t BlobType, id ID) error {
	r.mu.RLock()
	var bad []error
	for _, name := range slices.Sorted(maps.Keys(r.badIndexes)) {
		bad = append(bad, r.badIndexes[name])
	}
	r.mu.RUnlock()
	if len(bad) > 0 {
		return fmt.Errorf("%s blob %v: %w, perhaps in a pack named only by an index that did not read (prune reads such packs and indexes them again): %w",
			t, id, errNotIndexed, errors.Join(bad...))
	}
	return fmt.Errorf("%s blob %v: %w", t, id, errNotIndexed)
}

var errNotIndexed = errors.New("not in the index")
