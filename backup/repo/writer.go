package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// DefaultPackSize is the size at which a Writer closes a pack and uploads
// it: large enough that a bucket holds few objects per GiB, small enough
// that one pack in memory and a retried upload cost little.
const DefaultPackSize = 4 << 20

// maxPackBlobs bounds the blobs of one pack, so that a header fits in
// memory even when fuzzed.
const maxPackBlobs = 1 << 16

// Writer adds blobs to a repository: it seals new ones, fills a pack in
// memory (data and trees in packs of their own, so that a snapshot's
// trees lie in few packs, which a walk of them reads at once), and when
// it is full hands it to an uploader goroutine, which
// puts the pack and then an index of it (a checkpoint, so that an
// interrupted run loses at most the packs not yet put) while the Writer
// fills the next one. At Flush it waits for the uploads, writes one index
// of every pack it uploaded and removes its checkpoints. A Writer's
// methods are not safe for concurrent use.
type Writer struct {
	r        *Repo
	packSize int

	fills   [2]packFill     // being filled: data blobs, tree blobs
	pending map[handle]bool // in a fill, or handed to the uploader and not yet indexed

	up *uploader // nil until the first pack is full

	// repack makes has look only at the blobs this writer holds, so that
	// Prune can copy blobs the index places in packs it will delete.
	repack bool
	// written are the packs put, once waited for.
	written []packIndex

	// Stats of what this writer stored. Read them after Flush; during a
	// run, Uploaded says what went up.
	Stats WriteStats
}

// WriteStats counts what a Writer stored.
type WriteStats struct {
	Packs       int
	PackBytes   uint64 // bytes of the packs uploaded
	IndexBytes  uint64 // bytes of the indexes uploaded (checkpoints too)
	BlobsAdded  int
	BlobsReused int // already in the repository
}

// packFill is a pack being filled.
type packFill struct {
	buf     []byte
	entries []packEntry
}

// fillOf is the fill a blob type goes to.
func fillOf(t BlobType) int {
	if t == TreeBlob {
		return 1
	}
	return 0
}

// uploadQueue is how many full packs may wait for the uploader: with the
// one it puts and the two being filled, a Writer holds at most
// uploadQueue+3 packs in memory.
const uploadQueue = 1

// uploader puts a Writer's packs, in order, on its own goroutine.
type uploader struct {
	packs chan upload
	done  chan struct{}

	mu          sync.Mutex
	err         error       // the first failure; every later pack is dropped
	written     []packIndex // packs put, with their checkpoints
	checkpoints []string
	packBytes   uint64
	indexBytes  uint64
	indexed     []map[handle]bool // the pending sets of packs indexed, for the Writer to clear
}

type upload struct {
	pi      packIndex
	pack    []byte
	handles map[handle]bool
}

// NewWriter returns a Writer that fills packs of about packSize bytes
// (0: DefaultPackSize).
func (r *Repo) NewWriter(packSize int) *Writer {
	if packSize <= 0 {
		packSize = DefaultPackSize
	}
	return &Writer{r: r, packSize: packSize, pending: map[handle]bool{}}
}

// Add adds a blob of plaintext p unless the repository has it, and
// returns its id.
func (w *Writer) Add(ctx context.Context, t BlobType, p []byte) (ID, error) {
	id := w.r.mk.BlobID(p)
	if w.has(t, id) {
		w.Stats.BlobsReused++
		return id, nil
	}
	sb, err := w.r.mk.sealBlob(t, id, p)
	if err != nil {
		return ID{}, err
	}
	return id, w.addSealed(ctx, sb)
}

// AddSealed adds a blob sealed by MasterKey.Seal with this repository's
// master key, unless the repository has it. It trusts sb: a blob sealed
// under another key is found out by Check, not here.
func (w *Writer) AddSealed(ctx context.Context, sb SealedBlob) error {
	if w.has(sb.Type, sb.ID) {
		w.Stats.BlobsReused++
		return nil
	}
	if sb.Type != DataBlob && sb.Type != TreeBlob || len(sb.Sealed) < sealOverhead+1 {
		return fmt.Errorf("add sealed blob %v: not a sealed blob", sb.ID)
	}
	return w.addSealed(ctx, sb)
}

func (w *Writer) has(t BlobType, id ID) bool {
	w.clearIndexed()
	return w.pending[handle{t, id}] || !w.repack && w.r.Has(t, id)
}

// clearIndexed forgets, from pending, the blobs of the packs the uploader
// has indexed since: the repository's index has them now.
func (w *Writer) clearIndexed() {
	if w.up == nil {
		return
	}
	w.up.mu.Lock()
	done := w.up.indexed
	w.up.indexed = nil
	w.up.mu.Unlock()
	for _, hs := range done {
		for h := range hs {
			delete(w.pending, h)
		}
	}
}

func (w *Writer) addSealed(ctx context.Context, sb SealedBlob) error {
	if err := w.failed(); err != nil {
		return err
	}
	f := &w.fills[fillOf(sb.Type)]
	if uint64(len(f.buf))+uint64(len(sb.Sealed)) > 1<<31 {
		return fmt.Errorf("add blob %v: %d bytes would overflow a pack", sb.ID, len(sb.Sealed))
	}
	// A blob that would take a pack past its buffer (and the room its
	// header needs) goes in the next, so that the buffer never grows:
	// packs close at packSize, and a chunk of up to 8 MiB could land on
	// one just under it.
	if len(f.entries) > 0 && sb.Type == DataBlob && len(f.buf)+len(sb.Sealed) > w.packSize+w.packSize/4 {
		if err := w.closePack(ctx, f); err != nil {
			return err
		}
	}
	if f.buf == nil && sb.Type == DataBlob {
		f.buf = w.newPackBuf()
	}
	f.entries = append(f.entries, packEntry{Type: sb.Type, ID: sb.ID, Offset: uint32(len(f.buf)), Length: uint32(len(sb.Sealed)), RawLen: sb.RawLen})
	f.buf = append(f.buf, sb.Sealed...)
	w.pending[handle{sb.Type, sb.ID}] = true
	w.Stats.BlobsAdded++
	if len(f.buf) >= w.packSize || len(f.entries) >= maxPackBlobs {
		return w.closePack(ctx, f)
	}
	return nil
}

// packBufs recycles the buffers data packs are filled in (bufs.go says
// why).
var packBufs sync.Pool

// newPackBuf returns an empty buffer for a data pack.
func (w *Writer) newPackBuf() []byte {
	n := w.packSize + w.packSize/2 // room for the header beyond packSize + packSize/4
	if v, ok := packBufs.Get().(*[]byte); ok && cap(*v) >= n {
		return *v
	}
	return make([]byte, 0, n)
}

// failed returns the uploader's failure, if any.
func (w *Writer) failed() error {
	if w.up == nil {
		return nil
	}
	w.up.mu.Lock()
	defer w.up.mu.Unlock()
	return w.up.err
}

// Uploaded returns the bytes of the packs and indexes this Writer has put
// so far; it only grows.
func (w *Writer) Uploaded() uint64 {
	n := w.Stats.PackBytes + w.Stats.IndexBytes
	if w.up == nil {
		return n
	}
	w.up.mu.Lock()
	defer w.up.mu.Unlock()
	return n + w.up.packBytes + w.up.indexBytes
}

// closePack seals a pack being filled and hands it to the uploader,
// waiting while uploadQueue packs already wait.
func (w *Writer) closePack(ctx context.Context, f *packFill) error {
	if len(f.entries) == 0 {
		return nil
	}
	pack := w.r.mk.seal(f.buf, adPackHeader, encodePackHeader(f.entries))
	pack = binary.LittleEndian.AppendUint32(pack, uint32(len(pack)-len(f.buf)))
	u := upload{pi: packIndex{ID: sha(pack), Blobs: f.entries}, pack: pack, handles: map[handle]bool{}}
	for _, e := range f.entries {
		u.handles[handle{e.Type, e.ID}] = true
	}
	*f = packFill{}
	if w.up == nil {
		w.up = &uploader{packs: make(chan upload, uploadQueue), done: make(chan struct{})}
		go w.up.run(ctx, w)
	}
	select {
	case w.up.packs <- u:
	case <-ctx.Done():
		return ctx.Err()
	}
	return w.failed()
}

// run puts packs until the channel closes. ctx is the first pack's: once
// it is canceled, the puts fail.
func (u *uploader) run(ctx context.Context, w *Writer) {
	defer close(u.done)
	for p := range u.packs {
		u.mu.Lock()
		failed := u.err != nil
		u.mu.Unlock()
		if failed {
			continue
		}
		err := put(ctx, w.r.b, packName(p.pi.ID), p.pack)
		var name string
		var size int
		if err == nil {
			// Stored: the backend has read the whole pack. (After a
			// failure it is left to the collector, in case a canceled
			// request's transport still reads it.)
			buf := p.pack[:0]
			packBufs.Put(&buf)
			name, size, err = w.writeIndex(ctx, []packIndex{p.pi})
		} else {
			err = fmt.Errorf("upload pack: %w", err)
		}
		if err == nil {
			w.r.addToIndex([]packIndex{p.pi})
		}
		u.mu.Lock()
		if err != nil {
			u.err = err
		} else {
			u.written = append(u.written, p.pi)
			u.checkpoints = append(u.checkpoints, name)
			u.packBytes += uint64(len(p.pack))
			u.indexBytes += uint64(size)
			u.indexed = append(u.indexed, p.handles)
		}
		u.mu.Unlock()
	}
}

// wait closes the queue and waits for the uploads, then takes what they
// did into the Writer's stats. The Writer makes a new uploader for its
// next pack. A Writer given up on (its run failed) must still be waited
// for, so that its uploader ends: Abandon.
func (w *Writer) wait() (written []packIndex, checkpoints []string, err error) {
	if w.up == nil {
		return nil, nil, nil
	}
	close(w.up.packs)
	<-w.up.done
	up := w.up
	w.up = nil
	w.Stats.Packs += len(up.written)
	w.Stats.PackBytes += up.packBytes
	w.Stats.IndexBytes += up.indexBytes
	w.written = append(w.written, up.written...)
	for _, hs := range up.indexed {
		for h := range hs {
			delete(w.pending, h)
		}
	}
	return up.written, up.checkpoints, up.err
}

// Abandon waits for the packs handed over to be put or to fail, without
// writing the final index; for a Writer whose run failed.
func (w *Writer) Abandon() { w.wait() }

// writeIndex puts an index of ps and returns its name and size. It is
// safe for concurrent use (the uploader and Prune call it).
func (w *Writer) writeIndex(ctx context.Context, ps []packIndex) (string, int, error) {
	sealed := w.r.mk.seal(nil, adIndex, encodeIndex(ps))
	name := indexName(sha(sealed))
	if err := put(ctx, w.r.b, name, sealed); err != nil {
		return "", 0, fmt.Errorf("write index: %w", err)
	}
	w.r.noteIndex(name, true)
	return name, len(sealed), nil
}

// Flush uploads the packs being filled, waits for every upload, and
// replaces this writer's checkpoint indexes with one index of all its
// packs. After Flush every blob added is in the repository.
func (w *Writer) Flush(ctx context.Context) error {
	err := errors.Join(w.closePack(ctx, &w.fills[0]), w.closePack(ctx, &w.fills[1]))
	written, checkpoints, werr := w.wait()
	if err = errors.Join(err, werr); err != nil {
		return err
	}
	if len(checkpoints) < 2 {
		return nil
	}
	_, size, err := w.writeIndex(ctx, written)
	if err != nil {
		return err
	}
	w.Stats.IndexBytes += uint64(size)
	var errs []error
	for _, name := range checkpoints {
		if err := w.r.b.Delete(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		w.r.noteIndex(name, false)
	}
	if err := errors.Join(errs...); err != nil {
		// The full index is written: leftover checkpoints only repeat it.
		return fmt.Errorf("flush: removing checkpoint indexes: %w", err)
	}
	return nil
}
