package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// DefaultPackSize is the size at which a Writer closes a pack and uploads
// it: large enough that a bucket holds few objects per GiB, small enough
// that one pack in memory and a retried upload cost little.
const DefaultPackSize = 4 << 20

// maxPackBlobs bounds the blobs of one pack, so that a header fits in
// memory even when fuzzed.
const maxPackBlobs = 1 << 16

// Writer adds blobs to a repository: it seals new ones, fills a pack in
// memory, uploads it when full together with an index of it (a
// checkpoint, so that an interrupted run loses at most the pack being
// filled), and at Flush writes one index of every pack it uploaded and
// removes its checkpoints. A Writer is not safe for concurrent use.
type Writer struct {
	r        *Repo
	packSize int

	buf     []byte
	entries []packEntry
	pending map[handle]bool // in buf, not yet uploaded

	written     []packIndex // packs uploaded
	checkpoints []string    // their index objects

	// repack makes has look only at the blobs this writer holds, so that
	// Prune can copy blobs the index places in packs it will delete.
	repack bool

	// Stats of what this writer stored.
	Stats WriteStats
}

// WriteStats counts what a Writer stored.
type WriteStats struct {
	Packs       int
	PackBytes   uint64 // bytes of the packs uploaded
	BlobsAdded  int
	BlobsReused int // already in the repository
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
	sb, err := w.r.mk.Seal(t, p)
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
	return w.pending[handle{t, id}] || !w.repack && w.r.Has(t, id)
}

func (w *Writer) addSealed(ctx context.Context, sb SealedBlob) error {
	if uint64(len(w.buf))+uint64(len(sb.Sealed)) > 1<<31 {
		return fmt.Errorf("add blob %v: %d bytes would overflow a pack", sb.ID, len(sb.Sealed))
	}
	w.entries = append(w.entries, packEntry{Type: sb.Type, ID: sb.ID, Offset: uint32(len(w.buf)), Length: uint32(len(sb.Sealed)), RawLen: sb.RawLen})
	w.buf = append(w.buf, sb.Sealed...)
	w.pending[handle{sb.Type, sb.ID}] = true
	w.Stats.BlobsAdded++
	if len(w.buf) >= w.packSize || len(w.entries) >= maxPackBlobs {
		return w.uploadPack(ctx)
	}
	return nil
}

// uploadPack closes the pack being filled and uploads it, then its
// checkpoint index.
func (w *Writer) uploadPack(ctx context.Context) error {
	if len(w.entries) == 0 {
		return nil
	}
	pack := w.r.mk.seal(w.buf, adPackHeader, encodePackHeader(w.entries))
	pack = binary.LittleEndian.AppendUint32(pack, uint32(len(pack)-len(w.buf)))
	id := sha(pack)
	if err := put(ctx, w.r.b, packName(id), pack); err != nil {
		return fmt.Errorf("upload pack: %w", err)
	}
	pi := packIndex{ID: id, Blobs: w.entries}
	name, err := w.writeIndex(ctx, []packIndex{pi})
	if err != nil {
		return err
	}
	w.r.addToIndex([]packIndex{pi})
	w.checkpoints = append(w.checkpoints, name)
	w.written = append(w.written, pi)
	w.Stats.Packs++
	w.Stats.PackBytes += uint64(len(pack))
	w.buf, w.entries = pack[:0], nil // the backend has read it all
	clear(w.pending)
	return nil
}

func (w *Writer) writeIndex(ctx context.Context, ps []packIndex) (string, error) {
	sealed := w.r.mk.seal(nil, adIndex, encodeIndex(ps))
	name := indexName(sha(sealed))
	if err := put(ctx, w.r.b, name, sealed); err != nil {
		return "", fmt.Errorf("write index: %w", err)
	}
	return name, nil
}

// Flush uploads the pack being filled and replaces this writer's
// checkpoint indexes with one index of all its packs. After Flush every
// blob added is in the repository.
func (w *Writer) Flush(ctx context.Context) error {
	if err := w.uploadPack(ctx); err != nil {
		return err
	}
	if len(w.checkpoints) < 2 {
		w.checkpoints, w.written = nil, nil
		return nil
	}
	if _, err := w.writeIndex(ctx, w.written); err != nil {
		return err
	}
	var errs []error
	for _, name := range w.checkpoints {
		if err := w.r.b.Delete(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	w.checkpoints, w.written = nil, nil
	if err := errors.Join(errs...); err != nil {
		// The full index is written: leftover checkpoints only repeat it.
		return fmt.Errorf("flush: removing checkpoint indexes: %w", err)
	}
	return nil
}
