package metrics_test

import (
	"testing"

	"github.com/weftos/weft/daemon/metrics"
	"github.com/weftos/weft/p2p"
)

// peerStats is a node's peers' counters as p2p.Node.Stats returns them.
type peerStats map[string]p2p.PeerStats

func (p peerStats) Stats() map[string]p2p.PeerStats { return p }

// TestPeerMetrics: each peer's counters, by node and direction, read at
// scrape time, and linted.
func TestPeerMetrics(t *testing.T) {
	stats := peerStats{
		"k51a": {BytesIn: 100, BytesOut: 200, MessagesIn: 3, MessagesOut: 4, Errors: 5, Spoofed: 6, RateLimited: 7},
	}
	m := metrics.New(newKernel(t), metrics.WithPeers(stats))
	fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"weft_peer_bytes_total", map[string]string{"node": "k51a", "direction": "in"}, 100},
		{"weft_peer_bytes_total", map[string]string{"node": "k51a", "direction": "out"}, 200},
		{"weft_peer_messages_total", map[string]string{"node": "k51a", "direction": "in"}, 3},
		{"weft_peer_messages_total", map[string]string{"node": "k51a", "direction": "out"}, 4},
		{"weft_peer_errors_total", map[string]string{"node": "k51a"}, 5},
		{"weft_peer_spoofed_frames_total", map[string]string{"node": "k51a"}, 6},
		{"weft_peer_rate_limited_total", map[string]string{"node": "k51a"}, 7},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// A peer that appears later is in the next scrape.
	stats["k51b"] = p2p.PeerStats{Spoofed: 1}
	if got := value(t, scrape(t, m.Handler()), "weft_peer_spoofed_frames_total", map[string]string{"node": "k51b"}); got != 1 {
		t.Errorf("k51b's spoofed frames = %v, want 1", got)
	}

	lint(t, m.Handler(), "weft_peer_")
}
