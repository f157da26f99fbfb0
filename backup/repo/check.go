package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/weftos/weft/backup/object"
)

// CheckResult is what Check found. Unreferenced packs (left by an
// interrupted run) are not problems.
type CheckResult struct {
	// Problems with objects: indexes, packs, snapshots that do not read.
	Problems []string
	// Snapshots lists every snapshot with what it lacks.
	Snapshots []SnapshotCheck
	// Unreferenced are packs no index names.
	Unreferenced []ID
}

// SnapshotCheck is one snapshot's findings: every blob it needs that is
// missing or corrupt, with the path that needs it.
type SnapshotCheck struct {
	ID       ID
	Problems []string
}

// OK reports whether nothing is missing or corrupt.
func (c *CheckResult) OK() bool {
	if len(c.Problems) > 0 {
		return false
	}
	for _, s := range c.Snapshots {
		if len(s.Problems) > 0 {
			return false
		}
	}
	return true
}

// Broken lists the snapshots with problems.
func (c *CheckResult) Broken() []ID {
	var ids []ID
	for _, s := range c.Snapshots {
		if len(s.Problems) > 0 {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// Check reads every index again (reporting each that fails its checks),
// lists the packs once, and reports each pack an index names that is
// missing or whose size is not the one the index gives (an index lists
// every blob of a pack, so its size is known: see docs/backup.md) and
// each pack no index names (Unreferenced); then it walks every snapshot's
// trees and says per snapshot which blobs are missing or corrupt, and
// where. With readData it also downloads every indexed pack, checks its
// SHA-256 against its name, decrypts its header and every blob and
// checks each blob's id. An error is returned only when the check itself
// cannot go on (the backend fails); what it finds is in the result.
func (r *Repo) Check(ctx context.Context, readData bool) (*CheckResult, error) {
	c := &checker{r: r, res: &CheckResult{}, index: map[handle]location{}, indexed: map[ID]packShape{},
		present: map[ID]int64{}, badPack: map[ID]string{}, badBlob: map[handle]string{}, info: map[ID]*treeInfo{}, trees: map[ID][]string{}}
	if err := c.run(ctx, readData); err != nil {
		return nil, fmt.Errorf("check %s: %w", r.b, err)
	}
	return c.res, nil
}

type checker struct {
	r       *Repo
	res     *CheckResult
	index   map[handle]location
	indexed map[ID]packShape
	present map[ID]int64 // pack → size
	badPack map[ID]string
	badBlob map[handle]string
	info    map[ID]*treeInfo
	trees   map[ID][]string // problems below a tree, paths relative to it
}

// packShape is what an index says of a pack: where its last blob ends,
// and how many it holds.
type packShape struct {
	end   uint64
	blobs int
}

// size is the pack's size in bytes: its blobs, its sealed header of one
// record a blob, and the header's length.
func (s packShape) size() uint64 { return s.end + sealOverhead + packRecord*uint64(s.blobs) + 4 }

func (c *checker) problem(format string, args ...any) {
	c.res.Problems = append(c.res.Problems, fmt.Sprintf(format, args...))
}

func (c *checker) run(ctx context.Context, readData bool) error {
	r := c.r
	// The trees are read through r's index: bring it up to date.
	if err := r.refreshIndexes(ctx); err != nil {
		return err
	}
	var indexes []string
	if err := r.b.List(ctx, indexDir, func(in object.Info) error { indexes = append(indexes, in.Name); return nil }); err != nil {
		return err
	}
	for _, name := range indexes {
		ps, err := r.readIndex(ctx, name)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return err
			}
			c.problem("%v", err)
			continue
		}
		for _, p := range ps {
			shape := packShape{blobs: len(p.Blobs)}
			for _, e := range p.Blobs {
				c.index[handle{e.Type, e.ID}] = location{pack: p.ID, offset: e.Offset, length: e.Length, rawLen: e.RawLen}
				shape.end = max(shape.end, uint64(e.Offset)+uint64(e.Length))
			}
			if prev, ok := c.indexed[p.ID]; ok && prev != shape {
				c.problem("%s: lists pack %s with %d blobs, another index with %d", name, packName(p.ID), shape.blobs, prev.blobs)
				shape = packShape{end: max(prev.end, shape.end), blobs: max(prev.blobs, shape.blobs)}
			}
			c.indexed[p.ID] = shape
		}
	}
	err := r.b.List(ctx, dataDir, func(in object.Info) error {
		id, err := ParseID(path.Base(in.Name))
		if err != nil || in.Name != packName(id) {
			c.problem("%s: not a pack's name", in.Name)
			return nil
		}
		c.present[id] = in.Size
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range sortedIDs(c.indexed) {
		switch size, ok := c.present[id]; {
		case !ok:
			c.badPack[id] = "missing"
		case uint64(size) != c.indexed[id].size():
			c.badPack[id] = fmt.Sprintf("%d bytes, its index says %d", size, c.indexed[id].size())
		}
	}
	for _, id := range sortedIDs(c.present) {
		if _, ok := c.indexed[id]; !ok {
			c.res.Unreferenced = append(c.res.Unreferenced, id)
			continue
		}
		if readData && c.badPack[id] == "" {
			if err := c.readPack(ctx, id); err != nil {
				return err
			}
		}
	}
	for _, id := range sortedIDs(c.badPack) {
		c.problem("%s: pack %s", packName(id), c.badPack[id])
	}

	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, id := range snaps {
		sc := SnapshotCheck{ID: id}
		m, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return err
			}
			sc.Problems = append(sc.Problems, err.Error())
		} else {
			root, _ := ParseID(m.Tree)
			if err := c.load(ctx, root); err != nil {
				return err
			}
			sc.Problems = c.tree(root, "/")
		}
		c.res.Snapshots = append(c.res.Snapshots, sc)
	}
	return ctx.Err()
}

// blobProblem says what is wrong with a blob, or "".
func (c *checker) blobProblem(t BlobType, id ID) string {
	l, ok := c.index[handle{t, id}]
	switch {
	case !ok:
		return fmt.Sprintf("%s blob %v: in no index", t, id)
	case c.badPack[l.pack] != "":
		return fmt.Sprintf("%s blob %v: its pack %s is %s", t, id, packName(l.pack), c.badPack[l.pack])
	case c.badBlob[handle{t, id}] != "":
		return fmt.Sprintf("%s blob %v in %s: %s", t, id, packName(l.pack), c.badBlob[handle{t, id}])
	}
	return ""
}

// treeInfo is what check keeps of a tree: the problems of its own (it
// could not be read, or its files' blobs) and its subdirectories.
type treeInfo struct {
	own  []string
	subs []subdir
}

type subdir struct {
	name string
	id   ID
}

// load reads the trees under root that it has not read yet, breadth first
// and in batches grouped by pack, as a restore does. Only a failure of
// the backend fails it; a tree that is missing or corrupt is a problem.
func (c *checker) load(ctx context.Context, root ID) error {
	queue := []ID{root}
	for len(queue) > 0 {
		var read []ID
		for len(queue) > 0 && len(read) < maxTreeBatch {
			id := queue[0]
			queue = queue[1:]
			if _, ok := c.info[id]; ok {
				continue
			}
			if p := c.blobProblem(TreeBlob, id); p != "" {
				c.info[id] = &treeInfo{own: []string{": " + p}}
				continue
			}
			c.info[id] = nil // being read
			read = append(read, id)
		}
		err := c.r.eachTree(ctx, read, func(id ID, t *Tree, err error) error {
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, object.ErrNotFound) && !errors.Is(err, errNotIndexed) {
					return err
				}
				c.info[id] = &treeInfo{own: []string{": " + err.Error()}}
				return nil
			}
			ti := &treeInfo{}
			for _, n := range t.Nodes {
				switch n.Type {
				case NodeFile:
					for _, s := range n.Content {
						bid, _ := ParseID(s)
						if p := c.blobProblem(DataBlob, bid); p != "" {
							ti.own = append(ti.own, n.Name+": "+p)
						}
					}
				case NodeDir:
					sub, _ := ParseID(n.Subtree)
					ti.subs = append(ti.subs, subdir{n.Name, sub})
					if _, ok := c.info[sub]; !ok {
						queue = append(queue, sub)
					}
				}
			}
			c.info[id] = ti
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tree returns the problems of the tree id and everything below it, all
// of them loaded.
func (c *checker) tree(id ID, at string) []string {
	if ps, ok := c.trees[id]; ok {
		return prefixed(at, ps)
	}
	ti := c.info[id]
	ps := slices.Clone(ti.own)
	for _, s := range ti.subs {
		ps = append(ps, c.tree(s.id, s.name+"/")...)
	}
	c.trees[id] = ps
	return prefixed(at, ps)
}

func prefixed(at string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = at + p
	}
	return out
}

// readPack downloads a pack and checks everything in it.
func (c *checker) readPack(ctx context.Context, id ID) error {
	r := c.r
	name := packName(id)
	raw, err := object.ReadAll(ctx, r.b, name)
	if err != nil {
		if errors.Is(err, object.ErrNotFound) {
			c.badPack[id] = "missing"
			return nil
		}
		return err
	}
	if sha(raw) != id {
		c.badPack[id] = "corrupt: its bytes do not hash to its name"
		return nil
	}
	es, err := r.mk.parsePack(raw)
	if err != nil {
		c.badPack[id] = "corrupt: " + err.Error()
		return nil
	}
	inPack := map[handle]bool{}
	for _, e := range es {
		h := handle{e.Type, e.ID}
		inPack[h] = true
		if l, ok := c.index[h]; ok && l.pack == id && (l.offset != e.Offset || l.length != e.Length || l.rawLen != e.RawLen) {
			c.badBlob[h] = "its index entry does not match the pack's header"
			continue
		}
		if _, err := r.mk.openBlob(e.Type, e.ID, int(e.RawLen), raw[e.Offset:e.Offset+e.Length]); err != nil {
			c.badBlob[h] = err.Error()
		}
	}
	for h, l := range c.index {
		if l.pack == id && !inPack[h] {
			c.badBlob[h] = "indexed in the pack, but not in its header"
		}
	}
	return nil
}

// parsePack reads a whole pack's trailer and header.
func (mk *MasterKey) parsePack(raw []byte) ([]packEntry, error) {
	if len(raw) < 4 {
		return nil, errors.New("too short")
	}
	n := uint64(binary.LittleEndian.Uint32(raw[len(raw)-4:]))
	if n > uint64(len(raw)-4) || n > sealOverhead+maxPackBlobs*packRecord {
		return nil, fmt.Errorf("header length %d does not fit", n)
	}
	at := uint64(len(raw)-4) - n
	h, err := mk.open(adPackHeader, raw[at:len(raw)-4])
	if err != nil {
		return nil, fmt.Errorf("header %w", err)
	}
	return decodePackHeader(h, at)
}

func sortedIDs[V any](m map[ID]V) []ID {
	ids := make([]ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sortIDs(ids)
	return ids
}

func sortIDs(ids []ID) {
	slices.SortFunc(ids, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
}
