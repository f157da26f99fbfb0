package repo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/chacha20poly1305"
)

// ID names a blob (HMAC-SHA256 of its plaintext under the id key) or an
// object (SHA-256 of its bytes).
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads an ID written by String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("id %.80q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("id %.80q: %w", s, err)
	}
	return id, nil
}

// BlobType says what a blob holds.
type BlobType uint8

const (
	DataBlob BlobType = 1 // a chunk of a file's content
	TreeBlob BlobType = 2 // a directory: a serialised tree
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// MasterKey is a repository's secret: the key that seals every blob and
// object, and the key that names blobs. Several repositories (one per
// bucket) may share one, so that a blob sealed once fits all of them.
type MasterKey struct {
	enc [32]byte // XChaCha20-Poly1305 key
	mac [32]byte // HMAC-SHA256 key of blob ids
}

// NewKey returns a random master key.
func NewKey() (*MasterKey, error) {
	var mk MasterKey
	if _, err := rand.Read(mk.enc[:]); err != nil {
		return nil, fmt.Errorf("new master key: %w", err)
	}
	if _, err := rand.Read(mk.mac[:]); err != nil {
		return nil, fmt.Errorf("new master key: %w", err)
	}
	return &mk, nil
}

// BlobID is the id of a blob whose plaintext is p.
func (mk *MasterKey) BlobID(p []byte) ID {
	h := hmac.New(sha256.New, mk.mac[:])
	h.Write(p)
	var id ID
	h.Sum(id[:0])
	return id
}

// Associated data binds each ciphertext to what it is, so that one moved
// elsewhere (a tree's bytes offered as config, a blob under another id)
// fails to open.
const (
	adConfig     = "weft-backup/v1 config"
	adIndex      = "weft-backup/v1 index"
	adSnapshot   = "weft-backup/v1 snapshot"
	adPackHeader = "weft-backup/v1 pack-header"
	adLock       = "weft-backup/v1 lock"
)

func blobAD(t BlobType, id ID) []byte {
	return append([]byte("weft-backup/v1 "+t.String()+" "), id[:]...)
}

const sealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// errOpen is what every failed decryption says.
var errOpen = errors.New("does not decrypt: altered, truncated or not this repository's")

// seal returns nonce || XChaCha20-Poly1305(plaintext, ad), appended to dst.
func (mk *MasterKey) seal(dst []byte, ad string, p []byte) []byte {
	return mk.sealAD(dst, []byte(ad), p)
}

func (mk *MasterKey) sealAD(dst, ad, p []byte) []byte {
	aead, err := chacha20poly1305.NewX(mk.enc[:])
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	start := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	if _, err := rand.Read(dst[start:]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return aead.Seal(dst, dst[start:], p, ad)
}

// open reverses seal.
func (mk *MasterKey) open(ad string, c []byte) ([]byte, error) {
	return mk.openAD(nil, []byte(ad), c)
}

// openAD opens c, sealed with associated data ad, appending the
// plaintext to dst.
func (mk *MasterKey) openAD(dst, ad, c []byte) ([]byte, error) {
	if len(c) < sealOverhead {
		return nil, errOpen
	}
	aead, err := chacha20poly1305.NewX(mk.enc[:])
	if err != nil {
		panic(err)
	}
	n := chacha20poly1305.NonceSizeX
	p, err := aead.Open(dst, c[:n], c[n:], ad)
	if err != nil {
		return nil, errOpen
	}
	return p, nil
}

// Blob plaintexts are compressed when that makes them smaller; a flag byte
// says which.
const (
	flagRaw  = 0
	flagZstd = 1
)

// maxBlob bounds a blob's plaintext: the largest chunk the chunker may cut
// is far below it, and a tree of a directory of ~200,000 entries fits.
const maxBlob = 64 << 20

var (
	// One encoder and one decoder per core: EncodeAll and DecodeAll each
	// take one for the call, so with fewer the sealers of a backup and
	// the ranges of a restore would wait for each other.
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderLevel(zstd.SpeedFastest),
		// A 1 MiB window: chunks are 1 MiB on average, and the default (8
		// MiB) would hold 16 MiB of history per encoder for nothing.
		zstd.WithWindowSize(1<<20))
	// zdec decodes no more than the capacity of the buffer it is given,
	// the plaintext length the index records.
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(maxBlob),
		zstd.WithDecoderMaxWindow(maxBlob), zstd.WithDecodeAllCapLimit(true))
)

// compress appends to dst the flagged form of a blob's plaintext p: zstd
// when that is smaller. A blob of more than a few probes is probed first: when
// probeSize bytes at its start, middle and end each shrink by less than
// 1/32, it is taken for incompressible (compressed media, archives,
// encrypted or random bytes) and stored as it is, which spares most of
// the time compressing it would take for nothing.
func compress(dst, p []byte) []byte {
	start := len(dst)
	if len(p) >= 8*probeSize && incompressible(p) {
		return append(append(dst, flagRaw), p...)
	}
	dst = zenc.EncodeAll(p, append(dst, flagZstd))
	if len(dst)-start < 1+len(p) {
		return dst
	}
	return append(append(dst[:start], flagRaw), p...)
}

const probeSize = 8 << 10

func incompressible(p []byte) bool {
	var buf [probeSize + 512]byte
	for _, at := range []int{0, len(p)/2 - probeSize/2, len(p) - probeSize} {
		probe := p[at : at+probeSize]
		if z := zenc.EncodeAll(probe, buf[:0]); len(z) < probeSize-probeSize/32 {
			return false
		}
	}
	return true
}

// decompress reverses compress, into dst's storage when its capacity is
// enough (a raw blob's plaintext is f's, not copied); rawLen is the
// plaintext length the index records, and bounds what is decompressed.
func decompress(dst, f []byte, rawLen int) ([]byte, error) {
	if rawLen < 0 || rawLen > maxBlob {
		return nil, fmt.Errorf("blob of %d bytes: want 0 to %d", rawLen, maxBlob)
	}
	if len(f) == 0 {
		return nil, errors.New("empty blob")
	}
	switch f[0] {
	case flagRaw:
		p := f[1:]
		if len(p) != rawLen {
			return nil, fmt.Errorf("blob holds %d bytes, the index says %d", len(p), rawLen)
		}
		return p, nil
	case flagZstd:
		if cap(dst) < rawLen {
			dst = make([]byte, 0, rawLen)
		}
		// The decoder stops at the capacity it is given: the length the
		// index records.
		p, err := zdec.DecodeAll(f[1:], dst[:0:rawLen])
		if err != nil {
			return nil, fmt.Errorf("decompress blob: %w", err)
		}
		if len(p) != rawLen {
			return nil, fmt.Errorf("blob decompresses to %d bytes, the index says %d", len(p), rawLen)
		}
		return p, nil
	}
	return nil, fmt.Errorf("blob compression flag %d unknown", f[0])
}

// SealedBlob is a blob compressed and encrypted, ready to be added to any
// repository that shares its master key.
type SealedBlob struct {
	Type   BlobType
	ID     ID
	RawLen uint32 // length of the plaintext
	Sealed []byte // nonce || ciphertext, as stored in a pack
}

// Seal compresses and encrypts a blob once, for as many repositories of
// this master key as lack it.
func (mk *MasterKey) Seal(t BlobType, p []byte) (SealedBlob, error) {
	return mk.sealBlob(t, mk.BlobID(p), p)
}

// sealBlob is Seal for a blob whose id, mk.BlobID(p), is known.
func (mk *MasterKey) sealBlob(t BlobType, id ID, p []byte) (SealedBlob, error) {
	if t != DataBlob && t != TreeBlob {
		return SealedBlob{}, fmt.Errorf("seal: %v", t)
	}
	if len(p) > maxBlob {
		return SealedBlob{}, fmt.Errorf("seal: a blob of %d bytes, more than %d", len(p), maxBlob)
	}
	return SealedBlob{Type: t, ID: id, RawLen: uint32(len(p)), Sealed: mk.sealBlobData(blobAD(t, id), p)}, nil
}

// sealBlobData is sealAD(nil, ad, compress(nil, p)) done in one buffer from
// getBuf: the nonce, then the flagged plaintext, compressed there and
// then encrypted in place. Its result may be given back with putBuf.
func (mk *MasterKey) sealBlobData(ad, p []byte) []byte {
	const nonce = chacha20poly1305.NonceSizeX
	buf := getBuf(nonce + 1 + int(zenc.MaxEncodedSize(len(p))) + chacha20poly1305.Overhead)
	buf = compress(buf[:nonce], p)
	if _, err := rand.Read(buf[:nonce]); err != nil {
		panic(err) // crypto/rand does not fail
	}
	aead, err := chacha20poly1305.NewX(mk.enc[:])
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	// In place: the plaintext's storage takes the ciphertext, after the
	// nonce, which it does not overlap.
	return aead.Seal(buf[:nonce], buf[:nonce], buf[nonce:], ad)
}

// openBlob decrypts, decompresses and checks a sealed blob against the id
// it is stored under.
func (mk *MasterKey) openBlob(t BlobType, id ID, rawLen int, c []byte) ([]byte, error) {
	return mk.openBlobTo(nil, nil, t, id, rawLen, c)
}

// openBlobTo is openBlob decrypting into fbuf's storage and decompressing
// into pbuf's, each used when its capacity is enough; the plaintext it
// returns may be in either.
func (mk *MasterKey) openBlobTo(fbuf, pbuf []byte, t BlobType, id ID, rawLen int, c []byte) ([]byte, error) {
	f, err := mk.openAD(fbuf[:0], blobAD(t, id), c)
	if err != nil {
		return nil, err
	}
	p, err := decompress(pbuf[:0], f, rawLen)
	if err != nil {
		return nil, err
	}
	if mk.BlobID(p) != id {
		return nil, errors.New("plaintext does not hash to its id")
	}
	return p, nil
}

func sha(b []byte) ID { return sha256.Sum256(b) }
