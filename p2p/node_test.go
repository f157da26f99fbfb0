package p2p

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftos/weft/identity"
	"github.com/weftos/weft/kernel"
	"github.com/weftos/weft/kernel/pbconv"
	"github.com/weftos/weft/p2p/wire"
)

func TestEchoOverTCP(t *testing.T) {
	a, b := startNode(t), startNode(t)
	node, err := a.Connect(context.Background(), b.addr(t, "/tcp/"))
	if err != nil {
		t.Fatal(err)
	}
	if node != b.NodeID() {
		t.Fatalf("Connect returned node %s, want %s", node, b.NodeID())
	}
	mustEcho(t, a, b.echoAt(), "hello over tcp")
	mustEcho(t, b, a.echoAt(), "and back")
}

func TestEchoOverQUIC(t *testing.T) {
	opt := func(c *Config) { c.Listen = quicListen }
	a, b := startNode(t, opt), startNode(t, opt)
	if _, err := a.Connect(context.Background(), b.addr(t, "/quic-v1/")); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "hello over quic")
	for _, p := range a.Peers() {
		for _, addr := range p.Addrs {
			if !strings.Contains(addr, "/quic-v1") {
				t.Errorf("connection to %s at %s, want QUIC only", p.Node, addr)
			}
		}
	}
}

// A process (not the operator) with the network capability sends with a
// context and gets the answer, context and all, in its mailbox.
func TestProcessRequestAcrossNodes(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	got := make(chan *kernel.Message, 1)
	client := kernel.ProcessId{Name: "client", Package: "echo", Publisher: "test"}
	if err := a.k.Start(kernel.Spec{
		ID:           client,
		Capabilities: []kernel.Capability{networkCap(a.k)},
		Process: kernel.ProcessFunc(func(ctx context.Context, h *kernel.Handle) error {
			if _, err := h.Send(&kernel.Request{Target: b.echoAt(), ExpectsResponse: 10 * time.Second, Body: []byte("ping"), Context: []byte("mine")}); err != nil {
				return err
			}
			m, err := h.Await()
			if err != nil {
				return err
			}
			got <- m
			<-ctx.Done()
			return nil
		}),
	}); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if !m.IsResponse() || string(m.Body) != "ping" || string(m.Context()) != "mine" || m.Source() != b.echoAt() {
		t.Fatalf("got %v from %s body %q context %q, want the response from %s with body ping and context mine", m.Kind, m.Source(), m.Body, m.Context(), b.echoAt())
	}
}

// blackhole is a TCP listener that accepts connections and never answers,
// so that a dial to it lasts until its deadline.
func blackhole(t *testing.T) ma.Multiaddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ma.StringCast("/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
}

// unreachable returns the address of a process on a node whose only known
// address (given to a) never answers.
func unreachable(t *testing.T, a *testNode) kernel.Address {
	t.Helper()
	other := startNode(t)
	target := other.echoAt()
	other.Close()
	a.book.put(other.h.ID(), []ma.Multiaddr{blackhole(t)})
	return target
}

func TestOfflineWithinDialTimeout(t *testing.T) {
	const dial = 300 * time.Millisecond
	a := startNode(t, func(c *Config) { c.DialTimeout = dial })
	target := unreachable(t, a)
	start := time.Now()
	_, err := a.call(target, "anyone?", time.Minute)
	took := time.Since(start)
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline {
		t.Fatalf("request to an unreachable node: %v, want offline", err)
	}
	if took < dial || took > dial+5*time.Second {
		t.Fatalf("offline after %v, want just after the dial timeout %v", took, dial)
	}
	if !strings.Contains(err.Error(), "cannot be reached") {
		t.Errorf("error %q does not say the node cannot be reached", err)
	}
}

func TestOfflineUnknownNode(t *testing.T) {
	a := startNode(t)
	other := startNode(t)
	target := other.echoAt()
	_, err := a.call(target, "who?", time.Minute)
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline || !strings.Contains(err.Error(), "no address") {
		t.Fatalf("request to a node never met: %v, want offline saying no address is known", err)
	}
}

func TestQueueBound(t *testing.T) {
	a := startNode(t, func(c *Config) { c.QueueLength = 1; c.DialTimeout = 10 * time.Second })
	target := unreachable(t, a)
	msg := func() *kernel.RemoteMessage {
		return &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 1, Source: a.echoAt(), Target: target, Body: []byte("x")}
	}
	if err := a.Send(msg()); err != nil {
		t.Fatal(err)
	}
	id, _ := PeerID(target.Node)
	ps := a.peerIfKnown(id)
	waitUntil(t, "the worker to take the first message", func() bool {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		return len(ps.queue) == 0
	})
	if err := a.Send(msg()); err != nil {
		t.Fatalf("second message (queue empty): %v", err)
	}
	err := a.Send(msg())
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline || !strings.Contains(err.Error(), "queue_length") {
		t.Fatalf("third message over a queue of 1: %v, want offline naming queue_length", err)
	}
}

func TestTooLarge(t *testing.T) {
	a := startNode(t)
	b := startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	// Over this node's own frame limit: refused at once.
	err := a.Send(&kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 7, Source: a.echoAt(), Target: b.echoAt(), Body: make([]byte, a.maxFrame+1)})
	if kind := sendErrKind(t, err); kind != kernel.ErrTooLarge {
		t.Fatalf("Send of a frame over the limit: %v, want too_large", err)
	}
}

// A node with smaller limits refuses a frame over them; the sender's
// request fails too_large rather than waiting for its timeout.
func TestTooLargeForReceiver(t *testing.T) {
	a, b, k := smallReceiver(t)
	if b.maxFrame >= a.maxFrame {
		t.Fatalf("receiver's frame limit %d is not below the sender's %d", b.maxFrame, a.maxFrame)
	}
	// Just over the limit, and far over it: then the receiver refuses the
	// frame while the sender still writes it (past yamux's window).
	for i, size := range []int{b.maxFrame + 1, 900 << 10} {
		_, err := a.call(k.Address(echoID), strings.Repeat("x", size), time.Minute)
		if kind := sendErrKind(t, err); kind != kernel.ErrTooLarge {
			t.Fatalf("request of %d bytes, over the receiver's limit: %v, want too_large", size, err)
		}
		if got := b.Stats()[a.NodeID()].Errors; got != uint64(i+1) {
			t.Fatalf("the receiver counted %d errors from the sender, want %d", got, i+1)
		}
	}
}

func mustKey(t testing.TB) *identity.Key {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawHost is a plain libp2p host (an Ed25519 peer, so a node to weft) that
// writes whatever a test wants on a weft stream.
func rawHost(t *testing.T) host.Host {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(sk), libp2p.NoListenAddrs, libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// writeRaw opens a weft stream from h to n, writes data and closes its
// side, and returns what reading the stream to its end gives: the
// statuses n wrote back, and nil if n then closed the stream, or the
// reset error if it reset it.
func writeRaw(t *testing.T, h host.Host, n *testNode, data []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, n.h.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A refusal may come before the write ends; reading the stream tells
	// it either way (CloseWrite's errors do not carry the code).
	s.Write(data)
	s.CloseWrite()
	return io.ReadAll(s)
}

func frameBytes(t *testing.T, m *kernel.RemoteMessage) []byte {
	t.Helper()
	f, err := pbconv.RemoteFrame(m)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := wire.WriteFrame(&buf, f, 1<<20); err != nil {
		t.Fatal(err)
	}
	return []byte(buf.String())
}

// A peer that writes a frame claiming another node as its source is
// dropped and counted; the target process never sees it.
func TestSpoofedSourceDropped(t *testing.T) {
	a, b := startNode(t), startNode(t)
	h := rawHost(t)
	mallory, err := NodeID(h.ID())
	if err != nil {
		t.Fatal(err)
	}
	claim := &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 1, Source: a.echoAt(), Target: b.echoAt(), Body: []byte("I am a")}
	if reply, err := writeRaw(t, h, b, frameBytes(t, claim)); err != nil || !bytes.Equal(reply, []byte{ackTaken}) {
		t.Fatalf("b answered %x, %v; want the frame taken (and dropped)", reply, err)
	}
	st := b.Stats()[mallory]
	if st.Spoofed != 1 || st.MessagesIn != 1 {
		t.Fatalf("b's counters for the spoofing peer: %+v, want 1 message in, 1 spoofed", st)
	}
	if got := b.k.Stats(); got.Routed != 0 {
		t.Fatalf("b's kernel routed %d messages, want none", got.Routed)
	}
}

// Malformed and oversize frames are refused cleanly: in band, with the
// status that says why after those of the frames taken before them, and
// the stream closed; or, for a frame followed by more than a batch, with
// a reset whose code says why. Each is counted, and the node goes on
// serving.
func TestBadInboundFrames(t *testing.T) {
	a, b := startNode(t), startNode(t)
	h := rawHost(t)
	peerNode, _ := NodeID(h.ID())
	over := binary.AppendUvarint(nil, uint64(b.maxFrame+1))
	good := frameBytes(t, &kernel.RemoteMessage{Kind: kernel.KindRequest, ID: 1,
		Source: kernel.Address{Node: peerNode, Process: echoID}, Target: b.echoAt(), Body: []byte("fine")})
	tests := []struct {
		name  string
		data  []byte
		reply []byte
		code  network.StreamErrorCode // a reset instead of reply
	}{
		{"not protobuf", append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff), []byte{statusBadFrame}, 0},
		{"empty frame", binary.AppendUvarint(nil, 0), []byte{statusBadFrame}, 0},
		{"truncated", append(binary.AppendUvarint(nil, 100), 1, 2, 3), []byte{statusBadFrame}, 0},
		{"length over the limit", append(over, 0, 0, 0), []byte{statusTooLarge}, 0},
		{"length varint overflows", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{statusBadFrame}, 0},
		{"after two good ones", slices.Concat(good, good, []byte{0x03, 0xff, 0xff, 0xff}, good), []byte{ackTaken, ackTaken, statusBadFrame}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply, err := writeRaw(t, h, b, tt.data)
			if tt.code != 0 {
				var se *network.StreamError
				if !errors.As(err, &se) || !se.Remote || se.ErrorCode != tt.code {
					t.Fatalf("reading the stream after a bad frame: %v, want a remote reset with code %#x", err, tt.code)
				}
			} else if err != nil || !bytes.Equal(reply, tt.reply) {
				t.Fatalf("reading the stream after a bad frame: %x, %v; want %x and the stream closed", reply, err, tt.reply)
			}
			if got := b.Stats()[peerNode].Errors; got != uint64(i+1) {
				t.Fatalf("errors counted for the peer: %d, want %d", got, i+1)
			}
		})
	}
	// A sender writing on and on after a frame over the limit is reset:
	// its write fails, and it reads the refusal in band if the status came
	// before the reset, else the reset's code.
	t.Run("over the limit, followed by more than a batch", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := h.NewStream(ctx, b.h.ID(), ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write(append(over, make([]byte, 32*keepMaxFrame)...)); err == nil {
			t.Fatal("the write of 8 MiB behind a refused frame ended well, want it reset")
		}
		reply, err := io.ReadAll(s)
		var se *network.StreamError
		inBand := bytes.Equal(reply, []byte{statusTooLarge})
		if !inBand && (!errors.As(err, &se) || !se.Remote || se.ErrorCode != resetTooLarge) {
			t.Fatalf("reading the stream: %x, %v; want %x or a remote reset with code %#x", reply, err, statusTooLarge, resetTooLarge)
		}
		if got := b.Stats()[peerNode].Errors; got != uint64(len(tests)+1) {
			t.Fatalf("errors counted for the peer: %d, want %d", got, len(tests)+1)
		}
	})
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "still serving")
}

func TestRelayedPath(t *testing.T) {
	r := startNode(t, func(c *Config) { c.RelayService.Enabled = true })
	relayAddr := r.addr(t, "/tcp/")
	// b listens nowhere: it is reachable only through its reservation.
	b := startNode(t, func(c *Config) { c.Listen = nil; c.StaticRelays = []string{relayAddr} })
	var circuit string
	waitUntil(t, "b to advertise a relayed address", func() bool {
		for _, s := range b.ListenAddrs() {
			if strings.Contains(s, "/p2p-circuit/") {
				circuit = s
				return true
			}
		}
		return false
	})
	if want := relayAddr + "/p2p-circuit/p2p/" + b.NodeID(); circuit != want {
		t.Fatalf("b's relayed address %s, want %s", circuit, want)
	}
	a := startNode(t)
	if _, err := a.Connect(context.Background(), circuit); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "through the relay")
	mustEcho(t, b, a.echoAt(), "and back through it")
	peers := a.Peers()
	var seen bool
	for _, p := range peers {
		if p.Node == b.NodeID() {
			seen = true
			if !p.Relayed {
				t.Errorf("a's connection to b is not relayed: %+v", p)
			}
		}
	}
	if !seen {
		t.Fatalf("a's peers %+v do not include b", peers)
	}
}

func TestPeersPingDisconnect(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	rtt, err := a.Ping(context.Background(), b.NodeID())
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v, want a round trip", rtt, err)
	}
	mustEcho(t, a, b.echoAt(), "count me")
	peers := a.Peers()
	if len(peers) != 1 || peers[0].Node != b.NodeID() || peers[0].Relayed || len(peers[0].Addrs) == 0 || peers[0].ConnectedSince.IsZero() || peers[0].Latency <= 0 {
		t.Fatalf("a's peers: %+v, want b, direct, with its address, since when and the latency the ping measured", peers)
	}
	tr := peers[0].Traffic
	if tr.MessagesOut != 1 || tr.MessagesIn != 1 || tr.BytesOut == 0 || tr.BytesIn == 0 {
		t.Fatalf("a's traffic with b: %+v, want one message each way", tr)
	}
	if err := a.Disconnect(b.NodeID()); err != nil {
		t.Fatal(err)
	}
	if got := a.Peers(); len(got) != 0 {
		t.Fatalf("peers after Disconnect: %+v", got)
	}
	if _, err := a.Ping(context.Background(), "k51bad"); err == nil {
		t.Fatal("Ping of a malformed node id succeeded")
	}
}

func TestListenAddrsEndInNodeID(t *testing.T) {
	a := startNode(t, func(c *Config) { c.Listen = append(append([]string{}, tcpListen...), quicListen...) })
	addrs := a.ListenAddrs()
	if len(addrs) < 2 {
		t.Fatalf("ListenAddrs = %v, want a TCP and a QUIC address", addrs)
	}
	for _, s := range addrs {
		if !strings.HasSuffix(s, "/p2p/"+a.NodeID()) {
			t.Errorf("listen address %s does not end in /p2p/%s", s, a.NodeID())
		}
		if _, err := parsePeerAddr("address", s); err != nil {
			t.Errorf("listen address does not parse back: %v", err)
		}
	}
}

// The known peers survive a restart: the restarted node reaches b by node
// id alone.
func TestPeerstorePersisted(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(a.dir, PeersFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), b.NodeID()) {
		t.Fatalf("%s does not hold b:\n%s", PeersFile, data)
	}
	a2 := restartNode(t, a.key, a.dir)
	mustEcho(t, a2, b.echoAt(), "remember me")
}

func TestAliasesPersisted(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetAlias("bob", b.NodeID()); err != nil {
		t.Fatal(err)
	}
	if err := a.SetAlias("carol", a.NodeID()); err != nil {
		t.Fatal(err)
	}
	if had, err := a.RemoveAlias("carol"); !had || err != nil {
		t.Fatalf("RemoveAlias(carol) = %v, %v", had, err)
	}
	if err := a.SetAlias("our", b.NodeID()); err == nil {
		t.Fatal(`SetAlias("our") succeeded`)
	}
	a.Close()
	a2 := restartNode(t, a.key, a.dir)
	got := a2.Aliases()
	if len(got) != 1 || got["bob"] != b.NodeID() {
		t.Fatalf("aliases after restart: %v, want bob → %s only", got, b.NodeID())
	}
	mustEcho(t, a2, kernel.Address{Node: "bob", Process: echoID}, "hi bob")
}

func TestBootstrapReconnects(t *testing.T) {
	a := startNode(t)
	b := startNode(t, func(c *Config) { c.Bootstrap = []string{a.addr(t, "/tcp/")} })
	connected := func() bool {
		return a.h.Network().Connectedness(b.h.ID()) == network.Connected
	}
	waitUntil(t, "b to reach its bootstrap peer", connected)
	if err := a.Disconnect(b.NodeID()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b to reconnect to its bootstrap peer", connected)
	mustEcho(t, a, b.echoAt(), "welcome back")
}

// Requests over a peer's rate are answered mailbox_full at once; answers
// to the node's own requests are never limited.
func TestInboundRateLimit(t *testing.T) {
	b := startNode(t, func(c *Config) { c.InboundRate = 0.001; c.InboundBurst = 2 })
	a := startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "one")
	mustEcho(t, a, b.echoAt(), "two")
	_, err := a.call(b.echoAt(), "three", time.Minute)
	if kind := sendErrKind(t, err); kind != kernel.ErrMailboxFull || !strings.Contains(err.Error(), "requests a second") {
		t.Fatalf("request over the rate: %v, want mailbox_full saying the rate", err)
	}
	if got := b.Stats()[a.NodeID()].RateLimited; got != 1 {
		t.Fatalf("rate-limited requests counted: %d, want 1", got)
	}
	// Another node is served meanwhile.
	c := startNode(t)
	if _, err := c.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, c, b.echoAt(), "me too")
	// b's own requests to a still get their answers.
	mustEcho(t, b, a.echoAt(), "b asks")
}

func TestNewRefusesBadConfig(t *testing.T) {
	key := mustKey(t)
	k := newKernel(t, key, kernel.Limits{})
	other := mustKey(t)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no kernel", Config{Key: key, DataDir: t.TempDir()}, "Kernel is required"},
		{"no key", Config{Kernel: k, DataDir: t.TempDir()}, "Key is required"},
		{"wrong key", Config{Kernel: k, Key: other, DataDir: t.TempDir()}, "but the kernel is node"},
		{"no data dir", Config{Kernel: k, Key: key}, "DataDir is required"},
		{"negative", Config{Kernel: k, Key: key, DataDir: t.TempDir(), QueueLength: -1}, "QueueLength is -1"},
		{"bootstrap without id", Config{Kernel: k, Key: key, DataDir: t.TempDir(), Bootstrap: []string{"/ip4/127.0.0.1/tcp/1"}}, "want a full address ending in /p2p/NODEID"},
		{"bad relay", Config{Kernel: k, Key: key, DataDir: t.TempDir(), StaticRelays: []string{"nonsense"}}, "StaticRelays"},
		{"bad listen", Config{Kernel: k, Key: key, DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/x"}}, "start libp2p host"},
		{"bad DHT mode", Config{Kernel: k, Key: key, DataDir: t.TempDir(), DHT: "on"}, `DHT is "on", want off, client, server or auto`},
		{"mDNS listening nowhere", Config{Kernel: k, Key: key, DataDir: t.TempDir(), MDNS: true}, "MDNS needs Listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := New(tt.cfg)
			if err == nil {
				n.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestBadDataFilesRefused(t *testing.T) {
	for _, file := range []string{PeersFile, AliasesFile} {
		for _, content := range []string{"{", `{"version":2}`, `{"version":1,"extra":true}`} {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			key := mustKey(t)
			n, err := New(Config{Kernel: newKernel(t, key, kernel.Limits{}), Key: key, DataDir: dir})
			if err == nil {
				n.Close()
				t.Fatalf("New with %s holding %q succeeded", file, content)
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name %s", err, file)
			}
		}
	}
}

// A capability issued on a and attached to a message to b is dropped on b
// when a revokes it.
func TestRevocationAcrossNodes(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	c := kernel.Capability{Issuer: a.echoAt(), Params: kernel.MessagingParams}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.k.Send(ctx, &kernel.Request{Target: b.echoAt(), ExpectsResponse: 10 * time.Second, Body: []byte("take this"), Capabilities: []kernel.Capability{c}}); err != nil {
		t.Fatal(err)
	}
	holds := func() bool {
		caps, err := b.k.CapabilitiesOf(echoID)
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range caps {
			if sc.Capability == c {
				return true
			}
		}
		return false
	}
	if !holds() {
		t.Fatal("b's echo does not hold the capability attached to the request")
	}
	if err := a.k.Revoke(c); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b to drop the revoked capability", func() bool { return !holds() })
	if st := b.Stats()[a.NodeID()]; st.Errors != 0 || st.Spoofed != 0 {
		t.Fatalf("b's counters for a: %+v, want no errors", st)
	}
}

// A revocation of a capability another node issued is refused and
// counted as spoofed.
func TestSpoofedRevocation(t *testing.T) {
	a, b := startNode(t), startNode(t)
	h := rawHost(t)
	mallory, _ := NodeID(h.ID())
	sc, err := a.k.Sign(kernel.Capability{Issuer: a.echoAt(), Params: kernel.MessagingParams})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pbconv.RevocationFrame(sc)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := wire.WriteFrame(&buf, f, 1<<20); err != nil {
		t.Fatal(err)
	}
	if reply, err := writeRaw(t, h, b, []byte(buf.String())); err != nil || !bytes.Equal(reply, []byte{ackTaken}) {
		t.Fatalf("b answered %x, %v; want the frame taken (and dropped)", reply, err)
	}
	if st := b.Stats()[mallory]; st.Spoofed != 1 {
		t.Fatalf("b's counters for the peer: %+v, want 1 spoofed", st)
	}
}

// A node that goes away makes requests to it fail offline; when it comes
// back at its address, requests to it work again.
func TestNodeComesBack(t *testing.T) {
	a := startNode(t, func(c *Config) { c.DialTimeout = 2 * time.Second })
	b := startNode(t)
	addr := b.addr(t, "/tcp/")
	if _, err := a.Connect(context.Background(), addr); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "before")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a to see b gone", func() bool { return len(a.Peers()) == 0 })
	_, err := a.call(b.echoAt(), "while away", time.Minute)
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline {
		t.Fatalf("request to a node that went away: %v, want offline", err)
	}
	listen := strings.TrimSuffix(addr, "/p2p/"+b.NodeID())
	b2 := restartNode(t, b.key, b.dir, func(c *Config) { c.Listen = []string{listen} })
	mustEcho(t, a, b2.echoAt(), "after")
}

// Closing a node fails what is still queued offline.
func TestCloseFailsQueued(t *testing.T) {
	a := startNode(t, func(c *Config) { c.DialTimeout = time.Minute })
	target := unreachable(t, a)
	errc := make(chan error, 1)
	go func() {
		_, err := a.call(target, "never", time.Minute)
		errc <- err
	}()
	id, _ := PeerID(target.Node)
	waitUntil(t, "the request to be dialling", func() bool { return a.peerIfKnown(id) != nil })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	err := <-errc
	if kind := sendErrKind(t, err); kind != kernel.ErrOffline {
		t.Fatalf("request queued when the node closed: %v, want offline", err)
	}
}

// A frame is read only as far as the resource manager grants the sending
// peer memory; past that the receiver refuses it and the sender's request
// fails mailbox_full.
func TestInboundFrameMemoryLimited(t *testing.T) {
	b := startNode(t, func(c *Config) { c.Limits.MemoryPerPeer = 4 << 20 })
	a := startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := a.k.Send(ctx, &kernel.Request{Target: b.echoAt(), ExpectsResponse: time.Minute, Body: []byte("big"), Blob: &kernel.Blob{Mime: "application/octet-stream", Bytes: make([]byte, 12<<20)}})
	if kind := sendErrKind(t, err); kind != kernel.ErrMailboxFull || !strings.Contains(err.Error(), "no memory") {
		t.Fatalf("a frame over the peer's memory: %v, want mailbox_full saying there is no memory", err)
	}
	// Within the limit, the same peer is served, once the refused
	// stream's memory is released (the stream's scope ends a moment after
	// its reset).
	aID, _ := PeerID(a.NodeID())
	waitUntil(t, "the refused frame's memory to be released", func() bool {
		var mem int64
		b.h.Network().ResourceManager().ViewPeer(aID, func(s network.PeerScope) error {
			mem = s.Stat().Memory
			return nil
		})
		return mem == 0
	})
	mustEcho(t, a, b.echoAt(), "small")
	// And a node with the default limits takes the largest blob the
	// kernel allows, beyond libp2p's default memory for a stream.
	c := startNode(t)
	if _, err := a.Connect(context.Background(), c.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	const mime = "application/octet-stream"
	largest := &kernel.Blob{Mime: mime, Bytes: make([]byte, a.k.Limits().MaxBlobBytes-len(mime))}
	if _, err := a.k.Send(ctx, &kernel.Request{Target: c.echoAt(), ExpectsResponse: time.Minute, Body: []byte("big"), Blob: largest}); err != nil {
		t.Fatalf("the largest blob to a node with the default limits: %v", err)
	}
}

// A reservation is renewed before it expires, and the node stays
// reachable through the relay.
func TestRelayReservationRenewed(t *testing.T) {
	r := startNode(t, func(c *Config) { c.RelayService.Enabled = true; c.RelayService.ReservationTTL = 4 * time.Second })
	b := startNode(t, func(c *Config) { c.Listen = nil; c.StaticRelays = []string{r.addr(t, "/tcp/")} })
	expiry := func() time.Time {
		b.relays.mu.Lock()
		defer b.relays.mu.Unlock()
		return b.relays.expires[r.h.ID()]
	}
	waitUntil(t, "b to reserve a slot", func() bool { return !expiry().IsZero() })
	first := expiry()
	waitUntil(t, "b to renew its reservation", func() bool { return expiry().After(first) })
	a := startNode(t)
	circuit := r.addr(t, "/tcp/") + "/p2p-circuit/p2p/" + b.NodeID()
	if _, err := a.Connect(context.Background(), circuit); err != nil {
		t.Fatal(err)
	}
	mustEcho(t, a, b.echoAt(), "still there")
}

// A libp2p peer whose key is not Ed25519 is no node: its connection is
// refused at the security handshake.
func TestOnlyNodesConnect(t *testing.T) {
	b := startNode(t)
	sk, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(sk), libp2p.NoListenAddrs, libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The dialler may finish its side of the handshake before b drops the
	// connection, so its Connect may succeed; b never keeps it.
	h.Connect(ctx, peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()})
	waitUntil(t, "the connection to be dropped", func() bool { return h.Network().Connectedness(b.h.ID()) == network.NotConnected })
	if n := len(b.h.Network().ConnsToPeer(h.ID())); n != 0 {
		t.Fatalf("b holds %d connections to a secp256k1 peer", n)
	}
}

// Three nodes send to each other from many goroutines at once; every
// request gets its answer.
func TestHammer(t *testing.T) {
	nodes := []*testNode{startNode(t), startNode(t), startNode(t)}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
				t.Fatal(err)
			}
		}
	}
	const perPair = 100
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes)*len(nodes)*perPair)
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			for i := range perPair {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := a.NodeID()[:12] + "→" + b.NodeID()[:12] + "#" + strconv.Itoa(i)
					m, err := a.call(b.echoAt(), body, 30*time.Second)
					if err == nil && string(m.Body) != body {
						err = errors.New("answer " + string(m.Body) + " to " + body)
					}
					if err != nil {
						errs <- err
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, a := range nodes {
		for node, st := range a.Stats() {
			if st.Errors != 0 || st.Spoofed != 0 || st.RateLimited != 0 {
				t.Errorf("node %s counted for %s: %+v", a.NodeID(), node, st)
			}
		}
	}
}

// Requests sent while their peer's connection is cut again and again each
// end, answered or failed with a SendError, and the node serves afterwards.
func TestSendWhileDisconnecting(t *testing.T) {
	a, b := startNode(t), startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.call(b.echoAt(), "churn "+strconv.Itoa(i), 3*time.Second)
			results <- err
		}()
	}
	for range 5 {
		if err := a.Disconnect(b.NodeID()); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	close(results)
	var answered int
	for err := range results {
		if err == nil {
			answered++
			continue
		}
		sendErrKind(t, err)
	}
	t.Logf("%d of %d answered while disconnecting", answered, n)
	mustEcho(t, a, b.echoAt(), "after the churn")
}

// A message that finds this node's streams to its peer all in use (the
// resource manager's limit) fails mailbox_full: the peer is busy, not
// gone.
func TestStreamLimitIsMailboxFull(t *testing.T) {
	const limit = 8
	a := startNode(t, func(c *Config) { c.Limits.StreamsPerPeer = limit })
	b := startNode(t)
	if _, err := a.Connect(context.Background(), b.addr(t, "/tcp/")); err != nil {
		t.Fatal(err)
	}
	const hold protocol.ID = "/weft/test-hold/1"
	release := make(chan struct{})
	var mu sync.Mutex
	running := 0
	b.h.SetStreamHandler(hold, func(s network.Stream) {
		mu.Lock()
		running++
		mu.Unlock()
		<-release
		s.Reset()
		mu.Lock()
		running--
		mu.Unlock()
	})
	// b's identify push tells a of the new protocol; until a knows it,
	// NewStream negotiates, which the held handler would block.
	waitUntil(t, "a to learn b's new protocol", func() bool {
		ps, _ := a.h.Peerstore().SupportsProtocols(b.h.ID(), hold)
		return len(ps) == 1
	})
	ctx := context.Background()
	var streams []network.Stream
	for {
		s, err := a.h.NewStream(ctx, b.h.ID(), hold)
		if err != nil {
			if !errors.Is(err, network.ErrResourceLimitExceeded) {
				t.Fatal(err)
			}
			break
		}
		streams = append(streams, s)
		if len(streams) > limit {
			t.Fatalf("opened %d streams to a peer, over the limit of %d", len(streams), limit)
		}
	}
	_, err := a.call(b.echoAt(), "no room", time.Minute)
	close(release)
	for _, s := range streams {
		s.Reset()
	}
	waitUntil(t, "b's handlers to end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == 0
	})
	if kind := sendErrKind(t, err); kind != kernel.ErrMailboxFull {
		t.Fatalf("request with every stream to the peer in use: %v, want mailbox_full", err)
	}
	mustEcho(t, a, b.echoAt(), "room again")
}
