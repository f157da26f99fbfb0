// Package indepreader_test reads a repository with code written from
// docs/backup.md alone: it imports backup/repo only to create the
// repository, never to decode it.
package indepreader_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/weftos/weft/backup/object"
	"github.com/weftos/weft/backup/repo"
)

// reader is a repository opened from the document: keys, and the union
// of the indexes.
type reader struct {
	t      *testing.T
	b      *object.Mem
	encKey []byte
	idKey  []byte
	blobs  map[string]blobAt // "<type>/<id hex>"
}

type blobAt struct {
	pack           string
	offset, length uint32
	plainLen       uint32
}

func (r *reader) list(prefix string) []string {
	var names []string
	if err := r.b.List(context.Background(), prefix, func(in object.Info) error { names = append(names, in.Name); return nil }); err != nil {
		r.t.Fatal(err)
	}
	return names
}

func (r *reader) get(name string) []byte {
	b := r.b.Bytes(name)
	if b == nil {
		r.t.Fatalf("%s: not there", name)
	}
	return b
}

// hashed reads an object named by the SHA-256 of its bytes.
func (r *reader) hashed(name string) []byte {
	b := r.get(name)
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != name[strings.LastIndexByte(name, '/')+1:] {
		r.t.Fatalf("%s: bytes do not hash to the name", name)
	}
	return b
}

// open: nonce (24) || XChaCha20-Poly1305 with the ad.
func (r *reader) open(sealed, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(r.encKey)
	if err != nil {
		r.t.Fatal(err)
	}
	if len(sealed) < 24+16 {
		r.t.Fatalf("sealed of %d bytes", len(sealed))
	}
	p, err := aead.Open(nil, sealed[:24], sealed[24:], ad)
	if err != nil {
		r.t.Fatalf("open %q: %v", ad, err)
	}
	return p
}

func (r *reader) jsonOf(b []byte, v any) {
	if err := json.Unmarshal(b, v); err != nil {
		r.t.Fatalf("json: %v", err)
	}
}

func openRepo(t *testing.T, b *object.Mem, id age.Identity) *reader {
	r := &reader{t: t, b: b, blobs: map[string]blobAt{}}
	for _, name := range r.list("keys/") {
		pr, err := age.Decrypt(bytes.NewReader(r.get(name)), id)
		if err != nil {
			continue
		}
		kb, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		var k struct {
			Version int    `json:"version"`
			Enc     string `json:"encryption_key"`
			ID      string `json:"id_key"`
		}
		r.jsonOf(kb, &k)
		if k.Version != 1 {
			t.Fatalf("key version %d", k.Version)
		}
		r.encKey, _ = hex.DecodeString(k.Enc)
		r.idKey, _ = hex.DecodeString(k.ID)
		break
	}
	if len(r.encKey) != 32 || len(r.idKey) != 32 {
		t.Fatal("no key file opened")
	}

	var cfg struct {
		Version int    `json:"version"`
		Pol     string `json:"chunker_polynomial"`
	}
	r.jsonOf(r.open(r.get("config"), []byte("weft-backup/v1 config")), &cfg)
	if cfg.Version != 1 || len(cfg.Pol) != 16 {
		t.Fatalf("config %+v", cfg)
	}

	for _, name := range r.list("index/") {
		p := r.open(r.hashed(name), []byte("weft-backup/v1 index"))
		npacks := binary.LittleEndian.Uint32(p)
		p = p[4:]
		for range npacks {
			pack := hex.EncodeToString(p[:32])
			n := binary.LittleEndian.Uint32(p[32:])
			p = p[36:]
			for range n {
				e := blobAt{pack: pack, offset: binary.LittleEndian.Uint32(p[1:]), length: binary.LittleEndian.Uint32(p[5:]), plainLen: binary.LittleEndian.Uint32(p[9:])}
				r.blobs[fmt.Sprintf("%d/%x", p[0], p[13:45])] = e
				p = p[45:]
			}
		}
		if len(p) != 0 {
			t.Fatalf("%s: %d bytes left", name, len(p))
		}
	}
	return r
}

// unseal opens a sealed blob of type typ (1 data, 2 tree) and id.
func (r *reader) unseal(typ byte, id []byte, sealed []byte, plainLen uint32) []byte {
	kind := map[byte]string{1: "data", 2: "tree"}[typ]
	f := r.open(sealed, append([]byte("weft-backup/v1 "+kind+" "), id...))
	var p []byte
	switch f[0] {
	case 0:
		p = f[1:]
	case 1:
		d, err := zstd.NewReader(nil)
		if err != nil {
			r.t.Fatal(err)
		}
		defer d.Close()
		if p, err = d.DecodeAll(f[1:], nil); err != nil {
			r.t.Fatal(err)
		}
	default:
		r.t.Fatalf("flag %d", f[0])
	}
	if uint32(len(p)) != plainLen {
		r.t.Fatalf("blob %x: %d bytes, want %d", id, len(p), plainLen)
	}
	m := hmac.New(sha256.New, r.idKey)
	m.Write(p)
	if !hmac.Equal(m.Sum(nil), id) {
		r.t.Fatalf("blob %x: the plaintext's HMAC is not its id", id)
	}
	return p
}

func (r *reader) blob(typ byte, idHex string) []byte {
	e, ok := r.blobs[fmt.Sprintf("%d/%s", typ, idHex)]
	if !ok {
		r.t.Fatalf("blob %d/%s in no index", typ, idHex)
	}
	pack := r.get("data/" + e.pack[:2] + "/" + e.pack)
	id, _ := hex.DecodeString(idHex)
	return r.unseal(typ, id, pack[e.offset:e.offset+e.length], e.plainLen)
}

// checkPacks reads every pack whole: hash, trailer, header, each blob.
func (r *reader) checkPacks() int {
	n := 0
	for _, name := range r.list("data/") {
		pack := r.hashed(name)
		hl := binary.LittleEndian.Uint32(pack[len(pack)-4:])
		at := uint32(len(pack)-4) - hl
		h := r.open(pack[at:len(pack)-4], []byte("weft-backup/v1 pack-header"))
		if len(h)%41 != 0 {
			r.t.Fatalf("%s: header of %d bytes", name, len(h))
		}
		var off uint32
		for ; len(h) > 0; h = h[41:] {
			l, plain := binary.LittleEndian.Uint32(h[1:]), binary.LittleEndian.Uint32(h[5:])
			r.unseal(h[0], h[9:41], pack[off:off+l], plain)
			off += l
			n++
		}
		if off != at {
			r.t.Fatalf("%s: blobs end at %d, header at %d", name, off, at)
		}
	}
	return n
}

type node struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Mode    uint32   `json:"mode"`
	Size    uint64   `json:"size"`
	MTimeNS int64    `json:"mtime_ns"`
	Content []string `json:"content"`
	Subtree string   `json:"subtree"`
	Target  string   `json:"target"`
}

func (r *reader) restore(treeHex, dir string) {
	var tree struct {
		Nodes []node `json:"nodes"`
	}
	r.jsonOf(r.blob(2, treeHex), &tree)
	for _, n := range tree.Nodes {
		if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
			r.t.Fatalf("name %q", n.Name)
		}
		p := filepath.Join(dir, n.Name)
		switch n.Type {
		case "file":
			var data []byte
			for _, c := range n.Content {
				data = append(data, r.blob(1, c)...)
			}
			if uint64(len(data)) != n.Size {
				r.t.Fatalf("%s: %d bytes, size %d", p, len(data), n.Size)
			}
			if err := os.WriteFile(p, data, os.FileMode(n.Mode)); err != nil {
				r.t.Fatal(err)
			}
		case "dir":
			if err := os.Mkdir(p, 0o700); err != nil {
				r.t.Fatal(err)
			}
			r.restore(n.Subtree, p)
		case "symlink":
			if err := os.Symlink(n.Target, p); err != nil {
				r.t.Fatal(err)
			}
			continue
		default:
			r.t.Fatalf("%s: type %q", p, n.Type)
		}
		if err := os.Chmod(p, os.FileMode(n.Mode)); err != nil {
			r.t.Fatal(err)
		}
	}
}

func TestIndependentReader(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	files := map[string]string{
		"notes.txt":        strings.Repeat("a line of text\n", 5000),
		"empty":            "",
		"sub/inner/x.json": `{"k": "v"}`,
		"sub/y":            "y",
	}
	rnd := make([]byte, 3<<20)
	for i := range rnd {
		rnd[i] = byte(i*7919 + i>>9*31 + i>>13)
	}
	files["big.bin"] = string(rnd)
	for name, data := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/y", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	rootTime := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := os.Chmod(src, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, rootTime, rootTime); err != nil {
		t.Fatal(err)
	}

	id, _ := age.GenerateX25519Identity()
	mk, err := repo.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	params, err := repo.NewParams()
	if err != nil {
		t.Fatal(err)
	}
	params.MinSize, params.MaxSize, params.AverageBits = 16<<10, 256<<10, 16
	b := object.NewMem("indep")
	w, err := repo.Init(ctx, b, mk, params, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Backup(ctx, src, repo.BackupOptions{NodeID: "k51indep", PackSize: 512 << 10}); err != nil {
		t.Fatal(err)
	}

	r := openRepo(t, b, id)
	if n := r.checkPacks(); n != len(r.blobs) {
		t.Errorf("packs hold %d blobs, the indexes %d", n, len(r.blobs))
	}
	snaps := r.list("snapshots/")
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v", snaps)
	}
	var m struct {
		Version int    `json:"version"`
		NodeID  string `json:"node_id"`
		Tree    string `json:"tree"`
		Files   uint64 `json:"files"`
		Bytes   uint64 `json:"bytes"`
		// The backed-up directory's own mode and time.
		RootMode    uint32 `json:"root_mode"`
		RootMTimeNS int64  `json:"root_mtime_ns"`
	}
	r.jsonOf(r.open(r.hashed(snaps[0]), []byte("weft-backup/v1 snapshot")), &m)
	var total uint64
	for _, d := range files {
		total += uint64(len(d))
	}
	if m.Version != 1 || m.NodeID != "k51indep" || m.Files != uint64(len(files)) || m.Bytes != total ||
		m.RootMode != 0o751 || m.RootMTimeNS != rootTime.UnixNano() {
		t.Errorf("manifest %+v", m)
	}

	dst := t.TempDir()
	r.restore(m.Tree, dst)
	if err := os.Chmod(dst, os.FileMode(m.RootMode)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o751 {
		t.Errorf("restored root: %v, %v", fi.Mode(), err)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != data {
			t.Errorf("%s: restored %d bytes (%v), want %d", name, len(got), err, len(data))
		}
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", name, fi.Mode())
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "sub/y" {
		t.Errorf("link: %q, %v", l, err)
	}
}
