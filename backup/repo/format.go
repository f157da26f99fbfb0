package repo

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/restic/chunker"
)

// The plaintext encodings of the repository's objects, each with its
// decoder. docs/backup.md is their specification.

// Version is the repository format this package writes and reads.
const Version = 1

// Params are what chunking depends on. Repositories that share a master
// key and Params cut and name every file's chunks the same way.
type Params struct {
	// Polynomial is the Rabin fingerprint's irreducible polynomial of
	// degree 53, random per repository so that chunk boundaries do not
	// fingerprint content.
	Polynomial uint64
	// MinSize and MaxSize bound a chunk; AverageBits sets the mean size to
	// 2^AverageBits bytes.
	MinSize, MaxSize uint32
	AverageBits      int
}

// NewParams returns a random polynomial with restic's chunk sizes: 512 KiB
// to 8 MiB, 1 MiB on average.
func NewParams() (Params, error) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Params{}, fmt.Errorf("new chunker polynomial: %w", err)
	}
	return Params{Polynomial: uint64(pol), MinSize: chunker.MinSize, MaxSize: chunker.MaxSize, AverageBits: 20}, nil
}

func (p Params) check() error {
	pol := chunker.Pol(p.Polynomial)
	switch {
	case pol.Deg() != 53 || !pol.Irreducible():
		return fmt.Errorf("chunker polynomial %#x is not irreducible of degree 53", p.Polynomial)
	case p.MinSize < 64 || p.MinSize >= p.MaxSize || p.MaxSize > 32<<20:
		return fmt.Errorf("chunk sizes %d to %d: want 64 <= min < max <= 32 MiB", p.MinSize, p.MaxSize)
	case p.AverageBits < 8 || p.AverageBits > 26:
		return fmt.Errorf("chunk average bits %d: want 8 to 26", p.AverageBits)
	}
	return nil
}

// config is the plaintext of the object "config".
type config struct {
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	Polynomial  string    `json:"chunker_polynomial"` // hex
	MinSize     uint32    `json:"chunk_min_size"`
	MaxSize     uint32    `json:"chunk_max_size"`
	AverageBits int       `json:"chunk_average_bits"`
	Created     time.Time `json:"created"`
}

func (c *config) params() (Params, error) {
	b, err := hex.DecodeString(c.Polynomial)
	if err != nil || len(b) != 8 {
		return Params{}, fmt.Errorf("chunker polynomial %.40q: want 16 hex digits", c.Polynomial)
	}
	p := Params{Polynomial: binary.BigEndian.Uint64(b), MinSize: c.MinSize, MaxSize: c.MaxSize, AverageBits: c.AverageBits}
	return p, p.check()
}

func decodeConfig(b []byte) (*config, Params, error) {
	var c config
	if err := strictJSON(b, &c); err != nil {
		return nil, Params{}, err
	}
	if c.Version != Version {
		return nil, Params{}, fmt.Errorf("format version %d, this reader knows %d", c.Version, Version)
	}
	if len(c.ID) != 64 {
		return nil, Params{}, fmt.Errorf("repository id %.80q: want 64 hex digits", c.ID)
	}
	p, err := c.params()
	return &c, p, err
}

// strictJSON decodes one JSON value with no unknown fields and nothing
// after it.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// keyFile is the plaintext inside a key file's age encryption.
type keyFile struct {
	Version       int    `json:"version"`
	EncryptionKey string `json:"encryption_key"` // hex, 32 bytes
	IDKey         string `json:"id_key"`         // hex, 32 bytes
}

func encodeKeyFile(mk *MasterKey) []byte {
	b, _ := json.Marshal(keyFile{Version: Version, EncryptionKey: hex.EncodeToString(mk.enc[:]), IDKey: hex.EncodeToString(mk.mac[:])})
	return b
}

func decodeKeyFile(b []byte) (*MasterKey, error) {
	var k keyFile
	if err := strictJSON(b, &k); err != nil {
		return nil, err
	}
	if k.Version != Version {
		return nil, fmt.Errorf("key format version %d, this reader knows %d", k.Version, Version)
	}
	var mk MasterKey
	for _, f := range []struct {
		name string
		s    string
		dst  []byte
	}{{"encryption_key", k.EncryptionKey, mk.enc[:]}, {"id_key", k.IDKey, mk.mac[:]}} {
		if len(f.s) != 2*len(f.dst) {
			return nil, fmt.Errorf("%s: want %d hex digits", f.name, 2*len(f.dst))
		}
		if _, err := hex.Decode(f.dst, []byte(f.s)); err != nil {
			return nil, fmt.Errorf("%s: want 64 hex digits", f.name)
		}
	}
	return &mk, nil
}

// A packEntry is one blob of a pack, as its header and the index list it.
type packEntry struct {
	Type   BlobType
	ID     ID
	Offset uint32 // from the pack's start
	Length uint32 // of the sealed blob
	RawLen uint32 // of the plaintext
}

// The pack header is one 41-byte record per blob, in the order the blobs
// lie in the pack from offset 0: type, sealed length, plaintext length
// (both uint32 little-endian), id.
const packRecord = 1 + 4 + 4 + 32

func encodePackHeader(es []packEntry) []byte {
	b := make([]byte, 0, len(es)*packRecord)
	for _, e := range es {
		b = append(b, byte(e.Type))
		b = binary.LittleEndian.AppendUint32(b, e.Length)
		b = binary.LittleEndian.AppendUint32(b, e.RawLen)
		b = append(b, e.ID[:]...)
	}
	return b
}

// decodePackHeader reads a header's plaintext; blobs must fill the pack
// up to headerAt, where the sealed header begins.
func decodePackHeader(b []byte, headerAt uint64) ([]packEntry, error) {
	if len(b) == 0 || len(b)%packRecord != 0 {
		return nil, fmt.Errorf("pack header of %d bytes: want a positive multiple of %d", len(b), packRecord)
	}
	es := make([]packEntry, 0, len(b)/packRecord)
	var off uint64
	for ; len(b) > 0; b = b[packRecord:] {
		e := packEntry{Type: BlobType(b[0]), Offset: uint32(off), Length: binary.LittleEndian.Uint32(b[1:]), RawLen: binary.LittleEndian.Uint32(b[5:])}
		copy(e.ID[:], b[9:])
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("pack header entry %d: %w", len(es), err)
		}
		off += uint64(e.Length)
		if off > headerAt {
			return nil, fmt.Errorf("pack header entry %d ends at %d, past the header at %d", len(es), off, headerAt)
		}
		es = append(es, e)
	}
	if off != headerAt {
		return nil, fmt.Errorf("pack header's blobs end at %d, the header begins at %d", off, headerAt)
	}
	return es, nil
}

func (e packEntry) check() error {
	if e.Type != DataBlob && e.Type != TreeBlob {
		return fmt.Errorf("blob %v: type %d unknown", e.ID, uint8(e.Type))
	}
	if e.Length < sealOverhead+1 {
		return fmt.Errorf("blob %v: %d bytes, too short to be sealed", e.ID, e.Length)
	}
	if e.RawLen > maxBlob {
		return fmt.Errorf("blob %v: %d bytes of plaintext, more than %d", e.ID, e.RawLen, maxBlob)
	}
	return nil
}

// packIndex is one pack's entries in an index.
type packIndex struct {
	ID    ID
	Blobs []packEntry
}

// An index's plaintext: uint32 count of packs; per pack its id, a uint32
// count of blobs and 45 bytes per blob: type, offset, sealed length,
// plaintext length (uint32 little-endian each) and id.
const indexRecord = 1 + 4 + 4 + 4 + 32

func encodeIndex(ps []packIndex) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ps)))
	for _, p := range ps {
		b = append(b, p.ID[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type))
			b = binary.LittleEndian.AppendUint32(b, e.Offset)
			b = binary.LittleEndian.AppendUint32(b, e.Length)
			b = binary.LittleEndian.AppendUint32(b, e.RawLen)
			b = append(b, e.ID[:]...)
		}
	}
	return b
}

func decodeIndex(b []byte) ([]packIndex, error) {
	if len(b) < 4 {
		return nil, errors.New("index too short")
	}
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(n)*(32+4) > uint64(len(b)) {
		return nil, fmt.Errorf("index claims %d packs in %d bytes", n, len(b))
	}
	ps := make([]packIndex, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 36 {
			return nil, fmt.Errorf("index pack %d: truncated", i)
		}
		var p packIndex
		copy(p.ID[:], b)
		m := binary.LittleEndian.Uint32(b[32:])
		b = b[36:]
		if uint64(m)*indexRecord > uint64(len(b)) {
			return nil, fmt.Errorf("index pack %v claims %d blobs in %d bytes", p.ID, m, len(b))
		}
		p.Blobs = make([]packEntry, m)
		for j := range p.Blobs {
			e := packEntry{Type: BlobType(b[0]), Offset: binary.LittleEndian.Uint32(b[1:]), Length: binary.LittleEndian.Uint32(b[5:]), RawLen: binary.LittleEndian.Uint32(b[9:])}
			copy(e.ID[:], b[13:])
			if err := e.check(); err != nil {
				return nil, fmt.Errorf("index pack %v: %w", p.ID, err)
			}
			if uint64(e.Offset)+uint64(e.Length) > 1<<32-1 {
				return nil, fmt.Errorf("index pack %v: blob %v past 4 GiB", p.ID, e.ID)
			}
			p.Blobs[j] = e
			b = b[indexRecord:]
		}
		ps = append(ps, p)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("index: %d bytes after its last pack", len(b))
	}
	return ps, nil
}

// Node types in a tree.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
)

// Node is one entry of a directory.
type Node struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Mode    uint32   `json:"mode"` // permission bits, 0o777
	Size    uint64   `json:"size,omitempty"`
	MTimeNS int64    `json:"mtime_ns"`
	Content []string `json:"content,omitempty"` // a file's data blob ids, hex
	Subtree string   `json:"subtree,omitempty"` // a dir's tree blob id, hex
	Target  string   `json:"target,omitempty"`  // a symlink's target
}

// Tree is a directory: its entries sorted by name.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

func encodeTree(t *Tree) []byte {
	if t.Nodes == nil {
		t.Nodes = []Node{}
	}
	b, _ := json.Marshal(t)
	return b
}

func decodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := strictJSON(b, &t); err != nil {
		return nil, fmt.Errorf("tree: %w", err)
	}
	for i, n := range t.Nodes {
		if err := checkName(n.Name); err != nil {
			return nil, fmt.Errorf("tree entry %d: %w", i, err)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("tree entry %d: %.80q not sorted after %.80q, or twice", i, n.Name, t.Nodes[i-1].Name)
		}
		if n.Mode&^0o777 != 0 {
			return nil, fmt.Errorf("tree entry %.80q: mode %#o has bits beyond 0o777", n.Name, n.Mode)
		}
		bad := false
		switch n.Type {
		case NodeFile:
			bad = n.Subtree != "" || n.Target != ""
			for _, c := range n.Content {
				if _, err := ParseID(c); err != nil {
					return nil, fmt.Errorf("tree entry %.80q: %w", n.Name, err)
				}
			}
		case NodeDir:
			bad = n.Size != 0 || n.Content != nil || n.Target != ""
			if _, err := ParseID(n.Subtree); err != nil {
				return nil, fmt.Errorf("tree entry %.80q: subtree: %w", n.Name, err)
			}
		case NodeSymlink:
			bad = n.Size != 0 || n.Content != nil || n.Subtree != "" || n.Target == ""
		default:
			return nil, fmt.Errorf("tree entry %.80q: type %.20q unknown", n.Name, n.Type)
		}
		if bad {
			return nil, fmt.Errorf("tree entry %.80q: fields that do not fit a %s", n.Name, n.Type)
		}
	}
	return &t, nil
}

// checkName refuses a name that could leave the directory it is restored
// into.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || !utf8.ValidString(s) {
		return fmt.Errorf("name %.80q is not a file name", s)
	}
	return nil
}

// Manifest is a snapshot: what one backup holds.
type Manifest struct {
	Version     int       `json:"version"`
	Time        time.Time `json:"time"`
	NodeID      string    `json:"node_id"`
	WeftVersion string    `json:"weft_version"`
	Hostname    string    `json:"hostname"`
	Tree        string    `json:"tree"` // root tree blob id, hex
	Files       uint64    `json:"files"`
	Dirs        uint64    `json:"dirs"`
	Symlinks    uint64    `json:"symlinks"`
	Bytes       uint64    `json:"bytes"`       // of the files' content
	AddedBytes  uint64    `json:"added_bytes"` // of the packs this run uploaded
	Tags        []string  `json:"tags,omitempty"`
	// RootMode and RootMTimeNS are the backed-up directory's own
	// permission bits and modification time, which Restore gives the
	// directory it restores into. Every backup writes both; a manifest
	// without root_mtime_ns (zero) leaves that directory as it is.
	RootMode    uint32 `json:"root_mode"`
	RootMTimeNS int64  `json:"root_mtime_ns"`
}

func decodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := strictJSON(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Version != Version {
		return nil, fmt.Errorf("manifest format version %d, this reader knows %d", m.Version, Version)
	}
	if _, err := ParseID(m.Tree); err != nil {
		return nil, fmt.Errorf("manifest tree: %w", err)
	}
	if m.RootMode&^0o777 != 0 {
		return nil, fmt.Errorf("manifest root mode %#o has bits beyond 0o777", m.RootMode)
	}
	return &m, nil
}

// lockFile is the plaintext of a lock.
type lockFile struct {
	Holder  string    `json:"holder"`
	PID     int       `json:"pid"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func decodeLock(b []byte) (*lockFile, error) {
	var l lockFile
	if err := strictJSON(b, &l); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return &l, nil
}
