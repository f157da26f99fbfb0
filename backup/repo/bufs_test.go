package repo

import (
	"context"
	"testing"

	"github.com/weftos/weft/backup/object"
)

func TestBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, 100, 64 << 10, 64<<10 + 1, 1 << 20, 3 << 20, 8 << 20, 128 << 20} {
		b := getBuf(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("getBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		if c := cap(b); c < 2*max(n, 64<<10) && c&(c-1) != 0 {
			t.Fatalf("getBuf(%d): cap %d is not a class", n, c)
		}
		putBuf(b[:n/2])
	}
	// Beyond the largest class: exact, and not kept.
	b := getBuf(200 << 20)
	if cap(b) != 200<<20 {
		t.Fatalf("getBuf(200 MiB): cap %d", cap(b))
	}
	putBuf(b)
	// Buffers not made by getBuf are refused.
	putBuf(make([]byte, 0, 3<<20))
	if b := getBuf(3 << 20); cap(b) != 4<<20 {
		t.Fatalf("getBuf(3 MiB) after putBuf of a foreign 3 MiB buffer: cap %d, want 4 MiB", cap(b))
	}
}

// A sealed blob opens to what was sealed, whether its buffer is fresh or
// recycled (left dirty by an earlier, larger blob).
func TestSealBlobRecycled(t *testing.T) {
	mk := fuzzKey
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	sb, err := mk.Seal(DataBlob, big)
	if err != nil {
		t.Fatal(err)
	}
	putBuf(sb.Sealed)
	small := []byte("a small blob, compressible compressible compressible")
	sb2, err := mk.Seal(DataBlob, small)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mk.openBlob(DataBlob, sb2.ID, int(sb2.RawLen), sb2.Sealed)
	if err != nil || string(got) != string(small) {
		t.Fatalf("open: %q, %v", got, err)
	}
}

// Buffers of a class no longer asked for give their room up: once the
// kept bytes are full of 16 MiB buffers, 1 MiB ones are still kept.
func TestBufRoomMovesToTheClassesInUse(t *testing.T) {
	bufs.mu.Lock()
	saved := bufs.free
	savedKept := bufs.kept
	bufs.free, bufs.kept = [maxBufClass + 1][][]byte{}, 0
	bufs.mu.Unlock()
	t.Cleanup(func() {
		bufs.mu.Lock()
		bufs.free, bufs.kept = saved, savedKept
		bufs.mu.Unlock()
	})
	for range maxKept / (16 << 20) {
		putBuf(make([]byte, 0, 16<<20))
	}
	if bufs.kept != maxKept {
		t.Fatalf("kept %d, want %d", bufs.kept, maxKept)
	}
	var ones [][]byte
	for range 4 {
		ones = append(ones, getBuf(1<<20))
	}
	for _, b := range ones {
		putBuf(b)
	}
	if got := len(bufs.free[20]); got != 4 || bufs.kept > maxKept {
		t.Fatalf("1 MiB buffers kept: %d (kept %d of %d)", got, bufs.kept, maxKept)
	}
	if b := getBuf(1 << 20); &b[:1][0] != &ones[3][:1][0] {
		t.Fatal("getBuf(1 MiB) did not reuse a kept buffer")
	}
}

// A data pack closes before a blob that would take it past its buffer,
// so the buffer is never grown (and copied): every pack of blobs that
// each fit is at most packSize + packSize/4 of blobs and its header, and
// one larger blob goes in a pack alone.
func TestPacksStayInTheirBuffers(t *testing.T) {
	ctx := context.Background()
	r, b, _ := testRepo(t)
	const packSize = 64 << 10
	w := r.NewWriter(packSize)
	sizes := []int{60 << 10, 63 << 10, 5 << 10, 200 << 10, 10 << 10, 63 << 10, 40 << 10, 30 << 10, 1 << 10}
	for i, n := range sizes {
		if _, err := w.Add(ctx, DataBlob, randBytes(uint64(500+i), n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	const header = 40 + 4 // the sealed header's overhead, and the length at the end
	packs := 0
	err := b.List(ctx, dataDir, func(in object.Info) error {
		packs++
		if in.Size > packSize+packSize/4+header+41*4 && in.Size < 200<<10 {
			t.Errorf("pack %s: %d bytes, past its buffer", in.Name, in.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if packs < 4 {
		t.Fatalf("%d packs for %d blobs", packs, len(sizes))
	}
	if c, err := r.Check(ctx, true); err != nil || !c.OK() {
		t.Fatalf("check: %+v, %v", c, err)
	}
}
