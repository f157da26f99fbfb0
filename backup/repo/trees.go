package repo

import (
	"cmp"
	"context"
	"fmt"
	"io"
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
	buf, err := io.ReadAll(io.LimitReader(rc, end-start+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(buf)) != end-start {
		return nil, corrupt(r.b, name, fmt.Errorf("range %d-%d holds %d bytes", start, end, len(buf)))
	}
	return buf, nil
}

// loadTrees reads and checks the trees ids (an id may come more than
// once), grouped by pack: one ranged read per run of them in a pack, not
// one per tree, which on a bucket is the difference between a round trip
// per directory and one per pack.
func (r *Repo) loadTrees(ctx context.Context, ids []ID) (map[ID]*Tree, error) {
	type treeAt struct {
		id  ID
		loc location
	}
	out := make(map[ID]*Tree, len(ids))
	byPack := map[ID][]treeAt{}
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		l, ok := r.lookup(TreeBlob, id)
		if !ok {
			return nil, r.notIndexed(TreeBlob, id)
		}
		out[id] = nil
		byPack[l.pack] = append(byPack[l.pack], treeAt{id, l})
	}
	for _, pack := range sortedIDs(byPack) {
		ts := byPack[pack]
		slices.SortFunc(ts, func(a, b treeAt) int { return cmp.Compare(a.loc.offset, b.loc.offset) })
		for len(ts) > 0 {
			j, start, end := nextSpan(len(ts), func(i int) location { return ts[i].loc })
			buf, err := r.readPackRange(ctx, pack, start, end)
			if err != nil {
				return nil, err
			}
			for _, t := range ts[:j] {
				c := buf[int64(t.loc.offset)-start : int64(t.loc.offset)-start+int64(t.loc.length)]
				p, err := r.mk.openBlob(TreeBlob, t.id, int(t.loc.rawLen), c)
				if err != nil {
					return nil, corrupt(r.b, packName(pack), fmt.Errorf("tree blob %v: %w", t.id, err))
				}
				tree, err := decodeTree(p)
				if err != nil {
					return nil, fmt.Errorf("tree %v: %w: %w", t.id, ErrCorrupt, err)
				}
				out[t.id] = tree
			}
			ts = ts[j:]
		}
	}
	return out, nil
}

// notIndexed is the error for a blob the index does not know.
func (r *Repo) notIndexed(t BlobType, id ID) error {
	return fmt.Errorf("%s blob %v: not in the index", t, id)
}
