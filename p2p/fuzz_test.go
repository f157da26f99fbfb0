package p2p

import (
	"encoding/json"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// FuzzParsePeerAddr: an address from an API client or a config file is
// refused with an error or parsed to a node whose address, written back
// the way ListenAddrs writes it, parses to the same node. Seeds are in
// testdata/fuzz/FuzzParsePeerAddr.
func FuzzParsePeerAddr(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ai, err := parsePeerAddr("address", s)
		if err != nil {
			if len(err.Error()) > 2048 {
				t.Fatalf("error of %d bytes repeats too much of its input", len(err.Error()))
			}
			return
		}
		node, err := NodeID(ai.ID)
		if err != nil {
			t.Fatalf("accepted an address of peer %s that is not a node: %v", ai.ID, err)
		}
		for _, a := range ai.Addrs {
			back, err := parsePeerAddr("address", formatAddr(a)+"/p2p/"+node)
			if err != nil || back.ID != ai.ID {
				t.Fatalf("%s written back does not parse to node %s: %v", formatAddr(a), node, err)
			}
		}
	})
}

// FuzzPeersFile: a peers.json is refused or loaded, and a loaded book
// saved and read again holds the same peers. Seeds are in
// testdata/fuzz/FuzzPeersFile.
func FuzzPeersFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &addrBook{peers: map[peer.ID]*bookEntry{}}
		if err := b.parse(data); err != nil {
			return
		}
		var out peersFile
		out.Version = peersFileVersion
		for id, e := range b.peers {
			node, err := NodeID(id)
			if err != nil {
				t.Fatalf("book holds peer %s that is not a node", id)
			}
			pe := peerEntry{Node: node, Seen: e.seen}
			for _, a := range e.addrs {
				pe.Addrs = append(pe.Addrs, formatAddr(a))
			}
			out.Peers = append(out.Peers, pe)
		}
		again, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		b2 := &addrBook{peers: map[peer.ID]*bookEntry{}}
		if err := b2.parse(again); err != nil {
			t.Fatalf("a book written back does not load: %v\n%s", err, again)
		}
		if len(b2.peers) != len(b.peers) {
			t.Fatalf("book written back holds %d peers, want %d", len(b2.peers), len(b.peers))
		}
		for id, e := range b.peers {
			if got := b2.peers[id]; got == nil || len(got.addrs) != len(e.addrs) {
				t.Fatalf("peer %s written back with %v, want %v", id, got, e.addrs)
			}
		}
	})
}
