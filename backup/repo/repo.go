// Package repo owns the backup repository format: content-defined chunks,
// compressed, encrypted and named by a keyed hash, packed into objects
// with encrypted indexes and per-snapshot manifests, on any
// object.Backend. docs/backup.md specifies the format.
package repo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/weftos/weft/backup/object"
)

// Object names.
const (
	configName   = "config"
	keysDir      = "keys/"
	dataDir      = "data/"
	indexDir     = "index/"
	snapshotsDir = "snapshots/"
	locksDir     = "locks/"
)

func packName(id ID) string     { s := id.String(); return dataDir + s[:2] + "/" + s }
func indexName(id ID) string    { return indexDir + id.String() }
func snapshotName(id ID) string { return snapshotsDir + id.String() }

var (
	// ErrExists is Init's error on a backend that holds a repository.
	ErrExists = errors.New("a repository is already there")
	// ErrNoRepo is Open's error on a backend that holds none.
	ErrNoRepo = errors.New("no repository there")
	// ErrWrongKey is Open's error when no key file opens with the given
	// identities or passphrase.
	ErrWrongKey = errors.New("no key file opens with the given identity or passphrase")
	// ErrCorrupt is wrapped by every error about an object that fails its
	// checks: a wrong hash, a failed decryption, a malformed plaintext.
	ErrCorrupt = errors.New("corrupt")
	// ErrLocked is the error of taking a lock another holder holds.
	ErrLocked = errors.New("repository is locked")
	// ErrLastKey is RemoveKey's error for a repository's last key file.
	ErrLastKey = errors.New("it is the last key file: the repository could never be opened again")
)

// corrupt wraps a problem with the named object.
func corrupt(b object.Backend, name string, err error) error {
	return fmt.Errorf("%s: %s: %w: %w", b, name, ErrCorrupt, err)
}

// location is where a blob lies.
type location struct {
	pack   ID
	offset uint32
	length uint32
	rawLen uint32
}

type handle struct {
	t  BlobType
	id ID
}

// Repo is an open repository. Its methods are safe for concurrent use,
// except that one Writer at a time should write.
type Repo struct {
	b      object.Backend
	mk     *MasterKey
	params Params
	id     string

	mu      sync.RWMutex
	index   map[handle]location
	indexes map[string]bool // the index objects read or written
	// badIndexes are the index objects that failed their checks when
	// read, and were skipped.
	badIndexes map[string]error

	now func() time.Time // the clock locks use, replaced in tests
}

// Init makes a new repository on b, sealed with mk and chunking with p,
// with one key file per recipient. It refuses a backend that already
// holds a repository. Several repositories may share mk and p: then a
// blob sealed once (MasterKey.Seal) may be added to each.
func Init(ctx context.Context, b object.Backend, mk *MasterKey, p Params, recipients ...age.Recipient) (*Repo, error) {
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("init %s: %w", b, err)
	}
	if len(recipients) == 0 {
		return nil, fmt.Errorf("init %s: no recipient: nobody could open it", b)
	}
	for _, prefix := range []string{configName, keysDir} {
		found := false
		err := b.List(ctx, prefix, func(object.Info) error { found = true; return io.EOF })
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("init %s: %w", b, err)
		}
		if found {
			return nil, fmt.Errorf("init %s: %w", b, ErrExists)
		}
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, fmt.Errorf("init %s: %w", b, err)
	}
	r := newRepo(b, mk, p, hex.EncodeToString(rid[:]))
	for _, rc := range recipients {
		if _, err := r.AddKey(ctx, rc); err != nil {
			return nil, fmt.Errorf("init %s: %w", b, err)
		}
	}
	c := config{Version: Version, ID: r.id, Polynomial: fmt.Sprintf("%016x", p.Polynomial),
		MinSize: p.MinSize, MaxSize: p.MaxSize, AverageBits: p.AverageBits, Created: time.Now().UTC()}
	cj, _ := json.Marshal(c)
	if err := put(ctx, b, configName, mk.seal(nil, adConfig, cj)); err != nil {
		return nil, fmt.Errorf("init %s: %w", b, err)
	}
	return r, nil
}

func newRepo(b object.Backend, mk *MasterKey, p Params, id string) *Repo {
	return &Repo{b: b, mk: mk, params: p, id: id, index: map[handle]location{}, indexes: map[string]bool{},
		badIndexes: map[string]error{}, now: time.Now}
}

// Open opens the repository on b with the first key file that one of the
// identities (an *age.X25519Identity, an *age.ScryptIdentity for a
// passphrase, …) opens, and loads every index into memory. None opening
// is ErrWrongKey; a key file or config that fails its checks is
// ErrCorrupt, named. An index that fails its checks is skipped, so that a
// repository with one can still be checked and repaired: Check reports
// it, a blob only it named is not found (the error says which indexes
// were skipped), a backup stores such blobs again, and Prune indexes the
// packs it named from their headers.
func Open(ctx context.Context, b object.Backend, identities ...age.Identity) (*Repo, error) {
	mk, err := openKey(ctx, b, identities)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", b, err)
	}
	sealed, err := object.ReadAll(ctx, b, configName)
	if errors.Is(err, object.ErrNotFound) {
		return nil, fmt.Errorf("open %s: %w: a key file but no config", b, ErrNoRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", b, err)
	}
	cj, err := mk.open(adConfig, sealed)
	if err != nil {
		return nil, fmt.Errorf("open: %w", corrupt(b, configName, err))
	}
	c, p, err := decodeConfig(cj)
	if err != nil {
		return nil, fmt.Errorf("open: %w", corrupt(b, configName, err))
	}
	r := newRepo(b, mk, p, c.ID)
	if err := r.loadIndexes(ctx, nil); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return r, nil
}

func openKey(ctx context.Context, b object.Backend, identities []age.Identity) (*MasterKey, error) {
	var names []string
	if err := b.List(ctx, keysDir, func(in object.Info) error { names = append(names, in.Name); return nil }); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no key files", ErrNoRepo)
	}
	var errs []error
	for _, name := range names {
		raw, err := object.ReadAll(ctx, b, name)
		if err != nil {
			return nil, err
		}
		rd, err := age.Decrypt(bytes.NewReader(raw), identities...)
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		kb, err := io.ReadAll(io.LimitReader(rd, 4096))
		if err != nil {
			errs = append(errs, corrupt(b, name, err))
			continue
		}
		mk, err := decodeKeyFile(kb)
		if err != nil {
			errs = append(errs, corrupt(b, name, err))
			continue
		}
		return mk, nil
	}
	return nil, fmt.Errorf("%w (%d key files tried)%w", ErrWrongKey, len(names), joinErrs(errs))
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf(": %w", errors.Join(errs...))
}

// ID is the repository's random id.
func (r *Repo) ID() string { return r.id }

// Key is the repository's master key, to Init another repository that
// shares it.
func (r *Repo) Key() *MasterKey { return r.mk }

// Params are the repository's chunking parameters.
func (r *Repo) Params() Params { return r.params }

// Backend is where the repository lives.
func (r *Repo) Backend() object.Backend { return r.b }

// KeyInfo describes a key file.
type KeyInfo struct {
	ID string
	// Kinds are the age stanza types of its recipients: "X25519" for an
	// identity, "scrypt" for a passphrase.
	Kinds []string
}

// AddKey writes a key file that opens for rc. age requires a passphrase
// (an *age.ScryptRecipient) to be alone in its file, so each key file has
// one recipient.
func (r *Repo) AddKey(ctx context.Context, rc age.Recipient) (KeyInfo, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rc)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	w.Write(encodeKeyFile(r.mk))
	if err := w.Close(); err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	id := sha(buf.Bytes())
	kinds, err := stanzaKinds(buf.Bytes())
	if err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	if err := put(ctx, r.b, keysDir+id.String(), buf.Bytes()); err != nil {
		return KeyInfo{}, fmt.Errorf("add key: %w", err)
	}
	return KeyInfo{ID: id.String(), Kinds: kinds}, nil
}

// stanzaKinds reads the recipient types from an age file's header.
func stanzaKinds(file []byte) ([]string, error) {
	hdr, err := age.ExtractHeader(bytes.NewReader(file))
	if err != nil {
		return nil, err
	}
	var kinds []string
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "-> "); ok {
			kinds = append(kinds, strings.Fields(rest)[0])
		}
	}
	return kinds, nil
}

// ListKeys lists the key files.
func (r *Repo) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var keys []KeyInfo
	err := r.b.List(ctx, keysDir, func(in object.Info) error {
		raw, err := object.ReadAll(ctx, r.b, in.Name)
		if err != nil {
			return err
		}
		kinds, err := stanzaKinds(raw)
		if err != nil {
			return corrupt(r.b, in.Name, err)
		}
		keys = append(keys, KeyInfo{ID: strings.TrimPrefix(in.Name, keysDir), Kinds: kinds})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return keys, nil
}

// RemoveKey removes a key file; never the last.
func (r *Repo) RemoveKey(ctx context.Context, id string) error {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	if !found {
		return fmt.Errorf("remove key %.80s: %w", id, object.ErrNotFound)
	}
	if len(keys) == 1 {
		return fmt.Errorf("remove key %s: %w", id, ErrLastKey)
	}
	if err := r.b.Delete(ctx, keysDir+id); err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	return nil
}

func put(ctx context.Context, b object.Backend, name string, data []byte) error {
	return b.Put(ctx, name, bytes.NewReader(data), int64(len(data)))
}

// loadIndexes reads every index object into memory, replacing what was
// there. each, when set, is given every index's packs as it is read.
func (r *Repo) loadIndexes(ctx context.Context, each func([]packIndex)) error {
	names, err := r.listIndexes(ctx)
	if err != nil {
		return err
	}
	fresh := newRepo(r.b, r.mk, r.params, r.id)
	for _, name := range names {
		fresh.indexes[name] = true
		ps, err := r.readIndex(ctx, name)
		if errors.Is(err, ErrCorrupt) {
			fresh.badIndexes[name] = err
			continue
		}
		if err != nil {
			return err
		}
		fresh.addToIndex(ps)
		if each != nil {
			each(ps)
		}
	}
	r.mu.Lock()
	r.index, r.indexes, r.badIndexes = fresh.index, fresh.indexes, fresh.badIndexes
	r.mu.Unlock()
	return nil
}

func (r *Repo) listIndexes(ctx context.Context) ([]string, error) {
	var names []string
	if err := r.b.List(ctx, indexDir, func(in object.Info) error { names = append(names, in.Name); return nil }); err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	return names, nil
}

// refreshIndexes brings the index in memory up to date with the
// repository's, for a run that has just taken the lock: it reads the
// index objects written since it last looked (by another process, say),
// or, when one it knew is gone (a prune rewrote them, and may have
// deleted packs it names), every index again. Without it, a Repo opened
// before another process pruned would believe blobs stored that are gone.
func (r *Repo) refreshIndexes(ctx context.Context) error {
	gone, added, err := r.indexChanges(ctx)
	if err != nil {
		return err
	}
	if gone {
		return r.loadIndexes(ctx, nil)
	}
	for _, name := range added {
		ps, err := r.readIndex(ctx, name)
		if errors.Is(err, ErrCorrupt) {
			r.mu.Lock()
			r.badIndexes[name] = err
			r.mu.Unlock()
		} else if err != nil {
			return err
		} else {
			r.addToIndex(ps)
		}
		r.noteIndex(name, true)
	}
	return nil
}

// indexChanges lists the index objects and compares them with those read
// or written: whether one of those is gone, and which are new.
func (r *Repo) indexChanges(ctx context.Context) (gone bool, added []string, err error) {
	names, err := r.listIndexes(ctx)
	if err != nil {
		return false, nil, err
	}
	listed := make(map[string]bool, len(names))
	for _, name := range names {
		listed[name] = true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for name := range r.indexes {
		gone = gone || !listed[name]
	}
	for _, name := range names {
		if !r.indexes[name] {
			added = append(added, name)
		}
	}
	return gone, added, nil
}

// indexesGone reports whether an index object read or written is gone.
func (r *Repo) indexesGone(ctx context.Context) (bool, error) {
	gone, _, err := r.indexChanges(ctx)
	return gone, err
}

// noteIndex records that an index object is there (or is no longer).
func (r *Repo) noteIndex(name string, there bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if there {
		r.indexes[name] = true
	} else {
		delete(r.indexes, name)
		delete(r.badIndexes, name)
	}
}

// readHashed reads an object named by the SHA-256 of its bytes and
// decrypts it, refusing one whose bytes are not its name's.
func (r *Repo) readHashed(ctx context.Context, name, ad string) ([]byte, error) {
	id, err := ParseID(name[strings.LastIndexByte(name, '/')+1:])
	if err != nil {
		return nil, corrupt(r.b, name, err)
	}
	raw, err := object.ReadAll(ctx, r.b, name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if sha(raw) != id {
		return nil, corrupt(r.b, name, errors.New("its bytes do not hash to its name"))
	}
	p, err := r.mk.open(ad, raw)
	if err != nil {
		return nil, corrupt(r.b, name, err)
	}
	return p, nil
}

func (r *Repo) readIndex(ctx context.Context, name string) ([]packIndex, error) {
	p, err := r.readHashed(ctx, name, adIndex)
	if err != nil {
		return nil, err
	}
	ps, err := decodeIndex(p)
	if err != nil {
		return nil, corrupt(r.b, name, err)
	}
	return ps, nil
}

func (r *Repo) addToIndex(ps []packIndex) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		for _, e := range p.Blobs {
			r.index[handle{e.Type, e.ID}] = location{pack: p.ID, offset: e.Offset, length: e.Length, rawLen: e.RawLen}
		}
	}
}

// Has reports whether the index knows a blob.
func (r *Repo) Has(t BlobType, id ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.index[handle{t, id}]
	return ok
}

func (r *Repo) lookup(t BlobType, id ID) (location, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	l, ok := r.index[handle{t, id}]
	return l, ok
}

// LoadBlob reads a blob, decrypts it and checks it against its id.
func (r *Repo) LoadBlob(ctx context.Context, t BlobType, id ID) ([]byte, error) {
	l, ok := r.lookup(t, id)
	if !ok {
		return nil, r.notIndexed(t, id)
	}
	name := packName(l.pack)
	rc, err := r.b.Get(ctx, name, int64(l.offset), int64(l.length))
	if err != nil {
		return nil, fmt.Errorf("%s blob %v: %w", t, id, err)
	}
	c, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("%s blob %v: read %s: %w", t, id, name, err)
	}
	p, err := r.mk.openBlob(t, id, int(l.rawLen), c)
	if err != nil {
		return nil, corrupt(r.b, name, fmt.Errorf("%s blob %v: %w", t, id, err))
	}
	return p, nil
}

// LoadTree reads a tree blob.
func (r *Repo) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	p, err := r.LoadBlob(ctx, TreeBlob, id)
	if err != nil {
		return nil, err
	}
	t, err := decodeTree(p)
	if err != nil {
		return nil, fmt.Errorf("tree %v: %w: %w", id, ErrCorrupt, err)
	}
	return t, nil
}

// Snapshots lists the snapshots' ids, in lexical order.
func (r *Repo) Snapshots(ctx context.Context) ([]ID, error) {
	var ids []ID
	err := r.b.List(ctx, snapshotsDir, func(in object.Info) error {
		id, err := ParseID(strings.TrimPrefix(in.Name, snapshotsDir))
		if err != nil {
			return corrupt(r.b, in.Name, err)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return ids, nil
}

// LoadSnapshot reads and checks a snapshot's manifest.
func (r *Repo) LoadSnapshot(ctx context.Context, id ID) (*Manifest, error) {
	name := snapshotName(id)
	p, err := r.readHashed(ctx, name, adSnapshot)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(p)
	if err != nil {
		return nil, corrupt(r.b, name, err)
	}
	return m, nil
}

// WriteSnapshot stores a manifest, whose tree and blobs must already be
// in the repository (written and flushed), and returns its id.
func (r *Repo) WriteSnapshot(ctx context.Context, m *Manifest) (ID, error) {
	root, err := ParseID(m.Tree)
	if err != nil {
		return ID{}, fmt.Errorf("write snapshot: %w", err)
	}
	if !r.Has(TreeBlob, root) {
		return ID{}, fmt.Errorf("write snapshot: its tree %v is not in the repository", root)
	}
	m.Version = Version
	mj, _ := json.Marshal(m)
	sealed := r.mk.seal(nil, adSnapshot, mj)
	id := sha(sealed)
	if err := put(ctx, r.b, snapshotName(id), sealed); err != nil {
		return ID{}, fmt.Errorf("write snapshot: %w", err)
	}
	return id, nil
}
