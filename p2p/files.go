package p2p

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/internal/dirsync"
	"github.com/weftos/weft/internal/echoed"
)

// The files this package keeps in the data directory.
const (
	// PeersFile holds the addresses of the peers this node knows.
	PeersFile = "peers.json"
	// AliasesFile holds the node's aliases, name → node id.
	AliasesFile = "aliases.json"
)

const (
	// maxKnownPeers bounds the address book; past it the peers seen
	// longest ago are forgotten.
	maxKnownPeers = 1024
	// maxPeerAddrs bounds the addresses kept for one peer.
	maxPeerAddrs = 16
	// maxFileBytes bounds what is read of a file of this package.
	maxFileBytes = 8 << 20
	// knownAddrTTL is how long the peerstore keeps an address from the
	// book; the book gives it again at each dial.
	knownAddrTTL = 24 * time.Hour
	// saveInterval is how often a changed address book is written.
	saveInterval = 30 * time.Second
)

// addrBook is the known peers' addresses, persisted in peers.json: what
// identify told us each peer listens on (its relayed addresses included)
// and the addresses we connected to it at, so that a restarted node can
// reach its peers by node id alone.
type addrBook struct {
	path    string
	mu      sync.Mutex
	peers   map[peer.ID]*bookEntry
	changed bool
}

type bookEntry struct {
	addrs []ma.Multiaddr
	seen  time.Time
}

// peersFile is the JSON form of peers.json.
type peersFile struct {
	Version int         `json:"version"`
	Peers   []peerEntry `json:"peers"`
}

type peerEntry struct {
	Node  string    `json:"node"`
	Addrs []string  `json:"addrs"`
	Seen  time.Time `json:"seen"`
}

const peersFileVersion = 1

// loadAddrBook reads dir/peers.json; a missing file is an empty book. A
// file that is not what this package writes is refused, naming it.
func loadAddrBook(dir string) (*addrBook, error) {
	b := &addrBook{path: filepath.Join(dir, PeersFile), peers: map[peer.ID]*bookEntry{}}
	data, err := readSmallFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if err := b.parse(data); err != nil {
		return nil, fmt.Errorf("p2p: %s: %w", b.path, err)
	}
	return b, nil
}

// parse adds the peers of a peers.json to b. It refuses anything but what
// save writes: unknown fields, another version, a node that is not a node
// id, an address that is not a multiaddr.
func (b *addrBook) parse(data []byte) error {
	var f peersFile
	if err := strictUnmarshal(data, &f); err != nil {
		return err
	}
	if f.Version != peersFileVersion {
		return fmt.Errorf("version %d, want %d", f.Version, peersFileVersion)
	}
	for _, e := range f.Peers {
		id, err := PeerID(e.Node)
		if err != nil {
			return err
		}
		var addrs []ma.Multiaddr
		for _, s := range e.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("node %s: address %q: %s", e.Node, echoed.Truncate(s), echoed.Truncate(err.Error()))
			}
			addrs = append(addrs, a)
		}
		b.merge(id, addrs, e.Seen)
	}
	b.changed = false
	return nil
}

// put records addresses of id, seen now.
func (b *addrBook) put(id peer.ID, addrs []ma.Multiaddr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.merge(id, addrs, time.Now())
}

// merge adds addrs to id's entry, newest first, and bounds the book.
// b.mu is held (or b is not shared yet).
func (b *addrBook) merge(id peer.ID, addrs []ma.Multiaddr, seen time.Time) {
	e := b.peers[id]
	if e == nil {
		e = &bookEntry{}
		b.peers[id] = e
	}
	merged := make([]ma.Multiaddr, 0, len(addrs)+len(e.addrs))
	for _, a := range slices.Concat(addrs, e.addrs) {
		a = withoutPeer(a)
		if len(a) == 0 || slices.ContainsFunc(merged, a.Equal) {
			continue
		}
		merged = append(merged, a)
	}
	if len(merged) > maxPeerAddrs {
		merged = merged[:maxPeerAddrs]
	}
	if !slices.EqualFunc(merged, e.addrs, func(x, y ma.Multiaddr) bool { return x.Equal(y) }) || seen.After(e.seen.Add(time.Minute)) {
		b.changed = true
	}
	e.addrs = merged
	if seen.After(e.seen) {
		e.seen = seen
	}
	if len(b.peers) > maxKnownPeers {
		var oldest peer.ID
		for id, e := range b.peers {
			if oldest == "" || e.seen.Before(b.peers[oldest].seen) {
				oldest = id
			}
		}
		delete(b.peers, oldest)
	}
}

// addrs returns the addresses known for id.
func (b *addrBook) addrs(id peer.ID) []ma.Multiaddr {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.peers[id]; e != nil {
		return slices.Clone(e.addrs)
	}
	return nil
}

// all returns every known peer.
func (b *addrBook) all() []peer.AddrInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]peer.AddrInfo, 0, len(b.peers))
	for id, e := range b.peers {
		out = append(out, peer.AddrInfo{ID: id, Addrs: slices.Clone(e.addrs)})
	}
	return out
}

// saveIfChanged writes the book if it changed since it was last written.
func (b *addrBook) saveIfChanged() error {
	b.mu.Lock()
	changed := b.changed
	b.mu.Unlock()
	if !changed {
		return nil
	}
	return b.save()
}

// save writes the book to peers.json atomically.
func (b *addrBook) save() error {
	b.mu.Lock()
	f := peersFile{Version: peersFileVersion, Peers: make([]peerEntry, 0, len(b.peers))}
	for id, e := range b.peers {
		node, err := NodeID(id)
		if err != nil {
			continue
		}
		pe := peerEntry{Node: node, Seen: e.seen.UTC()}
		for _, a := range e.addrs {
			pe.Addrs = append(pe.Addrs, formatAddr(a))
		}
		f.Peers = append(f.Peers, pe)
	}
	b.changed = false
	b.mu.Unlock()
	slices.SortFunc(f.Peers, func(x, y peerEntry) int { return strings.Compare(x.Node, y.Node) })
	if err := writeJSONFile(b.path, f); err != nil {
		b.mu.Lock()
		b.changed = true
		b.mu.Unlock()
		return err
	}
	return nil
}

// aliasFile is the node's aliases, persisted in aliases.json.
type aliasFile struct {
	path    string
	mu      sync.Mutex
	aliases map[string]string
}

type aliasesJSON struct {
	Version int               `json:"version"`
	Aliases map[string]string `json:"aliases"`
}

const aliasesFileVersion = 1

// loadAliases reads dir/aliases.json; a missing file holds no aliases.
func loadAliases(dir string) (*aliasFile, error) {
	a := &aliasFile{path: filepath.Join(dir, AliasesFile), aliases: map[string]string{}}
	data, err := readSmallFile(a.path)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	var f aliasesJSON
	if err := strictUnmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("p2p: %s: %w", a.path, err)
	}
	if f.Version != aliasesFileVersion {
		return nil, fmt.Errorf("p2p: %s: version %d, want %d", a.path, f.Version, aliasesFileVersion)
	}
	for name, node := range f.Aliases {
		a.aliases[name] = node
	}
	return a, nil
}

func (a *aliasFile) all() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]string, len(a.aliases))
	for k, v := range a.aliases {
		out[k] = v
	}
	return out
}

// update applies f to a copy of the aliases and writes it; the aliases
// change only if the write succeeds.
func (a *aliasFile) update(f func(map[string]string)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := make(map[string]string, len(a.aliases)+1)
	for k, v := range a.aliases {
		next[k] = v
	}
	f(next)
	if err := writeJSONFile(a.path, aliasesJSON{Version: aliasesFileVersion, Aliases: next}); err != nil {
		return err
	}
	a.aliases = next
	return nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("p2p: read %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("p2p: %s is larger than %d bytes", path, maxFileBytes)
	}
	return data, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// writeJSONFile writes v to path crash-safely: a temporary file in the
// same directory, synced, renamed over path, and the directory synced.
func writeJSONFile(path string, v any) (err error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("p2p: encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("p2p: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("p2p: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("p2p: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("p2p: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("p2p: write %s: %w", path, err)
	}
	if err := dirsync.Sync(dir); err != nil {
		return fmt.Errorf("p2p: sync directory of %s: %w", path, err)
	}
	return nil
}
