package p2p

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrBookSaveLoad(t *testing.T) {
	dir := t.TempDir()
	b, err := loadAddrBook(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := mustKey(t)
	id, _ := PeerID(k.NodeID())
	relay := mustKey(t)
	circuit := "/ip4/10.0.0.1/tcp/9047/p2p/" + relay.NodeID() + "/p2p-circuit"
	b.put(id, []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/" + k.NodeID()), // the same, with the peer's id
		ma.StringCast(circuit),
	})
	if err := b.saveIfChanged(); err != nil {
		t.Fatal(err)
	}
	if b.changed {
		t.Fatal("book still changed after a save")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != PeersFile {
		t.Fatalf("data dir holds %v, want %s alone (no temporary files)", entries, PeersFile)
	}
	data, err := os.ReadFile(filepath.Join(dir, PeersFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), circuit) || !strings.Contains(string(data), k.NodeID()) {
		t.Fatalf("%s does not hold the peer and its relayed address by node id:\n%s", PeersFile, data)
	}
	b2, err := loadAddrBook(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := b2.addrs(id)
	if len(got) != 2 || got[0].String() != "/ip4/127.0.0.1/tcp/1" || formatAddr(got[1]) != circuit {
		t.Fatalf("loaded addresses %v, want the direct one once and the relayed one", got)
	}
	if b2.changed {
		t.Fatal("a book just loaded counts as changed")
	}
}

func TestAddrBookBounds(t *testing.T) {
	b := &addrBook{peers: map[peer.ID]*bookEntry{}}
	var first peer.ID
	start := time.Now().Add(-time.Hour)
	for i := range maxKnownPeers + 10 {
		k := mustKey(t)
		id, _ := PeerID(k.NodeID())
		if i == 0 {
			first = id
		}
		b.merge(id, []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}, start.Add(time.Duration(i)*time.Second))
	}
	if len(b.peers) != maxKnownPeers {
		t.Fatalf("book holds %d peers, want at most %d", len(b.peers), maxKnownPeers)
	}
	if b.peers[first] != nil {
		t.Fatal("the peer seen longest ago was kept")
	}
	k := mustKey(t)
	id, _ := PeerID(k.NodeID())
	var addrs []ma.Multiaddr
	for i := range maxPeerAddrs + 5 {
		addrs = append(addrs, ma.StringCast("/ip4/127.0.0.1/tcp/"+strconv.Itoa(i+1)))
	}
	b.put(id, addrs)
	if got := len(b.addrs(id)); got != maxPeerAddrs {
		t.Fatalf("book keeps %d addresses of a peer, want %d", got, maxPeerAddrs)
	}
}

func TestAliasesFile(t *testing.T) {
	dir := t.TempDir()
	a, err := loadAliases(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.all()) != 0 {
		t.Fatalf("aliases with no file: %v", a.all())
	}
	if err := a.update(func(m map[string]string) { m["alice"] = "k51x" }); err != nil {
		t.Fatal(err)
	}
	a2, err := loadAliases(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := a2.all(); len(got) != 1 || got["alice"] != "k51x" {
		t.Fatalf("aliases read back: %v", got)
	}
	// A write that fails leaves the aliases as they were.
	a2.path = filepath.Join(dir, "missing", AliasesFile)
	if err := a2.update(func(m map[string]string) { m["bob"] = "k51y" }); err == nil {
		t.Fatal("update into a missing directory succeeded")
	}
	if got := a2.all(); len(got) != 1 {
		t.Fatalf("aliases after a failed write: %v", got)
	}
}
